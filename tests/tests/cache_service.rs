//! The caching decorator: single flight, TTL, eviction, reuse limits.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vault_api::{
    CacheConfig, CachingKeyService, DataKey, DataKeyPair, Error, ErrorKind, KeyContext, KeyService,
    ReusePolicy, MAX_MESSAGES_PER_KEY,
};
use vault_local::LocalKeyService;

/// A local key service that counts calls, can hold every call until
/// released, and can fail on demand.
#[derive(Debug)]
struct Counting {
    inner: LocalKeyService,
    creates: AtomicUsize,
    decrypts: AtomicUsize,
    rekeys: AtomicUsize,
    /// When set, every call waits for a `notify_one` before answering.
    gate: Option<Notify>,
    fail_next_create: AtomicBool,
}

impl Counting {
    fn new() -> Self {
        Counting {
            inner: LocalKeyService::ephemeral(),
            creates: AtomicUsize::new(0),
            decrypts: AtomicUsize::new(0),
            rekeys: AtomicUsize::new(0),
            gate: None,
            fail_next_create: AtomicBool::new(false),
        }
    }

    fn gated() -> Self {
        Counting {
            gate: Some(Notify::new()),
            ..Counting::new()
        }
    }

    fn release(&self) {
        self.gate.as_ref().unwrap().notify_one();
    }

    async fn pass_gate(&self) {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
    }

    fn creates(&self) -> usize {
        self.creates.load(Ordering::SeqCst)
    }

    fn decrypts(&self) -> usize {
        self.decrypts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyService for Counting {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.pass_gate().await;
        if self.fail_next_create.swap(false, Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Api, "upstream is down").with_status(503));
        }
        self.inner.create_data_key(context).await
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        self.pass_gate().await;
        self.inner.decrypt_data_key(encrypted_keys).await
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        self.rekeys.fetch_add(1, Ordering::SeqCst);
        self.pass_gate().await;
        self.inner.rekey(encrypted_keys, context).await
    }
}

fn context(org: &str) -> KeyContext {
    KeyContext::new().with("organization_id", org).unwrap()
}

fn no_prime() -> CacheConfig {
    CacheConfig::default().with_prime_decrypt_cache(false)
}

/// Yields until `condition` holds. A failsafe timeout turns a bug into a
/// failure instead of a hang; it is not used to order anything.
async fn until(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition never held");
}

type Cache = Arc<CachingKeyService<Counting>>;

/// A gated cache that does not prime, with a key made behind its back (so
/// decrypting it calls upstream) and that key's blob.
async fn gated_with_key() -> (Cache, DataKeyPair, Arc<[u8]>) {
    let cache = Arc::new(CachingKeyService::new(Counting::gated(), no_prime()));
    let pair = cache
        .inner()
        .inner
        .create_data_key(&context("o"))
        .await
        .unwrap();
    let blob = pair.encrypted_keys.clone().into();
    (cache, pair, blob)
}

/// Whether `led` decrypts are calling upstream and `joined` wait for them.
fn decrypting(cache: &Cache, led: u64, joined: u64) -> bool {
    let stats = cache.stats();
    stats.decrypt_misses == led && stats.decrypt_coalesced == joined
}

/// `count` concurrent decrypts of `blob`.
fn spawn_decrypts(
    cache: &Cache,
    blob: &Arc<[u8]>,
    count: usize,
) -> Vec<JoinHandle<Result<DataKey, Error>>> {
    (0..count)
        .map(|_| {
            let (cache, blob) = (cache.clone(), blob.clone());
            tokio::spawn(async move { cache.decrypt_data_key(&blob).await })
        })
        .collect()
}

/// `count` concurrent `data_key_for_message` calls for context `o`.
fn spawn_reuses(cache: &Cache, count: usize) -> Vec<JoinHandle<Result<DataKeyPair, Error>>> {
    (0..count)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.data_key_for_message(&context("o"), 10).await })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decrypts_of_one_blob_make_one_upstream_call() {
    let (cache, pair, blob) = gated_with_key().await;

    let tasks = spawn_decrypts(&cache, &blob, 32);
    // Every caller is in: one is calling upstream, 31 wait for it.
    until(|| decrypting(&cache, 1, 31)).await;
    assert_eq!(cache.inner().decrypts(), 1);
    cache.inner().release();
    for task in tasks {
        let key = task.await.unwrap().unwrap();
        assert_eq!(key, pair.data_key);
    }
    assert_eq!(cache.inner().decrypts(), 1);

    // Later calls are hits.
    assert_eq!(cache.decrypt_data_key(&blob).await.unwrap(), pair.data_key);
    assert_eq!(cache.inner().decrypts(), 1);
    let stats = cache.stats();
    assert_eq!(stats.decrypt_hits, 1);
    assert_eq!(stats.decrypt_cached, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_call_fails_every_waiter_and_is_not_cached() {
    let (cache, pair, _) = gated_with_key().await;
    let mut bad = pair.encrypted_keys.clone();
    *bad.last_mut().unwrap() ^= 1;
    let bad: Arc<[u8]> = bad.into();

    let tasks = spawn_decrypts(&cache, &bad, 32);
    until(|| decrypting(&cache, 1, 31)).await;
    cache.inner().release();
    let mut messages = Vec::new();
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKeys);
        messages.push(error.to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(cache.inner().decrypts(), 1);

    // Not cached: the next call goes upstream again.
    cache.inner().release();
    assert!(cache.decrypt_data_key(&bad).await.is_err());
    assert_eq!(cache.inner().decrypts(), 2);
    assert_eq!(cache.stats().decrypt_cached, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_caller_hands_the_call_to_a_waiter() {
    let (cache, pair, blob) = gated_with_key().await;

    let [leader] = spawn_decrypts(&cache, &blob, 1).try_into().unwrap();
    until(|| cache.stats().decrypt_misses == 1).await;
    let [waiter] = spawn_decrypts(&cache, &blob, 1).try_into().unwrap();
    until(|| cache.stats().decrypt_coalesced == 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // The waiter takes over and calls upstream itself.
    until(|| cache.stats().decrypt_misses == 2).await;
    cache.inner().release();
    assert_eq!(waiter.await.unwrap().unwrap(), pair.data_key);
    assert_eq!(cache.inner().decrypts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clear_during_a_call_answers_its_waiters_but_caches_nothing() {
    let (cache, pair, blob) = gated_with_key().await;

    let tasks = spawn_decrypts(&cache, &blob, 2);
    until(|| decrypting(&cache, 1, 1)).await;
    cache.clear();
    cache.inner().release();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), pair.data_key);
    }
    assert_eq!(cache.inner().decrypts(), 1);
    assert_eq!(cache.stats().decrypt_cached, 0);

    // The next caller calls again, and that key is cached.
    cache.inner().release();
    assert_eq!(cache.decrypt_data_key(&blob).await.unwrap(), pair.data_key);
    assert_eq!(cache.inner().decrypts(), 2);
    assert_eq!(cache.stats().decrypt_cached, 1);
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_the_ttl() {
    let ttl = Duration::from_secs(300);
    let cache = CachingKeyService::new(Counting::new(), no_prime().with_ttl(ttl));
    let pair = cache
        .inner()
        .inner
        .create_data_key(&context("o"))
        .await
        .unwrap();
    let blob = &pair.encrypted_keys;

    cache.decrypt_data_key(blob).await.unwrap();
    cache.decrypt_data_key(blob).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 1);
    tokio::time::advance(ttl - Duration::from_secs(1)).await;
    cache.decrypt_data_key(blob).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 1, "hits do not extend the TTL");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cache.decrypt_data_key(blob).await.unwrap(), pair.data_key);
    assert_eq!(cache.inner().decrypts(), 2);

    // An expired key is swept out at the next use of the cache, even for
    // another blob.
    let other = cache
        .inner()
        .inner
        .create_data_key(&context("p"))
        .await
        .unwrap();
    assert_eq!(cache.stats().decrypt_cached, 1);
    tokio::time::advance(ttl * 2).await;
    cache.decrypt_data_key(&other.encrypted_keys).await.unwrap();
    assert_eq!(cache.stats().decrypt_cached, 1);
}

#[tokio::test]
async fn capacity_evicts_the_least_recently_used() {
    let cache = CachingKeyService::new(Counting::new(), no_prime().with_max_entries(2));
    let local = &cache.inner().inner;
    let a = local.create_data_key(&context("a")).await.unwrap();
    let b = local.create_data_key(&context("b")).await.unwrap();
    let c = local.create_data_key(&context("c")).await.unwrap();

    cache.decrypt_data_key(&a.encrypted_keys).await.unwrap();
    cache.decrypt_data_key(&b.encrypted_keys).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 2);
    cache.decrypt_data_key(&a.encrypted_keys).await.unwrap(); // a is now newer than b
    assert_eq!(cache.inner().decrypts(), 2);
    cache.decrypt_data_key(&c.encrypted_keys).await.unwrap(); // evicts b
    assert_eq!(cache.inner().decrypts(), 3);
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(cache.stats().decrypt_cached, 2);
    cache.decrypt_data_key(&a.encrypted_keys).await.unwrap();
    cache.decrypt_data_key(&c.encrypted_keys).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 3);
    assert_eq!(
        cache.decrypt_data_key(&b.encrypted_keys).await.unwrap(),
        b.data_key
    );
    assert_eq!(cache.inner().decrypts(), 4);

    // Zero entries: nothing is kept.
    let none = CachingKeyService::new(Counting::new(), CacheConfig::default().with_max_entries(0));
    let pair = none.create_data_key(&context("a")).await.unwrap();
    none.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    none.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    assert_eq!(none.inner().decrypts(), 2);
    assert_eq!(none.stats().decrypt_cached, 0);
}

#[tokio::test]
async fn created_and_rekeyed_keys_prime_the_decrypt_cache() {
    let cache = CachingKeyService::new(Counting::new(), CacheConfig::default());
    let first = cache.create_data_key(&context("o")).await.unwrap();
    let second = cache.create_data_key(&context("o")).await.unwrap();
    assert_eq!(
        cache.inner().creates(),
        2,
        "create_data_key is never cached"
    );
    assert_ne!(first.id(), second.id());
    assert_eq!(
        cache.decrypt_data_key(&first.encrypted_keys).await.unwrap(),
        first.data_key
    );
    assert_eq!(cache.inner().decrypts(), 0);

    let rekeyed = cache
        .rekey(&first.encrypted_keys, &context("p"))
        .await
        .unwrap();
    assert_eq!(cache.inner().rekeys.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache
            .decrypt_data_key(&rekeyed.encrypted_keys)
            .await
            .unwrap(),
        first.data_key
    );
    assert_eq!(cache.inner().decrypts(), 0);

    // Without priming, decrypt goes upstream.
    let cache = CachingKeyService::new(Counting::new(), no_prime());
    let pair = cache.create_data_key(&context("o")).await.unwrap();
    cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 1);

    // clear() drops everything.
    cache.clear();
    assert_eq!(cache.stats().decrypt_cached, 0);
    cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 2);
}

#[tokio::test]
async fn no_reuse_unless_configured() {
    let cache = CachingKeyService::new(Counting::new(), CacheConfig::default());
    let a = cache.data_key_for_message(&context("o"), 10).await.unwrap();
    let b = cache.data_key_for_message(&context("o"), 10).await.unwrap();
    assert_ne!(a.id(), b.id());
    assert_eq!(cache.inner().creates(), 2);
    assert!(CacheConfig::default().reuse().is_none());
}

fn reuse(max_age: Duration, max_messages: u64, max_bytes: u64) -> CacheConfig {
    CacheConfig::default().with_reuse(
        ReusePolicy::default()
            .with_max_age(max_age)
            .with_max_messages(max_messages)
            .with_max_bytes(max_bytes),
    )
}

/// A gated cache that reuses keys for up to 1,000 messages.
fn gated_reuse() -> Cache {
    let config = reuse(Duration::from_secs(3600), 1000, u64::MAX);
    Arc::new(CachingKeyService::new(Counting::gated(), config))
}

#[tokio::test]
async fn reuse_respects_max_messages() {
    let cache = CachingKeyService::new(
        Counting::new(),
        reuse(Duration::from_secs(3600), 3, u64::MAX),
    );
    let mut ids = Vec::new();
    for _ in 0..7 {
        let pair = cache.data_key_for_message(&context("o"), 10).await.unwrap();
        assert_eq!(pair.context, context("o"));
        ids.push(pair.id().to_owned());
    }
    assert_eq!(cache.inner().creates(), 3);
    assert!(ids[0] == ids[1] && ids[1] == ids[2]);
    assert!(ids[3] == ids[4] && ids[4] == ids[5]);
    assert!(ids[2] != ids[3] && ids[5] != ids[6]);
    assert_eq!(cache.stats().reused, 4);
    assert_eq!(cache.stats().created, 3);

    // Another context gets its own key.
    let other = cache.data_key_for_message(&context("p"), 10).await.unwrap();
    assert!(!ids.iter().any(|id| id == other.id()));
    // Reused keys decrypt from the primed cache.
    let pair = cache.data_key_for_message(&context("o"), 10).await.unwrap();
    cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    assert_eq!(cache.inner().decrypts(), 0);

    // The message limit is clamped to 2^32, and to at least one.
    let policy = ReusePolicy::default().with_max_messages(u64::MAX);
    assert_eq!(policy.max_messages(), MAX_MESSAGES_PER_KEY);
    assert_eq!(
        ReusePolicy::default().with_max_messages(0).max_messages(),
        1
    );
}

#[tokio::test]
async fn reuse_respects_max_bytes() {
    let cache =
        CachingKeyService::new(Counting::new(), reuse(Duration::from_secs(3600), 1000, 100));
    let o = context("o");
    let a = cache.data_key_for_message(&o, 40).await.unwrap();
    let b = cache.data_key_for_message(&o, 60).await.unwrap(); // 100: fits exactly
    assert_eq!(a.id(), b.id());
    let c = cache.data_key_for_message(&o, 1).await.unwrap(); // 101: new key
    assert_ne!(c.id(), a.id());
    assert_eq!(cache.inner().creates(), 2);
    // A message larger than the limit gets a key of its own, not kept.
    let big = cache.data_key_for_message(&o, 150).await.unwrap();
    assert_eq!(cache.inner().creates(), 3);
    let after = cache.data_key_for_message(&o, 1).await.unwrap();
    assert_eq!(after.id(), c.id());
    assert_ne!(big.id(), c.id());
    assert_eq!(cache.inner().creates(), 3);
    // Sizes near u64::MAX do not overflow.
    let huge = cache.data_key_for_message(&o, u64::MAX).await.unwrap();
    assert_ne!(huge.id(), c.id());
}

#[tokio::test(start_paused = true)]
async fn reuse_respects_max_age() {
    let cache = CachingKeyService::new(
        Counting::new(),
        reuse(Duration::from_secs(60), 1000, u64::MAX),
    );
    let o = context("o");
    let a = cache.data_key_for_message(&o, 1).await.unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    let b = cache.data_key_for_message(&o, 1).await.unwrap();
    assert_eq!(a.id(), b.id());
    tokio::time::advance(Duration::from_secs(1)).await;
    let c = cache.data_key_for_message(&o, 1).await.unwrap();
    assert_ne!(a.id(), c.id());
    assert_eq!(cache.inner().creates(), 2);
    assert_eq!(cache.stats().reuse_cached, 1);
}

#[tokio::test]
async fn reuse_errors_are_not_cached() {
    let cache = CachingKeyService::new(
        Counting::new(),
        reuse(Duration::from_secs(60), 1000, u64::MAX),
    );
    cache.inner().fail_next_create.store(true, Ordering::SeqCst);
    let error = cache
        .data_key_for_message(&context("o"), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Api);
    assert_eq!(error.status(), Some(503));
    assert!(cache.data_key_for_message(&context("o"), 1).await.is_ok());
    assert_eq!(cache.inner().creates(), 2);
    // An invalid context never reaches upstream.
    let error = cache
        .data_key_for_message(&KeyContext::new(), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    assert_eq!(cache.inner().creates(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reuse_makes_one_create_and_shares_failures() {
    let cache = gated_reuse();
    // A failure reaches every waiter.
    cache.inner().fail_next_create.store(true, Ordering::SeqCst);
    let tasks = spawn_reuses(&cache, 32);
    until(|| {
        let stats = cache.stats();
        stats.created == 1 && stats.reuse_coalesced == 31
    })
    .await;
    cache.inner().release();
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Api);
        assert_eq!(error.status(), Some(503));
        assert!(error.is_retryable());
    }
    assert_eq!(cache.inner().creates(), 1);

    // Then a success is shared: one create, one key for all 32.
    let tasks = spawn_reuses(&cache, 32);
    until(|| {
        let stats = cache.stats();
        stats.created == 2 && stats.reuse_coalesced == 62
    })
    .await;
    cache.inner().release();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().id().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(cache.inner().creates(), 2);
    assert_eq!(cache.stats().reused, 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_creator_hands_the_creation_to_a_waiter() {
    let cache = gated_reuse();
    let [leader] = spawn_reuses(&cache, 1).try_into().unwrap();
    until(|| cache.stats().created == 1).await;
    let [waiter] = spawn_reuses(&cache, 1).try_into().unwrap();
    until(|| cache.stats().reuse_coalesced == 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // The waiter takes over and creates the key itself.
    until(|| cache.stats().created == 2).await;
    cache.inner().release();
    let created = waiter.await.unwrap().unwrap();
    assert_eq!(cache.inner().creates(), 2);

    // Its key is kept for the next message.
    let next = cache.data_key_for_message(&context("o"), 10).await.unwrap();
    assert_eq!((next.id(), cache.stats().reused), (created.id(), 1));
    assert_eq!(cache.inner().creates(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clear_during_a_creation_keeps_nothing() {
    let cache = gated_reuse();
    let [task] = spawn_reuses(&cache, 1).try_into().unwrap();
    until(|| cache.stats().created == 1).await;
    cache.clear();
    cache.inner().release();
    let first = task.await.unwrap().unwrap();
    assert_eq!(cache.stats().reuse_cached, 0);

    cache.inner().release();
    let second = cache.data_key_for_message(&context("o"), 10).await.unwrap();
    assert_ne!(first.id(), second.id());
    assert_eq!(cache.inner().creates(), 2);
    assert_eq!(cache.stats().reuse_cached, 1);
}

#[test]
fn reuse_policy_defaults_and_setters() {
    let policy = ReusePolicy::default();
    assert_eq!(policy.max_age(), Duration::from_secs(300));
    assert_eq!(policy.max_messages(), MAX_MESSAGES_PER_KEY);
    assert_eq!(policy.max_bytes(), u64::MAX);
    let policy = policy
        .with_max_age(Duration::from_secs(7))
        .with_max_messages(8)
        .with_max_bytes(9);
    assert_eq!(policy.max_age(), Duration::from_secs(7));
    assert_eq!(policy.max_messages(), 8);
    assert_eq!(policy.max_bytes(), 9);
    let config = CacheConfig::default().with_reuse(policy);
    assert_eq!(config.reuse(), Some(&policy));
}

#[tokio::test]
async fn debug_shows_no_key_material() {
    let cache = CachingKeyService::new(
        Counting::new(),
        reuse(Duration::from_secs(60), 1000, u64::MAX),
    );
    let pair = cache.data_key_for_message(&context("o"), 1).await.unwrap();
    cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    let debug = format!("{cache:?} {cache:#?}");
    let key = pair.data_key.secret_bytes();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.contains(&hex[..16]), "{debug}");
    assert!(
        !debug.contains(&pair.data_key.secret_base64()[..16]),
        "{debug}"
    );
    assert!(
        !debug.contains(&format!("{:?}", &key[..4])[1..10]),
        "{debug}"
    );
    assert!(debug.contains("decrypt_cached: 1"), "{debug}");
    assert!(debug.contains("reuse_cached: 1"), "{debug}");
}

#[tokio::test]
async fn works_as_a_trait_object_over_a_trait_object() {
    let inner: Arc<dyn KeyService> = Arc::new(LocalKeyService::ephemeral());
    let cache: Arc<dyn KeyService> =
        Arc::new(CachingKeyService::new(inner, CacheConfig::default()));
    let pair = cache.create_data_key(&context("o")).await.unwrap();
    assert_eq!(
        cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap(),
        pair.data_key
    );
}
