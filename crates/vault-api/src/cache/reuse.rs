//! Data key reuse: one data key for several messages under one context.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::flight::{bump, Leader, SingleFlight};
use super::{sweep_interval, CachingKeyService, ReusePolicy};
use crate::{ContextError, DataKeyPair, Error, KeyContext, KeyService};

/// The reusable keys with their calls in flight, by context.
pub(super) type ReuseFlight = SingleFlight<ReuseCache, KeyContext, Arc<DataKeyPair>>;

/// Data keys being reused, by exact context, with what each has encrypted.
#[derive(Default)]
pub(super) struct ReuseCache {
    keys: HashMap<KeyContext, Reusable>,
    next_sweep: Option<Instant>,
    evictions: u64,
}

struct Reusable {
    pair: Arc<DataKeyPair>,
    created: Instant,
    messages: u64,
    bytes: u64,
}

impl ReuseCache {
    /// The key for `context`, counted as used for one message of
    /// `message_len` bytes, if `policy` allows it. A key that does not
    /// allow it is dropped (the caller creates its successor), and so is a
    /// key that has just encrypted its last message.
    pub(super) fn take(
        &mut self,
        context: &KeyContext,
        now: Instant,
        policy: &ReusePolicy,
        message_len: u64,
    ) -> Option<Arc<DataKeyPair>> {
        self.sweep(now, policy.max_age());
        let key = self.keys.get_mut(context)?;
        let age = now.saturating_duration_since(key.created);
        if !policy.allows(age, key.messages, key.bytes, message_len) {
            self.keys.remove(context);
            return None;
        }
        key.messages += 1;
        key.bytes += message_len;
        let pair = key.pair.clone();
        if key.messages >= policy.max_messages() {
            self.keys.remove(context);
        }
        Some(pair)
    }

    /// Stores a key that has just encrypted its first message, then drops
    /// the oldest keys down to `max_entries`.
    fn insert(
        &mut self,
        context: KeyContext,
        pair: Arc<DataKeyPair>,
        now: Instant,
        message_len: u64,
        max_entries: usize,
    ) {
        let key = Reusable {
            pair,
            created: now,
            messages: 1,
            bytes: message_len,
        };
        self.keys.insert(context, key);
        while self.keys.len() > max_entries {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, key)| key.created)
                .map(|(context, _)| context.clone());
            let Some(oldest) = oldest else { break };
            self.keys.remove(&oldest);
            self.evictions += 1;
        }
    }

    /// Drops keys older than `max_age`, at most once every
    /// [`sweep_interval`].
    fn sweep(&mut self, now: Instant, max_age: Duration) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        self.keys
            .retain(|_, key| now.saturating_duration_since(key.created) < max_age);
        self.next_sweep = now.checked_add(sweep_interval(max_age));
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Keys dropped so far to stay within `max_entries`.
    pub(super) fn evictions(&self) -> u64 {
        self.evictions
    }
}

impl<K: KeyService> CachingKeyService<K> {
    /// `data_key_for_message` with reuse on.
    pub(super) async fn reuse_or_create(
        &self,
        policy: ReusePolicy,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<DataKeyPair, Error> {
        // Checked here, not left to the wrapped service: a key already in
        // the cache must not be handed out for an empty context either.
        // Every other rule holds for any non-empty `KeyContext`.
        if context.is_empty() {
            return Err(ContextError::Empty.into());
        }
        if message_len > policy.max_bytes() {
            return self.create_unshared(context).await;
        }
        let pair = self
            .reuse
            .get(
                context,
                |keys| keys.take(context, Instant::now(), &policy, message_len),
                // The leader's key is in the cache now (or used up, or not
                // kept): look again, to count this message against it.
                |_| None,
                |leader| self.create_reusable(leader, &policy, context, message_len),
            )
            .await?;
        Ok(pair.duplicate())
    }

    /// A key for a message too large to share one: the context's reusable
    /// key stays in place.
    async fn create_unshared(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        bump(&self.reuse.counters().led);
        let pair = self.inner.create_data_key(context).await?;
        self.prime(&pair);
        Ok(pair)
    }

    /// Creates the key for `context`, for the waiters too, and keeps it
    /// for the next messages if `policy` lets it serve more than one.
    async fn create_reusable(
        &self,
        leader: Leader<'_, ReuseCache, KeyContext, Arc<DataKeyPair>>,
        policy: &ReusePolicy,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<Arc<DataKeyPair>, Error> {
        let result = self.inner.create_data_key(context).await.map(Arc::new);
        if let Ok(pair) = &result {
            self.prime(pair);
        }
        let max_entries = self.config.max_entries();
        leader.finish(result, |keys, pair| {
            if max_entries > 0 && policy.allows_a_second_message() {
                keys.insert(
                    context.clone(),
                    pair.clone(),
                    Instant::now(),
                    message_len,
                    max_entries,
                );
            }
        })
    }
}
