//! A server for WorkOS Vault's key endpoints. Most users want the `vault` crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
