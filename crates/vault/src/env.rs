//! Choosing a key service from the environment: the one place that does.
//!
//! [`Vault::from_env`](crate::Vault::from_env), the `workos-vault` command and
//! `workos-vault serve` all call [`backend_from_env`]. It fails closed: a variable
//! that is set but empty or blank is an error (never "unset"), two
//! backends at once are an error, and with no backend configured the
//! library refuses rather than inventing a keyring whose keys would die
//! with the process's disk.
//!
//! | variable | chooses |
//! |---|---|
//! | `WORKOS_API_KEY` (and `WORKOS_BASE_URL`) | WorkOS Vault, or a compatible server |
//! | `WORKOS_VAULT_TRANSIT_KEY` (and the engine's `VAULT_ADDR`, `VAULT_TOKEN`, ...) | OpenBao / HashiCorp Vault Transit |
//! | `WORKOS_VAULT_KEYRING` | the local keyring file at that path |
//!
//! ```
//! use vault::env::{backend_from_env, EnvOptions};
//!
//! # fn main() -> Result<(), vault::Error> {
//! # let dir = std::env::temp_dir().join(format!("vault-env-doc-{}", std::process::id()));
//! # std::env::remove_var("WORKOS_API_KEY");
//! # std::env::remove_var("WORKOS_VAULT_TRANSIT_KEY");
//! # std::env::set_var("WORKOS_VAULT_KEYRING", dir.join("keyring.json"));
//! // A process that mints keys may create the keyring WORKOS_VAULT_KEYRING names.
//! let backend = backend_from_env(EnvOptions::new().create_keyring(true))?;
//! assert_eq!(backend.kind(), vault::env::BackendKind::Keyring);
//! if backend.created_keyring() {
//!     eprintln!("created {}: back it up", backend.description());
//! }
//! let vault = vault::Vault::builder().shared_key_service(backend.into_service()).build()?;
//! # drop(vault);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vault_api::{KeyService, ObjectService};
use vault_local::LocalKeyService;

use crate::Error;

/// `WORKOS_API_KEY`: use WorkOS Vault.
pub const API_KEY_VAR: &str = "WORKOS_API_KEY";
/// `WORKOS_BASE_URL`: where WorkOS's API is (or a compatible server).
pub const BASE_URL_VAR: &str = "WORKOS_BASE_URL";
/// `WORKOS_VAULT_KEYRING`: the local keyring file.
pub const KEYRING_VAR: &str = "WORKOS_VAULT_KEYRING";
/// `WORKOS_VAULT_TRANSIT_KEY`: use OpenBao / HashiCorp Vault Transit with this key.
pub const TRANSIT_KEY_VAR: &str = "WORKOS_VAULT_TRANSIT_KEY";

/// What [`backend_from_env`] may do with the local keyring.
///
/// The default ([`EnvOptions::new`]) is the library's: the keyring is used
/// only when `WORKOS_VAULT_KEYRING` names it, and it must exist.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct EnvOptions {
    default_keyring: bool,
    create_keyring: bool,
}

impl EnvOptions {
    /// The library's choice: no default keyring, never create one.
    pub fn new() -> Self {
        EnvOptions::default()
    }

    /// With no backend configured, use the keyring in the platform data
    /// directory ([`keyring_path`]) instead of failing. The `vault` command
    /// does; a service should name its backend.
    pub fn default_keyring(mut self, yes: bool) -> Self {
        self.default_keyring = yes;
        self
    }

    /// Create the keyring file when it does not exist. Only for code that
    /// mints keys (encrypt, create a data key, serve): code that only
    /// unwraps must fail on a missing keyring, not make a new one.
    pub fn create_keyring(mut self, yes: bool) -> Self {
        self.create_keyring = yes;
        self
    }
}

/// Which kind of key service the environment chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// WorkOS Vault (or a compatible server) over HTTP.
    WorkOs,
    /// OpenBao / HashiCorp Vault Transit.
    Transit,
    /// The local keyring file.
    Keyring,
}

/// The key service the environment chose, and what to say about it.
pub struct Backend {
    service: Arc<dyn KeyService>,
    /// WorkOS's objects API, through the key service's own client.
    objects: Option<Arc<dyn ObjectService>>,
    kind: BackendKind,
    description: String,
    keyring: Option<PathBuf>,
    created_keyring: bool,
    #[cfg(feature = "transit")]
    transit: Option<vault_transit::TransitKeyService>,
}

impl Backend {
    /// The kind of key service.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// One line naming the backend and where it is (`keyring
    /// /home/me/.local/share/vault-rs/keyring.json`, `WorkOS at
    /// https://api.workos.com`); never a secret.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The keyring file, for [`BackendKind::Keyring`].
    pub fn keyring_path(&self) -> Option<&Path> {
        self.keyring.as_deref()
    }

    /// Whether this call created the keyring file (it did not exist).
    /// Whoever created it should tell the user to back it up.
    pub fn created_keyring(&self) -> bool {
        self.created_keyring
    }

    /// The objects API of the key service itself, when it has one
    /// (WorkOS: the same client, pool and retries as the key calls).
    /// Other backends keep objects in a local store instead.
    pub fn object_service(&self) -> Option<&Arc<dyn ObjectService>> {
        self.objects.as_ref()
    }

    /// The key service.
    pub fn service(&self) -> &Arc<dyn KeyService> {
        &self.service
    }

    /// The key service, by value.
    pub fn into_service(self) -> Arc<dyn KeyService> {
        self.service
    }

    /// Checks the backend before serving: for Transit, that the engine
    /// answers, the token may use the key and the key is derived. The
    /// others were checked when they were opened or are checked on their
    /// first call.
    pub async fn check(&self) -> Result<(), Error> {
        #[cfg(feature = "transit")]
        if let Some(transit) = &self.transit {
            transit.check().await?;
        }
        Ok(())
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("created_keyring", &self.created_keyring)
            .finish_non_exhaustive()
    }
}

/// The key service the environment asks for. See the [module](self) docs
/// for the variables. Fails with [`Error::Config`] on a variable that is
/// set but blank, on both `WORKOS_API_KEY` and `WORKOS_VAULT_TRANSIT_KEY`, and,
/// unless `options` allow the default keyring, when nothing is configured.
/// A missing keyring file is a key service error naming the path, unless
/// `options` allow creating it.
pub fn backend_from_env(options: EnvOptions) -> Result<Backend, Error> {
    // Ours must be UTF-8: a value that is not is an error, not "unset".
    for name in [API_KEY_VAR, BASE_URL_VAR, KEYRING_VAR, TRANSIT_KEY_VAR] {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            return Err(Error::Config(format!(
                "{name} is not valid UTF-8; set it to a value or unset it"
            )));
        }
    }
    backend_from_lookup(options, &|name| std::env::var(name).ok())
}

/// [`backend_from_env`] over another source of variables: `lookup` is
/// asked for the same names (`WORKOS_API_KEY`, `WORKOS_VAULT_TRANSIT_KEY`,
/// `VAULT_ADDR`, ...) and answers `None` for an unset one. `workos-vault migrate
/// --to-service` chooses its target service this way, from variables of
/// its own.
pub fn backend_from_lookup(
    options: EnvOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Backend, Error> {
    let var = |name: &str| var(name, lookup);
    let api_key = var(API_KEY_VAR)?;
    let base_url = var(BASE_URL_VAR)?;
    let keyring = var(KEYRING_VAR)?;
    #[cfg(feature = "transit")]
    if let Some(backend) = transit_backend(api_key.is_some(), lookup)? {
        return Ok(backend);
    }
    #[cfg(not(feature = "transit"))]
    if var(TRANSIT_KEY_VAR)?.is_some() {
        return Err(Error::Config(format!(
            "{TRANSIT_KEY_VAR} is set but this build of `vault` has no `transit` feature; \
             enable it or unset {TRANSIT_KEY_VAR}"
        )));
    }
    if let Some(api_key) = api_key {
        return http_backend(api_key, base_url);
    }
    let path = match keyring {
        Some(path) => PathBuf::from(path),
        None if options.default_keyring => default_keyring_path()?,
        None => {
            return Err(Error::Config(format!(
                "no key service is configured: set {API_KEY_VAR} to use WorkOS Vault, \
                 {TRANSIT_KEY_VAR} to use OpenBao or HashiCorp Vault Transit, or \
                 {KEYRING_VAR} to the path of a local keyring file"
            )))
        }
    };
    keyring_backend(path, options.create_keyring)
}

/// The value of `name`: `None` when unset, an error when set but blank or
/// not UTF-8 (a deploy that meant to set it must not fall back silently).
fn var(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, Error> {
    match lookup(name) {
        Some(value) if value.trim().is_empty() => Err(Error::Config(format!(
            "{name} is set but empty; set it to a value or unset it"
        ))),
        value => Ok(value),
    }
}

fn keyring_backend(path: PathBuf, create: bool) -> Result<Backend, Error> {
    let (service, created) = if create {
        match LocalKeyService::open(&path) {
            Ok(service) => (service, false),
            Err(_) if !path.exists() => match LocalKeyService::create(&path) {
                Ok(service) => (service, true),
                // Another process created it meanwhile.
                Err(_) if path.exists() => (LocalKeyService::open(&path)?, false),
                Err(error) => return Err(error.into()),
            },
            Err(error) => return Err(error.into()),
        }
    } else {
        (LocalKeyService::open(&path)?, false)
    };
    if created {
        // Info, not warn: the caller that created it says so once (the CLI
        // prints its own line).
        tracing::info!(
            keyring = %path.display(),
            "created a new local keyring; back it up: what it encrypts cannot be decrypted without it"
        );
    }
    tracing::info!(backend = "local", keyring = %path.display(), "vault key service chosen");
    Ok(Backend {
        service: Arc::new(service),
        objects: None,
        kind: BackendKind::Keyring,
        description: format!("keyring {}", path.display()),
        keyring: Some(path),
        created_keyring: created,
        #[cfg(feature = "transit")]
        transit: None,
    })
}

/// The Transit key service when `WORKOS_VAULT_TRANSIT_KEY` is set (never with
/// `WORKOS_API_KEY`: which one wraps would be a guess).
#[cfg(feature = "transit")]
fn transit_backend(
    workos_too: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Backend>, Error> {
    let Some(builder) = vault_transit::TransitKeyServiceBuilder::from_lookup(lookup)? else {
        return Ok(None);
    };
    if workos_too {
        return Err(Error::Config(format!(
            "both {API_KEY_VAR} and {TRANSIT_KEY_VAR} are set; unset one to choose WorkOS or \
             Transit"
        )));
    }
    let service = builder.build()?;
    tracing::info!(
        backend = "transit",
        address = service.address(),
        key = service.key_name(),
        "vault key service chosen"
    );
    Ok(Some(Backend {
        description: format!(
            "Transit at {}, key {}",
            service.address(),
            service.key_name()
        ),
        service: Arc::new(service.clone()),
        objects: None,
        kind: BackendKind::Transit,
        keyring: None,
        created_keyring: false,
        transit: Some(service),
    }))
}

#[cfg(feature = "http")]
fn http_backend(api_key: String, base_url: Option<String>) -> Result<Backend, Error> {
    let mut builder = vault_api::HttpKeyService::builder().api_key(api_key);
    if let Some(url) = &base_url {
        builder = builder.base_url(url.trim());
    }
    let service = builder.build()?;
    let base_url = base_url
        .as_deref()
        .map_or("https://api.workos.com", str::trim);
    tracing::info!(backend = "workos", base_url, "vault key service chosen");
    Ok(Backend {
        description: format!("WorkOS at {base_url}"),
        service: Arc::new(service.clone()),
        objects: Some(Arc::new(service)),
        kind: BackendKind::WorkOs,
        keyring: None,
        created_keyring: false,
        #[cfg(feature = "transit")]
        transit: None,
    })
}

#[cfg(not(feature = "http"))]
fn http_backend(_api_key: String, _base_url: Option<String>) -> Result<Backend, Error> {
    Err(Error::Config(format!(
        "{API_KEY_VAR} is set but this build of `vault` has no `http` feature; enable it or unset {API_KEY_VAR}"
    )))
}

/// `WORKOS_VAULT_KEYRING`, or `keyring.json` in the platform data directory.
/// `WORKOS_VAULT_KEYRING` set but blank is an error.
pub fn keyring_path() -> Result<PathBuf, Error> {
    match var(KEYRING_VAR, &|name| std::env::var(name).ok())? {
        Some(path) => Ok(PathBuf::from(path)),
        None => default_keyring_path(),
    }
}

/// `keyring.json` in the platform data directory.
fn default_keyring_path() -> Result<PathBuf, Error> {
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
