//! The access log: one JSON line per answered request.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where access log lines go; clones share the writer.
#[derive(Clone)]
pub(crate) struct AccessLog {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
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
    pub(crate) fn new(out: impl Write + Send + 'static) -> Self {
        AccessLog {
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }

    /// Writes `entry` as one line. A log that cannot be written is not a
    /// reason to fail the request, so errors are dropped.
    pub(crate) fn write(&self, entry: &Entry<'_>) {
        let line = serde_json::json!({
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
        let mut text = line.to_string();
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
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
