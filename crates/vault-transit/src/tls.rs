//! TLS with a private CA (`VAULT_CACERT`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use vault_api::{Error, ErrorKind};

/// A rustls configuration (ring provider, TLS 1.2 and 1.3) that trusts
/// only the CA certificates in the PEM file at `path`.
pub(crate) fn with_ca_file(path: &Path) -> Result<rustls::ClientConfig, Error> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the CA file {shown}"),
        )
        .with_source(e)
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the CA file {shown} is not valid PEM"),
            )
            .with_source(e)
        })?;
        roots.add(cert).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the CA file {shown} holds a bad certificate"),
            )
            .with_source(e)
        })?;
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("the CA file {shown} holds no certificate"),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::new(ErrorKind::Config, "the TLS configuration is invalid").with_source(e)
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for path in [empty, dir.path().join("missing.pem")] {
            assert_eq!(with_ca_file(&path).unwrap_err().kind(), ErrorKind::Config);
        }
    }
}
