//! WorkOS Vault's objects API over SQL: an [`ObjectService`] that keeps
//! named, versioned values in **SQLite** (the embedded default: one file,
//! WAL, SQLite bundled so no system library is needed) or **PostgreSQL**
//! (any number of processes over one database), and **encrypts every value**
//! through any [`KeyService`] (the local keyring, WorkOS, Transit).
//!
//! **Most users want `workos-vault serve`** (the `vault-cli` crate), which serves
//! this store over HTTP, or the `vault` facade.
//!
//! # Storage model
//!
//! Two tables: `vault_objects` (id, unique name, key context, current
//! version id, times, who changed it) and `vault_object_versions` (one row
//! per write: id, sequence number, time, size, etag, data key id and the
//! sealed value). An update adds a version row and moves the object's
//! `current_version_id`; a delete removes the object and all its versions.
//! The schema is created and migrated when the store opens (embedded
//! migrations, one set per backend).
//!
//! # Encryption of values
//!
//! Each value is sealed with AES-256-GCM in our own envelope (the A12
//! layout every current WorkOS SDK reads) under a data key for the object's
//! key context, and the envelope carries the wrapped data key. The AAD binds
//! the object id and the version id, so an envelope copied to another row or
//! version does not open. The database holds no plaintext and no data keys.
//! Data keys are reused per context within [`default_reuse_policy`] so a
//! write is not one key-service call; see there for why that is safe.
//!
//! - ids: `obj_` / `ver_` and 32 lowercase hex digits (128 random bits);
//!   anything else is refused with [`ErrorKind::InvalidRequest`].
//! - names: WorkOS's rules (1 to 200 characters, no control characters),
//!   and no `/`, `\`, `%` or `..`, so a name is always one safe path segment.
//! - values: at most [`MAX_VALUE_BYTES`] (512 KiB) of UTF-8.
//! - `size` is the value's length in bytes; `etag` is the SHA-256 (hex) of
//!   the stored envelope, not of the value, so it is no oracle for guessing
//!   values (it changes with every write).
//! - lists: creation order (newest first unless `order=asc`), up to 100 per
//!   page, opaque cursors over (creation time, id); `search` is a
//!   case-sensitive substring of the name (a JSON object, WorkOS's
//!   undocumented structured search, is refused); `updatedAfter` filters on
//!   the last change.
//! - `version_check`: compare-and-set on the current version id in one
//!   transaction: of N concurrent updates from one version exactly one
//!   wins, the others get [`ErrorKind::Conflict`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vault_api::Error> {
//! use std::sync::Arc;
//! use vault_api::object::{CreateObjectRequest, ObjectName, ObjectService, UpdateObjectRequest};
//! use vault_api::{ErrorKind, KeyContext};
//! use vault_store::ObjectStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let keys = Arc::new(vault_local::LocalKeyService::ephemeral());
//! let store = ObjectStore::open_sqlite(&dir.path().join("objects.db"), keys).await?;
//! let context = KeyContext::new().with("organization_id", "org_123")?;
//! let created = store
//!     .create_object(&CreateObjectRequest::new(ObjectName::new("db-password")?, "one", context))
//!     .await?;
//! let first = created.version_id.clone().unwrap_or_default();
//! store.update_object(&created.id, &UpdateObjectRequest::new("two").with_version_check(&first)).await?;
//! let stale = store
//!     .update_object(&created.id, &UpdateObjectRequest::new("three").with_version_check(&first))
//!     .await
//!     .unwrap_err();
//! assert_eq!(stale.kind(), ErrorKind::Conflict);
//! assert_eq!(store.read_object(&created.id).await?.value.expose_secret(), "two");
//! # Ok(())
//! # }
//! ```
//!
//! [`ObjectService`]: vault_api::ObjectService
//! [`KeyService`]: vault_api::KeyService
//! [`ErrorKind::InvalidRequest`]: vault_api::ErrorKind::InvalidRequest
//! [`ErrorKind::Conflict`]: vault_api::ErrorKind::Conflict
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod ids;
mod seal;
mod store;
mod time;

pub use backend::{sqlite_url, Backend};
pub use ids::{OBJECT_ID_PREFIX, VERSION_ID_PREFIX};
pub use store::{default_reuse_policy, ObjectStore, StoreOptions, MAX_VALUE_BYTES};
