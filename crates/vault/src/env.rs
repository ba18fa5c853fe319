//! Choosing a key service from the environment.

use std::path::PathBuf;
use std::sync::Arc;

use vault_api::KeyService;
use vault_local::LocalKeyService;

use crate::Error;

/// `WORKOS_API_KEY`: use WorkOS Vault.
pub const API_KEY_VAR: &str = "WORKOS_API_KEY";
/// `WORKOS_BASE_URL`: where WorkOS's API is (or a compatible server).
pub const BASE_URL_VAR: &str = "WORKOS_BASE_URL";
/// `VAULT_KEYRING`: the local keyring file.
pub const KEYRING_VAR: &str = "VAULT_KEYRING";

pub(crate) fn key_service_from_env() -> Result<Arc<dyn KeyService>, Error> {
    let api_key = std::env::var(API_KEY_VAR)
        .ok()
        .filter(|key| !key.trim().is_empty());
    #[cfg(feature = "transit")]
    if let Some(service) = transit_service(api_key.is_some())? {
        return Ok(service);
    }
    match api_key {
        Some(api_key) => http_service(api_key),
        None => {
            let path = keyring_path()?;
            tracing::info!(backend = "local", keyring = %path.display(), "vault key service chosen");
            Ok(Arc::new(LocalKeyService::open(&path)?))
        }
    }
}

/// The Transit key service when `VAULT_TRANSIT_KEY` is set (never with
/// `WORKOS_API_KEY`: which one wraps would be a guess).
#[cfg(feature = "transit")]
fn transit_service(workos_too: bool) -> Result<Option<Arc<dyn KeyService>>, Error> {
    let Some(builder) = vault_transit::TransitKeyServiceBuilder::from_env()? else {
        return Ok(None);
    };
    if workos_too {
        return Err(Error::Config(format!(
            "both {API_KEY_VAR} and {} are set; unset one to choose WorkOS or Transit",
            vault_transit::KEY_VAR
        )));
    }
    let service = builder.build()?;
    tracing::info!(
        backend = "transit",
        address = service.address(),
        key = service.key_name(),
        "vault key service chosen"
    );
    Ok(Some(Arc::new(service)))
}

#[cfg(feature = "http")]
fn http_service(api_key: String) -> Result<Arc<dyn KeyService>, Error> {
    Ok(Arc::new(http_client(api_key)?))
}

/// The WorkOS client for `api_key`, at `WORKOS_BASE_URL` when set: the key
/// service of [`key_service_from_env`], and the objects service of
/// `objects_from_env`.
#[cfg(feature = "http")]
pub(crate) fn http_client(api_key: String) -> Result<vault_api::HttpKeyService, Error> {
    let mut builder = vault_api::HttpKeyService::builder().api_key(api_key);
    let base_url = std::env::var(BASE_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty());
    if let Some(url) = &base_url {
        builder = builder.base_url(url.trim());
    }
    let service = builder.build()?;
    tracing::info!(
        backend = "workos",
        base_url = base_url.as_deref().unwrap_or("https://api.workos.com"),
        "vault key service chosen"
    );
    Ok(service)
}

#[cfg(not(feature = "http"))]
fn http_service(_api_key: String) -> Result<Arc<dyn KeyService>, Error> {
    Err(Error::Config(format!(
        "{API_KEY_VAR} is set but this build of `vault` has no `http` feature; enable it or unset {API_KEY_VAR}"
    )))
}

/// `VAULT_KEYRING`, or `keyring.json` in the platform data directory.
pub fn keyring_path() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(KEYRING_VAR).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    data_dir()
        .map(|dir| dir.join("vault-rs").join("keyring.json"))
        .ok_or_else(|| {
            Error::Config(format!(
                "cannot find a data directory for the local keyring; set {KEYRING_VAR} to a file path"
            ))
        })
}

fn data_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "windows") {
        return var("APPDATA");
    }
    if cfg!(target_os = "macos") {
        return var("HOME").map(|home| home.join("Library").join("Application Support"));
    }
    var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local").join("share")))
}
