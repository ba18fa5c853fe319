//! A server for WorkOS Vault's key endpoints, over any
//! [`KeyService`].
//!
//! **Most users want the `vault` crate** (or the `vault server` command).
//! Use this crate to embed a WorkOS-compatible key service in your own
//! process: for development, CI, air-gapped deployments, or to test HTTP
//! clients against a real server.
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /vault/v1/keys/data-key` | `{"context", "data_key", "encrypted_keys", "id"}` |
//! | `POST /vault/v1/keys/decrypt` | `{"data_key", "id"}` |
//! | `POST /vault/v1/keys/rekey` | as `data-key` |
//! | `GET /health` | `{"status":"ok"}`, without authentication |
//!
//! Key endpoints need `Authorization: Bearer <key>` with a key from
//! [`ServerConfig::api_key`]; a server without keys refuses them all.
//! Every answer is JSON (`Content-Type: application/json`) with an
//! `X-Request-ID`. Errors are `{"error": "..."}` with status 400 (malformed
//! body or encrypted keys), 401, 404, 405 (with `Allow`), 413 (body over the
//! limit), 422 (a key context that breaks the rules) or 500. HTTP/1.1 and
//! HTTP/2 (h2c) are served on one port.
//!
//! ```
//! # async fn run(service: std::sync::Arc<dyn vault_api::KeyService>) -> std::io::Result<()> {
//! use vault_server::{Server, ServerConfig};
//!
//! let config = ServerConfig::new().api_key("sk_test_local");
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), service, config).await?;
//! println!("listening on {}", server.url());
//! // Point a client (HttpKeyService, a WorkOS SDK) at server.url() ...
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! In a binary, serve until ctrl-c or SIGTERM:
//!
//! ```no_run
//! # async fn run(service: std::sync::Arc<dyn vault_api::KeyService>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind(vault_server::DEFAULT_ADDR).await?;
//! let config = vault_server::ServerConfig::new().api_key("sk_test_local");
//! vault_server::serve_with_shutdown(listener, service, config, vault_server::shutdown_signal())
//!     .await
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod faults;
mod handler;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use vault_api::KeyService;

pub use config::{ServerConfig, DEFAULT_ADDR};
pub use faults::{FaultRates, Faults};

use config::Limits;
use handler::App;

/// hyper's smallest HTTP/1 read buffer.
const MIN_HTTP1_BUFFER: usize = 8192;
/// Streams one HTTP/2 connection may have open at once.
const MAX_HTTP2_STREAMS: u32 = 128;
/// Pause after an accept error such as "too many open files".
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `service` on `listener` until the process ends.
///
/// Returns only on a fatal error. Use [`serve_with_shutdown`] to stop
/// gracefully, or [`Server`] to run in the background.
pub async fn serve(
    listener: TcpListener,
    service: Arc<dyn KeyService>,
    config: ServerConfig,
) -> io::Result<()> {
    serve_with_shutdown(listener, service, config, std::future::pending()).await
}

/// Serves `service` on `listener` until `signal` completes, then shuts down
/// gracefully: stops accepting, lets requests in flight finish (for at most
/// [`ServerConfig::shutdown_grace`]) and returns.
///
/// Pass [`shutdown_signal`] to stop on ctrl-c or SIGTERM.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    service: Arc<dyn KeyService>,
    config: ServerConfig,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = config.limits;
    if config.api_keys.is_empty() {
        tracing::warn!("no API keys are configured: every key request will get 401");
    }
    let app = App::new(service, config);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "vault-server listening");
    }
    run(listener, app, limits, signal).await
}

/// Completes on ctrl-c, or (on Unix) SIGTERM: the usual reasons for a
/// server to stop. If a signal handler cannot be installed, that signal is
/// simply never seen.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

/// A server running in the background, for tests and embedding.
///
/// Dropping it starts a graceful shutdown without waiting for it;
/// [`Server::shutdown`] waits.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    faults: Faults,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Binds `addr` (such as `127.0.0.1:0` for a free port, or
    /// [`DEFAULT_ADDR`]) and serves `service` in a background task.
    pub async fn bind(
        addr: SocketAddr,
        service: Arc<dyn KeyService>,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Server::start(listener, service, config)
    }

    /// Serves `service` on `listener` in a background task of the current
    /// Tokio runtime (an error outside one).
    pub fn start(
        listener: TcpListener,
        service: Arc<dyn KeyService>,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let local_addr = listener.local_addr()?;
        let faults = config.faults.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        };
        let task = runtime.spawn(serve_with_shutdown(listener, service, config, signal));
        Ok(Server {
            local_addr,
            faults,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL to give clients: `http://<local_addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The fault injection and counters handle of the configuration.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Answers one request without a socket, through the same code the
/// server runs for every request it reads: fault injection, routing,
/// authentication, the body limit, the key service and the JSON answer.
///
/// **For fuzzing and tests**, which is why it is hidden from the docs: it
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
        let response = self.app.clone().handle(request).await.ok()?;
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

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HTTP1_BUFFER))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_HTTP2_STREAMS);
    builder
}

/// Whether an accept error concerns only the connection being accepted.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn run(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping_tx, stopping_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut signal = pin!(signal);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let (stream, remote) = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stopping = stopping_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let first_request = Arc::new(AtomicBool::new(false));
            let seen = first_request.clone();
            let service = service_fn(move |request| {
                seen.store(true, Ordering::Relaxed);
                app.clone().handle(request)
            });
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            // hyper's HTTP/1 header read timeout starts only once the HTTP
            // version is known, and the version is detected from the first
            // bytes: a client that sends nothing, or half an HTTP/2
            // preface, would hold its connection slot forever. So the
            // first request's head must also arrive within the timeout.
            let mut first_head = pin!(tokio::time::sleep(header_read_timeout));
            let mut waiting_for_first_head = true;
            let mut shutting_down = false;
            let result = loop {
                tokio::select! {
                    result = connection.as_mut() => break result,
                    _ = stopping.changed(), if !shutting_down => {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    () = first_head.as_mut(), if waiting_for_first_head => {
                        waiting_for_first_head = false;
                        if !first_request.load(Ordering::Relaxed) {
                            tracing::debug!(%remote, "no request head within the header read timeout: closing");
                            break Ok(());
                        }
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: no new connections"
    );
    let _ = stopping_tx.send(());
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "closing connections still busy after the grace period"
        );
        connections.shutdown().await;
    }
    Ok(())
}
