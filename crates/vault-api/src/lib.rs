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
//! - [`RetryPolicy`]: when a call is retried and how long it may take;
//!   [`HttpKeyService`] and the Transit key service follow it. Behind
//!   `http`.
//! - [`CachingKeyService`]: an opt-in cache in front of any key service.
//! - [`object`]: WorkOS Vault's objects (key-value) API: the
//!   [`ObjectService`] trait and its wire types.
//!
//! The embedded key service over a local keyring is in the `vault-local`
//! crate.
//!
//! # Features
//!
//! - `http` (default): [`HttpKeyService`], its [`transport`] module and
//!   [`RetryPolicy`], over hyper 1 and rustls with the *ring* provider.
//!   Without it the crate is the trait, the context, the wire types and the
//!   cache, with no HTTP stack.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
mod context;
mod error;
#[cfg(feature = "http")]
mod http;
pub mod object;
#[cfg(feature = "http")]
mod retry;
mod service;
pub mod wire;

pub use cache::{CacheConfig, CacheStats, CachingKeyService, ReusePolicy, MAX_MESSAGES_PER_KEY};
pub use context::{ContextError, KeyContext, MAX_ENTRIES, MAX_NAME_CHARS, MAX_VALUE_CHARS};
pub use error::{Error, ErrorKind};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{transport, HttpKeyService, HttpKeyServiceBuilder, ALLOW_INSECURE_HTTP_VAR};
pub use object::ObjectService;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use retry::RetryPolicy;
pub use service::{random_data_key, DataKeyPair, KeyService};
pub use vault_crypto::DataKey;
