//! Calls of the Transit HTTP API through a [`Transport`]: the headers and
//! what the answers mean. Attempts, retries, timeouts and the deadline are
//! `vault_api`'s [`RetryPolicy`], the one `HttpKeyService` follows.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use vault_api::transport::http::header::{self, HeaderValue};
use vault_api::transport::http::{Method, Request, Response};
use vault_api::transport::{Bytes, Transport, TransportError, TransportErrorKind};
use vault_api::{Error, ErrorKind, RetryPolicy};
use zeroize::Zeroizing;

/// Longest Transit error text kept in an error message.
const MAX_ECHOED_CHARS: usize = 200;

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
    pub(crate) policy: RetryPolicy,
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
    /// retrying as the [`RetryPolicy`] allows.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        op: Op,
        path: &str,
        body: SecretBody,
    ) -> Result<T, Error> {
        let body = Bytes::from_owner(body);
        let url = format!("{}/v1/{}/{}", self.address, self.mount, path);
        self.policy
            .run("Transit", || async {
                let request = self.request(&url, &body)?;
                match self.transport.send(request).await {
                    Err(error) => Err(self.transport_error(error)),
                    Ok(response) => self.read(op, response),
                }
            })
            .await
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
    fn read<T: DeserializeOwned>(&self, op: Op, response: Response<Bytes>) -> Result<T, Error> {
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| self.policy.retry_after(v, SystemTime::now()));
            let detail = error_detail(response.body());
            let error = self.status_error(op, status, detail);
            return Err(match retry_after {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            });
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
                Error::new(ErrorKind::InvalidResponse, message).with_status(status)
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
        let retryable = self.policy.retries_status(status);
        Error::new(kind, message)
            .with_status(status)
            .with_retryable(retryable)
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
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("namespace", &self.namespace)
            .field("token", &format_args!("[redacted]"))
            .field("policy", &self.policy)
            .field("transport", &self.transport)
            .finish()
    }
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

/// The retry policy of Transit calls: the default one, with five retries
/// (about 6 s of waits in all: longer than the Raft leader elections
/// `cargo xtask raft` measured, about 3 s, so a failover is ridden out
/// rather than reported) and a standby's redirect (307, 308) retried like
/// a 503: during a leader election it points at the node that just died,
/// and retrying outlasts the election where following would fail.
pub(crate) fn default_policy() -> RetryPolicy {
    RetryPolicy::new()
        .with_max_retries(5)
        .with_statuses([307, 308, 408, 429, 500, 502, 503, 504])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_redirect_is_retried_like_a_503() {
        let policy = default_policy();
        let retryable_answer = |status| policy.retries_status(status);
        for status in [307, 308, 500, 503, 429] {
            assert!(retryable_answer(status), "{status}");
        }
        for status in [400, 403, 404, 301] {
            assert!(!retryable_answer(status), "{status}");
        }
        assert_eq!(policy.max_retries(), 5);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        use std::time::Duration;
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(8));
        let backoff = |retry, base, cap, jitter| {
            default_policy()
                .with_backoff(base, cap)
                .backoff_for(retry, jitter)
        };
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
