//! Envelope encryption with WorkOS Vault.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
