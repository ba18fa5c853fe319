//! [`Faults`]: injected failures and request counters, for client tests.
//!
//! Requests never wait on one another here: the counters and the rates are
//! atomics, one-shot faults take their lock only while some are armed, and
//! idempotency keys go to a ring of slots that each have their own lock.
//! Every atomic is `SeqCst`: a test reads what requests wrote, and the cost
//! is nothing next to a request's.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use crate::route::Route;

/// How many idempotency keys are remembered; older ones are forgotten.
const MAX_REMEMBERED_KEYS: usize = 10_000;
/// Longest idempotency key remembered, in characters.
const MAX_KEY_CHARS: usize = 200;

/// Fault injection and counters, shared between a test and its server.
///
/// **For tests of clients only**, behind the `test-util` feature. Faults
/// are armed in code through this handle, never from the network: a server
/// whose configuration was not given a handle that a test arms behaves
/// normally. Faults apply to every request that reaches the server, before
/// authentication and routing, as a misbehaving load balancer would.
///
/// One-shot faults, consumed in this order per request:
/// 1. [`delay_next`](Self::delay_next): wait before answering;
/// 2. [`drop_next`](Self::drop_next): close the connection without an
///    answer (HTTP/2: reset the stream);
/// 3. [`fail_next`](Self::fail_next): answer with a status and an
///    optional `Retry-After`.
///
/// Then the random faults of [`set_rates`](Self::set_rates), for soak
/// tests, drawn from the operating system's generator or, after
/// [`seed`](Self::seed), from a seeded sequence so that a failing run can
/// be replayed. [`injected`](Self::injected) counts the faults that fired.
///
/// ```
/// use vault_server::{Faults, ServerConfig};
/// let faults = Faults::new();
/// faults.fail_next(2, 503, Some("1"));
/// let config = ServerConfig::new().api_key("sk_test").faults(faults.clone());
/// // ... serve, call, then:
/// assert_eq!(faults.requests("/vault/v1/keys/decrypt"), 0);
/// ```
#[derive(Clone, Default)]
pub struct Faults {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    one_shots: OneShots,
    rates: Rates,
    /// Requests by route, in the order of [`Route::ALL`].
    requests: [AtomicUsize; Route::ALL.len()],
    /// Faults that fired (drops and statuses, not delays).
    injected: AtomicUsize,
    dice: Dice,
    keys: KeyLog,
}

/// Where random faults' rolls come from.
#[derive(Default)]
struct Dice {
    /// Whether `seed` is set; else the operating system's generator.
    seeded: AtomicBool,
    seed: AtomicU64,
    /// Rolls since seeded: the next roll's place in the sequence.
    rolls: AtomicU64,
}

impl Dice {
    /// A uniform fraction in `0.0..1.0`: the next of the seeded sequence,
    /// else from the operating system (1.0, so no fault, if it has no
    /// randomness to give).
    fn roll(&self) -> f64 {
        let bits = if self.seeded.load(SeqCst) {
            let n = self.rolls.fetch_add(1, SeqCst);
            // splitmix64 of the seed and the roll's place.
            let mut z = self
                .seed
                .load(SeqCst)
                .wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            u32::try_from((z ^ (z >> 31)) >> 32).unwrap_or(u32::MAX)
        } else {
            let mut bytes = [0u8; 4];
            match SystemRandom::new().fill(&mut bytes) {
                Ok(()) => u32::from_le_bytes(bytes),
                Err(_) => return 1.0,
            }
        };
        f64::from(bits) / (f64::from(u32::MAX) + 1.0)
    }
}

/// Probabilities (0.0 to 1.0) of random faults per request; all zero by
/// default.
///
/// ```
/// // The soak test's mix: 5% 503, 1% dropped connections, 1% 429.
/// let rates = vault_server::FaultRates::default()
///     .with_unavailable(0.05)
///     .with_dropped(0.01)
///     .with_throttled(0.01);
/// assert_eq!(rates.dropped, 0.01);
/// ```
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
    /// Sets the rate of 503 answers.
    #[must_use]
    pub fn with_unavailable(mut self, rate: f64) -> Self {
        self.unavailable = rate;
        self
    }

    /// Sets the rate of connections closed without an answer.
    #[must_use]
    pub fn with_dropped(mut self, rate: f64) -> Self {
        self.dropped = rate;
        self
    }

    /// Sets the rate of 429 answers with `Retry-After: 1`.
    #[must_use]
    pub fn with_throttled(mut self, rate: f64) -> Self {
        self.throttled = rate;
        self
    }
}

/// What to do with one request instead of answering it normally.
#[derive(Debug, PartialEq)]
pub(crate) enum Fault {
    /// Close without an answer.
    Drop,
    /// Answer with this status and `Retry-After`.
    Status(u16, Option<String>),
}

/// The error a service returns to make hyper close the connection without
/// an answer (an injected "dropped connection").
#[derive(Debug)]
pub(crate) struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl Faults {
    /// A handle with nothing armed.
    pub fn new() -> Self {
        Faults::default()
    }

    /// Answers the next `count` requests with `status` (and a
    /// `Retry-After` header if given) and a JSON error body.
    pub fn fail_next(&self, count: usize, status: u16, retry_after: Option<&str>) {
        let retry_after = retry_after.map(str::to_owned);
        self.shared.one_shots.change(|queue| {
            let fault = (status, retry_after);
            queue.statuses.extend(std::iter::repeat_n(fault, count));
        });
    }

    /// Delays the answers to the next `count` requests by `delay`.
    pub fn delay_next(&self, count: usize, delay: Duration) {
        self.shared
            .one_shots
            .change(|queue| queue.delays.extend(std::iter::repeat_n(delay, count)));
    }

    /// Closes the connection of the next `count` requests without an
    /// answer.
    pub fn drop_next(&self, count: usize) {
        self.shared.one_shots.change(|queue| queue.drops += count);
    }

    /// Sets the rates of random faults; zero rates turn them off.
    pub fn set_rates(&self, rates: FaultRates) {
        self.shared.rates.store(rates);
    }

    /// Draws the random faults from a sequence seeded with `seed`, from
    /// its start: the n-th request to arrive gets the n-th roll, so a
    /// run whose requests arrive in the same order meets the same faults.
    /// Print the seed of a run to replay it.
    ///
    /// ```
    /// use vault_server::{FaultRates, Faults};
    /// let faults = Faults::new();
    /// faults.seed(7);
    /// faults.set_rates(FaultRates::default().with_unavailable(0.5));
    /// ```
    pub fn seed(&self, seed: u64) {
        let dice = &self.shared.dice;
        dice.seed.store(seed, SeqCst);
        dice.rolls.store(0, SeqCst);
        dice.seeded.store(true, SeqCst);
    }

    /// How many faults fired (dropped connections and status answers,
    /// one-shot or random; delays are not faults here) since the last
    /// [`reset_counters`](Self::reset_counters).
    pub fn injected(&self) -> usize {
        self.shared.injected.load(SeqCst)
    }

    /// Disarms every fault; counters are kept.
    pub fn clear(&self) {
        self.shared
            .one_shots
            .change(|queue| *queue = Queue::default());
        self.shared.rates.store(FaultRates::default());
    }

    /// How many requests arrived for `path` (one of the key endpoints or
    /// `/health`; anything else counts under `"other"`), faulted ones
    /// included.
    pub fn requests(&self, path: &str) -> usize {
        self.shared.requests[Route::of(path).index()].load(SeqCst)
    }

    /// How many requests arrived in all.
    pub fn total_requests(&self) -> usize {
        self.shared.requests.iter().map(|n| n.load(SeqCst)).sum()
    }

    /// The `Idempotency-Key` header of each request that had one, in order
    /// of arrival (the latest 10,000).
    pub fn idempotency_keys(&self) -> Vec<String> {
        self.shared.keys.keys()
    }

    /// Zeroes the counters and forgets the idempotency keys.
    pub fn reset_counters(&self) {
        for count in &self.shared.requests {
            count.store(0, SeqCst);
        }
        self.shared.injected.store(0, SeqCst);
        self.shared.keys.forget();
    }

    /// Counts a request and picks its fault, if any.
    pub(crate) fn on_request(
        &self,
        route: Route,
        idempotency_key: Option<&str>,
    ) -> (Option<Duration>, Option<Fault>) {
        self.shared.requests[route.index()].fetch_add(1, SeqCst);
        if let Some(key) = idempotency_key {
            self.shared.keys.record(key);
        }
        let (delay, fault) = self.shared.one_shots.take();
        let fault = fault.or_else(|| self.random_fault());
        if fault.is_some() {
            self.shared.injected.fetch_add(1, SeqCst);
        }
        (delay, fault)
    }

    fn random_fault(&self) -> Option<Fault> {
        let rates = self.shared.rates.load();
        if rates == FaultRates::default() {
            return None;
        }
        let roll = self.shared.dice.roll();
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
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one-shot faults, behind a lock that requests take only while
/// `armed` says some are queued.
#[derive(Default)]
struct OneShots {
    armed: AtomicBool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    delays: VecDeque<Duration>,
    drops: usize,
    statuses: VecDeque<(u16, Option<String>)>,
}

impl Queue {
    fn is_armed(&self) -> bool {
        !self.delays.is_empty() || self.drops > 0 || !self.statuses.is_empty()
    }
}

impl OneShots {
    /// Changes the queue; `armed` follows, under the same lock.
    fn change(&self, change: impl FnOnce(&mut Queue)) {
        let mut queue = lock(&self.queue);
        change(&mut queue);
        self.armed.store(queue.is_armed(), SeqCst);
    }

    /// The next request's delay and fault.
    fn take(&self) -> (Option<Duration>, Option<Fault>) {
        if !self.armed.load(SeqCst) {
            return (None, None);
        }
        let mut queue = lock(&self.queue);
        let delay = queue.delays.pop_front();
        let fault = if queue.drops > 0 {
            queue.drops -= 1;
            Some(Fault::Drop)
        } else {
            let status = queue.statuses.pop_front();
            status.map(|(status, retry_after)| Fault::Status(status, retry_after))
        };
        self.armed.store(queue.is_armed(), SeqCst);
        (delay, fault)
    }
}

/// [`FaultRates`] as the bits of each `f64`.
#[derive(Default)]
struct Rates {
    unavailable: AtomicU64,
    dropped: AtomicU64,
    throttled: AtomicU64,
}

impl Rates {
    fn store(&self, rates: FaultRates) {
        self.unavailable.store(rates.unavailable.to_bits(), SeqCst);
        self.dropped.store(rates.dropped.to_bits(), SeqCst);
        self.throttled.store(rates.throttled.to_bits(), SeqCst);
    }

    fn load(&self) -> FaultRates {
        FaultRates {
            unavailable: f64::from_bits(self.unavailable.load(SeqCst)),
            dropped: f64::from_bits(self.dropped.load(SeqCst)),
            throttled: f64::from_bits(self.throttled.load(SeqCst)),
        }
    }
}

/// One remembered key and its sequence number.
type Slot = Mutex<Option<(usize, Box<str>)>>;

/// The latest [`MAX_REMEMBERED_KEYS`] idempotency keys, in a ring of slots
/// that each have their own lock.
#[derive(Default)]
struct KeyLog {
    /// How many keys were ever recorded: the next key's sequence number.
    next: AtomicUsize,
    /// The sequence number of the first key since the last reset.
    first: AtomicUsize,
    /// Allocated with the first key.
    slots: OnceLock<Box<[Slot]>>,
}

impl KeyLog {
    fn record(&self, key: &str) {
        let sequence = self.next.fetch_add(1, SeqCst);
        let key: String = key.chars().take(MAX_KEY_CHARS).collect();
        let slots = self
            .slots
            .get_or_init(|| (0..MAX_REMEMBERED_KEYS).map(|_| Slot::default()).collect());
        let mut slot = lock(&slots[sequence % MAX_REMEMBERED_KEYS]);
        // A slow request must not overwrite the newer key of a later one.
        if slot.as_ref().is_none_or(|(held, _)| *held < sequence) {
            *slot = Some((sequence, key.into_boxed_str()));
        }
    }

    /// The keys since the last reset, oldest first.
    fn keys(&self) -> Vec<String> {
        let Some(slots) = self.slots.get() else {
            return Vec::new();
        };
        let end = self.next.load(SeqCst);
        let start = (self.first.load(SeqCst)).max(end.saturating_sub(MAX_REMEMBERED_KEYS));
        (start..end)
            .filter_map(|sequence| {
                let slot = lock(&slots[sequence % MAX_REMEMBERED_KEYS]);
                let (held, key) = slot.as_ref()?;
                (*held == sequence).then(|| key.to_string())
            })
            .collect()
    }

    fn forget(&self) {
        self.first.store(self.next.load(SeqCst), SeqCst);
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = lock(&self.shared.one_shots.queue);
        f.debug_struct("Faults")
            .field("delays", &queue.delays.len())
            .field("drops", &queue.drops)
            .field("statuses", &queue.statuses.len())
            .field("rates", &self.shared.rates.load())
            .field("requests", &self.total_requests())
            .field("injected", &self.injected())
            .field(
                "seed",
                &self
                    .shared
                    .dice
                    .seeded
                    .load(SeqCst)
                    .then(|| self.shared.dice.seed.load(SeqCst)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_request(
        faults: &Faults,
        path: &str,
        key: Option<&str>,
    ) -> (Option<Duration>, Option<Fault>) {
        faults.on_request(Route::of(path), key)
    }

    #[test]
    fn one_shot_faults_are_consumed_in_order() {
        let faults = Faults::new();
        faults.drop_next(1);
        faults.fail_next(2, 429, Some("1"));
        faults.delay_next(1, Duration::from_millis(5));
        let path = vault_api::wire::DECRYPT_PATH;
        assert_eq!(
            on_request(&faults, path, Some("k1")),
            (Some(Duration::from_millis(5)), Some(Fault::Drop))
        );
        assert_eq!(
            on_request(&faults, path, Some("k1")),
            (None, Some(Fault::Status(429, Some("1".into()))))
        );
        assert_eq!(
            on_request(&faults, "/health", None),
            (None, Some(Fault::Status(429, Some("1".into()))))
        );
        assert_eq!(on_request(&faults, "/nope", Some("k2")), (None, None));
        assert_eq!(faults.requests(path), 2);
        assert_eq!(faults.requests("/health"), 1);
        assert_eq!(faults.requests("/elsewhere"), 1);
        assert_eq!(faults.total_requests(), 4);
        assert_eq!(faults.idempotency_keys(), ["k1", "k1", "k2"]);
        faults.reset_counters();
        assert_eq!(faults.total_requests(), 0);
        assert!(faults.idempotency_keys().is_empty());
    }

    #[test]
    fn rates_of_one_always_fire_and_clear_disarms() {
        let faults = Faults::new();
        let none = FaultRates::default();
        faults.set_rates(none.with_dropped(1.0));
        assert_eq!(on_request(&faults, "/", None).1, Some(Fault::Drop));
        faults.set_rates(none.with_throttled(1.0));
        assert_eq!(
            on_request(&faults, "/", None).1,
            Some(Fault::Status(429, Some("1".into())))
        );
        faults.set_rates(none.with_unavailable(f64::NAN).with_dropped(-1.0));
        assert_eq!(on_request(&faults, "/", None).1, None);
        faults.set_rates(none.with_unavailable(1.0));
        assert_eq!(
            on_request(&faults, "/", None).1,
            Some(Fault::Status(503, None))
        );
        faults.fail_next(1, 500, None);
        faults.clear();
        assert_eq!(on_request(&faults, "/", None), (None, None));
    }

    #[test]
    fn seeded_dice_replay_the_same_faults() {
        let run = |seed| {
            let faults = Faults::new();
            faults.seed(seed);
            faults.set_rates(FaultRates::default().with_unavailable(0.3));
            let outcomes: Vec<bool> = (0..200)
                .map(|_| on_request(&faults, "/", None).1.is_some())
                .collect();
            (outcomes, faults.injected())
        };
        let (first, injected) = run(42);
        assert_eq!(
            run(42),
            (first.clone(), injected),
            "the same seed, the same faults"
        );
        assert_ne!(run(43).0, first, "another seed, other faults");
        assert_eq!(injected, first.iter().filter(|f| **f).count());
        // About 30% of 200, nowhere near none or all.
        assert!((30..=90).contains(&injected), "{injected}");
    }

    #[test]
    fn the_latest_keys_are_kept_in_order_and_cut_short() {
        let faults = Faults::new();
        for i in 0..MAX_REMEMBERED_KEYS + 5 {
            on_request(&faults, "/", Some(&i.to_string()));
        }
        let keys = faults.idempotency_keys();
        assert_eq!(keys.len(), MAX_REMEMBERED_KEYS);
        assert_eq!(keys[0], "5");
        assert_eq!(
            keys[MAX_REMEMBERED_KEYS - 1],
            (MAX_REMEMBERED_KEYS + 4).to_string()
        );
        faults.reset_counters();
        on_request(&faults, "/", Some(&"k".repeat(MAX_KEY_CHARS + 1)));
        assert_eq!(faults.idempotency_keys(), ["k".repeat(MAX_KEY_CHARS)]);
    }
}
