//! Arguments and the commands behind them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vault::{wire, DataKey, KeyContext, Layout, LocalKeyService, Sdk, Vault, HEAD_ROOM};

use crate::failure::Failure;
use crate::io::{
    read_envelope, read_plaintext, read_text, write_base64_line, write_json, write_line,
    write_stdout,
};

/// Envelope encryption with WorkOS Vault's key API, or offline with a local
/// keyring.
///
/// With WORKOS_API_KEY set, data keys come from WorkOS (WORKOS_BASE_URL
/// overrides the API address). Otherwise they come from the local keyring
/// at VAULT_KEYRING, or in the platform data directory.
///
/// Exit codes: 0 success; 1 authentication or decryption failure; 2 usage
/// error or bad input; 3 key service unreachable; 4 local system failure
/// (cannot start, listen or write output); 5 object not found; 6 object
/// conflict (name taken, stale --version-check).
#[derive(Debug, Parser)]
#[command(name = "vault", version)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The repeatable `--context NAME=VALUE` of every command that wraps keys.
#[derive(Debug, clap::Args)]
pub(crate) struct ContextArgs {
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
    pub(crate) fn parse(&self) -> Result<KeyContext, Failure> {
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
        /// Write what this official SDK reads instead: node, go, python,
        /// ruby, php, kotlin, dotnet, rust, swift, optionally @VERSION
        /// (go@6, node@7.47).
        #[arg(long = "for", value_name = "SDK", conflicts_with = "layout")]
        sdk: Option<Sdk>,
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
    /// Store, read, list, update and delete objects (WorkOS Vault's
    /// key-value API); values come from stdin or --value-file.
    #[command(subcommand)]
    Object(crate::object::ObjectCommand),
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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::system(format!("cannot start the async runtime: {e}")))
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
            sdk,
        } => encrypt(
            file,
            &context.parse()?,
            aad,
            sdk.map_or(layout, |s| s.layout()),
        ),
        Command::Decrypt {
            file,
            aad,
            data_key,
            layout,
        } => decrypt(file, aad, data_key, layout),
        Command::Inspect { file } => {
            let inspection = Vault::inspect(&read_text(file.as_deref())?)?;
            write_json(&inspection)
        }
        Command::DataKey(DataKeyCommand::Create { context }) => {
            let context = context.parse()?;
            let pair = runtime()?.block_on(Vault::from_env()?.create_data_key(&context))?;
            write_json(&wire::DataKeyResponse::from(pair))
        }
        Command::DataKey(DataKeyCommand::Decrypt { keys }) => {
            let text = match keys {
                Some(keys) => keys.trim().to_owned(),
                None => read_text(None)?,
            };
            let vault = Vault::from_env()?;
            let key = runtime()?.block_on(vault.decrypt_data_key_base64(&text))?;
            write_json(&wire::DecryptDataKeyResponse::from(&key))
        }
        Command::Rekey { file, context } => {
            let context = context.parse()?;
            let text = read_text(file.as_deref())?;
            let vault = Vault::from_env()?;
            write_line(&runtime()?.block_on(vault.rekey(&text, &context))?)
        }
        Command::Keyring(command) => keyring(command),
        Command::Serve(args) => crate::serve::run(args),
        Command::Object(command) => crate::object::run(command),
    }
}

fn encrypt(
    file: Option<PathBuf>,
    context: &KeyContext,
    aad: Option<String>,
    layout: Layout,
) -> Result<(), Failure> {
    let mut buf = read_plaintext(file.as_deref())?;
    let vault = Vault::from_env()?.with_layout(layout);
    let aad = aad.as_deref().map(str::as_bytes);
    let start = runtime()?.block_on(vault.encrypt_in_place(&mut buf, HEAD_ROOM, context, aad))?;
    // Sealed in place, the buffer holds no plaintext any more: it is freed
    // without the wiping pass a plaintext needs (a failed seal wipes it).
    let sealed = std::mem::take(&mut *buf);
    write_base64_line(&sealed[start..])
}

fn decrypt(
    file: Option<PathBuf>,
    aad: Option<String>,
    data_key: Option<String>,
    layout: Option<Layout>,
) -> Result<(), Failure> {
    let aad = aad.as_deref().map(str::as_bytes);
    // Parsed before reading: a bad key is refused without touching input.
    let data_key = data_key
        .map(|key| {
            DataKey::from_base64("offline", &key)
                .map_err(|e| Failure::input(format!("--data-key: {e}")))
        })
        .transpose()?;
    let mut buf = read_envelope(file.as_deref())?;
    match data_key {
        Some(key) => Vault::decrypt_in_place_with_data_key(&mut buf, &key, layout, aad)?,
        None => {
            let vault = Vault::from_env()?;
            runtime()?.block_on(vault.decrypt_in_place(&mut buf, layout, aad))?;
        }
    }
    write_stdout(&buf)
}

fn keyring(command: KeyringCommand) -> Result<(), Failure> {
    let service = local_service()?;
    if let KeyringCommand::Rotate = command {
        service.rotate()?;
    }
    write_json(&service.keyring_info())
}
