//! Arguments and the commands behind them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;
use vault::{ErrorKind, KeyContext, Layout, LocalKeyService, Vault};
use vault_crypto::DataKey;
use vault_format::{b64, Envelope};

use crate::io::{read_input, read_text, write_json, write_line, write_stdout};

/// Envelope encryption with WorkOS Vault's key API, or offline with a local
/// keyring.
///
/// With WORKOS_API_KEY set, data keys come from WorkOS (WORKOS_BASE_URL
/// overrides the API address). Otherwise they come from the local keyring
/// at VAULT_KEYRING, or in the platform data directory.
///
/// Exit codes: 0 success; 1 authentication or decryption failure; 2 usage
/// error or bad input; 3 key service unreachable.
#[derive(Debug, Parser)]
#[command(name = "vault", version)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The repeatable `--context NAME=VALUE` of every command that wraps keys.
#[derive(Debug, clap::Args)]
struct ContextArgs {
    /// A key context entry, `name=value`; repeat for more.
    #[arg(
        long = "context",
        short = 'c',
        value_name = "NAME=VALUE",
        required = true
    )]
    entries: Vec<String>,
}

impl ContextArgs {
    fn parse(&self) -> Result<KeyContext, Failure> {
        let mut context = KeyContext::new();
        for entry in &self.entries {
            let (name, value) = entry.split_once('=').ok_or_else(|| {
                Failure::input(format!(
                    "--context {entry:?} must be NAME=VALUE, such as organization_id=org_123"
                ))
            })?;
            context
                .insert(name, value)
                .map_err(|e| Failure::input(e.to_string()))?;
        }
        Ok(context)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encrypt FILE (or stdin) under a fresh data key; print base64.
    Encrypt {
        /// Input file; stdin when absent or `-`.
        file: Option<PathBuf>,
        #[command(flatten)]
        context: ContextArgs,
        /// Associated data to bind; decrypt needs the same.
        #[arg(long)]
        aad: Option<String>,
        /// Layout to write: A12 (default), B, A32 or A-prime.
        #[arg(long, default_value = "A12")]
        layout: Layout,
    },
    /// Decrypt a base64 ciphertext from FILE (or stdin); write the plaintext.
    Decrypt {
        /// Input file; stdin when absent or `-`.
        file: Option<PathBuf>,
        /// The associated data given at encryption.
        #[arg(long)]
        aad: Option<String>,
        /// Decrypt offline with this base64 data key; no key service call.
        #[arg(long, value_name = "B64")]
        data_key: Option<String>,
        /// Read the ciphertext as this layout instead of detecting it.
        #[arg(long)]
        layout: Option<Layout>,
    },
    /// Describe a ciphertext as JSON, offline.
    Inspect {
        /// Input file; stdin when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Create or decrypt data keys; prints JSON shaped like the API's.
    #[command(name = "data-key", subcommand)]
    DataKey(DataKeyCommand),
    /// Rewrap a ciphertext's data key under a new context.
    Rekey {
        /// Input file; stdin when absent or `-`.
        file: Option<PathBuf>,
        #[command(flatten)]
        context: ContextArgs,
    },
    /// Manage the local keyring (never prints key material).
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Serve WorkOS's key endpoints over the local keyring.
    Serve(crate::serve::ServeArgs),
}

#[derive(Debug, Subcommand)]
enum DataKeyCommand {
    /// Create a data key for a context.
    Create {
        #[command(flatten)]
        context: ContextArgs,
    },
    /// Decrypt an `encrypted_keys` blob (base64) from KEYS, FILE or stdin.
    Decrypt {
        /// The base64 blob; read from stdin when absent.
        keys: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyringCommand {
    /// Create the keyring if it does not exist.
    Init,
    /// Add a new master key version; older versions still unwrap.
    Rotate,
    /// Show the keyring's path and versions.
    Show,
}

/// A failed command: the one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// Exit code 2: bad input or usage.
    pub fn input(message: String) -> Self {
        Failure { message, code: 2 }
    }
}

impl From<vault::Error> for Failure {
    fn from(error: vault::Error) -> Self {
        let code = match &error {
            vault::Error::Decrypt => 1,
            vault::Error::KeyService(e) => key_service_code(e),
            _ => 2,
        };
        Failure {
            message: one_line(&error),
            code,
        }
    }
}

impl From<vault_api::Error> for Failure {
    fn from(error: vault_api::Error) -> Self {
        Failure {
            code: key_service_code(&error),
            message: one_line(&error),
        }
    }
}

impl From<vault_crypto::Error> for Failure {
    fn from(error: vault_crypto::Error) -> Self {
        vault::Error::from(error).into()
    }
}

impl From<vault_format::Error> for Failure {
    fn from(error: vault_format::Error) -> Self {
        vault::Error::from(error).into()
    }
}

fn key_service_code(error: &vault_api::Error) -> u8 {
    match error.kind() {
        ErrorKind::Unauthorized | ErrorKind::InvalidKeys => 1,
        ErrorKind::Connect | ErrorKind::Timeout => 3,
        ErrorKind::Api if error.status().is_some_and(|s| s >= 500) => 3,
        ErrorKind::Api | ErrorKind::InvalidResponse => 1,
        _ => 2,
    }
}

/// The error and its causes on one line, skipping causes already quoted.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::input(format!("cannot start the async runtime: {e}")))
}

fn local_service() -> Result<LocalKeyService, Failure> {
    let path = vault::keyring_path()?;
    Ok(LocalKeyService::open(&path)?)
}

/// Runs one command.
pub fn run(args: Args) -> Result<(), Failure> {
    match args.command {
        Command::Encrypt {
            file,
            context,
            aad,
            layout,
        } => {
            let context = context.parse()?;
            let plaintext = zeroize::Zeroizing::new(read_input(file.as_deref())?);
            let vault = Vault::builder()
                .shared_key_service(Vault::from_env()?.key_service().clone())
                .layout(layout)
                .build()?;
            let aad = aad.as_deref().map(str::as_bytes);
            let ciphertext = runtime()?.block_on(vault.encrypt(&*plaintext, &context, aad))?;
            write_line(&ciphertext)
        }
        Command::Decrypt {
            file,
            aad,
            data_key,
            layout,
        } => {
            let text = read_text(file.as_deref())?;
            let aad = aad.as_deref().map(str::as_bytes).unwrap_or_default();
            let plaintext = zeroize::Zeroizing::new(match (data_key, layout) {
                (Some(key), layout) => {
                    let key = DataKey::from_base64("offline", &key)
                        .map_err(|e| Failure::input(format!("--data-key: {e}")))?;
                    let bytes = b64::decode(&text)?;
                    let envelope = match layout {
                        Some(layout) => Envelope::parse_as(&bytes, layout)?,
                        None => Envelope::parse(&bytes)?,
                    };
                    vault_crypto::open(&key, &envelope, aad)?
                }
                (None, layout) => {
                    let vault = Vault::from_env()?;
                    let runtime = runtime()?;
                    match layout {
                        None => runtime.block_on(vault.decrypt(&text, Some(aad)))?,
                        Some(layout) => {
                            let bytes = b64::decode(&text)?;
                            let envelope = Envelope::parse_as(&bytes, layout)?;
                            let keys = envelope.encrypted_keys()?;
                            let key = runtime.block_on(vault.decrypt_data_key(&keys))?;
                            vault_crypto::open(&key, &envelope, aad)?
                        }
                    }
                }
            });
            write_stdout(&plaintext)
        }
        Command::Inspect { file } => {
            let text = read_text(file.as_deref())?;
            let inspection = Vault::inspect(&text)?;
            let value = serde_json::to_value(&inspection)
                .map_err(|e| Failure::input(format!("cannot format JSON: {e}")))?;
            write_json(&value)
        }
        Command::DataKey(DataKeyCommand::Create { context }) => {
            let context = context.parse()?;
            let vault = Vault::from_env()?;
            let pair = runtime()?.block_on(vault.create_data_key(&context))?;
            write_json(&json!({
                "context": pair.context,
                "data_key": *pair.data_key.secret_base64(),
                "encrypted_keys": pair.encrypted_keys_base64(),
                "id": pair.id(),
            }))
        }
        Command::DataKey(DataKeyCommand::Decrypt { keys }) => {
            let text = match keys {
                Some(keys) => keys.trim().to_owned(),
                None => read_text(None)?,
            };
            let blob = b64::decode(&text)?;
            let vault = Vault::from_env()?;
            let key = runtime()?.block_on(vault.decrypt_data_key(&blob))?;
            write_json(&json!({ "data_key": *key.secret_base64(), "id": key.id() }))
        }
        Command::Rekey { file, context } => {
            let context = context.parse()?;
            let text = read_text(file.as_deref())?;
            let vault = Vault::from_env()?;
            let rekeyed = runtime()?.block_on(vault.rekey(&text, &context))?;
            write_line(&rekeyed)
        }
        Command::Keyring(command) => keyring(command),
        Command::Serve(args) => crate::serve::run(args),
    }
}

fn keyring(command: KeyringCommand) -> Result<(), Failure> {
    let service = local_service()?;
    if let KeyringCommand::Rotate = command {
        service.rotate()?;
    }
    let info = serde_json::to_value(service.keyring_info())
        .map_err(|e| Failure::input(format!("cannot format JSON: {e}")))?;
    write_json(&info)
}
