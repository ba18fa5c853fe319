//! Parse and encode WorkOS Vault ciphertexts, offline.
//!
//! **Most users want the [`vault`](https://docs.rs/vault) crate instead**,
//! which encrypts and decrypts. This crate is the layer beneath it: pure
//! functions over bytes, with no crypto, no I/O and no async. Depend on it
//! alone to inspect ciphertexts offline: which layout wrote them, which
//! data key they need, how long each part is.
//!
//! # Layouts
//!
//! Every ciphertext is standard base64 of one of four byte layouts. `L` is
//! the length of `keys` as unsigned LEB128; `keys` is the `encrypted_keys`
//! blob the key service returned.
//!
//! | [`Layout`] | bytes | written by |
//! |---|---|---|
//! | `A12` | `iv[12] tag[16] L keys ct` | Node >= 7.53, Python, Ruby, PHP, Java, Go 4.42-6.x (default here) |
//! | `A32` | `iv[32] tag[16] L keys ct` | Node <= 7.47, Go 4.35-4.41 |
//! | `B` | `L keys nonce[12] ct tag[16]` | Go >= 7, the official Rust crate, iOS |
//! | `APrime` | A12, `keys` holds the base64 *text* of the blob | .NET |
//!
//! Each official SDK reads exactly one of these; [`Envelope::parse`] reads
//! all four and reports which one it found (see its docs for the detection
//! order). [`Envelope::parse_as`] skips detection.
//!
//! The keys region is **not** covered by the GCM tag. Whoever swaps it only
//! changes which data key is fetched, and the tag check then fails; but
//! AAD is a caller's only way to bind a ciphertext to its record.
//!
//! # Example
//!
//! ```
//! use vault_format::{b64, Envelope, KeyBlob, Layout};
//!
//! // A ciphertext written by @workos-inc/node 11.0.0.
//! let text = "mu5sL20AhVmG1vJzOZVKsIxGEMFdRUCyUtfdMS9XT1MuRUtNLnYxADAyMzdhYmU4LWZj\
//!             MGQtNDQ1Ni04MzFjLTNhMmQxMzNlOWY5MDM=";
//! let bytes = b64::decode(text)?;
//! let envelope = Envelope::parse(&bytes)?;
//! assert_eq!(envelope.layout(), Layout::A12);
//! assert_eq!(envelope.iv().len(), 12);
//! assert_eq!(envelope.ciphertext().len(), 1);
//!
//! let keys = envelope.encrypted_keys()?;
//! let blob = KeyBlob::parse(&keys);
//! assert_eq!(blob.kind().name(), "workos");
//! assert_eq!(blob.data_key_id(), Some("0237abe8-fc0d-4456-831c-3a2d133e9f90"));
//! # Ok::<(), vault_format::Error>(())
//! ```
//!
//! # Re-framing
//!
//! A12, B and A-prime differ only in framing, so [`Envelope::reframe`] and
//! [`reframe_base64`] move a ciphertext among them offline: no key, no
//! plaintext. A32 needs the data key ([`Error::NeedsDataKey`]); the
//! `vault` crate's migration handles it.
//!
//! Untrusted input never panics: every malformed ciphertext gets an
//! [`Error`] that says what was found and what was expected.

//!
//! # Features
//!
//! - `simd` (off by default; the `vault` facade turns it on): decodes and
//!   encodes base64 with `base64-simd`, about twice as fast on large
//!   ciphertexts. Without it the `base64` crate does all the work; both
//!   accept exactly the same texts.
//!
//! # Stability
//!
//! The public items documented here are the stable interface: parsing and
//! encoding envelopes, [`KeyBlob`], [`Layout`], [`Sdk`] and the base64
//! policy of [`b64`]. The hidden `__private` module holds plumbing the
//! other crates of this workspace share (ids, blob headers, frames); it is
//! **not** part of the stable interface and may change in any release.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod b64;
mod blob;
mod envelope;
mod error;
mod id;
mod layout;
mod leb128;
mod reframe;
mod sdk;

/// Plumbing shared by the crates of this workspace: **not** a stable
/// interface; it may change in any release. Offline parsers need none of
/// it.
#[doc(hidden)]
pub mod __private {
    /// Ids and hex.
    pub mod id {
        pub use crate::id::{is_uuid, push_hex, uuid_v4};
    }

    pub use crate::b64::encode_tail_in_place;
    pub use crate::blob::{ID_LEN, LOCAL_HEADER_LEN, LOCAL_MAGIC, TRANSIT_MAGIC, WORKOS_MAGIC};
    pub use crate::envelope::{Frame, KeysPrefix};
}

pub use blob::{KeyBlob, KeyBlobKind};
pub use envelope::Envelope;
pub use error::Error;
pub use layout::{Layout, UnknownLayout, TAG_LEN};
pub use reframe::reframe_base64;
pub use sdk::{Sdk, UnknownSdk};
