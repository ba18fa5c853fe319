//! The slow-loris measurement behind `cargo xtask slowloris`: idle and
//! slow connections from attacker addresses, and `/health` probes from
//! another address, timed.
//!
//! Loopback has many addresses (all of 127/8), so one machine can be
//! several peers: the attackers connect from their own addresses as real
//! ones would, and the prober from its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// How long an attacker waits before reopening a closed connection.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
/// How often a slow connection sends one more header line.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

/// What to run, read as JSON.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The server's address.
    pub address: SocketAddr,
    /// The CA of the server's certificate, PEM: TLS when set.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Connections that connect and send nothing.
    pub idle: usize,
    /// Connections that send a request head one line a second.
    pub slow: usize,
    /// `/health` requests to time, one after another.
    pub probes: usize,
    /// Probing stops after this many seconds, even with probes left.
    pub probe_secs: u64,
    /// The idle connections' source address.
    pub idle_from: IpAddr,
    /// The slow connections' source address.
    pub slow_from: IpAddr,
    /// The probes' source address.
    pub probe_from: IpAddr,
    /// Longest wait for the attack connections to be open before probing.
    pub settle_secs: u64,
}

/// The probes' latencies (microseconds) and what the attackers saw.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Probes answered 200.
    pub answered: usize,
    /// Probes that failed or took over 10 s.
    pub failed: usize,
    /// Median, 99th percentile and worst answered probe.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Worst.
    pub max_us: u64,
    /// Attack connections opened, in all.
    pub attack_connects: u64,
    /// Attack connections the server closed.
    pub attack_closed: u64,
    /// Attack connections open when probing began.
    pub attack_open_at_start: u64,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    closed: AtomicU64,
    open: AtomicU64,
}

/// Runs the attack and the probes; the attack stops when the probes end.
pub async fn run(request: Request) -> Result<Outcome, Failure> {
    let tls = match &request.ca_pem {
        Some(pem) => Some(connector(pem.as_bytes())?),
        None => None,
    };
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let mut attackers = tokio::task::JoinSet::new();
    for slow in (0..request.idle + request.slow).map(|i| i >= request.idle) {
        let from = if slow {
            request.slow_from
        } else {
            request.idle_from
        };
        attackers.spawn(attack(
            request.address,
            from,
            slow.then(|| tls.clone()),
            counters.clone(),
            stopped.clone(),
        ));
    }
    let target = u64::try_from(request.idle + request.slow).unwrap_or(u64::MAX);
    let settle = Instant::now() + Duration::from_secs(request.settle_secs);
    while counters.open.load(Ordering::Relaxed) < target && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_at_start = counters.open.load(Ordering::Relaxed);

    let mut took = Vec::with_capacity(request.probes);
    let mut failed = 0;
    let probing_ends = Instant::now() + Duration::from_secs(request.probe_secs);
    for _ in 0..request.probes {
        if Instant::now() >= probing_ends {
            break;
        }
        let started = Instant::now();
        let probe = probe(request.address, request.probe_from, tls.as_ref());
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(Ok(())) => {
                took.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
            }
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("slowloris: a probe failed: {e}");
            }
            Err(_) => failed += 1,
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    let _ = stop.send(true);
    attackers.shutdown().await;
    took.sort_unstable();
    Ok(Outcome {
        answered: took.len(),
        failed,
        p50_us: crate::percentile(&took, 50.0),
        p99_us: crate::percentile(&took, 99.0),
        max_us: took.last().copied().unwrap_or(0),
        attack_connects: counters.connects.load(Ordering::Relaxed),
        attack_closed: counters.closed.load(Ordering::Relaxed),
        attack_open_at_start: open_at_start,
    })
}

/// A TLS client trusting `ca_pem` alone.
fn connector(ca_pem: &[u8]) -> Result<TlsConnector, Failure> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn connect_from(address: SocketAddr, from: IpAddr) -> std::io::Result<TcpStream> {
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(address).await
}

/// One attack connection, reopened a second after each close, until told
/// to stop. Idle when `slow_tls` is `None` and the connection is not slow;
/// see [`hold`].
async fn attack(
    address: SocketAddr,
    from: IpAddr,
    slow_tls: Option<Option<TlsConnector>>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let held = hold(address, from, slow_tls.as_ref(), &counters);
        tokio::select! {
            _ = stop.changed() => return,
            () = held => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(REOPEN_AFTER) => {}
        }
    }
}

/// Opens one connection and holds it until the server closes it: idle
/// (nothing sent, not even a TLS handshake) when `slow` is `None`, else a
/// request head sent one line a second, over TLS when `slow` holds a
/// connector.
async fn hold(
    address: SocketAddr,
    from: IpAddr,
    slow: Option<&Option<TlsConnector>>,
    counters: &Counters,
) {
    let Ok(stream) = connect_from(address, from).await else {
        return;
    };
    counters.connects.fetch_add(1, Ordering::Relaxed);
    counters.open.fetch_add(1, Ordering::Relaxed);
    match slow {
        None => {
            let mut stream = stream;
            let mut buf = [0u8; 64];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Some(None) => trickle(stream).await,
        Some(Some(tls)) => {
            if let Ok(server) = rustls::pki_types::ServerName::try_from(address.ip().to_string()) {
                if let Ok(stream) = tls.connect(server, stream).await {
                    trickle(stream).await;
                }
            }
        }
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
    counters.closed.fetch_add(1, Ordering::Relaxed);
}

/// Sends a request head that never ends, one line a second, until the
/// server closes the connection.
async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: slow\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
            }
            () = tokio::time::sleep(TRICKLE_EVERY) => {
                if stream.write_all(b"x-slow: 1\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One `GET /health` on a new connection; `Ok` on a 200.
async fn probe(
    address: SocketAddr,
    from: IpAddr,
    tls: Option<&TlsConnector>,
) -> Result<(), Failure> {
    let stream = connect_from(address, from).await?;
    let request = b"GET /health HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n";
    let mut answer = Vec::new();
    match tls {
        None => {
            let mut stream = stream;
            stream.write_all(request).await?;
            stream.read_to_end(&mut answer).await?;
        }
        Some(tls) => {
            let server = rustls::pki_types::ServerName::try_from(address.ip().to_string())?;
            let mut stream = tls.connect(server, stream).await?;
            stream.write_all(request).await?;
            // A server may close without TLS close_notify: what was read
            // before counts.
            let _ = stream.read_to_end(&mut answer).await;
        }
    }
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "not a 200: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        )
        .into())
    }
}
