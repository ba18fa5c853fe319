//! [`HyperTransport`]: the default [`Transport`], a pooled hyper client
//! over rustls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::config_error;
use super::transport::{
    http, Bytes, Transport, TransportError, TransportErrorKind, MAX_RESPONSE_BYTES,
};
use crate::Error;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The connect timeout of a transport built on its own; the builder of
/// `HttpKeyService` uses its per-attempt timeout instead.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The default [`Transport`]: hyper 1 with a pooled, kept-alive
/// hyper-util client over hyper-rustls.
///
/// HTTPS negotiates HTTP/2 or HTTP/1.1 with ALPN, using rustls with the
/// *ring* provider and the bundled Mozilla roots unless given another
/// configuration; plain `http://` is sent as is, for local servers.
/// Response bodies are read up to [`MAX_RESPONSE_BYTES`].
///
/// [`HttpKeyService`](crate::HttpKeyService) builds one unless given a
/// transport; build one yourself to wrap it in your own transport.
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct HyperTransport {
    client: HttpClient,
}

impl HyperTransport {
    /// A transport with rustls, *ring*, the Mozilla roots and TLS 1.2 and
    /// 1.3. Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) if
    /// that TLS configuration cannot be built.
    pub fn new() -> Result<Self, Error> {
        Self::build(None, DEFAULT_CONNECT_TIMEOUT)
    }

    /// A transport over your own rustls configuration: private roots,
    /// client certificates, another crypto provider. Its ALPN protocols
    /// are replaced with `h2` and `http/1.1`.
    pub fn with_tls_config(config: rustls::ClientConfig) -> Self {
        Self::over(config, DEFAULT_CONNECT_TIMEOUT)
    }

    /// A transport over `tls` (the default configuration when `None`)
    /// whose connections must be made within `connect_timeout`.
    pub(crate) fn build(
        tls: Option<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> Result<Self, Error> {
        let tls = match tls {
            Some(config) => config,
            None => default_tls_config()?,
        };
        Ok(Self::over(tls, connect_timeout))
    }

    fn over(mut tls: rustls::ClientConfig, connect_timeout: Duration) -> Self {
        // hyper-rustls sets the protocols it speaks, and refuses preset ones.
        tls.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
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
        HyperTransport { client }
    }
}

pub(super) fn default_tls_config() -> Result<rustls::ClientConfig, Error> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| config_error("the TLS configuration is invalid").with_source(e))?
    .with_webpki_roots()
    .with_no_client_auth();
    Ok(config)
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("pool_idle_timeout", &POOL_IDLE_TIMEOUT)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for HyperTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let response = self
            .client
            .request(request.map(Full::new))
            .await
            .map_err(|e| {
                let kind = if e.is_connect() {
                    TransportErrorKind::Connect
                } else {
                    TransportErrorKind::Interrupted
                };
                TransportError::new(kind).with_source(e)
            })?;
        read_limited(response).await
    }
}

/// Reads the whole body, up to [`MAX_RESPONSE_BYTES`].
async fn read_limited(
    response: http::Response<Incoming>,
) -> Result<http::Response<Bytes>, TransportError> {
    let (head, body) = response.into_parts();
    match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(collected) => Ok(http::Response::from_parts(head, collected.to_bytes())),
        Err(e) => {
            let kind = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                TransportErrorKind::BodyTooLarge
            } else {
                TransportErrorKind::Interrupted
            };
            Err(TransportError::new(kind)
                .with_source(e)
                .with_response_head(head))
        }
    }
}
