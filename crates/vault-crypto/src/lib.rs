//! AES-256-GCM sealing and opening of WorkOS Vault envelopes.
//!
//! Most users want the `vault` crate, which fetches data keys for them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod key;

pub use error::Error;
pub use key::{DataKey, DATA_KEY_LEN};
