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
//! | `/vault/v1/kv...` (the 8 objects endpoints) | as WorkOS answers, over [`ServerConfig::objects`]; 404 without one |
//! | `GET /health` (or `/health/live`) | alive: `{"status":"ok"}`, without authentication |
//! | `GET /health/ready` | ready: `{"status":"ready"}` when the key service creates and decrypts a data key within [`ServerConfig::ready_timeout`] (and [`ServerConfig::readiness`] passes), else 503 with `Retry-After`; without authentication |
//!
//! Key endpoints need `Authorization: Bearer <key>` with a key from
//! [`ServerConfig::api_key`]; a server without keys refuses them all.
//! Every answer is JSON (`Content-Type: application/json`) with an
//! `X-Request-ID`. Errors are `{"error": "..."}` with status 400 (malformed
//! body or encrypted keys), 401, 404, 405 (with `Allow`), 413 (body over the
//! limit), 422 (a key context that breaks the rules), 503 with
//! `Retry-After` (the key service is unavailable: no answer in time, or an
//! upstream answer worth retrying) or 500. HTTP/1.1 and
//! HTTP/2 (h2c) are served on one port; with [`ServerConfig::tls`], HTTPS
//! with ALPN `h2` and `http/1.1` instead.
//!
//! Every request is counted in [`Metrics`] (Prometheus text, served by
//! [`serve_metrics`] on an address of its own) and, with
//! [`ServerConfig::access_log`], written as one JSON line.
//!
//! The `test-util` feature adds `Faults` (fault injection and request
//! counters, for tests of clients) and `ServerConfig::faults`. It is for
//! tests only: without it, no fault code is compiled into the request path.
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
#![cfg_attr(docsrs, feature(doc_cfg))]

// Modules depend one way: {connection, request_handler} -> handler ->
// {config, body, reply, route, faults, metrics, access_log, ready};
// connection -> {config, tls}; config -> {faults, metrics, access_log,
// tls}; ready -> config; faults and metrics -> {route, access_log}.
mod access_log;
mod body;
mod config;
mod connection;
#[cfg(feature = "test-util")]
mod faults;
mod handler;
mod metrics;
mod objects;
mod ready;
mod reply;
#[cfg(feature = "test-util")]
mod request_handler;
mod route;
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vault_api::KeyService;

pub use config::{ServerConfig, DEFAULT_ADDR};
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use faults::{FaultRates, Faults};
pub use metrics::{serve_metrics, Metrics};
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use request_handler::{HandledResponse, RequestHandler};
pub use tls::TlsConfig;

use handler::App;

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
    let tls = config.tls.as_ref().map(TlsConfig::acceptor).transpose()?;
    let app = App::new(service, config);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "vault-server listening");
    }
    let served = connection::run(listener, app.clone(), limits, tls, signal).await;
    // The lines of the last requests, unless the log's reader is stuck.
    app.flush_access_log(ACCESS_LOG_FLUSH).await;
    served
}

/// How long a stopping server waits for the access log to write its last
/// lines.
const ACCESS_LOG_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

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
    tls: bool,
    metrics: Metrics,
    #[cfg(feature = "test-util")]
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
        let (tls, metrics) = (config.tls.is_some(), config.metrics.clone());
        #[cfg(feature = "test-util")]
        let faults = config.faults.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        };
        let task = runtime.spawn(serve_with_shutdown(listener, service, config, signal));
        Ok(Server {
            local_addr,
            tls,
            metrics,
            #[cfg(feature = "test-util")]
            faults,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL to give clients: `http://<local_addr>`, or
    /// `https://<local_addr>` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The server's request counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The fault injection and counters handle of the configuration
    /// (`test-util` feature).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
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
