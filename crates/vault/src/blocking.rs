//! A synchronous [`Vault`](crate::Vault), for code that is not async.
//!
//! It owns a small single-threaded Tokio runtime and blocks on each call.
//! Do not use it from inside an async runtime (Tokio panics if you do);
//! use [`crate::Vault`] there.
//!
//! ```
//! use vault::{blocking::Vault, KeyContext, LocalKeyService};
//!
//! let vault = Vault::new(LocalKeyService::ephemeral())?;
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//! let ciphertext = vault.encrypt("hello", &context)?;
//! assert_eq!(vault.decrypt(&ciphertext)?, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use tokio::runtime::{Builder, Runtime};

use std::sync::Arc;

use crate::{
    DataKey, DataKeyPair, DecryptOptions, EncryptOptions, Error, KeyContext, KeyService, Layout,
};

/// The blocking twin of [`crate::Vault`], with every one of its
/// operations; see the module docs. The functions that need no key
/// service ([`crate::inspect`], [`crate::decrypt_with_data_key`]) are not
/// async and serve both.
#[derive(Debug)]
pub struct Vault {
    inner: crate::Vault,
    runtime: Runtime,
}

impl Vault {
    /// A blocking vault over `service`.
    pub fn new(service: impl KeyService + 'static) -> Result<Self, Error> {
        Self::from_async(crate::Vault::new(service))
    }

    /// A blocking vault over the backend the environment asks for; see
    /// [`crate::Vault::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_async(crate::Vault::from_env()?)
    }

    /// Wraps an async vault (from [`crate::Vault::builder`], say).
    pub fn from_async(inner: crate::Vault) -> Result<Self, Error> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the blocking runtime: {e}")))?;
        Ok(Vault { inner, runtime })
    }

    /// See [`crate::Vault::encrypt`].
    pub fn encrypt(
        &self,
        plaintext: impl AsRef<[u8]>,
        context: &KeyContext,
    ) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.encrypt(plaintext, context))
    }

    /// See [`crate::Vault::encrypt_with`].
    pub fn encrypt_with(
        &self,
        plaintext: impl AsRef<[u8]>,
        context: &KeyContext,
        options: &EncryptOptions<'_>,
    ) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.encrypt_with(plaintext, context, options))
    }

    /// See [`crate::Vault::encrypt_in_place`].
    pub fn encrypt_in_place(
        &self,
        buf: &mut Vec<u8>,
        offset: usize,
        context: &KeyContext,
        options: &EncryptOptions<'_>,
    ) -> Result<usize, Error> {
        self.runtime
            .block_on(self.inner.encrypt_in_place(buf, offset, context, options))
    }

    /// See [`crate::Vault::decrypt`].
    pub fn decrypt(&self, ciphertext: &str) -> Result<Vec<u8>, Error> {
        self.runtime.block_on(self.inner.decrypt(ciphertext))
    }

    /// See [`crate::Vault::decrypt_with`].
    pub fn decrypt_with(
        &self,
        ciphertext: &str,
        options: &DecryptOptions<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.runtime
            .block_on(self.inner.decrypt_with(ciphertext, options))
    }

    /// See [`crate::Vault::decrypt_in_place`].
    pub fn decrypt_in_place(
        &self,
        buf: &mut Vec<u8>,
        options: &DecryptOptions<'_>,
    ) -> Result<(), Error> {
        self.runtime
            .block_on(self.inner.decrypt_in_place(buf, options))
    }

    /// See [`crate::Vault::decrypt_to_string`].
    pub fn decrypt_to_string(
        &self,
        ciphertext: &str,
        options: &DecryptOptions<'_>,
    ) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.decrypt_to_string(ciphertext, options))
    }

    /// See [`crate::Vault::create_data_key`].
    pub fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        self.runtime.block_on(self.inner.create_data_key(context))
    }

    /// See [`crate::Vault::decrypt_data_key`].
    pub fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.runtime
            .block_on(self.inner.decrypt_data_key(encrypted_keys))
    }

    /// See [`crate::Vault::decrypt_data_key_base64`].
    pub fn decrypt_data_key_base64(&self, encrypted_keys: &str) -> Result<DataKey, Error> {
        self.runtime
            .block_on(self.inner.decrypt_data_key_base64(encrypted_keys))
    }

    /// See [`crate::Vault::rekey`].
    pub fn rekey(&self, ciphertext: &str, new_context: &KeyContext) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.rekey(ciphertext, new_context))
    }

    /// See [`crate::Vault::key_service`].
    pub fn key_service(&self) -> &Arc<dyn KeyService> {
        self.inner.key_service()
    }

    /// See [`crate::Vault::layout`].
    pub fn layout(&self) -> Layout {
        self.inner.layout()
    }

    /// The async vault inside.
    pub fn as_async(&self) -> &crate::Vault {
        &self.inner
    }
}
