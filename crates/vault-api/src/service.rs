use std::sync::Arc;

use async_trait::async_trait;
use vault_crypto::DataKey;

use crate::{Error, KeyContext};

/// A fresh data key with its wrapped form, as `create_data_key` and `rekey`
/// return it.
#[derive(Debug)]
#[non_exhaustive]
pub struct DataKeyPair {
    /// The key context the data key is wrapped under.
    pub context: KeyContext,
    /// The data key itself. Secret.
    pub data_key: DataKey,
    /// The `encrypted_keys` blob (raw bytes). Store it next to the data: it
    /// is the only way to get the data key back.
    pub encrypted_keys: Vec<u8>,
}

impl DataKeyPair {
    /// Assembles a pair.
    pub fn new(context: KeyContext, data_key: DataKey, encrypted_keys: Vec<u8>) -> Self {
        DataKeyPair {
            context,
            data_key,
            encrypted_keys,
        }
    }

    /// The data key id (the data key's own: there is one source of truth).
    pub fn id(&self) -> &str {
        self.data_key.id()
    }

    /// The `encrypted_keys` blob as the API's base64 text.
    pub fn encrypted_keys_base64(&self) -> String {
        vault_format::b64::encode(&self.encrypted_keys)
    }

    /// A second copy, for caches (the data key is deliberately not `Clone`).
    pub fn duplicate(&self) -> Self {
        DataKeyPair {
            context: self.context.clone(),
            data_key: self.data_key.duplicate(),
            encrypted_keys: self.encrypted_keys.clone(),
        }
    }
}

/// A fresh data key, as a key service that makes its own keys mints one:
/// 32 random bytes and a random UUID v4 id, both from the operating
/// system's generator.
///
/// ```
/// let key = vault_api::random_data_key()?;
/// assert_eq!(key.id().len(), 36);
/// # Ok::<(), vault_api::Error>(())
/// ```
pub fn random_data_key() -> Result<DataKey, Error> {
    use ring::rand::{SecureRandom, SystemRandom};
    let rng = SystemRandom::new();
    let mut id = [0u8; 16];
    let mut bytes = zeroize::Zeroizing::new([0u8; vault_crypto::DATA_KEY_LEN]);
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut *bytes))
        .map_err(|_| Error::random_failed())?;
    Ok(DataKey::new(
        vault_format::__private::id::uuid_v4(id),
        *bytes,
    ))
}

/// A key management service: WorkOS Vault over HTTP, the embedded local
/// service, a cache in front of either, or your own.
///
/// Implementations are `Send + Sync + Debug` and are usually held as
/// `Arc<dyn KeyService>`. The `Debug` output must not reveal secrets.
///
/// ```
/// use async_trait::async_trait;
/// use vault_api::{DataKeyPair, Error, ErrorKind, KeyContext, KeyService};
/// use vault_crypto::DataKey;
///
/// /// A key service backed by your own KMS.
/// #[derive(Debug)]
/// struct MyKms;
///
/// #[async_trait]
/// impl KeyService for MyKms {
///     async fn create_data_key(&self, _context: &KeyContext) -> Result<DataKeyPair, Error> {
///         Err(Error::new(ErrorKind::Api, "ask the KMS for a data key wrapped under the context"))
///     }
///     async fn decrypt_data_key(&self, _encrypted_keys: &[u8]) -> Result<DataKey, Error> {
///         Err(Error::new(ErrorKind::Api, "ask the KMS to unwrap"))
///     }
///     async fn rekey(&self, _keys: &[u8], _context: &KeyContext) -> Result<DataKeyPair, Error> {
///         Err(Error::new(ErrorKind::Api, "unwrap, then wrap under the new context"))
///     }
/// }
/// let service: std::sync::Arc<dyn KeyService> = std::sync::Arc::new(MyKms);
/// ```
#[async_trait]
pub trait KeyService: Send + Sync + std::fmt::Debug {
    /// Creates a fresh data key wrapped under `context`.
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error>;

    /// Unwraps a data key from its `encrypted_keys` blob.
    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error>;

    /// Rewraps the data key in `encrypted_keys` under `context`. The data
    /// key itself does not change.
    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error>;

    /// A data key to encrypt one message of `message_len` bytes under
    /// `context`. The default creates a fresh key every time; a caching
    /// service may hand out the same key for several messages, within
    /// limits.
    async fn data_key_for_message(
        &self,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<DataKeyPair, Error> {
        let _ = message_len;
        self.create_data_key(context).await
    }
}

#[async_trait]
impl<T: KeyService + ?Sized> KeyService for Arc<T> {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        (**self).create_data_key(context).await
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        (**self).decrypt_data_key(encrypted_keys).await
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        (**self).rekey(encrypted_keys, context).await
    }

    async fn data_key_for_message(
        &self,
        context: &KeyContext,
        message_len: u64,
    ) -> Result<DataKeyPair, Error> {
        (**self).data_key_for_message(context, message_len).await
    }
}
