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
//! let ciphertext = vault.encrypt("hello", &context, None)?;
//! assert_eq!(vault.decrypt_to_string(&ciphertext, None)?, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use tokio::runtime::{Builder, Runtime};

use crate::{DataKey, DataKeyPair, Error, Inspection, KeyContext, KeyService};

/// The blocking twin of [`crate::Vault`]; see the module docs.
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
        aad: Option<&[u8]>,
    ) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.encrypt(plaintext, context, aad))
    }

    /// See [`crate::Vault::decrypt`].
    pub fn decrypt(&self, ciphertext: &str, aad: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        self.runtime.block_on(self.inner.decrypt(ciphertext, aad))
    }

    /// See [`crate::Vault::decrypt_to_string`].
    pub fn decrypt_to_string(&self, ciphertext: &str, aad: Option<&[u8]>) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.decrypt_to_string(ciphertext, aad))
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

    /// See [`crate::Vault::rekey`].
    pub fn rekey(&self, ciphertext: &str, new_context: &KeyContext) -> Result<String, Error> {
        self.runtime
            .block_on(self.inner.rekey(ciphertext, new_context))
    }

    /// See [`crate::Vault::inspect`].
    pub fn inspect(ciphertext: &str) -> Result<Inspection, Error> {
        crate::Vault::inspect(ciphertext)
    }

    /// The async vault inside.
    pub fn as_async(&self) -> &crate::Vault {
        &self.inner
    }
}
