//! AES-256-GCM for WorkOS Vault envelopes. Most users want the `vault` crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
