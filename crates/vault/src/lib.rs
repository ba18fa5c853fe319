//! Envelope encryption with [WorkOS Vault](https://workos.com/docs/vault)'s
//! key API, or fully offline with an embedded key service.
//!
//! [`Vault::encrypt`] asks a key service for a fresh data key wrapped under
//! a [`KeyContext`], seals the plaintext locally with AES-256-GCM and
//! returns one base64 string holding the IV, the tag, the wrapped key and
//! the ciphertext. [`Vault::decrypt`] reads that string (in any layout an
//! official WorkOS SDK ever wrote), has the key service unwrap the data key
//! and opens the ciphertext locally. Plaintext never leaves the process.
//!
//! # The embedded default
//!
//! With no WorkOS account, [`LocalKeyService`] wraps data keys under a
//! keyring of your own. This example keeps the keyring in memory:
//!
//! ```
//! use vault::{DecryptOptions, EncryptOptions, KeyContext, Layout, LocalKeyService, Vault};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vault = Vault::new(LocalKeyService::ephemeral());
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//!
//! let ciphertext = vault.encrypt("keep it secret, keep it safe", &context).await?;
//! let plaintext = vault.decrypt(&ciphertext).await?;
//! assert_eq!(plaintext, b"keep it secret, keep it safe");
//!
//! // Associated data binds a ciphertext to its record; the wrong one is refused.
//! let bound = vault.encrypt_with("card", &context, &EncryptOptions::new().aad(b"user_42")).await?;
//! let opened = vault.decrypt_to_string(&bound, &DecryptOptions::new().aad(b"user_42")).await?;
//! assert_eq!(opened, "card");
//! assert!(vault.decrypt_with(&bound, &DecryptOptions::new().aad(b"user_43")).await.is_err());
//!
//! // Inspecting needs no key service.
//! let info = vault::inspect(&ciphertext)?;
//! assert_eq!(info.layout, Layout::A12);
//! # Ok(())
//! # }
//! ```
//!
//! [`Vault::from_env`] picks the backend from the environment: WorkOS when
//! `WORKOS_API_KEY` is set, Transit when `WORKOS_VAULT_TRANSIT_KEY` is, the local
//! keyring file when `WORKOS_VAULT_KEYRING` names one; with none of them it is an
//! error, never a fresh keyring ([`mod@env`] has the details).
//!
//! # WorkOS
//!
#![cfg_attr(feature = "http", doc = "```no_run")]
#![cfg_attr(not(feature = "http"), doc = "```ignore")]
//! use vault::{HttpKeyService, KeyContext, Vault};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let service = HttpKeyService::builder().api_key("sk_live_...").build()?;
//! let vault = Vault::builder().key_service(service).build()?;
//! let context = KeyContext::new().with("organization_id", "org_01EHZNVPK3SFK441A1RGBFSHRT")?;
//! let ciphertext = vault.encrypt(b"card number", &context).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Migrating stored ciphertexts
//!
//! [`Vault::migration`] moves ciphertexts to the layout another SDK reads
//! (offline among A12, B and A-prime), to a new key context or to another
//! key service: see [`Migration`].
//!
//! # Security notes
//!
//! - The wrapped keys inside a ciphertext are **not** covered by its GCM tag.
//!   Swapping them only makes decryption fail, but nothing ties a ciphertext
//!   to the database row it sits in unless you pass AAD (a record id, say)
//!   through [`EncryptOptions::aad`] and [`DecryptOptions::aad`].
//! - A data key is random per message by default. With
//!   [`CachingKeyService`] a key may be reused for several messages: fewer
//!   key service calls, more data under one key.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http` | yes | [`HttpKeyService`] (WorkOS's API over hyper and rustls with *ring*), [`RetryPolicy`], [`transport`] |
//! | `transit` | yes | [`TransitKeyService`] (OpenBao / HashiCorp Vault Transit), chosen by `WORKOS_VAULT_TRANSIT_KEY` in [`Vault::from_env`]; implies `http` |
//! | `blocking` | no | `blocking::Vault`, every operation without async |
//! | `objects` | no | WorkOS Vault's objects (key-value) API: `objects_from_env`, `objects_for` and the SQL store `ObjectStore` (SQLite embedded, PostgreSQL at scale) |
//!
//! `vault-format`'s `simd` feature (SIMD base64) is always on here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod env;
mod error;
mod inspect;
mod migrate;
#[cfg(feature = "objects")]
mod objects;
mod options;

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;

use std::sync::Arc;

pub use env::{keyring_path, API_KEY_VAR, BASE_URL_VAR, KEYRING_VAR};
pub use error::{Error, ErrorKind};
pub use inspect::Inspection;
pub use migrate::{Change, Migrated, Migration};
#[cfg(feature = "objects")]
#[cfg_attr(docsrs, doc(cfg(feature = "objects")))]
pub use objects::{
    object_store_from_env, object_store_url, objects_for, objects_from_env, DATABASE_URL_VAR,
};
pub use options::{DecryptOptions, EncryptOptions};
/// The objects (key-value) API: the trait, its wire types and options.
#[cfg(feature = "objects")]
#[cfg_attr(docsrs, doc(cfg(feature = "objects")))]
pub use vault_api::object;
pub use vault_api::wire;
/// The error of a [`KeyService`]; inside [`Error::KeyService`].
pub use vault_api::Error as KeyServiceError;
/// The kind of a [`KeyServiceError`].
pub use vault_api::ErrorKind as KeyServiceErrorKind;
#[cfg(feature = "objects")]
#[cfg_attr(docsrs, doc(cfg(feature = "objects")))]
pub use vault_api::ObjectService;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use vault_api::{transport, HttpKeyService, HttpKeyServiceBuilder, RetryPolicy};
pub use vault_api::{
    CacheConfig, CachingKeyService, ContextError, DataKey, DataKeyPair, KeyContext, KeyService,
    ReusePolicy,
};
pub use vault_crypto::{MAX_PLAINTEXT_LEN, TAG_LEN};
pub use vault_format::{b64, Layout, Sdk, UnknownLayout, UnknownSdk};
#[cfg(feature = "objects")]
#[cfg_attr(docsrs, doc(cfg(feature = "objects")))]
pub use vault_store::{ObjectStore, StoreOptions};

/// Room [`Vault::encrypt_in_place`] wants before the plaintext: the
/// envelope's head (IV, tag and the key service's blob, which is a few
/// hundred bytes for WorkOS and the local key service) fits in it.
pub const HEAD_ROOM: usize = 4096;
pub use vault_local::{Keyring, LocalKeyService};
#[cfg(feature = "transit")]
#[cfg_attr(docsrs, doc(cfg(feature = "transit")))]
pub use vault_transit::{TransitKeyService, TransitKeyServiceBuilder};

/// Encrypts and decrypts through a key service. Cheap to clone: clones
/// share the key service.
#[derive(Debug, Clone)]
pub struct Vault {
    service: Arc<dyn KeyService>,
    layout: Layout,
}

impl Vault {
    /// A vault over `service`, writing the default layout (A12).
    pub fn new(service: impl KeyService + 'static) -> Self {
        Vault {
            service: Arc::new(service),
            layout: Layout::default(),
        }
    }

    /// A builder, to choose the layout or put a cache in front.
    pub fn builder() -> VaultBuilder {
        VaultBuilder::default()
    }

    /// The backend the environment asks for: WorkOS when `WORKOS_API_KEY`
    /// is set (at `WORKOS_BASE_URL`, default `https://api.workos.com`),
    /// Transit when `WORKOS_VAULT_TRANSIT_KEY` is, otherwise the existing local
    /// keyring file at `WORKOS_VAULT_KEYRING` (never created here: make it with
    /// `workos-vault keyring init` or [`LocalKeyService::open_or_create`]).
    ///
    /// Fails closed with [`Error::Config`] when none is set (naming the
    /// three ways to choose one), when one is set but blank, and when both
    /// WorkOS and Transit are set. See [`env::backend_from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Ok(Vault {
            service: env::backend_from_env(env::EnvOptions::new())?.into_service(),
            layout: Layout::default(),
        })
    }

    /// The key service in use.
    pub fn key_service(&self) -> &Arc<dyn KeyService> {
        &self.service
    }

    /// The key service, called through its own vtable: calling through
    /// the `Arc` would go through `impl KeyService for Arc<T>`, which
    /// boxes a second future per call.
    fn service(&self) -> &dyn KeyService {
        &*self.service
    }

    /// The layout `encrypt` writes, unless its options say otherwise.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Encrypts `plaintext` under a fresh data key for `context`, with no
    /// associated data, in the vault's layout. Returns base64 text.
    pub async fn encrypt(
        &self,
        plaintext: impl AsRef<[u8]>,
        context: &KeyContext,
    ) -> Result<String, Error> {
        self.encrypt_with(plaintext, context, &EncryptOptions::new())
            .await
    }

    /// [`Vault::encrypt`] with associated data or another layout.
    pub async fn encrypt_with(
        &self,
        plaintext: impl AsRef<[u8]>,
        context: &KeyContext,
        options: &EncryptOptions<'_>,
    ) -> Result<String, Error> {
        let plaintext = plaintext.as_ref();
        let layout = options.layout.unwrap_or(self.layout);
        let pair = self.data_key_for(context, plaintext.len()).await?;
        let text = vault_crypto::seal_to_base64(
            &pair.data_key,
            layout,
            &pair.encrypted_keys,
            plaintext,
            options.aad,
        )?;
        trace_encrypted(&pair, layout, plaintext.len(), options.aad);
        Ok(text)
    }

    /// [`Vault::encrypt_with`] for large messages: seals the plaintext at
    /// `buf[offset..]` where it lies and returns where the envelope starts,
    /// so that `buf[start..]` is the envelope's bytes (base64-encode them,
    /// in pieces if you like, for the ciphertext text).
    ///
    /// Memory stays at the plaintext's size: read it into a buffer after
    /// [`HEAD_ROOM`] bytes, with [`TAG_LEN`] bytes of spare capacity, and
    /// nothing is copied or reallocated. On error `buf` is wiped.
    ///
    /// ```
    /// use vault::{DecryptOptions, EncryptOptions, KeyContext, LocalKeyService, Vault, HEAD_ROOM};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let vault = Vault::new(LocalKeyService::ephemeral());
    /// let context = KeyContext::new().with("organization_id", "org_123")?;
    /// let mut buf = vec![0u8; HEAD_ROOM];
    /// buf.extend_from_slice(b"imagine a few gigabytes");
    ///
    /// let start = vault
    ///     .encrypt_in_place(&mut buf, HEAD_ROOM, &context, &EncryptOptions::new())
    ///     .await?;
    /// let mut envelope = buf.split_off(start);
    /// vault.decrypt_in_place(&mut envelope, &DecryptOptions::new()).await?;
    /// assert_eq!(envelope, b"imagine a few gigabytes");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn encrypt_in_place(
        &self,
        buf: &mut Vec<u8>,
        offset: usize,
        context: &KeyContext,
        options: &EncryptOptions<'_>,
    ) -> Result<usize, Error> {
        let plaintext_len = buf.len().saturating_sub(offset);
        let layout = options.layout.unwrap_or(self.layout);
        let pair = self.data_key_for(context, plaintext_len).await?;
        let start = vault_crypto::seal_in_place(
            &pair.data_key,
            layout,
            &pair.encrypted_keys,
            buf,
            offset,
            options.aad,
        )?;
        trace_encrypted(&pair, layout, plaintext_len, options.aad);
        Ok(start)
    }

    /// The data key for one message of `plaintext_len` bytes.
    async fn data_key_for(
        &self,
        context: &KeyContext,
        plaintext_len: usize,
    ) -> Result<DataKeyPair, Error> {
        Ok(self
            .service()
            .data_key_for_message(context, plaintext_len as u64)
            .await?)
    }

    /// Decrypts base64 ciphertext of any layout written without associated
    /// data.
    ///
    /// The plaintext is decrypted inside the buffer the ciphertext was
    /// decoded into, so apart from the key service's call this makes one
    /// allocation: the returned plaintext.
    pub async fn decrypt(&self, ciphertext: &str) -> Result<Vec<u8>, Error> {
        self.decrypt_with(ciphertext, &DecryptOptions::new()).await
    }

    /// [`Vault::decrypt`] with the associated data given at encryption,
    /// or a forced layout.
    pub async fn decrypt_with(
        &self,
        ciphertext: &str,
        options: &DecryptOptions<'_>,
    ) -> Result<Vec<u8>, Error> {
        let mut buf = Vec::new();
        vault_format::b64::decode_into(ciphertext, &mut buf)?;
        self.decrypt_in_place(&mut buf, options).await?;
        Ok(buf)
    }

    /// Decrypts the envelope bytes in `buf` (the ciphertext decoded from
    /// base64, see [`b64`]) where they lie: afterwards `buf` holds the
    /// plaintext. For large messages, with [`Vault::encrypt_in_place`].
    /// If opening fails, `buf` is wiped and emptied.
    pub async fn decrypt_in_place(
        &self,
        buf: &mut Vec<u8>,
        options: &DecryptOptions<'_>,
    ) -> Result<(), Error> {
        let (layout, key) = {
            let envelope = parse_envelope(buf, options.layout)?;
            let key = self
                .service()
                .decrypt_data_key(&envelope.encrypted_keys()?)
                .await?;
            (envelope.layout(), key)
        };
        vault_crypto::open_in_place(&key, buf, Some(layout), options.aad)?;
        Ok(())
    }

    /// [`Vault::decrypt_with`] to a `String`; plaintext that is not UTF-8
    /// is an error (and is wiped).
    pub async fn decrypt_to_string(
        &self,
        ciphertext: &str,
        options: &DecryptOptions<'_>,
    ) -> Result<String, Error> {
        let bytes = self.decrypt_with(ciphertext, options).await?;
        utf8(bytes)
    }

    /// Creates a data key for `context` (for callers doing their own
    /// encryption). Store `encrypted_keys`: it cannot be fetched again.
    pub async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        Ok(self.service().create_data_key(context).await?)
    }

    /// Unwraps a data key from its `encrypted_keys` blob (raw bytes).
    pub async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        Ok(self.service().decrypt_data_key(encrypted_keys).await?)
    }

    /// [`Vault::decrypt_data_key`] for the blob as base64 text, as the API
    /// and [`DataKeyPair::encrypted_keys_base64`] spell it.
    pub async fn decrypt_data_key_base64(&self, encrypted_keys: &str) -> Result<DataKey, Error> {
        let blob = vault_format::b64::decode(encrypted_keys)?;
        self.decrypt_data_key(&blob).await
    }

    /// Rewraps a ciphertext's data key under `new_context`. The IV, tag and
    /// ciphertext are untouched and the layout is kept; only the keys region
    /// changes.
    pub async fn rekey(&self, ciphertext: &str, new_context: &KeyContext) -> Result<String, Error> {
        let bytes = vault_format::b64::decode(ciphertext)?;
        let envelope = vault_format::Envelope::parse(&bytes)?;
        let keys = envelope.encrypted_keys()?;
        let pair = self.service().rekey(&keys, new_context).await?;
        let text;
        let region: &[u8] = if envelope.layout() == Layout::APrime {
            text = pair.encrypted_keys_base64();
            text.as_bytes()
        } else {
            &pair.encrypted_keys
        };
        let rekeyed = vault_format::Envelope::new(
            envelope.layout(),
            envelope.iv(),
            envelope.tag(),
            region,
            envelope.ciphertext(),
        )?;
        tracing::debug!(
            data_key_id = pair.data_key.id(),
            layout = %envelope.layout(),
            "vault rekeyed a ciphertext"
        );
        Ok(rekeyed.to_base64())
    }
}

/// Ids, sizes and the layout only: never the key or the plaintext.
fn trace_encrypted(pair: &DataKeyPair, layout: Layout, plaintext_len: usize, aad: &[u8]) {
    tracing::debug!(
        data_key_id = pair.data_key.id(),
        %layout,
        plaintext_len,
        aad = !aad.is_empty(),
        "vault encrypted a message"
    );
}

/// The plaintext as text, or [`Error::NotUtf8`] (and the bytes wiped).
fn utf8(bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|error| {
        zeroize::Zeroize::zeroize(&mut error.into_bytes());
        Error::NotUtf8
    })
}

/// Describes a ciphertext offline: no key service call, no key needed.
///
/// ```
/// use vault::{EncryptOptions, KeyContext, Layout, LocalKeyService, Vault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vault = Vault::new(LocalKeyService::ephemeral());
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let options = EncryptOptions::new().layout(Layout::B);
/// let ciphertext = vault.encrypt_with("hi", &context, &options).await?;
///
/// let info = vault::inspect(&ciphertext)?;
/// assert_eq!(info.layout, Layout::B);
/// assert_eq!(info.ciphertext_len, 2);
/// # Ok(())
/// # }
/// ```
pub fn inspect(ciphertext: &str) -> Result<Inspection, Error> {
    Inspection::of(ciphertext)
}

/// Decrypts offline with a data key you already hold (from
/// [`Vault::decrypt_data_key`], say): no key service call.
///
/// ```
/// use vault::{DecryptOptions, KeyContext, LocalKeyService, Vault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vault = Vault::new(LocalKeyService::ephemeral());
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let ciphertext = vault.encrypt("hi", &context).await?;
///
/// let keys = vault::inspect(&ciphertext)?.encrypted_keys;
/// let key = vault.decrypt_data_key_base64(&keys).await?;
/// let plaintext = vault::decrypt_with_data_key(&ciphertext, &key, &DecryptOptions::new())?;
/// assert_eq!(plaintext, b"hi");
/// # Ok(())
/// # }
/// ```
pub fn decrypt_with_data_key(
    ciphertext: &str,
    data_key: &DataKey,
    options: &DecryptOptions<'_>,
) -> Result<Vec<u8>, Error> {
    let mut buf = vault_format::b64::decode(ciphertext)?;
    decrypt_in_place_with_data_key(&mut buf, data_key, options)?;
    Ok(buf)
}

/// [`decrypt_with_data_key`] on envelope bytes, in place, as
/// [`Vault::decrypt_in_place`] does.
pub fn decrypt_in_place_with_data_key(
    buf: &mut Vec<u8>,
    data_key: &DataKey,
    options: &DecryptOptions<'_>,
) -> Result<(), Error> {
    Ok(vault_crypto::open_in_place(
        data_key,
        buf,
        options.layout,
        options.aad,
    )?)
}

/// Parses an envelope, as `layout` when given, else detecting the layout.
fn parse_envelope(
    bytes: &[u8],
    layout: Option<Layout>,
) -> Result<vault_format::Envelope<'_>, vault_format::Error> {
    match layout {
        Some(layout) => vault_format::Envelope::parse_as(bytes, layout),
        None => vault_format::Envelope::parse(bytes),
    }
}

/// Builds a [`Vault`].
#[derive(Debug, Default)]
pub struct VaultBuilder {
    service: Option<Arc<dyn KeyService>>,
    layout: Layout,
    cache: Option<CacheConfig>,
}

impl VaultBuilder {
    /// The key service (required).
    pub fn key_service(mut self, service: impl KeyService + 'static) -> Self {
        self.service = Some(Arc::new(service));
        self
    }

    /// A shared key service.
    pub fn shared_key_service(mut self, service: Arc<dyn KeyService>) -> Self {
        self.service = Some(service);
        self
    }

    /// The layout `encrypt` writes: A12 (the default: Node, Python, Ruby,
    /// PHP, Kotlin/Java and Go 4.42-6.x read it), B (Go >= 7, the official
    /// Rust crate, Swift), A-prime (.NET) or A32 (Node 7.42.0-7.50.0 only).
    /// [`VaultBuilder::for_sdk`] picks it by the SDK that will read.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Writes the layout that `sdk` reads, for data an official SDK will
    /// decrypt: no SDK reads more than one layout.
    ///
    /// ```
    /// use vault::{Layout, LocalKeyService, Vault};
    /// let vault = Vault::builder()
    ///     .key_service(LocalKeyService::ephemeral())
    ///     .for_sdk("go".parse()?) // Go >= 7 reads layout B only
    ///     .build()?;
    /// assert_eq!(vault.layout(), Layout::B);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_sdk(self, sdk: Sdk) -> Self {
        self.layout(sdk.layout())
    }

    /// Puts a [`CachingKeyService`] in front of the key service. See its
    /// docs for the trade-off.
    pub fn cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// The vault.
    pub fn build(self) -> Result<Vault, Error> {
        let service = self
            .service
            .ok_or_else(|| Error::Config("Vault::builder() needs a key_service".to_owned()))?;
        let service: Arc<dyn KeyService> = match self.cache {
            Some(config) => Arc::new(CachingKeyService::new(service, config)),
            None => service,
        };
        Ok(Vault {
            service,
            layout: self.layout,
        })
    }
}
