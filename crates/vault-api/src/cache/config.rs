//! What a [`CachingKeyService`](super::CachingKeyService) caches, and for
//! how long.

use std::time::Duration;

/// Most messages one data key may encrypt with random 96-bit nonces
/// (NIST SP 800-38D): 2^32. [`ReusePolicy`] clamps to it.
pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 32;

/// How a [`CachingKeyService`](super::CachingKeyService) caches.
///
/// ```
/// use std::time::Duration;
/// use vault_api::{CacheConfig, ReusePolicy};
/// let config = CacheConfig::default()
///     .with_max_entries(10_000)
///     .with_ttl(Duration::from_secs(30))
///     .with_reuse(ReusePolicy::default().with_max_messages(1_000));
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

/// Writes, for each plain setting of a config type, its `with_` setter and
/// its getter (named after the field), from the setter's doc comment.
macro_rules! settings {
    ($config:ident { $($(#[doc = $doc:literal])* $setter:ident => $field:ident: $type:ty;)* }) => {
        impl $config {
            $(
                $(#[doc = $doc])*
                pub fn $setter(mut self, $field: $type) -> Self {
                    self.$field = $field;
                    self
                }

                #[doc = concat!("See [`", stringify!($config), "::", stringify!($setter), "`].")]
                pub fn $field(&self) -> $type {
                    self.$field
                }
            )*
        }
    };
}

settings!(CacheConfig {
    /// The most data keys each cache holds (the decrypt cache and, with
    /// reuse, the reusable keys). Zero disables caching but keeps single
    /// flight.
    with_max_entries => max_entries: usize;
    /// How long an unwrapped data key stays in the decrypt cache after it
    /// was fetched. Hits do not extend it.
    with_ttl => ttl: Duration;
    /// Whether keys returned by `create_data_key`, `data_key_for_message`
    /// and `rekey` go into the decrypt cache (default: yes).
    with_prime_decrypt_cache => prime_decrypt_cache: bool;
});

impl CacheConfig {
    /// Reuse data keys for several messages, within `policy`.
    pub fn with_reuse(mut self, policy: ReusePolicy) -> Self {
        self.reuse = Some(policy);
        self
    }

    /// See [`CacheConfig::with_reuse`].
    pub fn reuse(&self) -> Option<&ReusePolicy> {
        self.reuse.as_ref()
    }
}

/// Limits on reusing one data key for several messages under one context.
/// A new key is created as soon as any limit would be passed.
///
/// Start from the default and tighten what your risk calls for:
///
/// ```
/// use std::time::Duration;
/// use vault_api::{ReusePolicy, MAX_MESSAGES_PER_KEY};
/// let policy = ReusePolicy::default()
///     .with_max_age(Duration::from_secs(60))
///     .with_max_messages(10_000)
///     .with_max_bytes(1 << 30);
/// assert_eq!(policy.max_messages(), 10_000);
/// // The message limit stays within what random nonces allow.
/// assert_eq!(policy.with_max_messages(u64::MAX).max_messages(), MAX_MESSAGES_PER_KEY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
}

impl Default for ReusePolicy {
    /// A key is reused for 5 minutes (the decrypt cache's default TTL),
    /// for up to [`MAX_MESSAGES_PER_KEY`] messages, whatever their size.
    fn default() -> Self {
        ReusePolicy {
            max_age: Duration::from_secs(300),
            max_messages: MAX_MESSAGES_PER_KEY,
            max_bytes: u64::MAX,
        }
    }
}

settings!(ReusePolicy {
    /// The longest a key is reused, from its creation.
    with_max_age => max_age: Duration;
    /// The most plaintext bytes one key encrypts, all its messages
    /// together. A message larger than this gets a key of its own.
    with_max_bytes => max_bytes: u64;
});

impl ReusePolicy {
    /// The most messages one key encrypts, clamped to
    /// 1 ..= [`MAX_MESSAGES_PER_KEY`].
    pub fn with_max_messages(mut self, max_messages: u64) -> Self {
        self.max_messages = max_messages.clamp(1, MAX_MESSAGES_PER_KEY);
        self
    }

    /// See [`ReusePolicy::with_max_messages`].
    pub fn max_messages(&self) -> u64 {
        self.max_messages
    }

    /// Whether a key that has encrypted `messages` messages totalling
    /// `bytes`, created `age` ago, may also encrypt one of `message_len`.
    pub(super) fn allows(
        &self,
        age: Duration,
        messages: u64,
        bytes: u64,
        message_len: u64,
    ) -> bool {
        age < self.max_age
            && messages < self.max_messages
            && bytes
                .checked_add(message_len)
                .is_some_and(|total| total <= self.max_bytes)
    }

    /// Whether a new key can serve a second message at all (else it is not
    /// kept).
    pub(super) fn allows_a_second_message(&self) -> bool {
        self.max_messages > 1 && !self.max_age.is_zero()
    }
}
