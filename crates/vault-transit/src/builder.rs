//! [`TransitKeyServiceBuilder`]: the settings of a [`TransitKeyService`]
//! and their checks.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vault_api::transport::http::header::HeaderValue;
use vault_api::transport::http::Uri;
use vault_api::transport::{HyperTransport, Transport};
use vault_api::{Error, ErrorKind, RetryPolicy};
use zeroize::Zeroizing;

use crate::blob::valid_key_name;
use crate::client::{default_policy, Client};
use crate::TransitKeyService;

const DEFAULT_MOUNT: &str = "transit";

/// Configures a [`TransitKeyService`].
///
/// | setting | default |
/// |---|---|
/// | [`address`](Self::address) | required (`VAULT_ADDR` in [`from_env`](Self::from_env)) |
/// | [`token`](Self::token) or [`token_file`](Self::token_file) | required |
/// | [`key`](Self::key) | required: a derived `aes256-gcm96` Transit key |
/// | [`mount`](Self::mount) | `transit` |
/// | [`namespace`](Self::namespace) | none (sent as `X-Vault-Namespace`) |
/// | [`ca_file`](Self::ca_file) | the Mozilla roots |
/// | [`retry_policy`](Self::retry_policy) | [`RetryPolicy::new`] with the three changes below |
/// | [`timeout`](Self::timeout) (per attempt) | 30 s |
/// | [`deadline`](Self::deadline) (whole call, retries included) | 2 min |
/// | [`max_retries`](Self::max_retries) | 5 (about 6 s of waits: longer than a Raft leader election) |
/// | [`backoff`](Self::backoff) | 500 ms x 1.5^n, capped at 8 s, with jitter |
/// | statuses retried | 307, 308, 408, 429, 500, 502, 503, 504 |
/// | [`transport`](Self::transport) | a [`HyperTransport`] |
#[must_use]
pub struct TransitKeyServiceBuilder {
    pub(crate) address: Option<String>,
    pub(crate) token: Option<Zeroizing<String>>,
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) key: Option<String>,
    pub(crate) mount: String,
    pub(crate) namespace: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) policy: RetryPolicy,
    pub(crate) transport: Option<Arc<dyn Transport>>,
}

impl Default for TransitKeyServiceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TransitKeyServiceBuilder {
    /// A builder with the defaults in the table above.
    pub fn new() -> Self {
        TransitKeyServiceBuilder {
            address: None,
            token: None,
            token_file: None,
            key: None,
            mount: DEFAULT_MOUNT.to_owned(),
            namespace: None,
            ca_file: None,
            policy: default_policy(),
            transport: None,
        }
    }

    /// The engine's address: `https://host:8200`, or `http://` for a
    /// local dev server. A trailing slash is ignored.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The token, sent as `X-Vault-Token`. Kept in a zeroizing buffer and
    /// never printed. Takes precedence over [`token_file`](Self::token_file).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Zeroizing::new(token.into()));
        self
    }

    /// A file holding the token (surrounding whitespace is ignored), such
    /// as `~/.vault-token` or the sink of an agent. Read by
    /// [`build`](Self::build).
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    /// The Transit key that wraps new data keys. Blobs name the key that
    /// wrapped them, so changing this keeps old blobs readable.
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.key = Some(name.into());
        self
    }

    /// Where the Transit engine is mounted; `transit` by default.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// The namespace (OpenBao namespaces, Vault Enterprise), sent as
    /// `X-Vault-Namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A PEM file of the CA certificates to trust instead of the Mozilla
    /// roots, for an engine with a private CA.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The whole retry and timeout policy at once; the four setters
    /// below change one setting of it each. Add 307 and 308 to its
    /// statuses to ride out leader elections as the default does.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The timeout of one attempt ([`RetryPolicy::with_timeout`]). A
    /// timed-out attempt is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy = self.policy.with_timeout(timeout);
        self
    }

    /// The deadline of a whole call, retries and waits included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy = self.policy.with_deadline(deadline);
        self
    }

    /// How many times a failed call is retried; 0 turns retries off.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.policy = self.policy.with_max_retries(max_retries);
        self
    }

    /// The backoff between retries: retry `n` (from 0) waits between half
    /// and all of `base x 1.5^n`, at most `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.policy = self.policy.with_backoff(base, cap);
        self
    }

    /// Sends requests through `transport` instead of a [`HyperTransport`]
    /// (a proxy, another HTTP stack). Not combined with
    /// [`ca_file`](Self::ca_file): configure TLS in that transport.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Checks the settings and builds the service. Fails with
    /// [`ErrorKind::Config`] on a missing or malformed address, token or
    /// key name, a bad mount or namespace, an unreadable token or CA file,
    /// zero timeouts, or both a transport and a CA file.
    pub fn build(self) -> Result<TransitKeyService, Error> {
        let address = check_address(self.address.as_deref())?;
        let token = token_header(self.token, self.token_file.as_ref())?;
        let key = match self.key {
            Some(key) if valid_key_name(&key) => key,
            Some(_) => {
                return Err(config(
                    "the Transit key name must be 1 to 128 letters, digits, '-', '_' or '.'",
                ))
            }
            None => {
                return Err(config(
                    "a Transit key name is required (WORKOS_VAULT_TRANSIT_KEY)",
                ))
            }
        };
        let mount = self.mount.trim_matches('/').to_owned();
        if !mount.split('/').all(valid_key_name) {
            return Err(config(
                "the Transit mount path must be segments of letters, digits, '-', '_' or '.'",
            ));
        }
        let namespace = match self
            .namespace
            .as_deref()
            .map(|n| n.trim().trim_matches('/'))
        {
            None | Some("") => None,
            Some(ns) if ns.split('/').all(valid_key_name) => Some(
                HeaderValue::from_str(ns)
                    .map_err(|_| config("the namespace is not a valid header value"))?,
            ),
            Some(_) => {
                return Err(config(
                    "the namespace must be segments of letters, digits, '-', '_' or '.'",
                ))
            }
        };
        self.policy.check()?;
        let transport: Arc<dyn Transport> = match (self.transport, self.ca_file) {
            (Some(_), Some(_)) => return Err(config("a CA file applies to the default transport only; configure TLS in the transport you bring")),
            (Some(transport), None) => transport,
            (None, Some(path)) => Arc::new(HyperTransport::with_tls_config(crate::tls::with_ca_file(&path)?)),
            (None, None) => Arc::new(HyperTransport::new()?),
        };
        let user_agent =
            HeaderValue::from_static(concat!("vault-rs-transit/", env!("CARGO_PKG_VERSION")));
        let client = Client {
            transport,
            address,
            mount,
            namespace,
            token,
            user_agent,
            policy: self.policy,
        };
        Ok(TransitKeyService::from_parts(client, key))
    }
}

impl fmt::Debug for TransitKeyServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_some() {
            "[redacted]"
        } else {
            "None"
        };
        f.debug_struct("TransitKeyServiceBuilder")
            .field("address", &self.address)
            .field("token", &format_args!("{token}"))
            .field("token_file", &self.token_file)
            .field("key", &self.key)
            .field("mount", &self.mount)
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .field("policy", &self.policy)
            .field("transport", &self.transport)
            .finish()
    }
}

pub(crate) fn config(message: &str) -> Error {
    Error::new(ErrorKind::Config, message)
}

fn check_address(address: Option<&str>) -> Result<String, Error> {
    let Some(address) = address.map(|a| a.trim().trim_end_matches('/')) else {
        return Err(config(
            "the Transit address is required (VAULT_ADDR, such as https://127.0.0.1:8200)",
        ));
    };
    let uri: Uri = address
        .parse()
        .map_err(|_| config("the Transit address is not a valid URL"))?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(config(
            "the Transit address must be https://host[:port] (or http:// for a local dev server)",
        ));
    }
    if uri.query().is_some() || address.contains('@') || address.contains('#') {
        return Err(config(
            "the Transit address must not hold credentials, a query or a fragment",
        ));
    }
    Ok(address.to_owned())
}

/// Reads a token file, refusing one that others may read: a token that
/// every user of the machine can read is no secret.
fn read_token_file(path: &PathBuf) -> Result<Zeroizing<String>, Error> {
    let read_error = |e: std::io::Error| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the token file {}", path.display()),
        )
        .with_source(e)
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(config(&format!(
                "the token file {path} has mode {mode:04o}, so every user may read the token; \
                 run `chmod 600 {path}` (and consider revoking the token)",
                path = path.display()
            )));
        }
    }
    let mut token = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut &file, &mut token).map_err(read_error)?;
    Ok(token)
}

/// The `X-Vault-Token` header, marked sensitive so `Debug` hides it.
fn token_header(
    token: Option<Zeroizing<String>>,
    file: Option<&PathBuf>,
) -> Result<HeaderValue, Error> {
    let token = match (token, file) {
        (Some(token), _) => token,
        (None, Some(path)) => read_token_file(path)?,
        (None, None) => return Err(config("a Transit token is required: set VAULT_TOKEN (or BAO_TOKEN) or WORKOS_VAULT_TRANSIT_TOKEN_FILE")),
    };
    let trimmed = token.trim();
    if trimmed.is_empty() {
        return Err(config("the Transit token is empty"));
    }
    let mut value = HeaderValue::from_str(trimmed).map_err(|_| {
        config("the Transit token holds characters that cannot be sent in an HTTP header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn base() -> TransitKeyServiceBuilder {
        TransitKeyServiceBuilder::new()
            .address("http://127.0.0.1:1")
            .token("s.topsecret")
            .key("k")
    }

    #[test]
    fn settings_are_checked_and_secrets_never_printed() {
        let service = base()
            .namespace("/team-a/")
            .mount("/kms/transit/")
            .build()
            .unwrap();
        let debug = format!("{service:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(
            debug.contains("[redacted]") && debug.contains("team-a"),
            "{debug}"
        );
        assert_eq!(service.mount(), "kms/transit");
        assert!(!format!("{:?}", base()).contains("topsecret"));
        let cases = [
            base().address("ftp://x"),
            base().address("https://user:pw@host"),
            TransitKeyServiceBuilder::new().token("t").key("k"),
            base().token(" "),
            base().token("a\nb"),
            base().key("a/b"),
            base().mount("a b"),
            base().namespace("a\u{1}"),
            base().timeout(Duration::ZERO),
            TransitKeyServiceBuilder::new().address("http://h").key("k"),
            TransitKeyServiceBuilder::new()
                .address("http://h")
                .key("k")
                .token_file("/nonexistent/token"),
        ];
        for builder in cases {
            let text = format!("{builder:?}");
            let error = builder.build().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{text}");
            assert!(!error.to_string().contains("topsecret"), "{error}");
        }
    }

    #[test]
    fn the_token_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s.fromfile\n").unwrap();
        // Owner-only, as `vault login` writes it: others may not read it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let service = TransitKeyServiceBuilder::new()
            .address("http://h")
            .key("k")
            .token_file(&path)
            .build()
            .unwrap();
        assert!(!format!("{service:?}").contains("fromfile"));
    }
}
