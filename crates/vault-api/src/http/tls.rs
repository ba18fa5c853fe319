//! The client's TLS: which roots it trusts (the bundled Mozilla roots, a
//! PEM bundle given to the builder, or `SSL_CERT_FILE`), and what a
//! refused server certificate is reported as.

use std::error::Error as StdError;
use std::sync::Arc;

use hyper_rustls::ConfigBuilderExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, RootCertStore};

use super::config_error;
use crate::Error;

/// The conventional variable naming a PEM bundle of trusted CAs.
pub(super) const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// A PEM bundle of CA certificates, and where it came from (for errors).
pub(super) struct CaBundle {
    pub(super) pem: Vec<u8>,
    pub(super) origin: String,
}

impl CaBundle {
    /// The bundle `SSL_CERT_FILE` names, if it is set and not empty.
    pub(super) fn from_env() -> Result<Option<CaBundle>, Error> {
        let Some(path) = std::env::var_os(SSL_CERT_FILE).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let pem = std::fs::read(&path).map_err(|e| {
            config_error(&format!(
                "cannot read {SSL_CERT_FILE}={}: {e}",
                std::path::Path::new(&path).display()
            ))
        })?;
        Ok(Some(CaBundle {
            pem,
            origin: format!("{SSL_CERT_FILE}={}", std::path::Path::new(&path).display()),
        }))
    }
}

/// rustls on *ring*, TLS 1.2 and 1.3, trusting `bundle`'s CAs, or the
/// Mozilla roots without one.
pub(super) fn client_config(bundle: Option<&CaBundle>) -> Result<rustls::ClientConfig, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| config_error("the TLS configuration is invalid").with_source(e))?;
    let config = match bundle {
        None => builder.with_webpki_roots(),
        Some(bundle) => builder.with_root_certificates(root_store(bundle)?),
    };
    Ok(config.with_no_client_auth())
}

fn root_store(bundle: &CaBundle) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bundle.pem) {
        let cert = cert.map_err(|e| {
            config_error(&format!("{} is not a valid PEM bundle: {e}", bundle.origin))
        })?;
        roots.add(cert).map_err(|e| {
            config_error(&format!(
                "{} holds an unusable CA certificate: {e}",
                bundle.origin
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(config_error(&format!(
            "{} holds no CERTIFICATE block",
            bundle.origin
        )));
    }
    Ok(roots)
}

/// Why the server's certificate was refused, when `error` (or a cause)
/// is that: these failures do not go away on a retry.
pub(super) fn refused_certificate(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(rustls::Error::InvalidCertificate(reason)) = current.downcast_ref() {
            return Some(describe(reason));
        }
        // io::Error's source() skips its payload: step into it instead.
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    None
}

fn describe(reason: &CertificateError) -> String {
    match reason {
        CertificateError::UnknownIssuer => format!(
            "it is not signed by a trusted certificate authority (to trust a private CA, \
             set {SSL_CERT_FILE} or HttpKeyServiceBuilder::root_certificates_pem)"
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it is not valid for the host name in the base URL".to_owned()
        }
        // webpki's `CaUsedAsEndEntity`, which rustls wraps in `Other`.
        CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            CA_AS_SERVER_CERT.to_owned()
        }
        other => format!("{other:?}"),
    }
}

/// What a CA certificate presented as the server's own means, and the fix.
const CA_AS_SERVER_CERT: &str = "it is a CA certificate (basicConstraints CA:TRUE, what \
     `openssl req -x509` makes by default) used as the server's own certificate; make a CA \
     and a server certificate signed by it, or add basicConstraints=CA:FALSE to the server \
     certificate";
