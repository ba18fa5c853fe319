//! When to retry, and how long to wait first: pure functions, so the rules
//! are tested without clocks.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` that is honoured; longer waits are cut to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Growth of the backoff per retry.
const BACKOFF_FACTOR: f64 = 1.5;

/// The wait before retry number `retry` (0 for the first retry):
/// `base x 1.5^retry`, capped at `cap`, with "equal jitter": half of it
/// fixed and half drawn from `jitter` (a uniform fraction in `0.0..=1.0`).
pub(crate) fn backoff(retry: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
    let full = (base.as_secs_f64() * BACKOFF_FACTOR.powi(exponent)).min(cap.as_secs_f64());
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    Duration::try_from_secs_f64(full * (0.5 + 0.5 * jitter)).unwrap_or(cap)
}

/// Parses a `Retry-After` value: delta seconds or an HTTP date. The result
/// is capped at [`MAX_RETRY_AFTER`]; a date in the past means "now".
/// Anything else is ignored (`None`), and the normal backoff applies.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(8);

    #[test]
    fn backoff_grows_by_half_and_is_capped() {
        // No jitter drawn: half of the full delay; full jitter: all of it.
        assert_eq!(backoff(0, BASE, CAP, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(0, BASE, CAP, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, BASE, CAP, 1.0), Duration::from_millis(750));
        assert_eq!(backoff(2, BASE, CAP, 1.0), Duration::from_millis(1125));
        assert_eq!(backoff(20, BASE, CAP, 1.0), CAP);
        assert_eq!(backoff(u32::MAX, BASE, CAP, 1.0), CAP);
        assert_eq!(backoff(u32::MAX, BASE, CAP, f64::NAN), CAP * 3 / 4);
        // A huge cap must not overflow Duration.
        assert!(backoff(u32::MAX, BASE, Duration::MAX, 1.0) > Duration::from_secs(1 << 40));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        let in_ten = httpdate::fmt_http_date(now + Duration::from_secs(10));
        assert_eq!(
            parse_retry_after(&in_ten, now),
            Some(Duration::from_secs(10))
        );
        let in_an_hour = httpdate::fmt_http_date(now + Duration::from_secs(3600));
        assert_eq!(parse_retry_after(&in_an_hour, now), Some(MAX_RETRY_AFTER));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
