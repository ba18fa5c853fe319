//! AES-256-GCM sealing and opening of WorkOS Vault envelopes.
//!
//! **Most users want the `vault` crate instead**, which fetches data keys
//! from the key service and calls this crate. Use this crate directly when
//! you already hold the data key: in a key cache, in tests, offline.
//!
//! - [`seal`], [`seal_into`] and [`seal_to_base64`] encrypt a plaintext and
//!   frame it, with the `encrypted_keys` blob, as an envelope of a chosen
//!   [`Layout`] (see [`vault_format`] for the byte layouts).
//!   [`Layout::A12`] is the default and what current SDKs read.
//! - [`open`], [`open_into`] and [`open_base64`] decrypt an envelope of any
//!   layout: A12, B and A-prime through `ring`, the legacy A32 (32-byte IV)
//!   through RustCrypto `aes-gcm`. [`open_in_place`] decrypts an envelope
//!   held in a `Vec` and leaves the plaintext there, with no allocation.
//!
//! # Example
//!
//! ```
//! use vault_crypto::{open, open_base64, seal_to_base64, DataKey, Envelope, Layout};
//!
//! # fn main() -> Result<(), vault_crypto::Error> {
//! let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [7; 32]);
//! let encrypted_keys = b"WOS.EKM.v1\x000237abe8-fc0d-4456-831c-3a2d133e9f90...";
//!
//! let text = seal_to_base64(&key, Layout::A12, encrypted_keys, b"hello", b"user_42")?;
//! assert_eq!(open_base64(&key, &text, b"user_42")?, b"hello");
//! // The AAD binds the ciphertext to its record: another record's fails.
//! assert_eq!(
//!     open_base64(&key, &text, b"user_43"),
//!     Err(vault_crypto::Error::Decrypt)
//! );
//!
//! // A ciphertext written by @workos-inc/node 11.0.0, with AAD "x".
//! let key = DataKey::from_base64(
//!     "0237abe8-fc0d-4456-831c-3a2d133e9f90",
//!     "QXuKLG5EN+fkNgMrja5FxWXm4e1SFEEXA6wWHpBE84M=",
//! )?;
//! let bytes = vault_format::b64::decode(
//!     "mu5sL20AhVmG1vJzOZVKsIxGEMFdRUCyUtfdMS9XT1MuRUtNLnYxADAyMzdhYmU4LWZj\
//!      MGQtNDQ1Ni04MzFjLTNhMmQxMzNlOWY5MDM=",
//! )?;
//! let envelope = Envelope::parse(&bytes)?;
//! assert_eq!(envelope.layout(), Layout::A12);
//! assert_eq!(open(&key, &envelope, b"x")?, b"a");
//! # Ok(())
//! # }
//! ```
//!
//! # Security notes
//!
//! - **Message limit.** Every message gets a fresh random 96-bit nonce
//!   (32-byte IV for A32) from the operating system's CSPRNG. Random
//!   nonces collide with non-negligible probability after about 2^32
//!   messages, so seal **at most 2^32 messages with one data key**. The
//!   key service hands out a fresh data key per `encrypt`, far below this.
//! - **AAD** is the caller's only binding of a ciphertext to its record.
//!   The `encrypted_keys` region is not covered by the tag: swapping it
//!   only changes which data key is fetched, and the tag check then fails.
//! - **Failure is opaque.** A wrong key, AAD, IV, tag or ciphertext all give
//!   the same [`Error::Decrypt`], and no partial plaintext is ever
//!   returned: buffers that held it are wiped.
//! - **Performance.** Sealing and opening encrypt in place in the output
//!   buffer; the `_into` variants reuse a caller's buffer, and
//!   [`open_in_place`] and [`open_base64`] decrypt inside the buffer that
//!   holds the envelope. A [`DataKey`]
//!   keeps ring's expanded key after first use, so reuse one `DataKey`
//!   for many messages rather than rebuilding it.
//! - A single message holds at most [`MAX_PLAINTEXT_LEN`] bytes (AES-GCM's
//!   limit, about 64 GiB).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cipher;
mod error;
mod key;
mod open;
mod seal;
mod wipe;

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use wipe::test_hooks;

pub use cipher::MAX_PLAINTEXT_LEN;
pub use error::Error;
pub use key::{DataKey, DATA_KEY_LEN};
pub use open::{open, open_base64, open_in_place, open_into};
pub use seal::{head_len, seal, seal_in_place, seal_into, seal_to_base64};
pub use vault_format::{Envelope, Layout, TAG_LEN};
