//! The access log: one JSON line per answered request, written by a
//! thread of its own so that serving never waits on the log's reader.
//!
//! Requests hand their line to a bounded queue and go on; the writer
//! thread writes the lines in order. When the reader stalls (a blocked
//! stderr, a full pipe), the queue fills and further lines are dropped and
//! counted, never waited for. Lines of 401 answers, which anyone can cause
//! without a key, are rate-limited on top of that.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lines waiting for the writer thread; more are dropped.
const QUEUE_LINES: usize = 1024;
/// 401 lines written in a burst before the rate limit applies.
const UNAUTHORIZED_BURST: f64 = 10.0;
/// 401 lines written per second, on average, after the burst.
const UNAUTHORIZED_PER_SECOND: f64 = 1.0;

/// Where access log lines go; clones share the writer thread.
#[derive(Clone)]
pub(crate) struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// To the writer thread.
    queue: SyncSender<String>,
    /// Lines queued and lines written, for [`AccessLog::flush`].
    progress: Arc<(Mutex<Progress>, Condvar)>,
    /// The budget of 401 lines.
    unauthorized: Mutex<Bucket>,
}

#[derive(Default)]
struct Progress {
    queued: u64,
    written: u64,
}

/// A token bucket for 401 lines, and how many it held back since the
/// last 401 line written.
struct Bucket {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

/// What became of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logged {
    /// Queued for the writer thread.
    Queued,
    /// The queue was full (the log's reader is not keeping up): dropped.
    Dropped,
    /// A 401 line over the rate limit: not written.
    Suppressed,
}

/// What one line says about one request.
pub(crate) struct Entry<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) tls: bool,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) route: &'static str,
    pub(crate) version: hyper::Version,
    /// `None` when the connection was dropped without an answer.
    pub(crate) status: Option<u16>,
    pub(crate) took: Duration,
}

impl AccessLog {
    /// Starts the writer thread over `out`. If the thread cannot be
    /// started, every line is dropped (and counted).
    pub(crate) fn new(out: impl Write + Send + 'static) -> Self {
        let (queue, lines) = mpsc::sync_channel::<String>(QUEUE_LINES);
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let written = progress.clone();
        let spawned = std::thread::Builder::new()
            .name("vault-access-log".to_owned())
            .spawn(move || write_lines(out, &lines, &written));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the access log thread: no access log");
        }
        AccessLog {
            inner: Arc::new(Inner {
                queue,
                progress,
                unauthorized: Mutex::new(Bucket {
                    tokens: UNAUTHORIZED_BURST,
                    refilled: Instant::now(),
                    suppressed: 0,
                }),
            }),
        }
    }

    /// Queues `entry` as one line, without waiting: a log that cannot keep
    /// up is not a reason to delay or fail the request.
    pub(crate) fn write(&self, entry: &Entry<'_>) -> Logged {
        let mut line = serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "request_id": entry.request_id,
            "remote": entry.remote.map(|addr| addr.to_string()),
            "tls": entry.tls,
            "method": entry.method,
            "path": entry.path,
            "route": entry.route,
            "version": format!("{:?}", entry.version),
            "status": entry.status,
            "duration_ms": entry.took.as_secs_f64() * 1000.0,
        });
        if entry.status == Some(401) {
            match self.unauthorized_budget() {
                None => return Logged::Suppressed,
                Some(0) => {}
                Some(suppressed) => line["suppressed_401_lines"] = suppressed.into(),
            }
        }
        let mut text = line.to_string();
        text.push('\n');
        // Count first, so a flush never misses a line the thread has
        // already written.
        lock(&self.inner.progress.0).queued += 1;
        match self.inner.queue.try_send(text) {
            Ok(()) => Logged::Queued,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                lock(&self.inner.progress.0).queued -= 1;
                self.inner.progress.1.notify_all();
                Logged::Dropped
            }
        }
    }

    /// Takes a token for one 401 line: `None` when over the rate limit,
    /// else how many 401 lines were held back since the last one.
    fn unauthorized_budget(&self) -> Option<u64> {
        let mut bucket = lock(&self.inner.unauthorized);
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled).as_secs_f64() * UNAUTHORIZED_PER_SECOND;
        bucket.tokens = (bucket.tokens + earned).min(UNAUTHORIZED_BURST);
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            bucket.suppressed += 1;
            return None;
        }
        bucket.tokens -= 1.0;
        Some(std::mem::take(&mut bucket.suppressed))
    }

    /// Waits (blocking, so on a blocking thread) until every line queued
    /// so far is written, or `timeout` passes; whether all were written.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (progress, written) = &*self.inner.progress;
        let guard = lock(progress);
        let (guard, _) = written
            .wait_timeout_while(guard, timeout, |p| p.written < p.queued)
            .unwrap_or_else(PoisonError::into_inner);
        guard.written >= guard.queued
    }
}

/// The writer thread: writes each line whole, until every sender is gone.
/// Write errors are ignored: nothing better can be done with them.
fn write_lines(
    mut out: impl Write,
    lines: &mpsc::Receiver<String>,
    progress: &(Mutex<Progress>, Condvar),
) {
    for line in lines {
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
        lock(&progress.0).written += 1;
        progress.1.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let at =
            |secs, millis| UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_709_251_199, 999)), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(at(4_102_444_800, 0)), "2100-01-01T00:00:00.000Z");
    }
}
