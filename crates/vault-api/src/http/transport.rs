//! The seam under [`HttpKeyService`](crate::HttpKeyService): a
//! [`Transport`] sends one HTTP request and returns the whole response.
//!
//! [`HyperTransport`] (hyper + rustls, pooled) is the default. Bring your
//! own to use another HTTP stack, a proxy, or, in tests, scripted answers
//! without sockets. Retries, backoff, `Retry-After`, the per-attempt
//! timeout, the deadline and the idempotency key stay in `HttpKeyService`,
//! so every transport gets them.

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;

pub use super::hyper_client::HyperTransport;
pub use super::proxy::Proxies;
/// A cheaply cloned byte buffer: the bodies a [`Transport`] carries.
pub use hyper::body::Bytes;
/// The `http` crate's request, response and header types, as hyper
/// re-exports them.
pub use hyper::http;

/// The largest response body [`HttpKeyService`](crate::HttpKeyService)
/// accepts; a longer one is an invalid response. A transport should stop
/// reading there and return [`TransportErrorKind::BodyTooLarge`], so a
/// hostile server cannot make it buffer without end.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Sends one HTTP request and returns the whole response: status, headers
/// and body.
///
/// Implementations are `Send + Sync + Debug` and held as
/// `Arc<dyn Transport>`; plug one in with
/// [`HttpKeyServiceBuilder::transport`](crate::HttpKeyServiceBuilder::transport).
/// A transport makes one attempt: [`HttpKeyService`](crate::HttpKeyService)
/// retries, and cuts an attempt short at its per-attempt timeout or its
/// deadline by dropping the future.
///
/// The request carries the API key in its `Authorization` header (marked
/// sensitive, so `http`'s `Debug` hides it): a transport must not log or
/// keep it, and its own `Debug` must not show secrets.
///
/// Any status is an `Ok` response, 4xx and 5xx included. Return a
/// [`TransportError`] only when no whole response arrived; its
/// [`kind`](TransportErrorKind) decides whether the call is retried.
///
/// ```
/// use std::sync::Arc;
///
/// use async_trait::async_trait;
/// use vault_api::transport::{http, Bytes, Transport, TransportError, TransportErrorKind};
/// use vault_api::{HttpKeyService, KeyContext, KeyService};
///
/// /// Answers every request itself, as a test double or an in-process bridge.
/// #[derive(Debug)]
/// struct Canned;
///
/// #[async_trait]
/// impl Transport for Canned {
///     async fn send(
///         &self,
///         request: http::Request<Bytes>,
///     ) -> Result<http::Response<Bytes>, TransportError> {
///         if request.uri().path() != "/vault/v1/keys/data-key" {
///             return Err(TransportError::new(TransportErrorKind::Other)
///                 .with_source("no such endpoint here"));
///         }
///         let body = r#"{"context":{"organization_id":"org_123"},
///             "data_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
///             "encrypted_keys":"a2V5cw==","id":"k1"}"#;
///         http::Response::builder()
///             .status(200)
///             .header("content-type", "application/json")
///             .body(Bytes::from(body))
///             .map_err(|e| TransportError::new(TransportErrorKind::Other).with_source(e))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vault_api::Error> {
/// let service = HttpKeyService::builder()
///     .api_key("sk_test_123")
///     .transport(Arc::new(Canned))
///     .build()?;
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let pair = service.create_data_key(&context).await?;
/// assert_eq!(pair.encrypted_keys, b"keys");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` and reads the whole response body.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError>;
}

/// Why a [`Transport`] returned no whole response. The kind decides
/// whether [`HttpKeyService`](crate::HttpKeyService) retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (refused, unknown host, failed TLS
    /// handshake), so nothing was sent. Retried.
    Connect,
    /// The connection broke after the request may have been sent and
    /// before the whole response arrived (reset, closed early). Retried:
    /// the idempotency key stays the same.
    Interrupted,
    /// The transport's own timeout fired. Retried.
    Timeout,
    /// The server's TLS certificate was refused: not signed by a trusted
    /// CA, expired, or not valid for the host. Not retried.
    Tls,
    /// The proxy refused its credentials (407 to `CONNECT`). Not retried.
    ProxyAuth,
    /// The response body is over [`MAX_RESPONSE_BYTES`]. Not retried.
    BodyTooLarge,
    /// Anything else, such as a request this transport cannot send. Not
    /// retried.
    Other,
}

impl TransportErrorKind {
    /// Whether a retry may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Connect | Self::Interrupted | Self::Timeout)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Connect => "could not connect",
            Self::Interrupted => "the connection broke before the whole response arrived",
            Self::Timeout => "the transport timed out",
            Self::Tls => "the server's TLS certificate was refused",
            Self::ProxyAuth => "the proxy refused the credentials",
            Self::BodyTooLarge => "the response body is too large",
            Self::Other => "the transport failed",
        }
    }
}

/// A [`Transport`] failure: its kind, its cause, and the response head
/// when the failure came while reading the body.
///
/// `Display` names the kind; the cause is reached through
/// [`source`](std::error::Error::source). Never put secrets (the
/// request's `Authorization` header) in the cause.
pub struct TransportError {
    kind: TransportErrorKind,
    head: Option<Box<http::response::Parts>>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl TransportError {
    /// A failure of `kind`.
    pub fn new(kind: TransportErrorKind) -> Self {
        TransportError {
            kind,
            head: None,
            source: None,
        }
    }

    /// Records the underlying cause: an error, or a message.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Records the status and headers that arrived before reading the
    /// body failed, so the failure can name the status and request id
    /// (and an error status is still reported as one).
    pub fn with_response_head(mut self, head: http::response::Parts) -> Self {
        self.head = Some(Box::new(head));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The response head, when it arrived before the failure.
    pub fn response_head(&self) -> Option<&http::response::Parts> {
        self.head.as_deref()
    }

    /// Takes the response head out, leaving the kind and the cause.
    pub(crate) fn take_response_head(&mut self) -> Option<http::response::Parts> {
        self.head.take().map(|head| *head)
    }
}

impl fmt::Debug for TransportError {
    // The head's headers are left out: they are the server's to keep.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("status", &self.head.as_ref().map(|head| head.status))
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_what_is_retried() {
        use TransportErrorKind::*;
        for kind in [Connect, Interrupted, Timeout] {
            assert!(TransportError::new(kind).is_retryable(), "{kind:?}");
        }
        for kind in [Tls, ProxyAuth, BodyTooLarge, Other] {
            assert!(!TransportError::new(kind).is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn display_names_the_kind_and_source_holds_the_cause() {
        let (head, ()) = http::Response::builder()
            .status(502)
            .header("set-cookie", "session=private")
            .body(())
            .expect("a response")
            .into_parts();
        let mut error = TransportError::new(TransportErrorKind::Interrupted)
            .with_source("connection reset by peer")
            .with_response_head(head);
        assert_eq!(
            error.to_string(),
            "the connection broke before the whole response arrived"
        );
        let source = StdError::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset by peer"));
        let debug = format!("{error:?}");
        assert!(!debug.contains("private"), "{debug}");
        assert!(debug.contains("502"), "{debug}");
        assert_eq!(error.response_head().map(|h| h.status.as_u16()), Some(502));
        assert!(error.take_response_head().is_some());
        assert!(error.response_head().is_none());
    }
}
