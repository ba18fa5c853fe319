//! `vault serve`: WorkOS's key endpoints over the local keyring.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vault::LocalKeyService;
use vault_server::ServerConfig;

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
}

/// Runs the server until ctrl-c or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let mut keys = args.api_keys;
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
    let keyring = vault::keyring_path()?;
    let service: Arc<dyn vault::KeyService> = Arc::new(LocalKeyService::open(&keyring)?);
    let config = ServerConfig::new()
        .api_keys(keys)
        .max_body_bytes(args.max_body_bytes)
        .max_connections(args.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::system(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Failure::system(format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener.local_addr().unwrap_or(args.listen);
        // The one line scripts wait for: where to point SDKs.
        eprintln!(
            "vault: serving WorkOS key endpoints on http://{address} (keyring {})",
            keyring.display()
        );
        vault_server::serve_with_shutdown(
            listener,
            service,
            config,
            vault_server::shutdown_signal(),
        )
        .await
        .map_err(|e| Failure::system(format!("server failed: {e}")))
    })
}
