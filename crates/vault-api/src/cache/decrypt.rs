//! The decrypt cache: unwrapped data keys by their `encrypted_keys` blob.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vault_crypto::DataKey;

use super::flight::{Leader, SingleFlight};
use super::{sweep_interval, CachingKeyService};
use crate::{DataKeyPair, Error, KeyService};

/// The decrypt cache with its calls in flight, by blob.
pub(super) type DecryptFlight = SingleFlight<DecryptCache, [u8], Arc<DataKey>>;

/// Data keys by blob, each kept for the TTL from when it was fetched,
/// least recently used evicted first.
#[derive(Default)]
pub(super) struct DecryptCache {
    entries: HashMap<Arc<[u8]>, Entry>,
    /// Blobs by last use, oldest first.
    lru: BTreeMap<u64, Arc<[u8]>>,
    /// Counts uses, to order `lru`.
    tick: u64,
    next_sweep: Option<Instant>,
    evictions: u64,
}

struct Entry {
    key: Arc<DataKey>,
    inserted: Instant,
    last_used: u64,
}

impl DecryptCache {
    /// The key for `blob` if it was fetched less than `ttl` ago, now marked
    /// as used. One hash of the blob (some 200 bytes) on a hit.
    pub(super) fn fresh(
        &mut self,
        blob: &[u8],
        now: Instant,
        ttl: Duration,
    ) -> Option<Arc<DataKey>> {
        self.sweep(now, ttl);
        self.tick += 1;
        let entry = self.entries.get_mut(blob)?;
        if now.saturating_duration_since(entry.inserted) >= ttl {
            self.remove(blob);
            return None;
        }
        let previous = std::mem::replace(&mut entry.last_used, self.tick);
        if let Some(blob) = self.lru.remove(&previous) {
            self.lru.insert(self.tick, blob);
        }
        Some(entry.key.clone())
    }

    pub(super) fn contains(&self, blob: &[u8]) -> bool {
        self.entries.contains_key(blob)
    }

    /// Stores a key and evicts the least recently used down to
    /// `max_entries`.
    pub(super) fn insert(
        &mut self,
        blob: Arc<[u8]>,
        key: Arc<DataKey>,
        now: Instant,
        max_entries: usize,
    ) {
        self.remove(&blob);
        self.tick += 1;
        self.lru.insert(self.tick, blob.clone());
        let entry = Entry {
            key,
            inserted: now,
            last_used: self.tick,
        };
        self.entries.insert(blob, entry);
        while self.lru.len() > max_entries {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.evictions += 1;
        }
    }

    fn remove(&mut self, blob: &[u8]) {
        if let Some(entry) = self.entries.remove(blob) {
            self.lru.remove(&entry.last_used);
        }
    }

    /// Drops expired keys, at most once every [`sweep_interval`].
    fn sweep(&mut self, now: Instant, ttl: Duration) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        let lru = &mut self.lru;
        self.entries.retain(|_, entry| {
            let fresh = now.saturating_duration_since(entry.inserted) < ttl;
            if !fresh {
                lru.remove(&entry.last_used);
            }
            fresh
        });
        self.next_sweep = now.checked_add(sweep_interval(ttl));
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keys dropped so far to stay within `max_entries`.
    pub(super) fn evictions(&self) -> u64 {
        self.evictions
    }
}

impl<K: KeyService> CachingKeyService<K> {
    /// `decrypt_data_key` through the cache, one call per blob at a time.
    pub(super) async fn decrypt_cached(&self, blob: &[u8]) -> Result<DataKey, Error> {
        let ttl = self.config.ttl();
        let key = self
            .decrypt
            .get(
                blob,
                |cache| cache.fresh(blob, Instant::now(), ttl),
                Some,
                |leader| self.fetch_decrypted(leader, blob),
            )
            .await?;
        Ok(key.duplicate())
    }

    /// Makes the decrypt call for `blob`, for its waiters too, and caches
    /// the key unless caching is off.
    async fn fetch_decrypted(
        &self,
        leader: Leader<'_, DecryptCache, [u8], Arc<DataKey>>,
        blob: &[u8],
    ) -> Result<Arc<DataKey>, Error> {
        let result = self.inner.decrypt_data_key(blob).await.map(Arc::new);
        let (max_entries, ttl) = (self.config.max_entries(), self.config.ttl());
        leader.finish(result, |cache, key| {
            if max_entries > 0 && !ttl.is_zero() {
                cache.insert(Arc::from(blob), key.clone(), Instant::now(), max_entries);
            }
        })
    }

    /// Puts a key the service just returned into the decrypt cache, so
    /// decrypting what was just encrypted costs no call.
    pub(super) fn prime(&self, pair: &DataKeyPair) {
        let max_entries = self.config.max_entries();
        if !self.config.prime_decrypt_cache() || max_entries == 0 {
            return;
        }
        self.decrypt.with_store(|cache| {
            if !cache.contains(&pair.encrypted_keys) {
                let key = Arc::new(pair.data_key.duplicate());
                cache.insert(
                    Arc::from(&pair.encrypted_keys[..]),
                    key,
                    Instant::now(),
                    max_entries,
                );
            }
        });
    }
}
