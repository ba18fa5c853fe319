//! [`TlsConfig`]: serving HTTPS from PEM files, with ALPN `h2` and
//! `http/1.1`, and swapping the certificate without a restart.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// What a server presents over TLS: a certificate chain and its private
/// key, loaded from PEM (rustls with the *ring* provider, TLS 1.2 and 1.3,
/// ALPN `h2` then `http/1.1`).
///
/// Cloning shares the loaded certificate, so a [`reload`](Self::reload)
/// through any clone changes what the server presents from its next
/// handshake on; connections already open keep theirs.
///
/// ```no_run
/// # fn run() -> std::io::Result<()> {
/// let tls = vault_server::TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let config = vault_server::ServerConfig::new().api_key("sk_test_local").tls(tls);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    files: Option<Arc<(PathBuf, PathBuf)>>,
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    /// Set while a [`reload_within`](Self::reload_within) reads the files.
    reading: Arc<AtomicBool>,
}

/// How long a SIGHUP reload may take to read the files.
const SIGHUP_RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

impl TlsConfig {
    /// Loads the certificate chain (leaf first) from `cert` and the private
    /// key (PKCS#8, PKCS#1 or SEC1) from `key`, both PEM. Fails with
    /// `InvalidData` when a file holds no certificate or key, or the key
    /// does not match the certificate.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let mut config = Self::from_pem(&read(&cert)?, &read(&key)?)?;
        config.files = Some(Arc::new((cert, key)));
        Ok(config)
    }

    /// [`from_pem_files`](Self::from_pem_files) from PEM text in memory.
    /// Such a configuration has no files to [`reload`](Self::reload).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(cert_pem, key_pem, &provider)?;
        Ok(TlsConfig {
            files: None,
            resolver: Arc::new(Resolver {
                current: RwLock::new(Arc::new(key)),
            }),
            provider,
            reading: Arc::default(),
        })
    }

    /// Reads the PEM files again and presents the new certificate from the
    /// next handshake on. On any error the certificate in use stays.
    pub fn reload(&self) -> io::Result<()> {
        let Some(files) = &self.files else {
            return Err(io::Error::other(
                "this TLS configuration was not loaded from files",
            ));
        };
        let (cert, key) = files.as_ref();
        let key = certified_key(&read(cert)?, &read(key)?, &self.provider)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// [`reload`](Self::reload) on a blocking thread, waiting at most
    /// `timeout`, for async code: a file on a hung mount or a FIFO nobody
    /// writes cannot stall the runtime, and so neither TLS nor anything
    /// else served by it. On a timeout the certificate in use stays (the
    /// error is `TimedOut`), and until the stuck read ends, further calls
    /// fail at once instead of piling up threads.
    ///
    /// ```no_run
    /// # async fn run(tls: vault_server::TlsConfig) {
    /// if let Err(e) = tls.reload_within(std::time::Duration::from_secs(5)).await {
    ///     eprintln!("kept the certificate in use: {e}");
    /// }
    /// # }
    /// ```
    pub async fn reload_within(&self, timeout: Duration) -> io::Result<()> {
        if self.reading.swap(true, Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "an earlier reload is still reading the certificate files",
            ));
        }
        let this = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let outcome = this.reload();
            this.reading.store(false, Ordering::SeqCst);
            outcome
        });
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => {
                self.reading.store(false, Ordering::SeqCst);
                Err(io::Error::other(format!("the reload failed: {join}")))
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("reading the certificate files took over {timeout:?}"),
            )),
        }
    }

    /// Reloads on every SIGHUP (Unix; elsewhere it never completes),
    /// through [`reload_within`](Self::reload_within) with a 5 s timeout,
    /// logging each outcome with `on_reload`. Run it beside the server;
    /// drop it to stop listening.
    pub async fn reload_on_sighup(self, on_reload: impl Fn(io::Result<()>) + Send) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP: the certificate will not be reloaded");
                return std::future::pending().await;
            };
            while hangups.recv().await.is_some() {
                on_reload(self.reload_within(SIGHUP_RELOAD_TIMEOUT).await);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = on_reload;
            std::future::pending::<()>().await;
        }
    }

    /// The acceptor for the server's connections.
    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TlsConfig");
        if let Some(files) = &self.files {
            debug.field("cert", &files.0).field("key", &files.1);
        }
        debug.finish_non_exhaustive()
    }
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> io::Result<CertifiedKey> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the certificate file is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            "the certificate file holds no CERTIFICATE block".to_owned(),
        ));
    }
    // The key's own error could echo key bytes; say only what is wrong.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        invalid("the key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned())
    })?;
    if is_ca_certificate(&chain[0]) {
        tracing::warn!(
            "the server's own certificate is a CA certificate (basicConstraints CA:TRUE, what \
             `openssl req -x509` makes by default): clients refuse it (CaUsedAsEndEntity); make \
             a CA and a server certificate signed by it, or add basicConstraints=CA:FALSE"
        );
    }
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| invalid(format!("the private key does not fit the certificate: {e}")))
}

/// Whether the DER certificate `der` says it is a CA: its basicConstraints
/// extension (OID 2.5.29.19) holds `cA TRUE`. A scan for the extension's
/// DER shape (`OID, [critical,] OCTET STRING { SEQUENCE { BOOLEAN TRUE`),
/// not a full X.509 parser: enough for a warning.
fn is_ca_certificate(der: &[u8]) -> bool {
    const BASIC_CONSTRAINTS: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x13];
    der.windows(BASIC_CONSTRAINTS.len())
        .enumerate()
        .filter(|(_, window)| *window == BASIC_CONSTRAINTS)
        .any(|(at, _)| {
            let mut rest = &der[at + BASIC_CONSTRAINTS.len()..];
            // An optional `critical` BOOLEAN.
            if let [0x01, 0x01, _, tail @ ..] = rest {
                rest = tail;
            }
            // OCTET STRING (short length), SEQUENCE (short length), BOOLEAN TRUE.
            matches!(rest, [0x04, _, 0x30, _, 0x01, 0x01, 0xff, ..])
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn certificate(is_ca: IsCa) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.is_ca = is_ca;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_ca_certificate_is_told_apart_from_a_leaf() {
        assert!(is_ca_certificate(&certificate(IsCa::Ca(
            BasicConstraints::Unconstrained
        ))));
        assert!(is_ca_certificate(&certificate(IsCa::Ca(
            BasicConstraints::Constrained(0)
        ))));
        assert!(!is_ca_certificate(&certificate(IsCa::NoCa)));
        assert!(!is_ca_certificate(&certificate(IsCa::ExplicitNoCa)));
        assert!(!is_ca_certificate(b""));
    }
}
