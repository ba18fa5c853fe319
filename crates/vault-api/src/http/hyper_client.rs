//! [`HyperTransport`]: the default [`Transport`], a pooled hyper client
//! over rustls.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::PROXY_AUTHORIZATION;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::proxy::{forward_authorization, Proxies, ProxyAuthRefused, ProxyConnector};
use super::tls::{self, CaBundle};
use super::transport::{
    http, Bytes, Transport, TransportError, TransportErrorKind, MAX_RESPONSE_BYTES,
};
use crate::Error;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The connect timeout of a transport built on its own; the builder of
/// `HttpKeyService` uses its per-attempt timeout instead.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// The default [`Transport`]: hyper 1 with a pooled, kept-alive
/// hyper-util client over hyper-rustls.
///
/// HTTPS negotiates HTTP/2 or HTTP/1.1 with ALPN, using rustls with the
/// *ring* provider; plain `http://` is sent as is, for local servers.
/// Requests go through the HTTP proxy [`Proxies`] names for them.
/// Response bodies are read up to [`MAX_RESPONSE_BYTES`].
///
/// [`HttpKeyService`](crate::HttpKeyService) builds one unless given a
/// transport; build one yourself to wrap it in your own transport.
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct HyperTransport {
    client: HttpClient,
    proxies: Proxies,
}

impl HyperTransport {
    /// A transport configured as [`HttpKeyService`](crate::HttpKeyService)'s
    /// default: rustls, *ring*, TLS 1.2 and 1.3, trusting the CAs of the
    /// PEM file `SSL_CERT_FILE` names or else the Mozilla roots, and the
    /// proxies of [`Proxies::from_env`]. Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if one of those
    /// cannot be read or used.
    pub fn new() -> Result<Self, Error> {
        Self::build(
            None,
            CaBundle::from_env()?,
            Proxies::from_env()?,
            DEFAULT_CONNECT_TIMEOUT,
        )
    }

    /// A transport over your own rustls configuration (private roots,
    /// client certificates, another crypto provider), without a proxy.
    /// Its ALPN protocols are replaced with `h2` and `http/1.1`.
    pub fn with_tls_config(config: rustls::ClientConfig) -> Self {
        Self::with_config(config, Proxies::none())
    }

    /// [`with_tls_config`](Self::with_tls_config) through `proxies`.
    pub fn with_config(config: rustls::ClientConfig, proxies: Proxies) -> Self {
        Self::over(config, proxies, DEFAULT_CONNECT_TIMEOUT)
    }

    /// A transport over `tls`, or else a configuration trusting `bundle`
    /// (the Mozilla roots when `None`), whose connections must be made
    /// within `connect_timeout`.
    pub(super) fn build(
        tls: Option<rustls::ClientConfig>,
        bundle: Option<CaBundle>,
        proxies: Proxies,
        connect_timeout: Duration,
    ) -> Result<Self, Error> {
        let tls = match tls {
            Some(config) => config,
            None => tls::client_config(bundle.as_ref())?,
        };
        Ok(Self::over(tls, proxies, connect_timeout))
    }

    fn over(mut tls: rustls::ClientConfig, proxies: Proxies, connect_timeout: Duration) -> Self {
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
            .wrap_connector(ProxyConnector {
                http,
                proxies: proxies.clone(),
            });
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        HyperTransport { client, proxies }
    }
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("pool_idle_timeout", &POOL_IDLE_TIMEOUT)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for HyperTransport {
    async fn send(
        &self,
        mut request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if let Some(auth) = forward_authorization(&self.proxies, request.uri()) {
            request.headers_mut().insert(PROXY_AUTHORIZATION, auth);
        }
        let response = self
            .client
            .request(request.map(Full::new))
            .await
            .map_err(send_error)?;
        read_limited(response).await
    }
}

/// The kind of a failed request: a refused certificate or proxy
/// credentials are final; other failures to connect are worth a retry.
fn send_error(error: hyper_util::client::legacy::Error) -> TransportError {
    if let Some(reason) = tls::refused_certificate(&error) {
        return TransportError::new(TransportErrorKind::Tls).with_source(reason);
    }
    if let Some(answer) = proxy_refused_credentials(&error) {
        return TransportError::new(TransportErrorKind::ProxyAuth).with_source(answer);
    }
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Interrupted
    };
    TransportError::new(kind).with_source(error)
}

/// What the proxy answered, if it refused the credentials.
fn proxy_refused_credentials(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(refused) = current.downcast_ref::<ProxyAuthRefused>() {
            return Some(refused.to_string());
        }
        next = current.source();
    }
    None
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
