//! [`Faults`]: injected failures and request counters, for client tests.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

/// How many idempotency keys are remembered; older ones are forgotten.
const MAX_REMEMBERED_KEYS: usize = 10_000;
/// Longest idempotency key remembered, in characters.
const MAX_KEY_CHARS: usize = 200;

/// Fault injection and counters, shared between a test and its server.
///
/// **For tests of clients only.** Faults are armed in code through this
/// handle, never from the network: a server whose configuration was not
/// given a handle that a test arms behaves normally. Faults apply to every
/// request that reaches the server, before authentication and routing, as a
/// misbehaving load balancer would.
///
/// One-shot faults, consumed in this order per request:
/// 1. [`delay_next`](Self::delay_next): wait before answering;
/// 2. [`drop_next`](Self::drop_next): close the connection without an
///    answer (HTTP/2: reset the stream);
/// 3. [`fail_next`](Self::fail_next): answer with a status and an
///    optional `Retry-After`.
///
/// Then the random faults of [`set_rates`](Self::set_rates), for soak
/// tests.
///
/// ```
/// use vault_server::{Faults, ServerConfig};
/// let faults = Faults::new();
/// faults.fail_next(2, 503, Some("1"));
/// let config = ServerConfig::new().api_key("sk_test").faults(faults.clone());
/// // ... serve, call, then:
/// assert_eq!(faults.requests("/vault/v1/keys/decrypt"), 0);
/// ```
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
    rng: Arc<SystemRandom>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            state: Arc::default(),
            rng: Arc::new(SystemRandom::new()),
        }
    }
}

/// Probabilities (0.0 to 1.0) of random faults per request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct FaultRates {
    /// Answer 503.
    pub unavailable: f64,
    /// Close the connection without an answer.
    pub dropped: f64,
    /// Answer 429 with `Retry-After: 1`.
    pub throttled: f64,
}

impl FaultRates {
    /// Rates of 503, dropped connections and 429 with `Retry-After: 1`.
    pub fn new(unavailable: f64, dropped: f64, throttled: f64) -> Self {
        FaultRates {
            unavailable,
            dropped,
            throttled,
        }
    }
}

#[derive(Default)]
struct State {
    delays: VecDeque<Duration>,
    drops: usize,
    statuses: VecDeque<(u16, Option<String>)>,
    rates: FaultRates,
    requests: HashMap<&'static str, usize>,
    idempotency_keys: VecDeque<String>,
}

/// What to do with one request instead of answering it normally.
#[derive(Debug, PartialEq)]
pub(crate) enum Fault {
    /// Close without an answer.
    Drop,
    /// Answer with this status and `Retry-After`.
    Status(u16, Option<String>),
}

impl Faults {
    /// A handle with nothing armed.
    pub fn new() -> Self {
        Faults::default()
    }

    /// Answers the next `count` requests with `status` (and a
    /// `Retry-After` header if given) and a JSON error body.
    pub fn fail_next(&self, count: usize, status: u16, retry_after: Option<&str>) {
        let mut state = self.lock();
        for _ in 0..count {
            state
                .statuses
                .push_back((status, retry_after.map(str::to_owned)));
        }
    }

    /// Delays the answers to the next `count` requests by `delay`.
    pub fn delay_next(&self, count: usize, delay: Duration) {
        let mut state = self.lock();
        state.delays.extend(std::iter::repeat_n(delay, count));
    }

    /// Closes the connection of the next `count` requests without an
    /// answer.
    pub fn drop_next(&self, count: usize) {
        self.lock().drops += count;
    }

    /// Sets the rates of random faults; zero rates turn them off.
    pub fn set_rates(&self, rates: FaultRates) {
        self.lock().rates = rates;
    }

    /// Disarms every fault; counters are kept.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.delays.clear();
        state.drops = 0;
        state.statuses.clear();
        state.rates = FaultRates::default();
    }

    /// How many requests arrived for `path` (one of the key endpoints or
    /// `/health`; anything else counts under `"other"`), faulted ones
    /// included.
    pub fn requests(&self, path: &str) -> usize {
        self.lock()
            .requests
            .get(crate::handler::path_label(path))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests arrived in all.
    pub fn total_requests(&self) -> usize {
        self.lock().requests.values().sum()
    }

    /// The `Idempotency-Key` header of each request that had one, in order
    /// of arrival (the latest 10,000).
    pub fn idempotency_keys(&self) -> Vec<String> {
        self.lock().idempotency_keys.iter().cloned().collect()
    }

    /// Zeroes the counters and forgets the idempotency keys.
    pub fn reset_counters(&self) {
        let mut state = self.lock();
        state.requests.clear();
        state.idempotency_keys.clear();
    }

    /// Counts a request and picks its fault, if any.
    pub(crate) fn on_request(
        &self,
        path: &str,
        idempotency_key: Option<&str>,
    ) -> (Option<Duration>, Option<Fault>) {
        let mut state = self.lock();
        *state
            .requests
            .entry(crate::handler::path_label(path))
            .or_default() += 1;
        if let Some(key) = idempotency_key {
            if state.idempotency_keys.len() == MAX_REMEMBERED_KEYS {
                state.idempotency_keys.pop_front();
            }
            state
                .idempotency_keys
                .push_back(key.chars().take(MAX_KEY_CHARS).collect());
        }
        let delay = state.delays.pop_front();
        let fault = if state.drops > 0 {
            state.drops -= 1;
            Some(Fault::Drop)
        } else if let Some((status, retry_after)) = state.statuses.pop_front() {
            Some(Fault::Status(status, retry_after))
        } else {
            let rates = state.rates;
            drop(state);
            self.random_fault(rates)
        };
        (delay, fault)
    }

    fn random_fault(&self, rates: FaultRates) -> Option<Fault> {
        if rates == FaultRates::default() {
            return None;
        }
        let roll = self.roll();
        let mut threshold = 0.0;
        let choices = [
            (rates.unavailable, Fault::Status(503, None)),
            (rates.dropped, Fault::Drop),
            (rates.throttled, Fault::Status(429, Some("1".to_owned()))),
        ];
        for (rate, fault) in choices {
            threshold += if rate.is_finite() { rate.max(0.0) } else { 0.0 };
            if roll < threshold {
                return Some(fault);
            }
        }
        None
    }

    /// A uniform fraction in `0.0..1.0`.
    fn roll(&self) -> f64 {
        let mut bytes = [0u8; 4];
        match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
            Err(_) => 1.0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Faults")
            .field("delays", &state.delays.len())
            .field("drops", &state.drops)
            .field("statuses", &state.statuses.len())
            .field("rates", &state.rates)
            .field("requests", &state.requests.values().sum::<usize>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_faults_are_consumed_in_order() {
        let faults = Faults::new();
        faults.drop_next(1);
        faults.fail_next(2, 429, Some("1"));
        faults.delay_next(1, Duration::from_millis(5));
        let path = vault_api::wire::DECRYPT_PATH;
        assert_eq!(
            faults.on_request(path, Some("k1")),
            (Some(Duration::from_millis(5)), Some(Fault::Drop))
        );
        assert_eq!(
            faults.on_request(path, Some("k1")),
            (None, Some(Fault::Status(429, Some("1".into()))))
        );
        assert_eq!(
            faults.on_request("/health", None),
            (None, Some(Fault::Status(429, Some("1".into()))))
        );
        assert_eq!(faults.on_request("/nope", Some("k2")), (None, None));
        assert_eq!(faults.requests(path), 2);
        assert_eq!(faults.requests("/health"), 1);
        assert_eq!(faults.requests("/elsewhere"), 1);
        assert_eq!(faults.total_requests(), 4);
        assert_eq!(faults.idempotency_keys(), ["k1", "k1", "k2"]);
        faults.reset_counters();
        assert_eq!(faults.total_requests(), 0);
    }

    #[test]
    fn rates_of_one_always_fire_and_clear_disarms() {
        let faults = Faults::new();
        faults.set_rates(FaultRates::new(0.0, 1.0, 0.0));
        assert_eq!(faults.on_request("/", None).1, Some(Fault::Drop));
        faults.set_rates(FaultRates::new(0.0, 0.0, 1.0));
        assert_eq!(
            faults.on_request("/", None).1,
            Some(Fault::Status(429, Some("1".into())))
        );
        faults.set_rates(FaultRates::new(f64::NAN, -1.0, 0.0));
        assert_eq!(faults.on_request("/", None).1, None);
        faults.set_rates(FaultRates::new(1.0, 0.0, 0.0));
        faults.clear();
        assert_eq!(faults.on_request("/", None).1, None);
    }
}
