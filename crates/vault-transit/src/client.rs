//! Calls of the Transit HTTP API through a [`Transport`]: the headers, the
//! attempts, retries, timeouts and deadline, and what the answers mean.
//!
//! The retry rules are those of `vault_api::HttpKeyService` (statuses 408,
//! 429, 500, 502, 503, 504, dropped connections and timeouts; exponential
//! backoff with equal jitter). Its helpers are private to `vault-api`, so
//! the few lines of backoff arithmetic are repeated here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::time::Instant;
use vault_api::transport::http::header::{self, HeaderValue};
use vault_api::transport::http::{Method, Request, Response};
use vault_api::transport::{Bytes, Transport, TransportError, TransportErrorKind};
use vault_api::{Error, ErrorKind};
use zeroize::Zeroizing;

/// Longest Transit error text kept in an error message.
const MAX_ECHOED_CHARS: usize = 200;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What a call does, for its error messages and its error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Wrapping a data key.
    Encrypt,
    /// Unwrapping a data key (a 400 means the keys are bad).
    Decrypt,
    /// Rewrapping under the newest key version (a 400 means the keys are bad).
    Rewrap,
    /// Managing the key (create, rotate).
    Manage,
}

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_retries: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
}

/// The connection settings of one Transit mount.
pub(crate) struct Client {
    pub(crate) transport: Arc<dyn Transport>,
    /// Without a trailing slash, such as `https://127.0.0.1:8200`.
    pub(crate) address: String,
    /// The mount path, without slashes at either end.
    pub(crate) mount: String,
    pub(crate) namespace: Option<HeaderValue>,
    pub(crate) token: HeaderValue,
    pub(crate) user_agent: HeaderValue,
    pub(crate) limits: Limits,
    pub(crate) rng: SystemRandom,
}

/// A request body that may hold a data key: zeroized once sent.
pub(crate) struct SecretBody(pub(crate) Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for SecretBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `{"data": ...}`, the envelope of every Transit answer.
#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

/// `{"errors": [...]}`.
#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl Client {
    /// POSTs `body` to `<mount>/<path>` and reads the `data` of the answer,
    /// retrying as [`Limits`] allow.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        op: Op,
        path: &str,
        body: SecretBody,
    ) -> Result<T, Error> {
        let body = Bytes::from_owner(body);
        let url = format!("{}/v1/{}/{}", self.address, self.mount, path);
        let deadline = Instant::now() + self.limits.deadline;
        let mut retry = 0;
        loop {
            let (error, retry_after) = match self.attempt(op, &url, &body, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let Some(wait) = self.wait_before_retry(retry, &error, retry_after, deadline) else {
                return Err(error);
            };
            tracing::info!(
                kind = ?error.kind(),
                status = error.status(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying the Transit call"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    fn wait_before_retry(
        &self,
        retry: u32,
        error: &Error,
        retry_after: Option<Duration>,
        deadline: Instant,
    ) -> Option<Duration> {
        if !error.is_retryable() || retry >= self.limits.max_retries {
            return None;
        }
        let limits = &self.limits;
        let wait = retry_after.unwrap_or_else(|| {
            backoff(
                retry,
                limits.backoff_base,
                limits.backoff_cap,
                self.jitter(),
            )
        });
        (Instant::now() + wait < deadline).then_some(wait)
    }

    /// One request, cut at the per-attempt timeout or the deadline.
    async fn attempt<T: DeserializeOwned>(
        &self,
        op: Op,
        url: &str,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<T, (Error, Option<Duration>)> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let limit = self.limits.timeout.min(remaining);
        if limit.is_zero() {
            return Err((timeout(self.limits.deadline), None));
        }
        let request = self.request(url, body).map_err(|e| (e, None))?;
        match tokio::time::timeout(limit, self.transport.send(request)).await {
            Err(_) => Err((timeout(limit), None)),
            Ok(Err(error)) => Err((self.transport_error(error), None)),
            Ok(Ok(response)) => self.read(op, response),
        }
    }

    fn request(&self, url: &str, body: &Bytes) -> Result<Request<Bytes>, Error> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header("x-vault-token", self.token.clone())
            .header("x-vault-request", "true")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone());
        if let Some(namespace) = &self.namespace {
            builder = builder.header("x-vault-namespace", namespace.clone());
        }
        builder
            .body(body.clone())
            .map_err(|_| Error::new(ErrorKind::Config, "could not build the Transit request"))
    }

    /// The `data` of a success, or the error of a failure.
    fn read<T: DeserializeOwned>(
        &self,
        op: Op,
        response: Response<Bytes>,
    ) -> Result<T, (Error, Option<Duration>)> {
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            let detail = error_detail(response.body());
            return Err((self.status_error(op, status, detail), retry_after));
        }
        // 204 No Content (some versions, for key management): no data.
        let body: &[u8] = match response.body().as_ref() {
            b"" => br#"{"data":null}"#,
            body => body,
        };
        serde_json::from_slice::<Data<T>>(body)
            .map(|answer| answer.data)
            .map_err(|e| {
                // serde's message can quote the body (a data key): keep the place only.
                let message = format!(
                    "Transit's answer is not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                );
                (
                    Error::new(ErrorKind::InvalidResponse, message).with_status(status),
                    None,
                )
            })
    }

    /// The error for a non-success status.
    fn status_error(&self, op: Op, status: u16, detail: Option<String>) -> Error {
        let at = &self.address;
        let (kind, what) = match (status, op) {
            (401 | 403, _) => (
                ErrorKind::Unauthorized,
                format!(
                    "Transit at {at} refused the token for {}/: check VAULT_TOKEN (or \
                     BAO_TOKEN, or the token file) and its policy",
                    self.mount
                ),
            ),
            (404, _) => (
                ErrorKind::Config,
                format!(
                    "Transit at {at} has no engine mounted at {}/ (in this namespace)",
                    self.mount
                ),
            ),
            (400, Op::Decrypt | Op::Rewrap) => (
                ErrorKind::InvalidKeys,
                "Transit could not unwrap the data key: the encrypted keys were changed, \
                 belong to another context or key, or need a key version Transit no \
                 longer decrypts"
                    .to_owned(),
            ),
            (503, _) => (
                ErrorKind::Api,
                format!("Transit at {at} is unavailable (sealed, or no active node)"),
            ),
            (307 | 308, _) => (
                ErrorKind::Api,
                format!(
                    "Transit at {at} is a standby redirecting to an active node, which is \
                     changing (a leader election)"
                ),
            ),
            _ => (
                ErrorKind::Api,
                format!("Transit at {at} refused the request"),
            ),
        };
        let message = match detail {
            Some(detail) => format!("{what}: {detail}"),
            None => what,
        };
        let error = Error::new(kind, message).with_status(status);
        let retryable = retryable_answer(status);
        error.with_retryable(retryable)
    }

    fn transport_error(&self, error: TransportError) -> Error {
        use TransportErrorKind as T;
        let at = &self.address;
        let (kind, message) = match error.kind() {
            T::Connect => (
                ErrorKind::Connect,
                format!("could not connect to Transit at {at}"),
            ),
            T::Timeout => (
                ErrorKind::Timeout,
                format!("Transit at {at} did not answer in time"),
            ),
            T::BodyTooLarge => (
                ErrorKind::InvalidResponse,
                format!("Transit at {at} sent too much"),
            ),
            _ => (
                ErrorKind::Connect,
                format!("the connection to Transit at {at} failed before an answer"),
            ),
        };
        let retryable = error.is_retryable();
        Error::new(kind, message)
            .with_retryable(retryable)
            .with_source(error)
    }

    fn jitter(&self) -> f64 {
        let mut bytes = [0u8; 4];
        match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("namespace", &self.namespace)
            .field("token", &format_args!("[redacted]"))
            .field("limits", &self.limits)
            .field("transport", &self.transport)
            .finish()
    }
}

fn timeout(limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("Transit did not answer within {limit:?}"),
    )
}

/// Transit's error texts, printable and cut short. They name the failure
/// (`permission denied`, `Vault is sealed`), never the request's secrets.
fn error_detail(body: &[u8]) -> Option<String> {
    let parsed: Errors = serde_json::from_slice(body).ok()?;
    let text: String = parsed
        .errors
        .join("; ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHOED_CHARS)
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The wait before retry `retry` (from 0): `base x 1.5^retry` capped at
/// `cap`, half fixed and half drawn from `jitter` in `0.0..=1.0`.
fn backoff(retry: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
    let full = (base.as_secs_f64() * 1.5f64.powi(exponent)).min(cap.as_secs_f64());
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    Duration::try_from_secs_f64(full * (0.5 + 0.5 * jitter)).unwrap_or(cap)
}

/// Whether an answer with `status` may succeed if sent again: the usual
/// statuses, and a standby's redirect, which during a Raft leader election
/// points at the node that just died (`cargo xtask raft` measured elections
/// of about 3 s; retrying outlasts them where following would fail).
fn retryable_answer(status: u16) -> bool {
    vault_api::is_retryable_status(status) || matches!(status, 307 | 308)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_redirect_is_retried_like_a_503() {
        for status in [307, 308, 500, 503, 429] {
            assert!(retryable_answer(status), "{status}");
        }
        for status in [400, 403, 404, 301] {
            assert!(!retryable_answer(status), "{status}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(8));
        assert_eq!(backoff(0, base, cap, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(0, base, cap, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(2, base, cap, 1.0), Duration::from_millis(1125));
        assert_eq!(backoff(u32::MAX, base, cap, 1.0), cap);
    }

    #[test]
    fn error_details_are_short_and_printable() {
        assert_eq!(
            error_detail(br#"{"errors":["permission denied"]}"#).as_deref(),
            Some("permission denied")
        );
        assert_eq!(
            error_detail(br#"{"errors":["a\nb","c"]}"#).as_deref(),
            Some("ab; c")
        );
        assert_eq!(error_detail(br#"{"errors":[]}"#), None);
        assert_eq!(error_detail(b"<html>"), None);
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000));
        assert_eq!(
            error_detail(long.as_bytes()).unwrap().len(),
            MAX_ECHOED_CHARS
        );
    }
}
