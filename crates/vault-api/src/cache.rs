//! A caching decorator for any key service.
//!
//! [`CachingKeyService`] sits in front of another [`KeyService`] and saves
//! calls to it:
//!
//! - **Decrypt cache** (on by default once you wrap): unwrapped data keys,
//!   keyed by the exact `encrypted_keys` bytes, kept for a TTL (5 minutes by
//!   default) and bounded in number (1,000 by default, least recently used
//!   evicted first). Keys that the service creates or rekeys are put in it
//!   too, so decrypting what was just encrypted costs no call.
//! - **Single flight**: concurrent callers asking for the same blob (or, with
//!   reuse, a key for the same context) share one call to the key service.
//!   If it fails, they all get the error; errors are never cached.
//! - **Data key reuse** (off unless you set a [`ReusePolicy`]):
//!   [`KeyService::data_key_for_message`] hands out the same data key for
//!   several messages under one context, within an age, a message count and
//!   a byte count.
//!
//! # The trade-off
//!
//! Both caches hold secret data keys in memory (zeroized when dropped): a
//! cached key stays in memory until its TTL passes or it is evicted, so a
//! memory disclosure reveals more. A reused data key protects more data, so
//! losing it exposes more messages, and every message encrypted under it
//! names the same `encrypted_keys` (which tells readers they share a key).
//! Use reuse for high-volume encryption where the key service's latency or
//! rate limit matters, with limits that fit your risk.
//!
//! Expired keys are checked on every lookup and dropped in a sweep that runs
//! at most every eighth of the TTL (and at least every second) when the
//! cache is used; [`CachingKeyService::clear`] drops them all at once.
//!
//! ```
//! # async fn run(my_key_service: impl vault_api::KeyService) -> Result<(), vault_api::Error> {
//! use std::time::Duration;
//! use vault_api::{CacheConfig, CachingKeyService, KeyContext, KeyService, ReusePolicy};
//!
//! let config = CacheConfig::default()
//!     .with_ttl(Duration::from_secs(60))
//!     .with_reuse(ReusePolicy::new(Duration::from_secs(60), 10_000, 1 << 30));
//! let service = CachingKeyService::new(my_key_service, config);
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//! let first = service.data_key_for_message(&context, 100).await?;
//! let second = service.data_key_for_message(&context, 100).await?;
//! assert_eq!(first.id(), second.id());
//! let key = service.decrypt_data_key(&first.encrypted_keys).await?;
//! assert_eq!(service.stats().decrypt_hits, 1);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;
use vault_crypto::DataKey;

use crate::{DataKeyPair, Error, ErrorKind, KeyContext, KeyService};

/// Most messages one data key may encrypt with random 96-bit nonces
/// (NIST SP 800-38D): 2^32. [`ReusePolicy`] clamps to it.
pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 32;

/// How a [`CachingKeyService`] caches.
///
/// ```
/// use std::time::Duration;
/// use vault_api::{CacheConfig, ReusePolicy};
/// let config = CacheConfig::default()
///     .with_max_entries(10_000)
///     .with_ttl(Duration::from_secs(30))
///     .with_reuse(ReusePolicy::new(Duration::from_secs(60), 1_000, 1 << 30));
/// assert_eq!(config.max_entries(), 10_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    max_entries: usize,
    ttl: Duration,
    reuse: Option<ReusePolicy>,
    prime_decrypt_cache: bool,
}

impl Default for CacheConfig {
    /// 1,000 entries, a 5-minute TTL, no reuse, created keys primed into
    /// the decrypt cache.
    fn default() -> Self {
        CacheConfig {
            max_entries: 1000,
            ttl: Duration::from_secs(300),
            reuse: None,
            prime_decrypt_cache: true,
        }
    }
}

impl CacheConfig {
    /// The most data keys each cache holds (the decrypt cache and, with
    /// reuse, the reusable keys). Zero disables caching but keeps single
    /// flight.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// How long an unwrapped data key stays in the decrypt cache after it
    /// was fetched. Hits do not extend it.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Reuse data keys for several messages, within `policy`.
    pub fn with_reuse(mut self, policy: ReusePolicy) -> Self {
        self.reuse = Some(policy);
        self
    }

    /// Whether keys returned by `create_data_key`, `data_key_for_message`
    /// and `rekey` go into the decrypt cache (default: yes).
    pub fn with_prime_decrypt_cache(mut self, prime: bool) -> Self {
        self.prime_decrypt_cache = prime;
        self
    }

    /// See [`CacheConfig::with_max_entries`].
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// See [`CacheConfig::with_ttl`].
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// See [`CacheConfig::with_reuse`].
    pub fn reuse(&self) -> Option<&ReusePolicy> {
        self.reuse.as_ref()
    }

    /// See [`CacheConfig::with_prime_decrypt_cache`].
    pub fn prime_decrypt_cache(&self) -> bool {
        self.prime_decrypt_cache
    }
}

/// Limits on reusing one data key for several messages under one context.
/// A new key is created as soon as any limit would be passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
}

impl ReusePolicy {
    /// A key is reused while younger than `max_age`, for at most
    /// `max_messages` messages (clamped to 1 ..= 2^32, see
    /// [`MAX_MESSAGES_PER_KEY`]) totalling at most `max_bytes` of plaintext.
    pub fn new(max_age: Duration, max_messages: u64, max_bytes: u64) -> Self {
        ReusePolicy {
            max_age,
            max_messages: max_messages.clamp(1, MAX_MESSAGES_PER_KEY),
            max_bytes,
        }
    }

    /// The longest a key is reused, from its creation.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The most messages one key encrypts.
    pub fn max_messages(&self) -> u64 {
        self.max_messages
    }

    /// The most plaintext bytes one key encrypts.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn allows(&self, age: Duration, messages: u64, bytes: u64, message_len: u64) -> bool {
        age < self.max_age
            && messages < self.max_messages
            && bytes
                .checked_add(message_len)
                .is_some_and(|total| total <= self.max_bytes)
    }
}

/// Counters of a [`CachingKeyService`], for tests, metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Decrypts answered from the cache.
    pub decrypt_hits: u64,
    /// Decrypts that called the key service.
    pub decrypt_misses: u64,
    /// Decrypts that waited for another caller's call for the same blob.
    pub decrypt_coalesced: u64,
    /// Data keys dropped from either cache to stay within `max_entries`.
    pub evictions: u64,
    /// `data_key_for_message` calls answered with a reused key.
    pub reused: u64,
    /// `data_key_for_message` calls that created a key (with reuse on).
    pub created: u64,
    /// `data_key_for_message` calls that waited for another caller's
    /// creation for the same context.
    pub reuse_coalesced: u64,
    /// Data keys in the decrypt cache now.
    pub decrypt_cached: usize,
    /// Reusable data keys held now.
    pub reuse_cached: usize,
}

/// A [`KeyService`] that caches the data keys of another.
///
/// Caching is opt-in: nothing caches unless you wrap a service in this. See
/// the [module documentation](crate::cache) for what is cached, for how
/// long, and the trade-off.
pub struct CachingKeyService<K> {
    inner: K,
    config: CacheConfig,
    decrypt: Mutex<DecryptCache>,
    reuse: Mutex<ReuseCache>,
    counters: Counters,
}

impl<K: KeyService> CachingKeyService<K> {
    /// Wraps `inner`.
    pub fn new(inner: K, config: CacheConfig) -> Self {
        CachingKeyService {
            inner,
            config,
            decrypt: Mutex::new(DecryptCache::default()),
            reuse: Mutex::new(ReuseCache::default()),
            counters: Counters::default(),
        }
    }

    /// The wrapped service.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            decrypt_hits: c.decrypt_hits.load(Ordering::Relaxed),
            decrypt_misses: c.decrypt_misses.load(Ordering::Relaxed),
            decrypt_coalesced: c.decrypt_coalesced.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            reused: c.reused.load(Ordering::Relaxed),
            created: c.created.load(Ordering::Relaxed),
            reuse_coalesced: c.reuse_coalesced.load(Ordering::Relaxed),
            decrypt_cached: lock(&self.decrypt).lru.len(),
            reuse_cached: lock(&self.reuse).ready_count(),
        }
    }

    /// Drops every cached data key now. Calls in flight finish normally
    /// but their keys are not cached.
    pub fn clear(&self) {
        lock(&self.decrypt).clear();
        lock(&self.reuse).clear();
    }

    /// Puts a key the service just returned into the decrypt cache.
    fn prime(&self, pair: &DataKeyPair) {
        if !self.config.prime_decrypt_cache || self.config.max_entries == 0 {
            return;
        }
        let mut cache = lock(&self.decrypt);
        if cache.slots.contains_key(&pair.encrypted_keys[..]) {
            return;
        }
        let evicted = cache.insert_ready(
            Arc::from(&pair.encrypted_keys[..]),
            Arc::new(pair.data_key.duplicate()),
            Instant::now(),
            self.config.max_entries,
        );
        self.counters
            .evictions
            .fetch_add(evicted, Ordering::Relaxed);
    }

    /// `data_key_for_message` with reuse on.
    async fn reuse_or_create(
        &self,
        policy: ReusePolicy,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<DataKeyPair, Error> {
        context.validate()?;
        if message_len > policy.max_bytes {
            // Too large to share a key with anything: a key of its own,
            // leaving the context's reusable key in place.
            self.counters.created.fetch_add(1, Ordering::Relaxed);
            let pair = self.inner.create_data_key(context).await?;
            self.prime(&pair);
            return Ok(pair);
        }
        loop {
            let step = {
                let mut cache = lock(&self.reuse);
                let now = Instant::now();
                cache.sweep(now, policy.max_age);
                let mut exhausted = false;
                let step = match cache.slots.get_mut(context) {
                    Some(ReuseSlot::Ready {
                        pair,
                        created,
                        messages,
                        bytes,
                    }) if policy.allows(
                        now.saturating_duration_since(*created),
                        *messages,
                        *bytes,
                        message_len,
                    ) =>
                    {
                        *messages += 1;
                        *bytes += message_len;
                        exhausted = *messages >= policy.max_messages;
                        Step::Done(pair.duplicate())
                    }
                    Some(ReuseSlot::Pending { outcome, .. }) if is_live(outcome) => {
                        Step::Wait(outcome.clone())
                    }
                    _ => {
                        let (sender, receiver) = watch::channel(None);
                        let flight = cache.next_flight();
                        cache.slots.insert(
                            context.clone(),
                            ReuseSlot::Pending {
                                flight,
                                outcome: receiver,
                            },
                        );
                        Step::Lead((sender, flight))
                    }
                };
                if exhausted {
                    cache.slots.remove(context);
                }
                step
            };
            match step {
                Step::Done(pair) => {
                    self.counters.reused.fetch_add(1, Ordering::Relaxed);
                    return Ok(pair);
                }
                Step::Wait(mut outcome) => {
                    self.counters
                        .reuse_coalesced
                        .fetch_add(1, Ordering::Relaxed);
                    match wait(&mut outcome).await {
                        // The key is in the cache now (or already used up):
                        // look again.
                        Some(Ok(())) | None => continue,
                        Some(Err(error)) => return Err(error.to_error()),
                    }
                }
                Step::Lead((sender, flight)) => {
                    self.counters.created.fetch_add(1, Ordering::Relaxed);
                    let guard = OnDrop::new(|| lock(&self.reuse).remove_pending(context, flight));
                    let result = self.inner.create_data_key(context).await;
                    guard.disarm();
                    let pair = match result {
                        Ok(pair) => pair,
                        Err(error) => {
                            lock(&self.reuse).remove_pending(context, flight);
                            sender.send_replace(Some(Err(SharedError::of(&error))));
                            return Err(error);
                        }
                    };
                    self.prime(&pair);
                    {
                        let mut cache = lock(&self.reuse);
                        let keep = self.config.max_entries > 0
                            && policy.max_messages > 1
                            && !policy.max_age.is_zero();
                        if cache.is_pending(context, flight) {
                            if keep {
                                cache.slots.insert(
                                    context.clone(),
                                    ReuseSlot::Ready {
                                        pair: Box::new(pair.duplicate()),
                                        created: Instant::now(),
                                        messages: 1,
                                        bytes: message_len,
                                    },
                                );
                                let evicted = cache.evict(self.config.max_entries);
                                self.counters
                                    .evictions
                                    .fetch_add(evicted, Ordering::Relaxed);
                            } else {
                                cache.slots.remove(context);
                            }
                        }
                    }
                    sender.send_replace(Some(Ok(())));
                    return Ok(pair);
                }
            }
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for CachingKeyService<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingKeyService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("decrypt_cached", &lock(&self.decrypt).lru.len())
            .field("reuse_cached", &lock(&self.reuse).ready_count())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<K: KeyService> KeyService for CachingKeyService<K> {
    /// Always calls the wrapped service (a fresh key is never shared), then
    /// primes the decrypt cache.
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        let pair = self.inner.create_data_key(context).await?;
        self.prime(&pair);
        Ok(pair)
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        loop {
            let step = {
                let mut cache = lock(&self.decrypt);
                let now = Instant::now();
                cache.sweep(now, self.config.ttl);
                match cache.lookup(encrypted_keys, now, self.config.ttl) {
                    Lookup::Hit(key) => Step::Done(key.duplicate()),
                    Lookup::Pending(outcome) => Step::Wait(outcome),
                    Lookup::Miss => {
                        cache.remove(encrypted_keys);
                        let (sender, receiver) = watch::channel(None);
                        let flight = cache.next_flight();
                        let key: Arc<[u8]> = Arc::from(encrypted_keys);
                        cache.slots.insert(
                            key.clone(),
                            DecryptSlot::Pending {
                                flight,
                                outcome: receiver,
                            },
                        );
                        Step::Lead((sender, key, flight))
                    }
                }
            };
            match step {
                Step::Done(key) => {
                    self.counters.decrypt_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(key);
                }
                Step::Wait(mut outcome) => {
                    self.counters
                        .decrypt_coalesced
                        .fetch_add(1, Ordering::Relaxed);
                    match wait(&mut outcome).await {
                        Some(Ok(key)) => return Ok(key.duplicate()),
                        Some(Err(error)) => return Err(error.to_error()),
                        // The caller we waited for was cancelled: try again.
                        None => continue,
                    }
                }
                Step::Lead((sender, key, flight)) => {
                    self.counters.decrypt_misses.fetch_add(1, Ordering::Relaxed);
                    let guard = OnDrop::new(|| lock(&self.decrypt).remove_pending(&key, flight));
                    let result = self.inner.decrypt_data_key(encrypted_keys).await;
                    guard.disarm();
                    match result {
                        Ok(data_key) => {
                            let shared = Arc::new(data_key.duplicate());
                            {
                                let mut cache = lock(&self.decrypt);
                                if cache.is_pending(&key, flight) {
                                    if self.config.max_entries > 0 && !self.config.ttl.is_zero() {
                                        let evicted = cache.insert_ready(
                                            key,
                                            shared.clone(),
                                            Instant::now(),
                                            self.config.max_entries,
                                        );
                                        self.counters
                                            .evictions
                                            .fetch_add(evicted, Ordering::Relaxed);
                                    } else {
                                        cache.remove(&key);
                                    }
                                }
                            }
                            sender.send_replace(Some(Ok(shared)));
                            return Ok(data_key);
                        }
                        Err(error) => {
                            lock(&self.decrypt).remove_pending(&key, flight);
                            sender.send_replace(Some(Err(SharedError::of(&error))));
                            return Err(error);
                        }
                    }
                }
            }
        }
    }

    /// Calls the wrapped service, then primes the decrypt cache with the
    /// new blob (the data key is the same).
    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        let pair = self.inner.rekey(encrypted_keys, context).await?;
        self.prime(&pair);
        Ok(pair)
    }

    /// With a [`ReusePolicy`], a cached key for exactly this context while
    /// within its limits, else a new one; without, the wrapped service's
    /// answer.
    async fn data_key_for_message(
        &self,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<DataKeyPair, Error> {
        match self.config.reuse {
            Some(policy) => self.reuse_or_create(policy, context, message_len).await,
            None => {
                let pair = self
                    .inner
                    .data_key_for_message(context, message_len)
                    .await?;
                self.prime(&pair);
                Ok(pair)
            }
        }
    }
}

// ---- Internals ----

/// What a caller does after looking in a cache.
enum Step<T, W, L> {
    /// Answered from the cache.
    Done(T),
    /// Another caller is fetching: wait for its outcome.
    Wait(W),
    /// Fetch, then tell the waiters.
    Lead(L),
}

/// The outcome of one fetch: `None` until it finishes.
type Outcome<T> = Option<Result<T, SharedError>>;

/// Waits for a fetch; `None` if the fetching caller was cancelled.
async fn wait<T: Clone>(outcome: &mut watch::Receiver<Outcome<T>>) -> Outcome<T> {
    match outcome.wait_for(Option::is_some).await {
        Ok(value) => value.clone(),
        Err(_) => None,
    }
}

/// Whether the fetch behind a pending slot can still finish.
fn is_live<T>(outcome: &watch::Receiver<T>) -> bool {
    outcome.has_changed().is_ok()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error handed to every caller that waited on a failed fetch. [`Error`]
/// is not `Clone` (its source may not be), so this keeps what callers act
/// on: kind, message, status, request id, retryability.
#[derive(Clone)]
struct SharedError {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    request_id: Option<String>,
    retryable: bool,
}

impl SharedError {
    fn of(error: &Error) -> Self {
        SharedError {
            kind: error.kind(),
            message: error.message().to_owned(),
            status: error.status(),
            request_id: error.request_id().map(str::to_owned),
            retryable: error.is_retryable(),
        }
    }

    fn to_error(&self) -> Error {
        let mut error = Error::new(self.kind, self.message.clone());
        if let Some(status) = self.status {
            error = error.with_status(status);
        }
        if let Some(request_id) = &self.request_id {
            error = error.with_request_id(request_id.clone());
        }
        error.with_retryable(self.retryable)
    }
}

/// Runs a closure on drop unless disarmed: cleans up after a fetching
/// caller whose future was dropped mid-call.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    fn new(f: F) -> Self {
        OnDrop(Some(f))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[derive(Default)]
struct Counters {
    decrypt_hits: AtomicU64,
    decrypt_misses: AtomicU64,
    decrypt_coalesced: AtomicU64,
    evictions: AtomicU64,
    reused: AtomicU64,
    created: AtomicU64,
    reuse_coalesced: AtomicU64,
}

/// How often expired entries are swept out: an eighth of the lifetime, at
/// least a second.
fn sweep_interval(lifetime: Duration) -> Duration {
    (lifetime / 8).max(Duration::from_secs(1))
}

#[derive(Default)]
struct DecryptCache {
    slots: HashMap<Arc<[u8]>, DecryptSlot>,
    /// Ready entries by last use, oldest first.
    lru: BTreeMap<u64, Arc<[u8]>>,
    counter: u64,
    next_sweep: Option<Instant>,
}

/// What the decrypt cache holds for a blob.
enum Lookup {
    /// A fresh key, now marked as used.
    Hit(Arc<DataKey>),
    /// Another caller is fetching it.
    Pending(watch::Receiver<Outcome<Arc<DataKey>>>),
    /// Nothing usable: fetch it.
    Miss,
}

enum DecryptSlot {
    Ready {
        key: Arc<DataKey>,
        inserted: Instant,
        last_used: u64,
    },
    Pending {
        flight: u64,
        outcome: watch::Receiver<Outcome<Arc<DataKey>>>,
    },
}

impl DecryptCache {
    fn next_flight(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Looks `blob` up with one hash of it (blobs are some 200 bytes):
    /// a fresh ready entry is marked used and its key returned.
    fn lookup(&mut self, blob: &[u8], now: Instant, ttl: Duration) -> Lookup {
        self.counter += 1;
        let tick = self.counter;
        match self.slots.get_mut(blob) {
            Some(DecryptSlot::Ready {
                key,
                inserted,
                last_used,
            }) if now.saturating_duration_since(*inserted) < ttl => {
                let previous = std::mem::replace(last_used, tick);
                if let Some(name) = self.lru.remove(&previous) {
                    self.lru.insert(tick, name);
                }
                Lookup::Hit(key.clone())
            }
            Some(DecryptSlot::Pending { outcome, .. }) if is_live(outcome) => {
                Lookup::Pending(outcome.clone())
            }
            _ => Lookup::Miss,
        }
    }

    /// Stores a ready key and evicts down to `max_entries`; returns how
    /// many were evicted.
    fn insert_ready(
        &mut self,
        blob: Arc<[u8]>,
        key: Arc<DataKey>,
        now: Instant,
        max_entries: usize,
    ) -> u64 {
        self.remove(&blob);
        let tick = self.next_flight();
        self.lru.insert(tick, blob.clone());
        self.slots.insert(
            blob,
            DecryptSlot::Ready {
                key,
                inserted: now,
                last_used: tick,
            },
        );
        let mut evicted = 0;
        while self.lru.len() > max_entries {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            self.slots.remove(&oldest);
            evicted += 1;
        }
        evicted
    }

    fn remove(&mut self, blob: &[u8]) {
        if let Some(DecryptSlot::Ready { last_used, .. }) = self.slots.remove(blob) {
            self.lru.remove(&last_used);
        }
    }

    fn is_pending(&self, blob: &[u8], flight: u64) -> bool {
        matches!(self.slots.get(blob), Some(DecryptSlot::Pending { flight: f, .. }) if *f == flight)
    }

    fn remove_pending(&mut self, blob: &[u8], flight: u64) {
        if self.is_pending(blob, flight) {
            self.slots.remove(blob);
        }
    }

    fn sweep(&mut self, now: Instant, ttl: Duration) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        let expired: Vec<u64> = self
            .slots
            .values()
            .filter_map(|slot| match slot {
                DecryptSlot::Ready {
                    inserted,
                    last_used,
                    ..
                } if now.saturating_duration_since(*inserted) >= ttl => Some(*last_used),
                _ => None,
            })
            .collect();
        for tick in expired {
            if let Some(blob) = self.lru.remove(&tick) {
                self.slots.remove(&blob);
            }
        }
        self.next_sweep = now.checked_add(sweep_interval(ttl));
    }

    fn clear(&mut self) {
        self.slots
            .retain(|_, slot| matches!(slot, DecryptSlot::Pending { .. }));
        self.lru.clear();
    }
}

#[derive(Default)]
struct ReuseCache {
    slots: HashMap<KeyContext, ReuseSlot>,
    counter: u64,
    next_sweep: Option<Instant>,
}

enum ReuseSlot {
    Ready {
        // Boxed: a data key carries ring's expanded key schedule.
        pair: Box<DataKeyPair>,
        created: Instant,
        messages: u64,
        bytes: u64,
    },
    Pending {
        flight: u64,
        outcome: watch::Receiver<Outcome<()>>,
    },
}

impl ReuseCache {
    fn next_flight(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn ready_count(&self) -> usize {
        self.slots
            .values()
            .filter(|slot| matches!(slot, ReuseSlot::Ready { .. }))
            .count()
    }

    fn is_pending(&self, context: &KeyContext, flight: u64) -> bool {
        matches!(self.slots.get(context), Some(ReuseSlot::Pending { flight: f, .. }) if *f == flight)
    }

    fn remove_pending(&mut self, context: &KeyContext, flight: u64) {
        if self.is_pending(context, flight) {
            self.slots.remove(context);
        }
    }

    /// Drops the oldest ready keys down to `max_entries`.
    fn evict(&mut self, max_entries: usize) -> u64 {
        let mut evicted = 0;
        while self.ready_count() > max_entries {
            let oldest = self
                .slots
                .iter()
                .filter_map(|(context, slot)| match slot {
                    ReuseSlot::Ready { created, .. } => Some((*created, context)),
                    ReuseSlot::Pending { .. } => None,
                })
                .min_by_key(|(created, _)| *created)
                .map(|(_, context)| context.clone());
            let Some(oldest) = oldest else { break };
            self.slots.remove(&oldest);
            evicted += 1;
        }
        evicted
    }

    fn sweep(&mut self, now: Instant, max_age: Duration) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        self.slots.retain(|_, slot| match slot {
            ReuseSlot::Ready { created, .. } => now.saturating_duration_since(*created) < max_age,
            ReuseSlot::Pending { .. } => true,
        });
        self.next_sweep = now.checked_add(sweep_interval(max_age));
    }

    fn clear(&mut self) {
        self.slots
            .retain(|_, slot| matches!(slot, ReuseSlot::Pending { .. }));
    }
}
