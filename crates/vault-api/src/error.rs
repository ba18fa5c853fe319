use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key context breaks WorkOS Vault's rules (HTTP 422).
    InvalidContext,
    /// The encrypted keys are malformed, unknown to this key service, or
    /// were tampered with.
    InvalidKeys,
    /// The key service refused the credentials (HTTP 401 or 403).
    Unauthorized,
    /// The key service answered with another error status.
    Api,
    /// No answer within the per-attempt timeout or the overall deadline.
    Timeout,
    /// The key service could not be reached, or dropped the connection.
    Connect,
    /// The key service's answer could not be understood.
    InvalidResponse,
    /// The local keyring could not be created, read or used.
    Keyring,
    /// The client is misconfigured (a bad base URL, say).
    Config,
    /// The operating system's random number generator failed, so no key,
    /// nonce or id could be drawn.
    Random,
    /// A request could not be encoded (JSON serialization failed).
    Encode,
    /// The object (or its version) does not exist (HTTP 404).
    NotFound,
    /// The object's name is taken, or its current version is not the one
    /// a `version_check` named (HTTP 409).
    Conflict,
    /// A request breaks the rules of the objects API: a malformed id, a
    /// name or value out of bounds, a bad cursor or query (HTTP 400).
    InvalidRequest,
    /// An object store's database failed (HTTP 500).
    Storage,
}

/// An error from a key service.
///
/// `Display` says what this layer knows; the cause, if any, is reached
/// through [`std::error::Error::source`]. Errors never carry data keys,
/// API keys or request bodies. Errors are cheap to clone (the cause is
/// shared), so one failure can be handed to every caller waiting on it.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    request_id: Option<String>,
    code: Option<String>,
    retryable: bool,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` with a message for users.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable = matches!(kind, ErrorKind::Timeout | ErrorKind::Connect);
        Error {
            kind,
            message: message.into(),
            status: None,
            request_id: None,
            code: None,
            retryable,
            retry_after: None,
            source: None,
        }
    }

    /// Records the HTTP status; 408, 429, 500, 502, 503 and 504 make the
    /// error retryable.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self.retryable = is_retryable_status(status);
        self
    }

    /// Records the key service's request id (`X-Request-ID`).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Records the machine-readable `code` of the key service's error body
    /// (WorkOS's, such as `invalid_request_parameters`).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Records the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The operating system's random number generator failed.
    pub fn random_failed() -> Self {
        Error::new(
            ErrorKind::Random,
            "the operating system's random number generator failed",
        )
    }

    /// Overrides whether a retry may succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Records how long the key service asked to wait before a retry
    /// (its `Retry-After`); a [`RetryPolicy`](crate::RetryPolicy) waits
    /// that long instead of its backoff.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status, when the key service answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The key service's request id, to quote to its operators.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The key service's error code, when its error body had one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the same call may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// How long the key service asked to wait before a retry, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message, without status or request id.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The statuses the official SDKs retry: the default of
/// [`RetryPolicy`](crate::RetryPolicy) and of [`Error::with_status`].
pub(crate) const RETRYABLE_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

fn is_retryable_status(status: u16) -> bool {
    RETRYABLE_STATUSES.contains(&status)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(id) = &self.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        } else if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<crate::ContextError> for Error {
    fn from(error: crate::ContextError) -> Self {
        // The message says the cause: no source, so it is printed once.
        Error::new(ErrorKind::InvalidContext, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_status_and_request_id() {
        let error = Error::new(ErrorKind::Api, "key service failed")
            .with_status(503)
            .with_request_id("req_1");
        assert_eq!(
            error.to_string(),
            "key service failed (HTTP 503, request id req_1)"
        );
        assert!(error.is_retryable());
        assert_eq!(error.status(), Some(503));
        assert_eq!(error.request_id(), Some("req_1"));
        assert!(!Error::new(ErrorKind::Api, "bad")
            .with_status(400)
            .is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "slow").is_retryable());
    }
}
