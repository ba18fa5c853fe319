//! [`RequestHandler`]: the request handling without a socket, for fuzzing
//! and tests (`test-util` feature).

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use vault_api::KeyService;

use crate::handler::{App, Peer};
use crate::ServerConfig;

/// Answers one request without a socket, through the same code the
/// server runs for every request it reads: fault injection, routing,
/// authentication, the body limit, the key service and the JSON answer.
///
/// **For fuzzing and tests**, behind the `test-util` feature and hidden
/// from the docs: it
/// lets a fuzzer drive the request handling with no network and no HTTP
/// parser in between. What hyper does before a request reaches the handler
/// (the header size limit, the header read timeout, HTTP framing) is not
/// part of it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use vault_server::{RequestHandler, ServerConfig};
///
/// let service = Arc::new(vault_local::LocalKeyService::ephemeral());
/// let handler = RequestHandler::new(service, ServerConfig::new().api_key("sk_test"));
/// let (status, headers, body) = handler.handle(b"GET", "/health", &[], b"").await.unwrap();
/// assert_eq!(status, 200);
/// assert!(headers.iter().any(|(name, value)| name == "content-type" && value == b"application/json"));
/// assert_eq!(body, br#"{"status":"ok"}"#);
/// # }
/// ```
#[doc(hidden)]
#[derive(Clone)]
pub struct RequestHandler {
    app: Arc<App>,
}

/// A status, the response headers (lower-case names) and the body.
#[doc(hidden)]
pub type HandledResponse = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

impl RequestHandler {
    /// A handler over `service` with `config`'s API keys, body limit and
    /// faults (its connection limits do not apply: there are none).
    pub fn new(service: Arc<dyn KeyService>, config: ServerConfig) -> RequestHandler {
        RequestHandler {
            app: App::new(service, config),
        }
    }

    /// Answers one request. `None` when hyper would not have passed it on
    /// (the method, path or a header is not valid HTTP) or when an injected
    /// fault drops the connection.
    pub async fn handle(
        &self,
        method: &[u8],
        path: &str,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> Option<HandledResponse> {
        let mut request = Request::builder()
            .method(Method::from_bytes(method).ok()?)
            .uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::copy_from_slice(body))).ok()?;
        let response = self
            .app
            .clone()
            .handle(request, Peer::default())
            .await
            .ok()?;
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let body = body.collect().await.ok()?.to_bytes().to_vec();
        Some((parts.status.as_u16(), headers, body))
    }
}

impl std::fmt::Debug for RequestHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHandler").finish_non_exhaustive()
    }
}
