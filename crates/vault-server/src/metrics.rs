//! [`Metrics`]: request counters, a latency histogram and key service
//! errors, in Prometheus' text format, and [`serve_metrics`] to expose
//! them on an address of their own.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::route::Route;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// How long a metrics client may take to send its request head.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a server counts, shared by every clone: give one to
/// [`ServerConfig::metrics`](crate::ServerConfig::metrics) and another to
/// [`serve_metrics`], or read [`render`](Self::render) yourself.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `vault_server_requests_total` | counter | `route`, `status` |
/// | `vault_server_request_duration_seconds` | histogram | `route` |
/// | `vault_server_key_service_errors_total` | counter | `kind` |
/// | `vault_server_requests_in_flight` | gauge | |
/// | `vault_server_tls_handshake_failures_total` | counter | |
/// | `vault_server_access_log_dropped_lines_total` | counter | |
/// | `vault_server_access_log_suppressed_lines_total` | counter | |
/// | `vault_server_connections_refused_total` | counter | `reason` |
///
/// Access log lines are dropped when the log's reader does not keep up
/// (serving never waits for it), and suppressed when they are 401 lines
/// over the rate limit. Connections are refused when one peer address
/// holds [`ServerConfig::max_connections_per_peer`](crate::ServerConfig::max_connections_per_peer)
/// already (`reason="per_peer"`).
///
/// Routes are `data_key`, `decrypt`, `rekey`, the objects API's `objects`,
/// `object`, `object_by_name`, `object_metadata` and `object_versions`,
/// `health`, `ready` and `not_found`, so a scan of random paths cannot grow
/// the label set.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    latency: [Histogram; Route::ALL.len()],
    service_errors: Mutex<BTreeMap<String, u64>>,
    in_flight: AtomicI64,
    handshake_failures: AtomicU64,
    log_dropped: AtomicU64,
    log_suppressed: AtomicU64,
    refused_per_peer: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    /// Observations at or under each bound (not cumulative).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Counts one request in flight until dropped.
pub(crate) struct InFlight(Metrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inner.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Marks a request in flight until the guard is dropped.
    pub(crate) fn start(&self) -> InFlight {
        self.inner.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    /// Counts an answered request.
    pub(crate) fn answered(&self, route: Route, status: u16, took: Duration) {
        *lock(&self.inner.requests)
            .entry((route, status))
            .or_default() += 1;
        let histogram = &self.inner.latency[route.index()];
        let seconds = took.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket].fetch_add(1, Relaxed);
        }
        histogram.count.fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        histogram.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Counts a failure of the key service.
    pub(crate) fn service_error(&self, kind: vault_api::ErrorKind) {
        *lock(&self.inner.service_errors)
            .entry(format!("{kind:?}"))
            .or_default() += 1;
    }

    /// Counts a TLS handshake that failed or timed out.
    pub(crate) fn handshake_failed(&self) {
        self.inner.handshake_failures.fetch_add(1, Relaxed);
    }

    /// Counts an access log line: dropped (the log's reader is behind) or
    /// suppressed (a 401 line over the rate limit).
    pub(crate) fn access_logged(&self, logged: crate::access_log::Logged) {
        use crate::access_log::Logged;
        match logged {
            Logged::Queued => {}
            Logged::Dropped => {
                self.inner.log_dropped.fetch_add(1, Relaxed);
            }
            Logged::Suppressed => {
                self.inner.log_suppressed.fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts a connection closed at once because its peer holds too many.
    pub(crate) fn refused_per_peer(&self) {
        self.inner.refused_per_peer.fetch_add(1, Relaxed);
    }

    /// Every metric, in Prometheus' text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) -> fmt::Result {
        let inner = &self.inner;
        header(out, "requests_total", "counter", "Requests answered.")?;
        for ((route, status), count) in lock(&inner.requests).iter() {
            let route = route.label();
            writeln!(
                out,
                "vault_server_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            )?;
        }
        header(
            out,
            "request_duration_seconds",
            "histogram",
            "Time to answer a request.",
        )?;
        for route in Route::ALL {
            inner.latency[route.index()].write_to(out, route.label())?;
        }
        header(
            out,
            "key_service_errors_total",
            "counter",
            "Key service failures.",
        )?;
        for (kind, count) in lock(&inner.service_errors).iter() {
            writeln!(
                out,
                "vault_server_key_service_errors_total{{kind=\"{kind}\"}} {count}"
            )?;
        }
        header(
            out,
            "requests_in_flight",
            "gauge",
            "Requests being answered.",
        )?;
        writeln!(
            out,
            "vault_server_requests_in_flight {}",
            inner.in_flight.load(Relaxed)
        )?;
        header(
            out,
            "tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed.",
        )?;
        let failures = inner.handshake_failures.load(Relaxed);
        writeln!(out, "vault_server_tls_handshake_failures_total {failures}")?;
        header(
            out,
            "access_log_dropped_lines_total",
            "counter",
            "Access log lines dropped because the log's reader fell behind.",
        )?;
        let dropped = inner.log_dropped.load(Relaxed);
        writeln!(out, "vault_server_access_log_dropped_lines_total {dropped}")?;
        header(
            out,
            "access_log_suppressed_lines_total",
            "counter",
            "401 access log lines over the rate limit, not written.",
        )?;
        let suppressed = inner.log_suppressed.load(Relaxed);
        writeln!(
            out,
            "vault_server_access_log_suppressed_lines_total {suppressed}"
        )?;
        header(
            out,
            "connections_refused_total",
            "counter",
            "Connections closed on accept.",
        )?;
        let refused = inner.refused_per_peer.load(Relaxed);
        writeln!(
            out,
            "vault_server_connections_refused_total{{reason=\"per_peer\"}} {refused}"
        )
    }
}

impl Histogram {
    /// The buckets, sum and count of one route; nothing for a route never
    /// requested.
    fn write_to(&self, out: &mut String, route: &str) -> fmt::Result {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Ok(());
        }
        let name = "vault_server_request_duration_seconds";
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
            )?;
        }
        writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        )?;
        let sum = Duration::from_nanos(self.sum_nanos.load(Relaxed)).as_secs_f64();
        writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}")?;
        writeln!(out, "{name}_count{{route=\"{route}\"}} {count}")
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("in_flight", &self.inner.in_flight.load(Relaxed))
            .finish_non_exhaustive()
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP vault_server_{name} {help}")?;
    writeln!(out, "# TYPE vault_server_{name} {kind}")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `GET /metrics` (every other path is 404) on `listener`, without
/// authentication: bind it to an address only the scraper reaches. Runs
/// until the task is dropped, or `listener` fails.
pub async fn serve_metrics(listener: TcpListener, metrics: Metrics) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(METRICS_HEADER_TIMEOUT);
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = listener.accept().await?;
        let (builder, metrics) = (builder.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = metrics_response(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn metrics_response<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let found = request.uri().path() == "/metrics"
        && matches!(*request.method(), Method::GET | Method::HEAD);
    let (status, body, content_type) = if found {
        let body = metrics.render();
        (
            StatusCode::OK,
            body,
            "text/plain; version=0.0.4; charset=utf-8",
        )
    } else {
        let body = "not found: GET /metrics\n".to_owned();
        (StatusCode::NOT_FOUND, body, "text/plain; charset=utf-8")
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_the_histogram_render_as_prometheus_text() {
        let metrics = Metrics::new();
        metrics.answered(Route::Decrypt, 200, Duration::from_micros(700));
        metrics.answered(Route::Decrypt, 200, Duration::from_millis(30));
        metrics.answered(Route::NotFound, 404, Duration::from_secs(9));
        metrics.service_error(vault_api::ErrorKind::Keyring);
        let guard = metrics.start();
        let text = metrics.render();
        for line in [
            "vault_server_requests_total{route=\"decrypt\",status=\"200\"} 2",
            "vault_server_requests_total{route=\"not_found\",status=\"404\"} 1",
            "vault_server_request_duration_seconds_bucket{route=\"decrypt\",le=\"0.0005\"} 0",
            "vault_server_request_duration_seconds_bucket{route=\"decrypt\",le=\"0.001\"} 1",
            "vault_server_request_duration_seconds_bucket{route=\"decrypt\",le=\"0.05\"} 2",
            "vault_server_request_duration_seconds_bucket{route=\"not_found\",le=\"5\"} 0",
            "vault_server_request_duration_seconds_bucket{route=\"not_found\",le=\"+Inf\"} 1",
            "vault_server_request_duration_seconds_count{route=\"decrypt\"} 2",
            "vault_server_key_service_errors_total{kind=\"Keyring\"} 1",
            "vault_server_requests_in_flight 1",
            "# TYPE vault_server_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("route=\"rekey\""), "{text}");
        drop(guard);
        assert!(metrics
            .render()
            .contains("vault_server_requests_in_flight 0"));
    }
}
