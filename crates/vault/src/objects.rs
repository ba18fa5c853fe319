//! The objects (key-value) API from the environment, with the same backend
//! choice as [`Vault::from_env`](crate::Vault::from_env) (`objects`
//! feature).

use std::path::PathBuf;
use std::sync::Arc;

use vault_api::{KeyService, ObjectService};
use vault_store::ObjectStore;

use crate::env::{backend_from_env, keyring_path, Backend, EnvOptions, API_KEY_VAR};
use crate::Error;

/// `WORKOS_VAULT_DATABASE_URL`: where the local object store keeps
/// objects, `sqlite://PATH` or `postgres://...`. Unset: `objects.db` beside
/// the keyring.
pub const DATABASE_URL_VAR: &str = "WORKOS_VAULT_DATABASE_URL";

/// The objects service the environment asks for, chosen with the key
/// service by [`backend_from_env`] (the one place that chooses):
///
/// - with `WORKOS_API_KEY`: WorkOS Vault's objects API (at
///   `WORKOS_BASE_URL`), through the same client as the key calls;
/// - otherwise a local [`ObjectStore`] whose values are encrypted through
///   the chosen key service (a keyring, or Transit), in the database of
///   [`object_store_url`].
///
/// It fails closed as [`Vault::from_env`](crate::Vault::from_env) does:
/// with no backend configured it is an error, never a fresh keyring.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vault::Error> {
/// use vault::object::{CreateObjectRequest, ObjectName};
/// use vault::KeyContext;
///
/// let objects = vault::objects_from_env().await?;
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let name = ObjectName::new("stripe-api-key")?;
/// let created = objects
///     .create_object(&CreateObjectRequest::new(name, "sk_live_...", context))
///     .await?;
/// let object = objects.read_object(&created.id).await?;
/// # Ok(())
/// # }
/// ```
pub async fn objects_from_env() -> Result<Arc<dyn ObjectService>, Error> {
    objects_for(backend_from_env(EnvOptions::new())?).await
}

/// The objects service of `backend`: its own objects API (WorkOS), or a
/// local [`ObjectStore`] sealing values through its key service. Setting
/// `WORKOS_VAULT_DATABASE_URL` with WorkOS is an error: which store is
/// meant would be a guess.
pub async fn objects_for(backend: Backend) -> Result<Arc<dyn ObjectService>, Error> {
    if let Some(objects) = backend.object_service() {
        if std::env::var_os(DATABASE_URL_VAR).is_some() {
            return Err(Error::Config(format!(
                "both {API_KEY_VAR} and {DATABASE_URL_VAR} are set; unset {DATABASE_URL_VAR} \
                 to use WorkOS's objects API, or {API_KEY_VAR} to use the local object store"
            )));
        }
        tracing::info!(backend = "workos", "vault objects service chosen");
        return Ok(Arc::clone(objects));
    }
    Ok(Arc::new(
        object_store_from_env(backend.into_service()).await?,
    ))
}

/// A local [`ObjectStore`] over `keys`, in the database of
/// [`object_store_url`] (created on first use).
pub async fn object_store_from_env(keys: Arc<dyn KeyService>) -> Result<ObjectStore, Error> {
    let url = object_store_url()?;
    let store = ObjectStore::open(&url, keys).await?;
    tracing::info!(
        backend = store.backend().as_str(),
        "workos-vault object store opened"
    );
    Ok(store)
}

/// `WORKOS_VAULT_DATABASE_URL`, or the SQLite file `objects.db` in the
/// directory of the keyring ([`keyring_path`]).
pub fn object_store_url() -> Result<String, Error> {
    if let Some(url) = std::env::var_os(DATABASE_URL_VAR) {
        let url = url.into_string().map_err(|_| {
            Error::Config(format!(
                "{DATABASE_URL_VAR} is not UTF-8; give a sqlite: or postgres:// URL"
            ))
        })?;
        if url.trim().is_empty() {
            return Err(Error::Config(format!(
                "{DATABASE_URL_VAR} is set but empty; unset it for objects.db beside the \
                 keyring, or give a sqlite: or postgres:// URL"
            )));
        }
        vault_store::Backend::of_url(url.trim())?;
        return Ok(url.trim().to_owned());
    }
    let keyring = keyring_path()?;
    let dir = keyring
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::Config(format!(
            "cannot create {} for the object store: {e}; set {DATABASE_URL_VAR}",
            dir.display()
        ))
    })?;
    let path = dir.join("objects.db");
    create_owner_only(&path)?;
    Ok(vault_store::sqlite_url(&path)?)
}

/// Creates an empty `path` readable by its owner only, unless it exists;
/// SQLite gives its `-wal` and `-shm` files the same permissions.
fn create_owner_only(path: &std::path::Path) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Config(format!(
            "cannot create the object store {}: {e}; set {DATABASE_URL_VAR}",
            path.display()
        ))),
    }
}
