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
//!     .with_reuse(
//!         ReusePolicy::default()
//!             .with_max_age(Duration::from_secs(60))
//!             .with_max_messages(10_000)
//!             .with_max_bytes(1 << 30),
//!     );
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

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use vault_crypto::DataKey;

use crate::{DataKeyPair, Error, KeyContext, KeyService};

// `config`: the public settings. `flight`: the single flight both caches
// share. `decrypt` and `reuse`: each cache's store and its path.
mod config;
mod decrypt;
mod flight;
mod reuse;

pub use config::{CacheConfig, ReusePolicy, MAX_MESSAGES_PER_KEY};

use decrypt::{DecryptCache, DecryptFlight};
use reuse::{ReuseCache, ReuseFlight};

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
    decrypt: DecryptFlight,
    reuse: ReuseFlight,
}

impl<K: KeyService> CachingKeyService<K> {
    /// Wraps `inner`.
    pub fn new(inner: K, config: CacheConfig) -> Self {
        CachingKeyService {
            inner,
            config,
            decrypt: DecryptFlight::new(DecryptCache::default()),
            reuse: ReuseFlight::new(ReuseCache::default()),
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
        let (decrypt_cached, decrypt_evictions) = self
            .decrypt
            .with_store(|cache| (cache.len(), cache.evictions()));
        let (reuse_cached, reuse_evictions) =
            self.reuse.with_store(|keys| (keys.len(), keys.evictions()));
        let (decrypt, reuse) = (self.decrypt.counters(), self.reuse.counters());
        CacheStats {
            decrypt_hits: read(&decrypt.ready),
            decrypt_misses: read(&decrypt.led),
            decrypt_coalesced: read(&decrypt.joined),
            evictions: decrypt_evictions + reuse_evictions,
            reused: read(&reuse.ready),
            created: read(&reuse.led),
            reuse_coalesced: read(&reuse.joined),
            decrypt_cached,
            reuse_cached,
        }
    }

    /// Drops every cached data key now. Calls in flight finish normally
    /// (their waiters get their keys) but their keys are not cached.
    pub fn clear(&self) {
        self.decrypt.clear(DecryptCache::clear);
        self.reuse.clear(ReuseCache::clear);
    }
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// How often expired entries are swept out: an eighth of the lifetime, at
/// least a second.
fn sweep_interval(lifetime: Duration) -> Duration {
    (lifetime / 8).max(Duration::from_secs(1))
}

impl<K: fmt::Debug> fmt::Debug for CachingKeyService<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingKeyService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field(
                "decrypt_cached",
                &self.decrypt.with_store(|cache| cache.len()),
            )
            .field("reuse_cached", &self.reuse.with_store(|keys| keys.len()))
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

    /// From the cache while fresh; else one call to the wrapped service,
    /// shared by everyone asking for the same blob meanwhile.
    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.decrypt_cached(encrypted_keys).await
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
        match self.config.reuse() {
            Some(policy) => self.reuse_or_create(*policy, context, message_len).await,
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
