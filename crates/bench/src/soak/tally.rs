//! What a phase counts: outcomes, retries, latencies.

use std::collections::BTreeMap;
use std::time::Duration;

use super::operation::{OpReport, Outcome, Step};

/// Everything a phase counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Operations that ended, whatever their outcome.
    pub completed: u64,
    /// Operations whose calls all succeeded on the first attempt.
    pub ok_first_try: u64,
    /// Operations that succeeded after retries.
    pub ok_after_retries: u64,
    /// Operations by the number of retries they needed (successful or not).
    pub retries_histogram: BTreeMap<u32, u64>,
    /// Retries by cause: "503", "429", "Connect", ...
    pub retries_by_cause: BTreeMap<String, u64>,
    /// Retries in all.
    pub total_retries: u64,
    /// Operations that failed with a retryable error, by step, kind and
    /// status: "decrypt Api 503" -> count.
    pub failed_retryable: BTreeMap<String, u64>,
    /// Operations that failed with a retryable error, in all.
    pub failed_retryable_total: u64,
    /// Operations that failed with any other error.
    pub non_retryable: u64,
    /// Decrypts that gave back other bytes than were encrypted.
    pub wrong_plaintexts: u64,
    /// Operations that panicked.
    pub panics: u64,
    /// The first few failures, for the report.
    pub failure_examples: Vec<String>,
    /// Key service calls made (one per encrypt, one per decrypt).
    pub calls: u64,
    pub(crate) latencies: Histogram,
    /// Operations whose decrypt failed retryably, with their ciphertexts
    /// (and, when [`Tally::recording`], every ciphertext that decrypted).
    pub(crate) rechecks: Vec<(u64, String)>,
    /// Keep every ciphertext and every operation's [`Event`].
    pub(crate) keep_all: bool,
    /// Each operation's times and outcome, when [`Tally::recording`].
    pub(crate) events: Vec<Event>,
}

/// One operation on the clock: what `cargo xtask raft` reads to time the
/// recovery from a node's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Start and end, in milliseconds since the Unix epoch.
    pub span_ms: (u64, u64),
    /// Whether it decrypted its own plaintext.
    pub ok: bool,
    /// Retries its calls made.
    pub retries: u32,
    /// When the last of them was decided (Unix epoch milliseconds).
    pub last_retry_ms: Option<u64>,
}

impl Event {
    /// `start end ok|failed retries last_retry|-`: one line of the events
    /// file.
    pub fn line(&self) -> String {
        let last = self
            .last_retry_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        let outcome = if self.ok { "ok" } else { "failed" };
        let (start, end) = self.span_ms;
        format!("{start} {end} {outcome} {} {last}", self.retries)
    }
}

/// How many failures a report describes.
const MAX_EXAMPLES: usize = 10;

impl Tally {
    /// A tally that keeps every ciphertext, to decrypt all of them again
    /// after the load, and every operation's [`Event`].
    pub(crate) fn recording() -> Tally {
        Tally {
            keep_all: true,
            ..Tally::default()
        }
    }

    /// Keeps `text` if fewer than [`MAX_EXAMPLES`] failures are kept.
    pub(crate) fn example(&mut self, text: String) {
        if self.failure_examples.len() < MAX_EXAMPLES {
            self.failure_examples.push(text);
        }
    }

    /// Counts one operation's report.
    pub(crate) fn add(&mut self, report: OpReport) {
        self.completed += 1;
        self.latencies.record(report.latency);
        let retries = report.retries.count;
        if self.keep_all {
            self.events.push(Event {
                span_ms: report.span_ms,
                ok: matches!(report.outcome, Outcome::Ok),
                retries,
                last_retry_ms: report.retries.last_ms,
            });
        }
        *self.retries_histogram.entry(retries).or_default() += 1;
        self.total_retries += u64::from(retries);
        for cause in report.retries.causes {
            *self.retries_by_cause.entry(cause).or_default() += 1;
        }
        // Encrypt always calls the key service; decrypt does unless encrypt
        // failed.
        self.calls += match report.outcome {
            Outcome::Retryable {
                step: Step::Encrypt,
                ..
            }
            | Outcome::NonRetryable {
                step: Step::Encrypt,
                ..
            } => 1,
            _ => 2,
        };
        let keep = match &report.outcome {
            Outcome::Ok => self.keep_all,
            Outcome::Retryable { .. } => true,
            _ => false,
        };
        if let Some(ciphertext) = report.ciphertext.filter(|_| keep) {
            self.rechecks.push((report.index, ciphertext));
        }
        match report.outcome {
            Outcome::Ok if retries == 0 => self.ok_first_try += 1,
            Outcome::Ok => self.ok_after_retries += 1,
            Outcome::Retryable { step, kind, status } => {
                let status = status.map(|s| format!(" {s}")).unwrap_or_default();
                let key = format!("{} {kind:?}{status}", step.name());
                *self.failed_retryable.entry(key).or_default() += 1;
                self.failed_retryable_total += 1;
            }
            Outcome::NonRetryable { step, error } => {
                self.non_retryable += 1;
                self.example(format!(
                    "op {}: {} failed, not retryable: {error}",
                    report.index,
                    step.name()
                ));
            }
            Outcome::WrongPlaintext {
                expected_len,
                got_len,
            } => {
                self.wrong_plaintexts += 1;
                self.example(format!(
                    "op {}: WRONG PLAINTEXT ({got_len} bytes back, {expected_len} expected)",
                    report.index
                ));
            }
        }
    }
}

/// Latencies in microseconds, in fixed memory (so the harness's own
/// memory does not grow with the number of operations): exact below 128
/// µs, then 64 buckets per power of two (within 1.6%).
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

/// Below this, one bucket per microsecond.
const LINEAR: u64 = 128;
/// Buckets per power of two above [`LINEAR`].
const SUB_BUCKETS: u64 = 64;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; Histogram::bucket(u64::MAX) + 1],
            total: 0,
        }
    }
}

impl Histogram {
    /// The bucket of a latency of `micros`.
    fn bucket(micros: u64) -> usize {
        let index = if micros < LINEAR {
            micros
        } else {
            let exponent = u64::from(63 - micros.leading_zeros());
            let shift = exponent - SUB_BUCKETS.trailing_zeros() as u64;
            LINEAR + (exponent - 7) * SUB_BUCKETS + ((micros >> shift) & (SUB_BUCKETS - 1))
        };
        usize::try_from(index).expect("a small index")
    }

    /// The smallest value of bucket `index`.
    fn floor(index: usize) -> u64 {
        let index = index as u64;
        if index < LINEAR {
            return index;
        }
        let exponent = (index - LINEAR) / SUB_BUCKETS + 7;
        let sub = (index - LINEAR) % SUB_BUCKETS;
        let shift = exponent - SUB_BUCKETS.trailing_zeros() as u64;
        (1 << exponent) | (sub << shift)
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[Histogram::bucket(micros)] += 1;
        self.total += 1;
    }

    /// The latency at fraction `p` (0.0 to 1.0), to the bucket's floor.
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64 * p).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(Histogram::floor(index));
            }
        }
        Duration::MAX
    }
}

/// After the load, with faults cleared: decrypts of the ciphertexts whose
/// decrypt had failed retryably.
#[derive(Debug, Default)]
pub struct Recheck {
    /// Ciphertexts that gave back their plaintext.
    pub ok: u64,
    /// Ciphertexts that did not.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_histogram_is_within_two_percent() {
        for micros in [
            0,
            1,
            127,
            128,
            129,
            1000,
            65_535,
            1_000_000,
            30_000_000,
            u64::MAX / 3,
        ] {
            let floor = Histogram::floor(Histogram::bucket(micros));
            assert!(floor <= micros, "{micros}: {floor}");
            assert!(micros - floor <= micros / 60, "{micros}: {floor}");
        }
        let mut histogram = Histogram::default();
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        let p50 = histogram.percentile(0.5).as_micros();
        assert!((49_000..=50_000).contains(&p50), "{p50}");
        assert!(histogram.percentile(1.0) <= Duration::from_millis(100));
        assert!(histogram.percentile(1.0) >= Duration::from_millis(98));
        assert_eq!(Histogram::default().percentile(0.5), Duration::ZERO);
    }
}
