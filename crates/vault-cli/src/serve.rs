//! `workos-vault serve`: WorkOS's key endpoints over the local keyring, or over a
//! Transit engine when `WORKOS_VAULT_TRANSIT_KEY` is set, and the objects API over
//! a store beside the keyring (`objects.db`, SQLite) or in
//! `WORKOS_VAULT_DATABASE_URL` (PostgreSQL for several replicas).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use vault::env::{backend_from_env, BackendKind, EnvOptions};
use vault_server::{Metrics, ServerConfig, TlsConfig};

use crate::failure::Failure;

/// Options of `workos-vault serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Binds to loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A file with the API keys clients must send as `Authorization:
    /// Bearer KEY`, one per line (blank lines and `#` comments skipped).
    /// WORKOS_VAULT_SERVER_API_KEY may hold one more. Keys are never arguments:
    /// `ps` and shell history would show them.
    #[arg(long, visible_alias = "api-key-file", value_name = "FILE")]
    api_keys_file: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most connections one client IP address may hold at once (loopback
    /// included); further ones are closed on accept. Raise it behind a
    /// proxy that funnels many clients through one address.
    #[arg(long, default_value_t = 256)]
    max_connections_per_peer: usize,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs
    /// --tls-key. SIGHUP reloads both files.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (no authentication:
    /// keep it on an internal address).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Do not write the access log (one JSON line per request on stderr).
    #[arg(long)]
    no_access_log: bool,
}

/// Runs the server until ctrl-c or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let keys = api_keys(&args)?;
    check_api_keys(&keys)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key).map_err(|e| {
            Failure::input(format!("cannot load the TLS certificate and key: {e}"))
        })?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::system(format!("cannot start the async runtime: {e}")))?;
    let backend = runtime.block_on(backend())?;
    let metrics = Metrics::new();
    let mut config = ServerConfig::new()
        .api_keys(keys)
        .max_body_bytes(args.max_body_bytes)
        .max_connections(args.max_connections)
        .max_connections_per_peer(args.max_connections_per_peer)
        .metrics(metrics.clone());
    if let Some(keyring) = &backend.keyring {
        config = config.readiness(readiness(keyring.clone()));
    }
    // The objects API, over a store whose values this key service seals.
    let objects = runtime.block_on(vault::object_store_from_env(backend.service.clone()))?;
    let objects_backend = objects.backend().as_str();
    config = config.objects(Arc::new(objects));
    if !args.no_access_log {
        // Written by a thread of its own: a stalled stderr drops lines
        // (counted in the metrics), it never stalls serving.
        config = config.access_log(std::io::stderr());
    }
    if tls.is_none() && !args.listen.ip().is_loopback() {
        eprintln!(
            "workos-vault: warning: listening on {} without TLS: API keys and data keys cross the \
             network in clear; pass --tls-cert and --tls-key, or listen on 127.0.0.1",
            args.listen
        );
    }
    if let Some(tls) = &tls {
        config = config.tls(tls.clone());
    }
    let served = runtime.block_on(async {
        let listener = bind(args.listen).await?;
        let address = listener.local_addr().unwrap_or(args.listen);
        let _metrics = match args.metrics_listen {
            Some(at) => Some(spawn_metrics(at, metrics).await?),
            None => None,
        };
        let _reload = tls.map(|tls| tokio::spawn(tls.reload_on_sighup(report_reload)));
        let scheme = if args.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        // The one line scripts wait for: where to point SDKs.
        crate::note(&format!(
            "workos-vault: serving WorkOS key endpoints on {scheme}://{address} ({}; objects in {objects_backend})",
            backend.description
        ));
        vault_server::serve_with_shutdown(
            listener,
            backend.service,
            config,
            vault_server::shutdown_signal(),
        )
        .await
        .map_err(|e| Failure::system(format!("server failed: {e}")))
    });
    // A certificate reload stuck on a hung file must not hold up the exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    served
}

/// How long the exit waits for blocking work still running.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// The shortest API key `workos-vault serve` accepts.
const MIN_API_KEY_CHARS: usize = 16;

/// Refuses API keys short enough to guess.
fn check_api_keys(keys: &[String]) -> Result<(), Failure> {
    if keys
        .iter()
        .any(|key| key.chars().count() < MIN_API_KEY_CHARS)
    {
        return Err(Failure::input(format!(
            "an API key is shorter than {MIN_API_KEY_CHARS} characters, short enough to guess; \
             use a long random one (for example: openssl rand -hex 24)"
        )));
    }
    Ok(())
}

/// The key service behind the server, chosen by the environment.
struct Backend {
    service: Arc<dyn vault::KeyService>,
    /// What the startup line names.
    description: String,
    /// The keyring file, for the readiness probe; `None` over Transit.
    keyring: Option<PathBuf>,
}

/// The backend `vault::env::backend_from_env` chooses (the library's and
/// every command's choice), checked before serving: Transit must answer
/// (a wrong token exits 1, an unreachable or sealed engine 3); WorkOS is
/// refused, since serving WorkOS's endpoints over WorkOS would only relay.
async fn backend() -> Result<Backend, Failure> {
    let options = EnvOptions::new().default_keyring(true).create_keyring(true);
    let backend = backend_from_env(options)?;
    if backend.kind() == BackendKind::WorkOs {
        return Err(Failure::input(format!(
            "workos-vault serve serves a local keyring or Transit, not WorkOS; unset {} (or use \
             WorkOS directly)",
            vault::API_KEY_VAR
        )));
    }
    backend.check().await?;
    if let Some(path) = backend.keyring_path().filter(|_| backend.created_keyring()) {
        crate::note(&crate::cli::created_keyring_line(path));
    }
    Ok(Backend {
        description: backend.description().to_owned(),
        keyring: backend.keyring_path().map(Path::to_owned),
        service: backend.into_service(),
    })
}

/// `WORKOS_VAULT_SERVER_API_KEY`: one API key of `workos-vault serve`, besides
/// `--api-keys-file`.
const API_KEY_VAR: &str = "WORKOS_VAULT_SERVER_API_KEY";

/// The keys of `WORKOS_VAULT_SERVER_API_KEY` and `--api-keys-file`; at least one.
fn api_keys(args: &ServeArgs) -> Result<Vec<String>, Failure> {
    let mut keys = Vec::new();
    match std::env::var(API_KEY_VAR) {
        Ok(key) if key.trim().is_empty() => {
            return Err(Failure::input(format!(
                "{API_KEY_VAR} is set but empty; set it to an API key or unset it"
            )))
        }
        Ok(key) => keys.push(key.trim().to_owned()),
        Err(std::env::VarError::NotPresent) => {}
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Failure::input(format!("{API_KEY_VAR} is not valid UTF-8")))
        }
    }
    if let Some(path) = &args.api_keys_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if keys.is_empty() {
        return Err(Failure::input(format!(
            "workos-vault serve needs at least one API key: set {API_KEY_VAR} or pass \
                 --api-keys-file FILE"
        )));
    }
    Ok(keys)
}

/// Ready while the keyring file can be read and parsed (not created: a
/// keyring deleted under a running server is a fault to report).
fn readiness(keyring: PathBuf) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    move || {
        vault::Keyring::open(&keyring)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::system(format!("cannot listen on {address}: {e}")))
}

/// Serves the metrics at `address` until the runtime ends.
async fn spawn_metrics(
    address: SocketAddr,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, Failure> {
    let listener = bind(address).await?;
    let bound = listener.local_addr().unwrap_or(address);
    crate::note(&format!(
        "workos-vault: serving metrics on http://{bound}/metrics"
    ));
    Ok(tokio::spawn(vault_server::serve_metrics(listener, metrics)))
}

fn report_reload(outcome: std::io::Result<()>) {
    match outcome {
        Ok(()) => crate::note("workos-vault: SIGHUP: reloaded the TLS certificate"),
        Err(e) => crate::note(&format!(
            "workos-vault: SIGHUP: kept the TLS certificate in use: {e}"
        )),
    }
}
