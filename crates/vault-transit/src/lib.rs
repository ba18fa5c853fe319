//! A WorkOS-compatible key service over the **Transit secrets engine** of
//! OpenBao or HashiCorp Vault: master keys that never sit in a file, in a
//! replicated store that survives the loss of a node.
//!
//! **Most users want the `vault` crate**, which chooses this service when
//! `WORKOS_VAULT_TRANSIT_KEY` is set. Use this crate directly to build the
//! service in code, rotate or create the key, or rewrap blobs.
//!
//! - [`TransitKeyService`]: a [`vault_api::KeyService`]. Data keys are drawn
//!   here and wrapped by Transit's `encrypt`; unwrapped by `decrypt`;
//!   moved to a rotated key's newest version by `rewrap`.
//! - [`TransitKeyServiceBuilder`]: address, token (or token file),
//!   namespace, mount, private CA, timeouts and retries, over
//!   `vault-api`'s [`Transport`](vault_api::transport::Transport).
//!
//! The blob it writes opens with a magic of its own
//! (`VRS.TKS.v1\0`), then the data key id and the Transit key version, so
//! `workos-vault inspect` tells it apart from WorkOS and local blobs.
//!
//! # Environment
//!
//! | variable | whose | meaning |
//! |---|---|---|
//! | `WORKOS_VAULT_TRANSIT_KEY` | this project | selects Transit; the key that wraps new data keys |
//! | `WORKOS_VAULT_TRANSIT_MOUNT` | this project | the engine's mount path (`transit`) |
//! | `WORKOS_VAULT_TRANSIT_TOKEN_FILE` | this project | a file holding the token |
//! | `VAULT_ADDR` / `BAO_ADDR` | the engine | its address, such as `https://127.0.0.1:8200` |
//! | `VAULT_TOKEN` / `BAO_TOKEN` | the engine | the token |
//! | `VAULT_NAMESPACE` / `BAO_NAMESPACE` | the engine | the namespace |
//! | `VAULT_CACERT` / `BAO_CACERT` | the engine | a PEM file of CA certificates to trust |
//! | `VAULT_CLIENT_TIMEOUT` / `BAO_CLIENT_TIMEOUT` | the engine | per-attempt timeout (`30s`) |
//! | `VAULT_MAX_RETRIES` / `BAO_MAX_RETRIES` | the engine | retries (5) |
//!
//! `VAULT_SKIP_VERIFY` is not honoured: certificates are always verified.
//!
//! ```no_run
//! # async fn run() -> Result<(), vault_api::Error> {
//! use vault_api::{KeyContext, KeyService};
//! use vault_transit::TransitKeyService;
//!
//! let service = TransitKeyService::builder()
//!     .address("https://127.0.0.1:8200")
//!     .token(std::env::var("VAULT_TOKEN").unwrap_or_default())
//!     .key("vault-dek")
//!     .build()?;
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//! let pair = service.create_data_key(&context).await?;
//! assert_eq!(service.decrypt_data_key(&pair.encrypted_keys).await?, pair.data_key);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blob;
mod builder;
mod client;
mod env;
mod service;
mod tls;

pub use blob::blob_context;
pub use builder::TransitKeyServiceBuilder;
pub use env::{KEY_VAR, MOUNT_VAR, TOKEN_FILE_VAR};
pub use service::TransitKeyService;
