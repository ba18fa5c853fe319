//! [`ServerConfig`]: API keys, limits, TLS and what the server reports.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use vault_api::wire::SecretString;
use zeroize::Zeroizing;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::tls::TlsConfig;

/// Whether the server can serve key requests; `Err` says why not.
pub(crate) type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The address a server binds when none is given: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// How a server authenticates and what it tolerates.
///
/// | setting | default |
/// |---|---|
/// | [`api_key`](Self::api_key) | none: every key request gets 401 |
/// | [`max_body_bytes`](Self::max_body_bytes) | 1 MiB |
/// | [`max_header_bytes`](Self::max_header_bytes) | 16 KiB |
/// | [`header_read_timeout`](Self::header_read_timeout) | 10 s |
/// | [`first_request_timeout`](Self::first_request_timeout) | 5 s |
/// | [`max_connections`](Self::max_connections) | 1024 |
/// | [`max_connections_per_peer`](Self::max_connections_per_peer) | 256 |
/// | [`shutdown_grace`](Self::shutdown_grace) | 10 s |
/// | [`tls`](Self::tls) | none: plain HTTP (and h2c) |
/// | [`metrics`](Self::metrics) | counted, read through [`Server::metrics`](crate::Server::metrics) |
/// | [`access_log`](Self::access_log) | none |
/// | [`readiness`](Self::readiness) | none: the key service probe alone |
/// | [`ready_timeout`](Self::ready_timeout) | 2 s |
///
/// ```
/// let config = vault_server::ServerConfig::new()
///     .api_key("sk_test_local")
///     .max_body_bytes(64 * 1024);
/// assert!(!format!("{config:?}").contains("sk_test_local"));
/// ```
#[derive(Default)]
#[must_use]
pub struct ServerConfig {
    pub(crate) api_keys: Vec<SecretString>,
    pub(crate) limits: Limits,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) metrics: Metrics,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) readiness: Option<Readiness>,
    pub(crate) objects: Option<Arc<dyn vault_api::ObjectService>>,
    #[cfg(feature = "test-util")]
    pub(crate) faults: crate::Faults,
}

/// Numeric limits, kept apart so `Default` is spelled once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) first_request_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_peer: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) ready_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(5),
            max_connections: 1024,
            max_connections_per_peer: 256,
            shutdown_grace: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(2),
        }
    }
}

impl ServerConfig {
    /// The defaults in the table above. Add at least one API key.
    pub fn new() -> Self {
        ServerConfig::default()
    }

    /// Accepts `Authorization: Bearer <api_key>`. Call it again to accept
    /// several keys (during a rotation, say). Keys are compared in constant
    /// time, kept in zeroizing buffers, and never printed.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_keys
            .push(SecretString::from(Zeroizing::new(api_key.into())));
        self
    }

    /// Accepts each of `api_keys`, as [`api_key`](Self::api_key) does.
    pub fn api_keys<I, K>(mut self, api_keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        for key in api_keys {
            self = self.api_key(key);
        }
        self
    }

    /// The largest request body; larger ones get 413 without being
    /// buffered.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// The largest request head (HTTP/1 start line and headers; HTTP/2
    /// header list). HTTP/1 never goes below 8 KiB, hyper's minimum buffer.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_header_bytes = bytes;
        self
    }

    /// How long a client may take to send a request head: from accepting
    /// the connection to its first request's headers (HTTP/1 and HTTP/2),
    /// and for each later HTTP/1 request, including the idle wait between
    /// keep-alive requests. A client that is slower, or silent, is
    /// disconnected, so slow clients cannot hold connection slots.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long a new connection may take to send its first request head
    /// (after its TLS handshake, which counts too): a connection that has
    /// not yet sent one complete request is cut off sooner than an idle
    /// keep-alive one, so idle and slow-loris connections free their slots
    /// quickly. The shorter of this and the
    /// [`header_read_timeout`](Self::header_read_timeout) applies.
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.first_request_timeout = timeout;
        self
    }

    /// How many connections are served at once; more wait to be accepted.
    /// At least 1.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections.max(1);
        self
    }

    /// How many connections one peer IP address may hold at once; its
    /// further connections are closed as soon as they are accepted (and
    /// counted in `vault_server_connections_refused_total`), so one peer
    /// cannot take every slot of [`max_connections`](Self::max_connections).
    /// Loopback peers count like any other: the default, 256, is well above
    /// what this project's benchmark and soak harnesses open (at most 64
    /// clients); raise it for a proxy or load balancer that funnels many
    /// clients through one address. At least 1.
    pub fn max_connections_per_peer(mut self, connections: usize) -> Self {
        self.limits.max_connections_per_peer = connections.max(1);
        self
    }

    /// How long a graceful shutdown waits for requests in flight before
    /// closing their connections.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.limits.shutdown_grace = grace;
        self
    }

    /// Serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) instead of plain HTTP.
    /// The TLS handshake must end within the
    /// [`header_read_timeout`](Self::header_read_timeout), which then
    /// goes on to the first request head.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Counts requests into `metrics`, a handle shared with whoever serves
    /// them (see [`serve_metrics`](crate::serve_metrics)).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Writes one JSON line per answered request to `log`: time, request
    /// id, peer, method, path, route, HTTP version, status and duration.
    /// Never headers, bodies or keys.
    ///
    /// `log` is written by a thread of its own, through a queue of 1,024
    /// lines: requests never wait for it. When it falls behind (a stalled
    /// stderr, say), further lines are dropped and counted
    /// (`vault_server_access_log_dropped_lines_total`). Lines of 401
    /// answers are rate-limited (a burst of 10, then one a second; the rest
    /// counted in `vault_server_access_log_suppressed_lines_total`). A
    /// stopping server waits up to 2 s for the queue to drain.
    pub fn access_log(mut self, log: impl std::io::Write + Send + 'static) -> Self {
        self.access_log = Some(AccessLog::new(log));
        self
    }

    /// A check `GET /health/ready` runs besides its key service probe
    /// (see [`ready_timeout`](Self::ready_timeout)): `check` returns
    /// `Err(reason)` when key requests cannot be served (a keyring that
    /// cannot be read, say), and the probe answers 503. It runs on a
    /// blocking thread, so it may read files. `/health` keeps answering
    /// 200 while the process is alive.
    pub fn readiness(
        mut self,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.readiness = Some(Arc::new(check));
        self
    }

    /// How long `GET /health/ready` waits for its checks. Readiness asks
    /// the key service itself: it creates a data key under the context
    /// `{"vault_server": "readiness"}` and decrypts it again, and runs the
    /// [`readiness`](Self::readiness) check if there is one. A failure, or
    /// no answer within `timeout`, is a 503 with `Retry-After`, and the
    /// cause is logged (`tracing`, warn level). One key service probe runs
    /// at a time and its verdict is reused for a second, so unauthenticated
    /// probes cannot load the key service.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.limits.ready_timeout = timeout;
        self
    }

    /// Serves WorkOS Vault's objects API (`/vault/v1/kv...`) over
    /// `objects` (such as the SQL store of `vault-store`), with the key
    /// routes' authentication, limits, metrics and access log. Without it
    /// those routes answer 404 with a message saying so.
    pub fn objects(mut self, objects: Arc<dyn vault_api::ObjectService>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// Fault injection, for tests of clients (`test-util` feature): see
    /// [`Faults`](crate::Faults). A server without this call never injects
    /// faults.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn faults(mut self, faults: crate::Faults) -> Self {
        self.faults = faults;
        self
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ServerConfig");
        debug
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("max_body_bytes", &self.limits.max_body_bytes)
            .field("max_header_bytes", &self.limits.max_header_bytes)
            .field("header_read_timeout", &self.limits.header_read_timeout)
            .field("first_request_timeout", &self.limits.first_request_timeout)
            .field("max_connections", &self.limits.max_connections)
            .field(
                "max_connections_per_peer",
                &self.limits.max_connections_per_peer,
            )
            .field("ready_timeout", &self.limits.ready_timeout)
            .field("shutdown_grace", &self.limits.shutdown_grace)
            .field("tls", &self.tls)
            .field("access_log", &self.access_log.is_some())
            .field("readiness", &self.readiness.is_some())
            .field("objects", &self.objects);
        #[cfg(feature = "test-util")]
        debug.field("faults", &self.faults);
        debug.finish()
    }
}
