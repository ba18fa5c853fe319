//! [`RetryPolicy`]: when a key service call is retried, how long it waits
//! first, and how long each attempt and the whole call may take. One
//! policy serves [`HttpKeyService`](crate::HttpKeyService) and
//! `vault_transit::TransitKeyService` alike.

use std::future::Future;
use std::time::{Duration, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

use crate::error::RETRYABLE_STATUSES;
use crate::{Error, ErrorKind};

/// Growth of the backoff per retry.
const BACKOFF_FACTOR: f64 = 1.5;

/// When a call is retried and how long it may take: the per-attempt
/// timeout, the deadline of the whole call, the number of retries, the
/// backoff between them, the statuses that are retried, and the longest
/// `Retry-After` that is honoured.
///
/// | setting | default |
/// |---|---|
/// | [`timeout`](Self::with_timeout) (per attempt) | 30 s |
/// | [`deadline`](Self::with_deadline) (whole call, retries and waits included) | 2 min |
/// | [`max_retries`](Self::with_max_retries) | 3 |
/// | [`backoff`](Self::with_backoff) | 500 ms x 1.5^n, capped at 8 s, with equal jitter |
/// | [`statuses`](Self::with_statuses) | 408, 429, 500, 502, 503, 504 |
/// | [`max_retry_after`](Self::with_max_retry_after) | 60 s |
///
/// Besides the statuses, dropped connections and timeouts are retried
/// ([`Error::is_retryable`]). A `Retry-After` header, in delta seconds or
/// as an HTTP date, replaces the backoff; longer waits are cut to
/// [`max_retry_after`](Self::with_max_retry_after). No retry starts whose wait
/// would reach the deadline.
///
/// ```
/// use std::time::Duration;
/// use vault_api::{HttpKeyService, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .with_max_retries(5)
///     .with_deadline(Duration::from_secs(30));
/// assert_eq!(policy.max_retries(), 5);
/// assert!(policy.retries_status(503));
/// assert!(!policy.retries_status(400));
/// let service = HttpKeyService::builder()
///     .api_key("sk_test_123")
///     .retry_policy(policy)
///     .build()?;
/// # Ok::<(), vault_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
    statuses: Vec<u16>,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The policy of the table above: that of the official SDKs.
    pub fn new() -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
            statuses: RETRYABLE_STATUSES.to_vec(),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// The timeout of one attempt, connecting and reading the whole
    /// response included. A timed-out attempt is retried.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of a whole call, retries and waits included. No retry
    /// starts that could not finish its wait before it.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many times a failed call is retried; 0 turns retries off.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The backoff between retries: retry `n` (from 0) waits between half
    /// and all of `base x 1.5^n`, at most `cap`. A `Retry-After` header
    /// replaces it.
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// The HTTP statuses that are retried, replacing the default ones.
    pub fn with_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// The longest `Retry-After` honoured; longer ones are cut to this.
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The deadline of a whole call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// How many times a failed call is retried.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Whether an answer with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }

    /// Refuses a zero timeout or deadline, with [`ErrorKind::Config`].
    pub fn check(&self) -> Result<(), Error> {
        if self.timeout.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "the per-attempt timeout must be above zero",
            ));
        }
        if self.deadline.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "the deadline must be above zero",
            ));
        }
        Ok(())
    }

    /// The wait before retry number `retry` (0 for the first retry):
    /// `base x 1.5^retry`, capped, with "equal jitter": half of it fixed
    /// and half drawn from `jitter` (a uniform fraction in `0.0..=1.0`).
    pub fn backoff_for(&self, retry: u32, jitter: f64) -> Duration {
        let (base, cap) = (self.backoff_base, self.backoff_cap);
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let full = (base.as_secs_f64() * BACKOFF_FACTOR.powi(exponent)).min(cap.as_secs_f64());
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        Duration::try_from_secs_f64(full * (0.5 + 0.5 * jitter)).unwrap_or(cap)
    }

    /// Reads a `Retry-After` value: delta seconds or an HTTP date, cut to
    /// [`max_retry_after`](Self::with_max_retry_after); a date in the past
    /// means "now". Anything else is `None`, and the backoff applies.
    pub fn retry_after(&self, value: &str, now: SystemTime) -> Option<Duration> {
        let value = value.trim();
        let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits for a u64 is still "a long time".
            Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
        } else {
            let date = httpdate::parse_http_date(value).ok()?;
            date.duration_since(now).unwrap_or(Duration::ZERO)
        };
        Some(wait.min(self.max_retry_after))
    }

    /// Runs `attempt` until it succeeds, fails for good, the retries are
    /// spent or the deadline leaves no room for the next wait. Each
    /// attempt is cut at the per-attempt timeout or the deadline, whichever
    /// comes first; `service` names the other end in the timeout errors
    /// ("the key service", "Transit").
    ///
    /// A failure is retried when [`Error::is_retryable`] says so; its
    /// [`Error::retry_after`] replaces the backoff. Key services built on
    /// a [`Transport`](crate::transport::Transport) call this; it is
    /// public so that yours can too.
    pub async fn run<T, F, Fut>(&self, service: &str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let span = tracing::Span::current();
        let deadline = Instant::now() + self.deadline;
        let mut retry = 0;
        loop {
            span.record("attempt", retry + 1);
            let error = match self.attempt(service, deadline, attempt()).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            let Some(wait) = self.wait_before_retry(retry, &error, deadline) else {
                return Err(error);
            };
            tracing::info!(
                kind = ?error.kind(),
                status = error.status(),
                request_id = error.request_id(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying the call of {service}"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One attempt, cut at the per-attempt timeout or the deadline.
    async fn attempt<T>(
        &self,
        service: &str,
        deadline: Instant,
        attempt: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{service} did not answer within the deadline of {:?}",
                    self.deadline
                ),
            ));
        }
        let limit = self.timeout.min(remaining);
        match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => {
                let what = if limit < self.timeout {
                    "the deadline of the call"
                } else {
                    "the per-attempt timeout"
                };
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("{service} did not answer within {limit:?} ({what})"),
                ))
            }
        }
    }

    /// How long to wait before retry number `retry`, or `None` when the
    /// failure is final: not retryable, retries spent, or a wait that
    /// would reach the deadline.
    fn wait_before_retry(&self, retry: u32, error: &Error, deadline: Instant) -> Option<Duration> {
        if !error.is_retryable() || retry >= self.max_retries {
            return None;
        }
        let wait = match error.retry_after() {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.backoff_for(retry, jitter()),
        };
        if Instant::now() + wait >= deadline {
            tracing::debug!("no time left for another attempt before the deadline");
            return None;
        }
        Some(wait)
    }
}

/// A uniform fraction for jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(8);
    const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

    fn backoff(retry: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
        RetryPolicy::new()
            .with_backoff(base, cap)
            .backoff_for(retry, jitter)
    }

    fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
        RetryPolicy::new().retry_after(value, now)
    }

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
        let short = RetryPolicy::new().with_max_retry_after(Duration::from_secs(5));
        assert_eq!(short.retry_after("7", now), Some(Duration::from_secs(5)));
    }

    #[test]
    fn statuses_and_checks() {
        let policy = RetryPolicy::new();
        for status in RETRYABLE_STATUSES {
            assert!(policy.retries_status(status), "{status}");
        }
        assert!(!policy.retries_status(307));
        let policy = policy.with_statuses([307]);
        assert!(policy.retries_status(307) && !policy.retries_status(503));
        policy.check().unwrap();
        for bad in [
            RetryPolicy::new().with_timeout(Duration::ZERO),
            RetryPolicy::new().with_deadline(Duration::ZERO),
        ] {
            assert_eq!(bad.check().unwrap_err().kind(), ErrorKind::Config);
        }
    }
}
