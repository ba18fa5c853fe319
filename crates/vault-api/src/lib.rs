//! Key services for WorkOS Vault: the [`KeyService`] trait and its
//! implementations.
//!
//! **Most users want the `vault` crate**, which uses a key service to
//! encrypt and decrypt. Use this crate directly to call the key API, or to
//! plug in your own key service.
//!
//! - [`KeyContext`]: the validated name/value map that selects keys.
//! - [`KeyService`]: create, decrypt and rekey data keys.
//! - [`wire`]: the JSON bodies of WorkOS's key endpoints.
//! - [`HttpKeyService`]: WorkOS Vault's key API over HTTPS, through a
//!   pluggable [`transport::Transport`] (hyper + rustls by default; bring
//!   your own HTTP stack, or scripted answers in tests). Behind the default
//!   `http` feature.
//! - [`CachingKeyService`]: an opt-in cache in front of any key service.
//! - [`object`]: WorkOS Vault's objects (key-value) API: the
//!   [`ObjectService`] trait and its wire types.
//!
//! The embedded key service over a local keyring is in the `vault-local`
//! crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
mod context;
mod error;
#[cfg(feature = "http")]
mod http;
pub mod object;
mod service;
pub mod wire;

pub use cache::{CacheConfig, CacheStats, CachingKeyService, ReusePolicy, MAX_MESSAGES_PER_KEY};
pub use context::{ContextError, KeyContext, MAX_ENTRIES, MAX_NAME_CHARS, MAX_VALUE_CHARS};
pub use error::{is_retryable_status, Error, ErrorKind};
#[cfg(feature = "http")]
pub use http::{transport, HttpKeyService, HttpKeyServiceBuilder};
pub use object::ObjectService;
pub use service::{random_data_key, DataKeyPair, KeyService};
pub use vault_crypto::DataKey;
