//! [`HttpKeyServiceBuilder`]: the settings of an [`HttpKeyService`] and
//! their checks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::Uri;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use super::proxy::Proxies;
use super::tls::CaBundle;
use super::transport::{HyperTransport, Transport};
use super::{config_error, HttpKeyService, Inner};
use crate::wire::{self, SecretString};
use crate::{Error, RetryPolicy};

/// WorkOS's API.
const DEFAULT_BASE_URL: &str = "https://api.workos.com";

/// Configures an [`HttpKeyService`].
///
/// | setting | default |
/// |---|---|
/// | [`api_key`](Self::api_key) | required |
/// | [`base_url`](Self::base_url) | `https://api.workos.com` |
/// | [`allow_insecure_http`](Self::allow_insecure_http) (plain `http://` beyond loopback) | off (`WORKOS_VAULT_ALLOW_INSECURE_HTTP=1` turns it on) |
/// | [`retry_policy`](Self::retry_policy) | [`RetryPolicy::new`], whose settings follow |
/// | [`timeout`](Self::timeout) (per attempt) | 30 s |
/// | [`deadline`](Self::deadline) (whole call, retries included) | 2 min |
/// | [`max_retries`](Self::max_retries) | 3 |
/// | [`backoff`](Self::backoff) | 500 ms x 1.5^n, capped at 8 s, with jitter |
/// | [`user_agent`](Self::user_agent) | `vault-rs/<version>` |
/// | [`transport`](Self::transport) | a [`HyperTransport`] |
/// | [`root_certificates_pem`](Self::root_certificates_pem) (of that default transport) | the CAs in the file `SSL_CERT_FILE` names, else the Mozilla roots |
/// | [`proxies`](Self::proxies) (of that default transport) | [`Proxies::from_env`](super::transport::Proxies::from_env): `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` |
/// | [`tls_config`](Self::tls_config) (of that default transport) | rustls, *ring*, the roots above, TLS 1.2 and 1.3 |
///
/// The environment is read by [`build`](Self::build), not before.
#[must_use]
pub struct HttpKeyServiceBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    policy: RetryPolicy,
    user_agent: String,
    tls_config: Option<rustls::ClientConfig>,
    ca_bundle: Option<CaBundle>,
    proxies: Option<Proxies>,
    transport: Option<Arc<dyn Transport>>,
    allow_insecure_http: bool,
}

/// `WORKOS_VAULT_ALLOW_INSECURE_HTTP=1`: the environment's form of
/// [`HttpKeyServiceBuilder::allow_insecure_http`].
pub const ALLOW_INSECURE_HTTP_VAR: &str = "WORKOS_VAULT_ALLOW_INSECURE_HTTP";

impl Default for HttpKeyServiceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpKeyServiceBuilder {
    /// A builder with the defaults in the table above.
    pub fn new() -> Self {
        HttpKeyServiceBuilder {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            policy: RetryPolicy::new(),
            user_agent: concat!("vault-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            tls_config: None,
            ca_bundle: None,
            proxies: None,
            transport: None,
            allow_insecure_http: false,
        }
    }

    /// The API key (`sk_...`), sent as `Authorization: Bearer`. Required.
    /// It is kept in a zeroizing buffer and never printed.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(Zeroizing::new(api_key.into())));
        self
    }

    /// Where the key API lives: `https://...`, or `http://...` for a
    /// server on this machine (`localhost`, `127.0.0.0/8`, `[::1]`). A path
    /// prefix is kept; a trailing slash is ignored. Plain `http://` to any
    /// other host would send the API key in clear: [`build`](Self::build)
    /// refuses it unless [`allow_insecure_http`](Self::allow_insecure_http)
    /// says otherwise.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Allows a plain `http://` base URL to a host that is not loopback,
    /// which sends the API key and data keys in clear: only for a network
    /// you trust end to end (a sidecar in the same pod, say). Also set by
    /// `WORKOS_VAULT_ALLOW_INSECURE_HTTP=1`. Off by default.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The whole retry and timeout policy at once; the four setters
    /// below change one setting of it each.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The timeout of one attempt, connecting and reading the whole
    /// response included ([`RetryPolicy::with_timeout`]). It wraps every
    /// call of the transport, yours included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy = self.policy.with_timeout(timeout);
        self
    }

    /// The deadline of a whole call, retries and waits included
    /// ([`RetryPolicy::with_deadline`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy = self.policy.with_deadline(deadline);
        self
    }

    /// How many times a failed call is retried; 0 turns retries off
    /// ([`RetryPolicy::with_max_retries`]).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.policy = self.policy.with_max_retries(max_retries);
        self
    }

    /// The backoff between retries ([`RetryPolicy::with_backoff`]). A
    /// `Retry-After` header replaces it.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.policy = self.policy.with_backoff(base, cap);
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Brings your own rustls configuration for the default transport:
    /// private roots, client certificates, another crypto provider. Its
    /// ALPN protocols are replaced with `h2` and `http/1.1`. It cannot be
    /// combined with [`transport`](Self::transport): configure TLS in that
    /// transport instead (for instance with
    /// [`HyperTransport::with_tls_config`]).
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Trusts exactly the CA certificates of `pem` (one or more
    /// `CERTIFICATE` blocks), instead of `SSL_CERT_FILE` or the Mozilla
    /// roots: for a key service behind a private CA.
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle = Some(CaBundle {
            pem: pem.into(),
            origin: "the root certificates given to HttpKeyServiceBuilder".to_owned(),
        });
        self
    }

    /// Sends requests through `proxies` instead of those the environment
    /// names; [`Proxies::none`](super::transport::Proxies::none) goes direct.
    pub fn proxies(mut self, proxies: Proxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// Sends requests through `transport` instead of a [`HyperTransport`].
    /// Retries, timeouts, the deadline and the headers stay this service's
    /// work; see [`Transport`] for an example. It cannot be combined with
    /// [`tls_config`](Self::tls_config).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Checks the settings and builds the service. Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) on a missing or
    /// malformed API key, a base URL that is not `http` or `https`, a zero
    /// timeout or deadline, a malformed user agent, a transport with
    /// settings of the default one (TLS, roots, proxies), both a TLS
    /// configuration and root certificates, or a proxy variable or
    /// `SSL_CERT_FILE` that cannot be used.
    pub fn build(self) -> Result<HttpKeyService, Error> {
        let api_key = check_api_key(self.api_key)?;
        let base_url = check_base_url(&self.base_url)?;
        let allow_insecure = self.allow_insecure_http
            || std::env::var(ALLOW_INSECURE_HTTP_VAR)
                .is_ok_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"));
        check_in_clear(&base_url, allow_insecure)?;
        self.policy.check()?;
        let user_agent = HeaderValue::try_from(self.user_agent)
            .map_err(|_| config_error("the user agent is not a valid HTTP header value"))?;
        let timeout = self.policy.timeout();
        let transport: Arc<dyn Transport> = match self.transport {
            Some(transport) => {
                if self.tls_config.is_some() || self.ca_bundle.is_some() || self.proxies.is_some() {
                    return Err(config_error(
                        "a TLS configuration, root certificates and proxies apply to the \
                         default transport only; configure TLS in the transport you bring",
                    ));
                }
                transport
            }
            None => Arc::new(default_transport(
                self.tls_config,
                self.ca_bundle,
                self.proxies,
                timeout,
            )?),
        };
        Ok(HttpKeyService {
            inner: Arc::new(Inner {
                transport,
                base_url,
                api_key,
                user_agent,
                policy: self.policy,
                rng: SystemRandom::new(),
            }),
        })
    }
}

impl fmt::Debug for HttpKeyServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let api_key = if self.api_key.is_some() {
            "[redacted]"
        } else {
            "None"
        };
        f.debug_struct("HttpKeyServiceBuilder")
            .field("api_key", &format_args!("{api_key}"))
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .field("user_agent", &self.user_agent)
            .field("custom_tls_config", &self.tls_config.is_some())
            .field(
                "root_certificates",
                &self.ca_bundle.as_ref().map(|b| b.origin.as_str()),
            )
            .field("proxies", &self.proxies)
            .field("transport", &self.transport)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

/// The [`HyperTransport`] of the settings, with the environment's CA
/// bundle and proxies where none were given.
fn default_transport(
    tls: Option<rustls::ClientConfig>,
    bundle: Option<CaBundle>,
    proxies: Option<Proxies>,
    timeout: Duration,
) -> Result<HyperTransport, Error> {
    let bundle = match (&tls, bundle) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                "root certificates and a TLS configuration do not mix; \
                 put the roots in the TLS configuration",
            ))
        }
        (Some(_), None) => None,
        (None, Some(bundle)) => Some(bundle),
        // A TLS configuration of one's own replaces SSL_CERT_FILE too.
        (None, None) => CaBundle::from_env()?,
    };
    let proxies = match proxies {
        Some(proxies) => proxies,
        None => Proxies::from_env()?,
    };
    HyperTransport::build(tls, bundle, proxies, timeout)
}

fn check_api_key(api_key: Option<SecretString>) -> Result<SecretString, Error> {
    let api_key = match api_key {
        Some(key) if !key.expose_secret().trim().is_empty() => key,
        _ => {
            return Err(config_error(
                "an API key is required; set it with HttpKeyService::builder().api_key(..)",
            ))
        }
    };
    if authorization(&api_key).is_err() {
        return Err(config_error(
            "the API key holds characters that cannot be sent in an HTTP header",
        ));
    }
    Ok(api_key)
}

fn check_base_url(text: &str) -> Result<String, Error> {
    let base = text.trim().trim_end_matches('/');
    let uri: Uri = base
        .parse()
        .map_err(|_| config_error("the base URL is not a valid URL"))?;
    match uri.scheme_str() {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") => {}
        _ => {
            return Err(config_error(
                "the base URL must start with https:// (or http:// for a local server)",
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(config_error("the base URL has no host"));
    }
    if uri.query().is_some() || base.contains('#') {
        return Err(config_error(
            "the base URL must not have a query or a fragment",
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(config_error(
            "the base URL must not hold credentials; use api_key",
        ));
    }
    for path in [wire::DATA_KEY_PATH, wire::DECRYPT_PATH, wire::REKEY_PATH] {
        format!("{base}{path}")
            .parse::<Uri>()
            .map_err(|_| config_error("the base URL is not a valid URL"))?;
    }
    Ok(base.to_owned())
}

/// Refuses `http://` to a host that is not loopback unless allowed: the
/// API key would cross the network in clear.
fn check_in_clear(base_url: &str, allowed: bool) -> Result<(), Error> {
    let Ok(uri) = base_url.parse::<Uri>() else {
        return Err(config_error("the base URL is not a valid URL"));
    };
    if allowed
        || !uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(config_error(&format!(
        "the base URL http://{host} would send the API key in clear to a host that is not \
         this machine; use https://, or on a network you trust end to end opt in with \
         allow_insecure_http(true) or {ALLOW_INSECURE_HTTP_VAR}=1"
    )))
}

/// The `Authorization` header, marked sensitive so `Debug` hides it.
pub(super) fn authorization(api_key: &SecretString) -> Result<HeaderValue, Error> {
    let text = Zeroizing::new(format!("Bearer {}", api_key.expose_secret().trim()));
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| config_error("the API key is not a valid HTTP header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn config_errors() {
        let kind = |b: HttpKeyServiceBuilder| b.build().unwrap_err().kind();
        assert_eq!(kind(HttpKeyService::builder()), ErrorKind::Config);
        assert_eq!(
            kind(HttpKeyService::builder().api_key(" ")),
            ErrorKind::Config
        );
        assert_eq!(
            kind(HttpKeyService::builder().api_key("sk\nx")),
            ErrorKind::Config
        );
        for url in [
            "ftp://example.com",
            "example.com",
            "",
            "https://",
            "https://example.com?x=1",
            "https://user:pw@example.com",
            "http://exa mple.com",
        ] {
            let error = HttpKeyService::builder()
                .api_key("sk_test")
                .base_url(url)
                .build()
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{url}");
            assert!(!error.to_string().contains("sk_test"));
        }
        assert_eq!(
            kind(
                HttpKeyService::builder()
                    .api_key("k")
                    .timeout(Duration::ZERO)
            ),
            ErrorKind::Config
        );
        assert_eq!(
            kind(HttpKeyService::builder().api_key("k").user_agent("a\u{1}b")),
            ErrorKind::Config
        );
        let ok = HttpKeyService::builder()
            .api_key("k")
            .base_url("HTTPS://api.example.com/prefix/")
            .build()
            .unwrap();
        assert_eq!(ok.base_url(), "HTTPS://api.example.com/prefix");
    }

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        let build = |url: &str, allow: bool| {
            HttpKeyService::builder()
                .api_key("sk_test")
                .base_url(url)
                .allow_insecure_http(allow)
                .proxies(crate::transport::Proxies::none())
                .build()
        };
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1/prefix",
            "http://[::1]:8080",
            "https://keys.example.com",
        ] {
            build(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for url in [
            "http://keys.example.com",
            "http://10.0.0.1:8080",
            "http://0.0.0.0:9",
            "http://[2001:db8::1]",
            "HTTP://localhost.example.com",
        ] {
            let error = build(url, false).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{url}");
            assert!(error.to_string().contains("in clear"), "{error}");
            assert!(
                error.to_string().contains(ALLOW_INSECURE_HTTP_VAR),
                "{error}"
            );
            build(url, true).unwrap_or_else(|e| panic!("{url} allowed: {e}"));
        }
    }

    #[test]
    fn a_transport_and_a_tls_config_do_not_mix() {
        let tls = default_tls();
        let transport = Arc::new(HyperTransport::with_tls_config(default_tls()));
        let error = HttpKeyService::builder()
            .api_key("k")
            .tls_config(tls)
            .transport(transport.clone())
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("TLS"), "{error}");
        HttpKeyService::builder()
            .api_key("k")
            .transport(transport)
            .build()
            .unwrap();
        HttpKeyService::builder()
            .api_key("k")
            .tls_config(default_tls())
            .build()
            .unwrap();
    }

    #[test]
    fn root_certificates_must_be_pem_certificates() {
        let build = |pem: &[u8]| {
            HttpKeyService::builder()
                .api_key("k")
                .root_certificates_pem(pem)
                .proxies(Proxies::none())
                .build()
        };
        for bad in [
            &b""[..],
            b"not pem",
            b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        ] {
            let error = build(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{bad:?}");
            assert!(error.to_string().contains("root certificates"), "{error}");
        }
        let error = HttpKeyService::builder()
            .api_key("k")
            .tls_config(default_tls())
            .root_certificates_pem(b"x".to_vec())
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("do not mix"), "{error}");
    }

    fn default_tls() -> rustls::ClientConfig {
        super::super::tls::client_config(None).unwrap()
    }
}
