//! The embedded key service: WorkOS-style envelope keys from a local
//! keyring, for development, CI, air-gapped use and behind `vault-server`.
//!
//! **Most users want the `vault` crate**, which re-exports this crate's
//! types and uses [`LocalKeyService`] when `WORKOS_VAULT_KEYRING` names a keyring.
//!
//! - [`Keyring`]: versioned 32-byte master keys, in memory or in a file
//!   only its owner may read, each with a check value verified at load.
//!   [`Keyring::open`] never creates a file; [`Keyring::create`] and
//!   [`Keyring::open_or_create`] are for code that mints keys.
//! - [`LocalKeyService`]: a [`vault_api::KeyService`] that wraps data keys
//!   under KEKs derived from the keyring's newest master key.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vault_api::Error> {
//! use vault_api::{KeyContext, KeyService};
//! use vault_local::LocalKeyService;
//!
//! let service = LocalKeyService::ephemeral();
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//! let pair = service.create_data_key(&context).await?;
//! assert_eq!(service.decrypt_data_key(&pair.encrypted_keys).await?, pair.data_key);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod keyring;
mod service;

pub use keyring::{Keyring, KeyringInfo, MasterKeyInfo, MASTER_KEY_LEN};
pub use service::{blob_context, LocalKeyService};
