//! [`HttpKeyService`]: WorkOS Vault's key endpoints over HTTPS.

mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::wire::{self, SecretString};
use crate::{DataKey, DataKeyPair, Error, ErrorKind, KeyContext, KeyService};

/// WorkOS's API.
const DEFAULT_BASE_URL: &str = "https://api.workos.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(8);
/// Largest response body read; anything longer is an invalid response.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Longest request id and error message kept from a response.
const MAX_ECHOED_CHARS: usize = 200;
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A [`KeyService`] that calls WorkOS Vault's key API (or anything that
/// speaks it, such as `vault-server`) over HTTP.
///
/// Connections are pooled and kept alive; HTTPS negotiates HTTP/2 or
/// HTTP/1.1 with ALPN, using rustls with the *ring* provider and the bundled
/// Mozilla roots. Plain `http://` is accepted for local servers.
///
/// Every call carries a fresh random `Idempotency-Key` that stays the same
/// across its retries. Retries follow the official SDKs: statuses 408, 429,
/// 500, 502, 503 and 504, dropped connections and timeouts are retried (3
/// times by default) with exponential backoff and jitter, honouring
/// `Retry-After` up to 60 s; other 4xx statuses never are. Each attempt has
/// its own timeout (30 s) and the whole call a deadline (2 min).
///
/// Cloning is cheap and shares the connection pool.
///
/// ```no_run
/// # async fn run() -> Result<(), vault_api::Error> {
/// use vault_api::{HttpKeyService, KeyContext, KeyService};
///
/// let service = HttpKeyService::builder()
///     .api_key(std::env::var("WORKOS_API_KEY").unwrap_or_default())
///     .build()?;
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let pair = service.create_data_key(&context).await?;
/// // Store pair.encrypted_keys; later:
/// let data_key = service.decrypt_data_key(&pair.encrypted_keys).await?;
/// assert_eq!(data_key, pair.data_key);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpKeyService {
    inner: Arc<Inner>,
}

struct Inner {
    client: HttpClient,
    /// Without a trailing slash; paths are appended.
    base_url: String,
    api_key: SecretString,
    user_agent: HeaderValue,
    timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
    rng: SystemRandom,
}

impl HttpKeyService {
    /// A builder; only [`HttpKeyServiceBuilder::api_key`] is required.
    pub fn builder() -> HttpKeyServiceBuilder {
        HttpKeyServiceBuilder::new()
    }

    /// The base URL requests go to, such as `https://api.workos.com`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }
}

impl fmt::Debug for HttpKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("HttpKeyService")
            .field("base_url", &inner.base_url)
            .field("api_key", &format_args!("[redacted]"))
            .field("user_agent", &inner.user_agent)
            .field("timeout", &inner.timeout)
            .field("deadline", &inner.deadline)
            .field("max_retries", &inner.max_retries)
            .field("backoff", &(inner.backoff_base, inner.backoff_cap))
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpKeyService`].
///
/// | setting | default |
/// |---|---|
/// | [`api_key`](Self::api_key) | required |
/// | [`base_url`](Self::base_url) | `https://api.workos.com` |
/// | [`timeout`](Self::timeout) (per attempt) | 30 s |
/// | [`deadline`](Self::deadline) (whole call, retries included) | 2 min |
/// | [`max_retries`](Self::max_retries) | 3 |
/// | [`backoff`](Self::backoff) | 500 ms x 1.5^n, capped at 8 s, with jitter |
/// | [`user_agent`](Self::user_agent) | `vault-rs/<version>` |
/// | [`tls_config`](Self::tls_config) | rustls, *ring*, Mozilla roots, TLS 1.2 and 1.3 |
#[must_use]
pub struct HttpKeyServiceBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
    user_agent: String,
    tls_config: Option<rustls::ClientConfig>,
}

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
            timeout: DEFAULT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            user_agent: concat!("vault-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            tls_config: None,
        }
    }

    /// The API key (`sk_...`), sent as `Authorization: Bearer`. Required.
    /// It is kept in a zeroizing buffer and never printed.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(Zeroizing::new(api_key.into())));
        self
    }

    /// Where the key API lives: `https://...`, or `http://...` for a local
    /// server. A path prefix is kept; a trailing slash is ignored.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The timeout of one attempt, connecting and reading the whole
    /// response included. A timed-out attempt is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of a whole call, retries and waits included. No retry
    /// starts that could not finish its wait before it.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many times a failed call is retried; 0 turns retries off.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The backoff between retries: retry `n` (from 0) waits between half
    /// and all of `base x 1.5^n`, at most `cap`. A `Retry-After` header
    /// replaces it.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Brings your own rustls configuration: private roots, client
    /// certificates, another crypto provider. Its ALPN protocols are
    /// replaced with `h2` and `http/1.1`.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Checks the settings and builds the service. Fails with
    /// [`ErrorKind::Config`] on a missing or malformed API key, a base URL
    /// that is not `http` or `https`, a zero timeout or deadline, or a
    /// malformed user agent.
    pub fn build(self) -> Result<HttpKeyService, Error> {
        let api_key = match self.api_key {
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
        let base_url = check_base_url(&self.base_url)?;
        if self.timeout.is_zero() {
            return Err(config_error("the per-attempt timeout must be above zero"));
        }
        if self.deadline.is_zero() {
            return Err(config_error("the deadline must be above zero"));
        }
        let user_agent = HeaderValue::try_from(self.user_agent)
            .map_err(|_| config_error("the user agent is not a valid HTTP header value"))?;

        let mut tls = match self.tls_config {
            Some(config) => config,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("the TLS configuration is invalid").with_source(e))?
            .with_webpki_roots()
            .with_no_client_auth(),
        };
        // hyper-rustls sets the protocols it speaks, and refuses preset ones.
        tls.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);

        Ok(HttpKeyService {
            inner: Arc::new(Inner {
                client,
                base_url,
                api_key,
                user_agent,
                timeout: self.timeout,
                deadline: self.deadline,
                max_retries: self.max_retries,
                backoff_base: self.backoff_base,
                backoff_cap: self.backoff_cap,
                rng: SystemRandom::new(),
            }),
        })
    }
}

impl fmt::Debug for HttpKeyServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpKeyServiceBuilder")
            .field(
                "api_key",
                &format_args!(
                    "{}",
                    if self.api_key.is_some() {
                        "[redacted]"
                    } else {
                        "None"
                    }
                ),
            )
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("max_retries", &self.max_retries)
            .field("backoff", &(self.backoff_base, self.backoff_cap))
            .field("user_agent", &self.user_agent)
            .field("custom_tls_config", &self.tls_config.is_some())
            .finish()
    }
}

fn config_error(message: &str) -> Error {
    Error::new(ErrorKind::Config, message)
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

fn authorization(api_key: &SecretString) -> Result<HeaderValue, Error> {
    let text = Zeroizing::new(format!("Bearer {}", api_key.expose_secret().trim()));
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| config_error("the API key is not a valid HTTP header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A failed attempt, and how long the key service asked us to wait.
struct Failure {
    error: Error,
    retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// A parsed success body and the request id that came with it.
struct Answer<T> {
    body: T,
    request_id: Option<String>,
}

impl Inner {
    /// POSTs `request` to `path`, retrying as the docs say.
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &'static str,
        request: &Q,
    ) -> Result<Answer<A>, Error> {
        let body = Bytes::from(serde_json::to_vec(request).map_err(|error| {
            Error::new(
                ErrorKind::Encode,
                "the request could not be encoded as JSON",
            )
            .with_source(error)
        })?);
        let idempotency_key = HeaderValue::try_from(new_idempotency_key(&self.rng)?)
            .map_err(|_| config_error("could not build an idempotency key"))?;
        let span = tracing::info_span!(
            "vault_api.call",
            method = "POST",
            path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        self.call_with_retries(path, body, idempotency_key)
            .instrument(span)
            .await
    }

    async fn call_with_retries<A: DeserializeOwned>(
        &self,
        path: &'static str,
        body: Bytes,
        idempotency_key: HeaderValue,
    ) -> Result<Answer<A>, Error> {
        let span = tracing::Span::current();
        let deadline = Instant::now() + self.deadline;
        let mut retry = 0;
        loop {
            span.record("attempt", retry + 1);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the key service did not answer within the deadline of {:?}",
                        self.deadline
                    ),
                ));
            }
            let limit = self.timeout.min(remaining);
            let attempt = self.attempt(path, body.clone(), idempotency_key.clone());
            let failure = match tokio::time::timeout(limit, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(failure)) => failure,
                Err(_) => {
                    let what = if limit < self.timeout {
                        "the deadline of the call"
                    } else {
                        "the per-attempt timeout"
                    };
                    Failure::from(Error::new(
                        ErrorKind::Timeout,
                        format!("the key service did not answer within {limit:?} ({what})"),
                    ))
                }
            };
            let error = failure.error;
            if !error.is_retryable() || retry >= self.max_retries {
                return Err(error);
            }
            let wait = failure.retry_after.unwrap_or_else(|| {
                retry::backoff(retry, self.backoff_base, self.backoff_cap, self.jitter())
            });
            if Instant::now() + wait >= deadline {
                tracing::debug!("no time left for another attempt before the deadline");
                return Err(error);
            }
            tracing::info!(
                kind = ?error.kind(),
                status = error.status(),
                request_id = error.request_id(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying the key service call"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One request and its response.
    async fn attempt<A: DeserializeOwned>(
        &self,
        path: &'static str,
        body: Bytes,
        idempotency_key: HeaderValue,
    ) -> Result<Answer<A>, Failure> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base_url))
            .header(header::AUTHORIZATION, authorization(&self.api_key)?)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone())
            .header("idempotency-key", idempotency_key)
            .body(Full::new(body))
            .map_err(|_| config_error("could not build the request"))?;

        let response = self.client.request(request).await.map_err(|e| {
            let message = if e.is_connect() {
                "could not connect to the key service"
            } else {
                "the connection to the key service failed before an answer"
            };
            Error::new(ErrorKind::Connect, message).with_source(e)
        })?;
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let request_id = request_id(&parts.headers);
        let span = tracing::Span::current();
        span.record("status", status);
        if let Some(id) = &request_id {
            span.record("request_id", id.as_str());
        }
        let with_id = |error: Error| match &request_id {
            Some(id) => error.with_request_id(id.clone()),
            None => error,
        };

        let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes());
        if !parts.status.is_success() {
            let retry_after = parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
            let detail = bytes.ok().and_then(|b| error_detail(&b));
            return Err(Failure {
                error: with_id(status_error(path, status, detail)),
                retry_after,
            });
        }
        let bytes = bytes.map_err(|e| {
            let error = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!("the key service's answer is over {MAX_RESPONSE_BYTES} bytes"),
                )
                .with_status(status)
            } else {
                Error::new(
                    ErrorKind::Connect,
                    "the connection to the key service failed while reading the answer",
                )
            };
            with_id(error)
        })?;
        let body = serde_json::from_slice::<A>(&bytes).map_err(|e| {
            // serde's message can quote the body: keep only where it failed.
            with_id(
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "the key service's answer is not the expected JSON ({} at line {}, column {})",
                        match e.classify() {
                            serde_json::error::Category::Data => "missing field or wrong type",
                            serde_json::error::Category::Eof => "truncated",
                            _ => "syntax error",
                        },
                        e.line(),
                        e.column()
                    ),
                )
                .with_status(status),
            )
        })?;
        Ok(Answer { body, request_id })
    }

    /// A uniform fraction for jitter.
    fn jitter(&self) -> f64 {
        let mut bytes = [0u8; 4];
        match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        }
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get("x-request-id")?.to_str().ok()?.trim();
    (!id.is_empty()).then(|| id.chars().take(MAX_ECHOED_CHARS).collect())
}

/// The message of an error body, printable and cut short.
fn error_detail(body: &[u8]) -> Option<String> {
    let parsed: wire::ErrorResponse = serde_json::from_slice(body).ok()?;
    let text: String = parsed
        .text()?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHOED_CHARS)
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The error for a non-success status.
fn status_error(path: &str, status: u16, detail: Option<String>) -> Error {
    let (kind, what) = match status {
        401 | 403 => (
            ErrorKind::Unauthorized,
            "the key service refused the API key",
        ),
        422 => (
            ErrorKind::InvalidContext,
            "the key service rejected the key context",
        ),
        400 | 404 if path != wire::DATA_KEY_PATH => (
            ErrorKind::InvalidKeys,
            "the key service rejected the encrypted keys",
        ),
        429 => (ErrorKind::Api, "the key service is rate limiting requests"),
        _ => (ErrorKind::Api, "the key service returned an error"),
    };
    let message = match detail {
        Some(detail) => format!("{what}: {detail}"),
        None => what.to_owned(),
    };
    Error::new(kind, message).with_status(status)
}

/// A random UUID v4 from the system CSPRNG.
fn new_idempotency_key(rng: &SystemRandom) -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| Error::random_failed())?;
    Ok(vault_format::id::uuid_v4(bytes))
}

fn invalid_response(message: &str, request_id: Option<&str>) -> Error {
    let error = Error::new(ErrorKind::InvalidResponse, message);
    match request_id {
        Some(id) => error.with_request_id(id),
        None => error,
    }
}

fn data_key(id: &str, text: &SecretString, request_id: Option<&str>) -> Result<DataKey, Error> {
    if id.trim().is_empty() {
        return Err(invalid_response(
            "the key service's answer has an empty data key id",
            request_id,
        ));
    }
    DataKey::from_base64(id, text.expose_secret()).map_err(|e| match e {
        vault_crypto::Error::InvalidKeyLength { len } => invalid_response(
            &format!("the key service's data key is {len} bytes; expected 32"),
            request_id,
        ),
        _ => invalid_response("the key service's data key is not base64", request_id),
    })
}

fn data_key_pair(answer: Answer<wire::DataKeyResponse>) -> Result<DataKeyPair, Error> {
    let request_id = answer.request_id.as_deref();
    let response = answer.body;
    let data_key = data_key(&response.id, &response.data_key, request_id)?;
    let encrypted_keys = vault_format::b64::decode(&response.encrypted_keys).map_err(|_| {
        invalid_response("the key service's encrypted_keys is not base64", request_id)
    })?;
    if encrypted_keys.is_empty() {
        return Err(invalid_response(
            "the key service's encrypted_keys is empty",
            request_id,
        ));
    }
    Ok(DataKeyPair::new(response.context, data_key, encrypted_keys))
}

fn check_keys(encrypted_keys: &[u8]) -> Result<(), Error> {
    if encrypted_keys.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidKeys,
            "the encrypted keys are empty",
        ));
    }
    Ok(())
}

#[async_trait]
impl KeyService for HttpKeyService {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        context.validate()?;
        let request = wire::CreateDataKeyRequest {
            context: context.clone(),
        };
        let answer = self.inner.call(wire::DATA_KEY_PATH, &request).await?;
        data_key_pair(answer)
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        check_keys(encrypted_keys)?;
        let request = wire::DecryptDataKeyRequest {
            keys: vault_format::b64::encode(encrypted_keys),
        };
        let answer: Answer<wire::DecryptDataKeyResponse> =
            self.inner.call(wire::DECRYPT_PATH, &request).await?;
        let request_id = answer.request_id.as_deref();
        data_key(&answer.body.id, &answer.body.data_key, request_id)
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        context.validate()?;
        check_keys(encrypted_keys)?;
        let request = wire::RekeyRequest {
            context: context.clone(),
            encrypted_keys: vault_format::b64::encode(encrypted_keys),
        };
        let answer = self.inner.call(wire::REKEY_PATH, &request).await?;
        data_key_pair(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_api_key() {
        let service = HttpKeyService::builder()
            .api_key("sk_test_very_secret")
            .base_url("http://127.0.0.1:1/")
            .build()
            .unwrap();
        let debug = format!("{service:?}");
        assert!(!debug.contains("very_secret"), "{debug}");
        assert!(debug.contains("api_key: [redacted]"), "{debug}");
        assert!(debug.contains("http://127.0.0.1:1"), "{debug}");
        let builder = format!(
            "{:?}",
            HttpKeyService::builder().api_key("sk_test_very_secret")
        );
        assert!(!builder.contains("very_secret"), "{builder}");
        assert_eq!(service.base_url(), "http://127.0.0.1:1");
    }

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
    fn idempotency_keys_are_uuid_v4() {
        let rng = SystemRandom::new();
        let a = new_idempotency_key(&rng).unwrap();
        let b = new_idempotency_key(&rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a.matches('-').count(), 4);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |path, status| status_error(path, status, None).kind();
        assert_eq!(kind(wire::DECRYPT_PATH, 401), ErrorKind::Unauthorized);
        assert_eq!(kind(wire::DECRYPT_PATH, 403), ErrorKind::Unauthorized);
        assert_eq!(kind(wire::DATA_KEY_PATH, 422), ErrorKind::InvalidContext);
        assert_eq!(kind(wire::DECRYPT_PATH, 400), ErrorKind::InvalidKeys);
        assert_eq!(kind(wire::REKEY_PATH, 404), ErrorKind::InvalidKeys);
        assert_eq!(kind(wire::DATA_KEY_PATH, 400), ErrorKind::Api);
        assert_eq!(kind(wire::DATA_KEY_PATH, 409), ErrorKind::Api);
        let throttled = status_error(wire::DATA_KEY_PATH, 429, Some("slow down".into()));
        assert!(throttled.is_retryable());
        assert_eq!(
            throttled.to_string(),
            "the key service is rate limiting requests: slow down (HTTP 429)"
        );
        assert!(!status_error(wire::DECRYPT_PATH, 400, None).is_retryable());
        assert_eq!(
            error_detail(br#"{"message":"bad\nthing"}"#).as_deref(),
            Some("badthing")
        );
        assert_eq!(error_detail(b"<html>"), None);
        assert_eq!(error_detail(br#"{"error":""}"#), None);
    }
}
