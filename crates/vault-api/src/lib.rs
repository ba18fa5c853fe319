//! Key services for WorkOS Vault. Most users want the `vault` crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
