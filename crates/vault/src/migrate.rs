//! Moving stored ciphertexts to another layout, key context or key service.
//!
//! See [`Migration`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;
use vault_format::{b64, Envelope, KeyBlob};
use zeroize::Zeroizing;

use crate::{DataKey, DataKeyPair, Error, KeyContext, KeyService, Layout, Vault};

/// Distinct blobs each cache remembers before it starts over: bounds the
/// memory of a migration of any size. Keys repeat only when a caching key
/// service reused them, and such repeats are close together.
const CACHE_CAPACITY: usize = 4096;

/// What [`Migration::migrate`] did to one ciphertext: the step that needed
/// the most (a re-encryption also re-frames, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Change {
    /// Already in the target layout, context and key service: the input
    /// text is returned as it was.
    Unchanged,
    /// Re-framed among A12, B and A-prime, offline.
    Reframed,
    /// The keys blob was rewrapped under the target context (and the
    /// envelope re-framed if the layout differs).
    Rekeyed,
    /// Opened with the data key and sealed again under a fresh nonce,
    /// keeping the keys blob: A32 to or from a 12-byte-nonce layout.
    Resealed,
    /// Opened, then sealed under a new data key from the target key
    /// service: the fallback for moving between key services, since no
    /// service here can wrap a key it did not mint.
    Reencrypted,
}

impl Change {
    /// A short name for summaries: `unchanged`, `reframed`, `rekeyed`,
    /// `resealed`, `re-encrypted`.
    pub fn name(self) -> &'static str {
        match self {
            Change::Unchanged => "unchanged",
            Change::Reframed => "reframed",
            Change::Rekeyed => "rekeyed",
            Change::Resealed => "resealed",
            Change::Reencrypted => "re-encrypted",
        }
    }
}

/// One migrated ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The ciphertext in the target layout, context and service (the input
    /// itself when [`Change::Unchanged`]).
    pub ciphertext: String,
    /// The layout the input was in.
    pub from: Layout,
    /// What was done.
    pub change: Change,
}

/// A bounded map from keys blobs to cells that are filled once.
#[derive(Debug)]
struct Cache<T>(Mutex<HashMap<Vec<u8>, Arc<OnceCell<T>>>>);

impl<T> Cache<T> {
    fn new() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }

    /// The cell for `blob`; the lock is never held across an await.
    fn cell(&self, blob: &[u8]) -> Arc<OnceCell<T>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = map.get(blob) {
            return Arc::clone(cell);
        }
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        let cell = Arc::new(OnceCell::new());
        map.insert(blob.to_vec(), Arc::clone(&cell));
        cell
    }
}

/// A plan for moving ciphertexts to another layout, key context or key
/// service, made by [`Vault::migration`]: one plan applied to many
/// ciphertexts, with caches so that a data key or a rewrap is fetched once
/// per distinct keys blob. What each ciphertext needs:
///
/// | from -> to | how | key service calls |
/// |---|---|---|
/// | A12 / B / A-prime among themselves | re-framing: bytes move, nothing is decrypted | none |
/// | A32 -> any other, or any -> A32 | the data key from the key service, open, seal again under a fresh nonce; the keys blob is kept | one `decrypt_data_key` per distinct blob |
/// | a new key context | `rekey` the blob; IV, tag and payload are kept (the keys region is outside the tag) | one `rekey` per distinct blob |
/// | another key service | open with the old service's data key, seal under a new data key from the new service (the [`KeyService`] trait cannot wrap a given key, and WorkOS only wraps keys it minted) | one `decrypt_data_key` and one `create_data_key` per distinct blob |
///
/// A ciphertext already in the target layout, context and service comes
/// back unchanged ([`Change::Unchanged`]), so a rerun after an interruption
/// finishes the job. The context of a local-keyring or Transit blob is
/// read from the blob; a WorkOS blob does not reveal its context, so with
/// a target context a WorkOS ciphertext is rekeyed on every run (still
/// correct, just not byte-identical).
///
/// ```
/// use vault::{Change, KeyContext, Layout, LocalKeyService, Vault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vault = Vault::new(LocalKeyService::ephemeral());
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let a12 = vault.encrypt_with("hi", &context, &vault::EncryptOptions::new().aad(b"row 7")).await?;
///
/// // Go >= 7 and the Rust crate read layout B only: offline re-framing.
/// let migration = vault.migration(Layout::B);
/// let migrated = migration.migrate(&a12, b"").await?;
/// assert_eq!(migrated.change, Change::Reframed);
/// assert_eq!(migration.key_service_calls(), 0);
/// assert_eq!(vault.decrypt_with(&migrated.ciphertext, &vault::DecryptOptions::new().aad(b"row 7")).await?, b"hi");
///
/// // Already B: unchanged.
/// assert_eq!(migration.migrate(&migrated.ciphertext, b"").await?.change, Change::Unchanged);
///
/// // Another tenant's context: the blob is rewrapped, the payload kept.
/// let other = KeyContext::new().with("organization_id", "org_456")?;
/// let moved = vault.migration(Layout::B).with_context(other).migrate(&a12, b"").await?;
/// assert_eq!(moved.change, Change::Rekeyed);
/// # Ok(())
/// # }
/// ```
///
/// Share one `Migration` between tasks: its methods take `&self` and its
/// caches sit behind short locks (bounded to a few thousand blobs).
#[derive(Debug)]
pub struct Migration {
    source: Arc<dyn KeyService>,
    target: Option<Arc<dyn KeyService>>,
    layout: Layout,
    context: Option<KeyContext>,
    keys: Cache<DataKey>,
    target_keys: Cache<DataKey>,
    rekeyed: Cache<DataKeyPair>,
    minted: Cache<DataKeyPair>,
    calls: AtomicU64,
}

impl Vault {
    /// A [`Migration`] to `layout` through this vault's key service. See
    /// its docs for what each conversion costs.
    pub fn migration(&self, layout: Layout) -> Migration {
        Migration {
            source: Arc::clone(&self.service),
            target: None,
            layout,
            context: None,
            keys: Cache::new(),
            target_keys: Cache::new(),
            rekeyed: Cache::new(),
            minted: Cache::new(),
            calls: AtomicU64::new(0),
        }
    }
}

impl Migration {
    /// Also moves every ciphertext to `context`: the keys blob is
    /// rewrapped, the payload kept.
    pub fn with_context(mut self, context: KeyContext) -> Self {
        self.context = Some(context);
        self
    }

    /// Also moves every ciphertext to `service`: each is opened with the
    /// vault's key service and sealed under a new data key from `service`
    /// for the context given with [`Migration::with_context`] (required).
    /// A ciphertext the old service cannot open but `service` can is
    /// taken as already moved.
    pub fn to_service(mut self, service: Arc<dyn KeyService>) -> Self {
        self.target = Some(service);
        self
    }

    /// The layout ciphertexts are moved to.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// How many key service calls this migration has made so far (both
    /// services).
    pub fn key_service_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Moves one ciphertext (base64, any layout). `aad` is the associated
    /// data it was sealed with; it is needed only when the payload must be
    /// opened (A32, another key service).
    ///
    /// # Errors
    ///
    /// [`Error::Format`] for text that is not a ciphertext,
    /// [`Error::KeyService`] when the key service refuses the blob,
    /// [`Error::Decrypt`] for a wrong `aad`, [`Error::Config`] when moving
    /// to another key service without a context.
    pub async fn migrate(&self, ciphertext: &str, aad: &[u8]) -> Result<Migrated, Error> {
        let mut buf = Vec::new();
        b64::decode_into(ciphertext, &mut buf)?;
        let envelope = Envelope::parse(&buf)?;
        let from = envelope.layout();
        let blob = envelope.encrypted_keys()?;

        if let Some(target) = &self.target {
            match self.key(&self.keys, &*self.source, &blob).await {
                Ok(key) => return self.reencrypt(&envelope, &key, target, aad).await,
                Err(error) => {
                    // Already moved? Then only layout and context remain.
                    if self.key(&self.target_keys, &**target, &blob).await.is_err() {
                        return Err(error);
                    }
                }
            }
        }
        let service: &dyn KeyService = match &self.target {
            Some(target) => &**target,
            None => &*self.source,
        };

        // The context: rekey unless the blob says it is already there.
        let rekeyed = match &self.context {
            Some(context) if blob_context(&blob).as_ref() != Some(context) => {
                Some(self.rekey(service, &blob, context).await?)
            }
            _ => None,
        };
        let new_blob: &[u8] = match &rekeyed {
            Some(pair) => &pair.encrypted_keys,
            None => &blob,
        };

        if from == self.layout && rekeyed.is_none() {
            return Ok(Migrated {
                ciphertext: ciphertext.to_owned(),
                from,
                change: Change::Unchanged,
            });
        }
        let (text, change) = if envelope.can_reframe(self.layout) {
            // The (possibly rekeyed) blob in place, then re-framed.
            let region = keys_region(from, new_blob);
            let moved = Envelope::new(
                from,
                envelope.iv(),
                envelope.tag(),
                &region,
                envelope.ciphertext(),
            )?
            .reframe(self.layout)?;
            let change = if rekeyed.is_some() {
                Change::Rekeyed
            } else {
                Change::Reframed
            };
            (b64::encode(&moved), change)
        } else {
            let key = match &rekeyed {
                Some(pair) => pair.data_key.duplicate(),
                None => {
                    let cache = if self.target.is_some() {
                        &self.target_keys
                    } else {
                        &self.keys
                    };
                    self.key(cache, service, &blob).await?
                }
            };
            let plaintext = open(&key, &envelope, aad)?;
            let text = vault_crypto::seal_to_base64(&key, self.layout, new_blob, &plaintext, aad)?;
            (text, Change::Resealed)
        };
        tracing::debug!(from = %from, to = %self.layout, change = change.name(), "vault migrated a ciphertext");
        Ok(Migrated {
            ciphertext: text,
            from,
            change,
        })
    }

    /// Checks that `migrated` opens to the same plaintext as `original`
    /// with `aad`, never returning either. `original` is opened with the
    /// vault's key service, `migrated` with the target service if one was
    /// given. Data keys come from the migration's caches, so verifying
    /// right after migrating usually costs no extra call for keyed paths.
    pub async fn verify(&self, original: &str, migrated: &str, aad: &[u8]) -> Result<bool, Error> {
        let before = self.open_text(original, &self.keys, &*self.source, aad);
        let before = match (before.await, &self.target) {
            (Ok(plaintext), _) => plaintext,
            // A row already moved on an earlier run.
            (Err(_), Some(target)) => {
                self.open_text(original, &self.target_keys, &**target, aad)
                    .await?
            }
            (Err(error), None) => return Err(error),
        };
        let after = match &self.target {
            Some(target) => {
                self.open_text(migrated, &self.target_keys, &**target, aad)
                    .await?
            }
            None => {
                self.open_text(migrated, &self.keys, &*self.source, aad)
                    .await?
            }
        };
        Ok(*before == *after)
    }

    async fn open_text(
        &self,
        text: &str,
        cache: &Cache<DataKey>,
        service: &dyn KeyService,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let bytes = b64::decode(text)?;
        let envelope = Envelope::parse(&bytes)?;
        let key = self
            .key(cache, service, &envelope.encrypted_keys()?)
            .await?;
        open(&key, &envelope, aad)
    }

    /// The data key of `blob`, fetched once per distinct blob.
    async fn key(
        &self,
        cache: &Cache<DataKey>,
        service: &dyn KeyService,
        blob: &[u8],
    ) -> Result<DataKey, Error> {
        let cell = cache.cell(blob);
        let key = cell
            .get_or_try_init(|| async {
                self.calls.fetch_add(1, Ordering::Relaxed);
                service.decrypt_data_key(blob).await
            })
            .await?;
        Ok(key.duplicate())
    }

    /// `blob` rewrapped under `context`, once per distinct blob. The data
    /// key that comes with it is remembered for the new blob too.
    async fn rekey(
        &self,
        service: &dyn KeyService,
        blob: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        let cell = self.rekeyed.cell(blob);
        let pair = cell
            .get_or_try_init(|| async {
                self.calls.fetch_add(1, Ordering::Relaxed);
                service.rekey(blob, context).await
            })
            .await?;
        // The new blob opens with the same key: remember it for verify.
        let cache = if self.target.is_some() {
            &self.target_keys
        } else {
            &self.keys
        };
        let _ = cache
            .cell(&pair.encrypted_keys)
            .set(pair.data_key.duplicate());
        Ok(pair.duplicate())
    }

    /// Opens with the old service's key and seals under a data key minted
    /// by `target` for the migration's context: one new key per distinct
    /// old blob, so ciphertexts that shared a key still do.
    async fn reencrypt(
        &self,
        envelope: &Envelope<'_>,
        key: &DataKey,
        target: &Arc<dyn KeyService>,
        aad: &[u8],
    ) -> Result<Migrated, Error> {
        let context = self.context.as_ref().ok_or_else(|| {
            Error::Config(
                "moving ciphertexts to another key service needs the key context to wrap \
                 their new data keys under: give one (--context NAME=VALUE)"
                    .to_owned(),
            )
        })?;
        let plaintext = open(key, envelope, aad)?;
        let blob = envelope.encrypted_keys()?;
        let cell = self.minted.cell(&blob);
        let pair = cell
            .get_or_try_init(|| async {
                self.calls.fetch_add(1, Ordering::Relaxed);
                target.create_data_key(context).await
            })
            .await?;
        // The new blob opens with the same key: remember it for verify.
        let _ = self
            .target_keys
            .cell(&pair.encrypted_keys)
            .set(pair.data_key.duplicate());
        let text = vault_crypto::seal_to_base64(
            &pair.data_key,
            self.layout,
            &pair.encrypted_keys,
            &plaintext,
            aad,
        )?;
        Ok(Migrated {
            ciphertext: text,
            from: envelope.layout(),
            change: Change::Reencrypted,
        })
    }
}

/// The context a blob names, when its format stores it in the clear.
fn blob_context(blob: &[u8]) -> Option<KeyContext> {
    match KeyBlob::parse(blob) {
        KeyBlob::Local { .. } => vault_local::blob_context(blob),
        #[cfg(feature = "transit")]
        KeyBlob::Transit { .. } => vault_transit::blob_context(blob),
        _ => None,
    }
}

/// The keys region of `layout` for `blob`: the blob, or its base64 text.
fn keys_region(layout: Layout, blob: &[u8]) -> Vec<u8> {
    match layout {
        Layout::APrime => b64::encode(blob).into_bytes(),
        _ => blob.to_vec(),
    }
}

/// Opens `envelope` into a buffer that is wiped when dropped.
fn open(key: &DataKey, envelope: &Envelope<'_>, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut plaintext = Zeroizing::new(Vec::new());
    vault_crypto::open_into(&mut plaintext, key, envelope, aad)?;
    Ok(plaintext)
}
