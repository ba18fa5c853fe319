//! `vault serve`: WorkOS's key endpoints over the local keyring, or over a
//! Transit engine when `VAULT_TRANSIT_KEY` is set, and the objects API over
//! a store beside the keyring (`objects.db`, SQLite) or in
//! `WORKOS_VAULT_DATABASE_URL` (PostgreSQL for several replicas).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vault::LocalKeyService;
use vault_server::{Metrics, ServerConfig, TlsConfig};

use crate::failure::Failure;

/// Options of `vault serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Binds to loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// An API key clients must send as `Authorization: Bearer KEY`;
    /// repeat for more. Also read from VAULT_SERVER_API_KEY.
    #[arg(long = "api-key", env = "VAULT_SERVER_API_KEY", hide_env_values = true)]
    api_keys: Vec<String>,
    /// A file with one API key per line (blank lines and `#` comments
    /// skipped).
    #[arg(long)]
    api_keys_file: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
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
    let backend = runtime.block_on(Backend::from_env())?;
    let metrics = Metrics::new();
    let mut config = ServerConfig::new()
        .api_keys(keys)
        .max_body_bytes(args.max_body_bytes)
        .max_connections(args.max_connections)
        .metrics(metrics.clone());
    if let Some(keyring) = &backend.keyring {
        config = config.readiness(readiness(keyring.clone()));
    }
    // The objects API, over a store whose values this key service seals.
    let objects = runtime.block_on(vault::object_store_from_env(backend.service.clone()))?;
    let objects_backend = objects.backend().as_str();
    config = config.objects(Arc::new(objects));
    if !args.no_access_log {
        config = config.access_log(std::io::stderr());
    }
    if let Some(tls) = &tls {
        config = config.tls(tls.clone());
    }
    runtime.block_on(async {
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
        eprintln!(
            "vault: serving WorkOS key endpoints on {scheme}://{address} ({}; objects in {objects_backend})",
            backend.description
        );
        vault_server::serve_with_shutdown(
            listener,
            backend.service,
            config,
            vault_server::shutdown_signal(),
        )
        .await
        .map_err(|e| Failure::system(format!("server failed: {e}")))
    })
}

/// The key service behind the server, chosen by the environment.
struct Backend {
    service: Arc<dyn vault::KeyService>,
    /// What the startup line names.
    description: String,
    /// The keyring file, for the readiness probe; `None` over Transit.
    keyring: Option<PathBuf>,
}

impl Backend {
    /// Transit when `VAULT_TRANSIT_KEY` is set (checked before serving: a
    /// wrong token exits 1, an unreachable or sealed engine 3), otherwise
    /// the local keyring.
    async fn from_env() -> Result<Backend, Failure> {
        if let Some(builder) = vault::TransitKeyServiceBuilder::from_env()? {
            let service = builder.build()?;
            service.check().await?;
            return Ok(Backend {
                description: format!(
                    "Transit at {}, key {}",
                    service.address(),
                    service.key_name()
                ),
                service: Arc::new(service),
                keyring: None,
            });
        }
        let keyring = vault::keyring_path()?;
        Ok(Backend {
            service: Arc::new(LocalKeyService::open(&keyring)?),
            description: format!("keyring {}", keyring.display()),
            keyring: Some(keyring),
        })
    }
}

/// The keys of `--api-key` and `--api-keys-file`; at least one.
fn api_keys(args: &ServeArgs) -> Result<Vec<String>, Failure> {
    let mut keys = args.api_keys.clone();
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
        return Err(Failure::input(
            "vault serve needs at least one API key: pass --api-key KEY or --api-keys-file FILE"
                .to_owned(),
        ));
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
    eprintln!("vault: serving metrics on http://{bound}/metrics");
    Ok(tokio::spawn(vault_server::serve_metrics(listener, metrics)))
}

fn report_reload(outcome: std::io::Result<()>) {
    match outcome {
        Ok(()) => eprintln!("vault: SIGHUP: reloaded the TLS certificate"),
        Err(e) => eprintln!("vault: SIGHUP: kept the TLS certificate in use: {e}"),
    }
}
