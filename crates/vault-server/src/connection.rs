//! Accepting connections within the limits, serving each, and draining
//! them at shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::handler::{App, Peer};

/// hyper's smallest HTTP/1 read buffer.
const MIN_HTTP1_BUFFER: usize = 8192;
/// Streams one HTTP/2 connection may have open at once.
const MAX_HTTP2_STREAMS: u32 = 128;
/// Pause after an accept error such as "too many open files".
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What each connection task is given.
struct Shared {
    app: Arc<App>,
    builder: auto::Builder<TokioExecutor>,
    /// For the TLS handshake and the first request head together.
    first_head_timeout: Duration,
    /// `None` for plain HTTP.
    tls: Option<TlsAcceptor>,
    /// Changes when the server starts shutting down.
    stopping: watch::Receiver<()>,
}

/// Serves `listener` until `signal` completes, then stops accepting and
/// gives the connections [`Limits::shutdown_grace`] to finish.
pub(crate) async fn run(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let (stopping_tx, stopping) = watch::channel(());
    let shared = Arc::new(Shared {
        app,
        builder: connection_builder(&limits),
        first_head_timeout: limits.first_request_timeout.min(limits.header_read_timeout),
        tls,
        stopping,
    });
    let mut connections = JoinSet::new();
    let accepted = accept_until(&listener, &shared, &limits, signal, &mut connections).await;
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: no new connections"
    );
    let _ = stopping_tx.send(());
    drain(connections, limits.shutdown_grace).await;
    accepted
}

/// Accepts connections, at most [`Limits::max_connections`] at once, until
/// `signal` completes.
async fn accept_until(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    limits: &Limits,
    signal: impl Future<Output = ()> + Send,
    connections: &mut JoinSet<()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let peers = PeerCounts::new(limits.max_connections_per_peer);
    let mut signal = pin!(signal);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut signal => return Ok(()),
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let accepted = tokio::select! {
            biased;
            () = &mut signal => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                let Some(slot) = peers.enter(remote.ip()) else {
                    shared.app.metrics().refused_per_peer();
                    tracing::debug!(%remote, "closing: this peer holds too many connections");
                    continue;
                };
                connections.spawn(serve_connection(
                    shared.clone(),
                    stream,
                    remote,
                    (permit, slot),
                ));
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Serves one connection until it ends, after its TLS handshake if the
/// server speaks TLS.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    slots: (OwnedSemaphorePermit, PeerSlot),
) {
    let _slots = slots;
    let _ = stream.set_nodelay(true);
    // The handshake and the first request head share one deadline, so a
    // slow or silent client cannot hold a slot for longer than that.
    let head_deadline = Instant::now() + shared.first_head_timeout;
    let Some(acceptor) = &shared.tls else {
        let peer = Peer {
            remote: Some(remote),
            tls: false,
        };
        return serve_io(&shared, TokioIo::new(stream), peer, head_deadline).await;
    };
    let mut stopping = shared.stopping.clone();
    let handshake = tokio::time::timeout_at(head_deadline, acceptor.accept(stream));
    let stream = tokio::select! {
        handshake = handshake => handshake,
        _ = stopping.changed() => return,
    };
    match stream {
        Ok(Ok(stream)) => {
            let peer = Peer {
                remote: Some(remote),
                tls: true,
            };
            serve_io(&shared, TokioIo::new(stream), peer, head_deadline).await;
        }
        Ok(Err(error)) => {
            shared.app.metrics().handshake_failed();
            tracing::debug!(%remote, %error, "TLS handshake failed");
        }
        Err(_) => {
            shared.app.metrics().handshake_failed();
            tracing::debug!(%remote, "no TLS handshake within the first request timeout");
        }
    }
}

/// Serves HTTP on `io` until the connection ends, shutting it down
/// gracefully when the server stops.
async fn serve_io<I>(shared: &Shared, io: I, peer: Peer, head_deadline: Instant)
where
    I: Read + Write + Unpin + Send + 'static,
{
    let first_request = Arc::new(AtomicBool::new(false));
    let seen = first_request.clone();
    let app = shared.app.clone();
    let service = service_fn(move |request| {
        seen.store(true, Ordering::Relaxed);
        app.clone().handle(request, peer)
    });
    let mut stopping = shared.stopping.clone();
    let mut connection = pin!(shared.builder.serve_connection(io, service));
    // hyper's HTTP/1 header read timeout starts only once the HTTP version
    // is known, and the version is detected from the first bytes: a client
    // that sends nothing, or half an HTTP/2 preface, would hold its
    // connection slot forever. So the first request's head must also
    // arrive within the timeout.
    let mut first_head = pin!(tokio::time::sleep_until(head_deadline));
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
                    tracing::debug!(remote = ?peer.remote, "no request head within the first request timeout: closing");
                    break Ok(());
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(remote = ?peer.remote, %error, "connection ended with an error");
    }
}

/// How many connections each peer address holds, against a limit.
#[derive(Clone)]
struct PeerCounts {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    limit: usize,
}

/// One connection of a peer, counted until dropped.
struct PeerSlot {
    peers: PeerCounts,
    ip: IpAddr,
}

impl PeerCounts {
    fn new(limit: usize) -> Self {
        PeerCounts {
            counts: Arc::default(),
            limit,
        }
    }

    /// A slot for one more connection of `ip`; `None` at the limit.
    fn enter(&self, ip: IpAddr) -> Option<PeerSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self
            .peers
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Waits up to `grace` for the connections to finish, then closes the
/// rest.
async fn drain(mut connections: JoinSet<()>, grace: Duration) {
    let drained = tokio::time::timeout(grace, async {
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
