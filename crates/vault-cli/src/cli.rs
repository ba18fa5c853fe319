//! Arguments and the commands behind them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vault::env::{backend_from_env, EnvOptions};
use vault::{
    wire, DataKey, DecryptOptions, EncryptOptions, KeyContext, Keyring, Layout, LocalKeyService,
    Sdk, Vault, HEAD_ROOM,
};

use crate::failure::Failure;
use crate::io::{
    read_envelope, read_plaintext, read_text, write_base64_line, write_json, write_line,
    write_stdout, Limit, DEFAULT_MAX_INPUT_BYTES,
};

/// `WORKOS_VAULT_DATA_KEY`: the base64 data key of `workos-vault decrypt`, instead
/// of `--data-key-file` (not an argument: arguments show in `ps`).
pub const DATA_KEY_VAR: &str = "WORKOS_VAULT_DATA_KEY";

/// Envelope encryption with WorkOS Vault's key API, or offline with a local
/// keyring.
///
/// With WORKOS_API_KEY set, data keys come from WorkOS (WORKOS_BASE_URL
/// overrides the API address); with WORKOS_VAULT_TRANSIT_KEY, from OpenBao or
/// HashiCorp Vault Transit. Otherwise they come from the local keyring at
/// WORKOS_VAULT_KEYRING, or in the platform data directory. A variable set but
/// empty is an error. Only encrypt, data-key create, serve and keyring init
/// create a missing keyring (and say so on stderr); the others exit 2.
///
/// Exit codes: 0 success; 1 authentication or decryption failure; 2 usage
/// error or bad input; 3 key service unreachable; 4 local system failure
/// (cannot start, listen, write output or the keyring file); 5 `migrate`
/// could not convert some records (written back unchanged, listed on
/// stderr); 6 object not found; 7 object conflict (name taken, stale
/// --version-check).
///
/// RUST_LOG=info shows the backend chosen and the key service's retries.
#[derive(Debug, Parser)]
#[command(name = "workos-vault", version)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Most bytes read from input of unknown size (a pipe, FIFO or device;
    /// regular files are sized first); more is refused with exit 2 before
    /// any output. Default 1 GiB.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
}

impl Args {
    /// Whether the command's result is its stdout, lost if stdout is gone:
    /// not `serve` (it logs on stderr), nor the `keyring` commands, whose
    /// JSON only describes what they did (a script may discard it with a
    /// read-write `/dev/null`, as Python's `subprocess.DEVNULL` gives).
    pub fn output_is_the_result(&self) -> bool {
        !matches!(self.command, Command::Serve(_) | Command::Keyring(_))
    }
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
            if context.get(name).is_some() {
                return Err(Failure::input(format!(
                    "--context {name:?} is given twice; give each name once"
                )));
            }
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
        /// Decrypt offline with the base64 data key in FILE (`-` is not
        /// stdin here: stdin holds the ciphertext); no key service call.
        /// WORKOS_VAULT_DATA_KEY may hold the key instead.
        #[arg(long, value_name = "FILE")]
        data_key_file: Option<PathBuf>,
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
    /// Serve WorkOS's key endpoints over the backend the environment selects
    /// (the local keyring, or Transit when WORKOS_VAULT_TRANSIT_KEY is set).
    Serve(crate::serve::ServeArgs),
    /// Move stored ciphertexts to another SDK's layout, key context or key
    /// service, in bulk.
    Migrate(crate::migrate::MigrateArgs),
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

/// The vault over the key service the environment chooses. Only commands
/// that mint keys pass `create`: the others never make a keyring (one made
/// by mistake would hold keys nothing else has).
pub(crate) fn vault_from_env(create: bool) -> Result<Vault, Failure> {
    Ok(Vault::builder()
        .shared_key_service(backend(create)?.into_service())
        .build()?)
}

/// The backend the environment chooses, as every command sees it: the
/// default keyring when nothing else is configured, created only when
/// `create` (and then said once on stderr).
pub(crate) fn backend(create: bool) -> Result<vault::env::Backend, Failure> {
    let options = EnvOptions::new()
        .default_keyring(true)
        .create_keyring(create);
    let backend = backend_from_env(options)?;
    if let Some(path) = backend.keyring_path().filter(|_| backend.created_keyring()) {
        crate::note(&created_keyring_line(path));
    }
    Ok(backend)
}

/// The one stderr line of a command that created the keyring.
pub(crate) fn created_keyring_line(path: &std::path::Path) -> String {
    format!(
        "workos-vault: created a new keyring at {}; back it up: what it encrypts cannot be decrypted \
         without it",
        path.display()
    )
}

/// Runs one command.
pub fn run(args: Args) -> Result<(), Failure> {
    let limit = Limit::new(args.max_input_bytes);
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
            limit,
        ),
        Command::Decrypt {
            file,
            aad,
            data_key_file,
            layout,
        } => decrypt(file, aad, data_key_file, layout, limit),
        Command::Inspect { file } => {
            let inspection = vault::inspect(&read_text(file.as_deref(), limit)?)?;
            write_json(&inspection)
        }
        Command::DataKey(DataKeyCommand::Create { context }) => {
            let context = context.parse()?;
            let pair = runtime()?.block_on(vault_from_env(true)?.create_data_key(&context))?;
            write_json(&wire::DataKeyResponse::from(pair))
        }
        Command::DataKey(DataKeyCommand::Decrypt { keys }) => {
            let text = match keys {
                Some(keys) => keys.trim().to_owned(),
                None => read_text(None, limit)?,
            };
            let vault = vault_from_env(false)?;
            let key = runtime()?.block_on(vault.decrypt_data_key_base64(&text))?;
            write_json(&wire::DecryptDataKeyResponse::from(&key))
        }
        Command::Rekey { file, context } => {
            let context = context.parse()?;
            // Read first: in a pipe, the command before may still be
            // creating the keyring.
            let text = read_text(file.as_deref(), limit)?;
            let vault = vault_from_env(false)?;
            write_line(&runtime()?.block_on(vault.rekey(&text, &context))?)
        }
        Command::Keyring(command) => keyring(command),
        Command::Serve(args) => crate::serve::run(args),
        Command::Migrate(args) => crate::migrate::run(args),
        Command::Object(command) => crate::object::run(command),
    }
}

fn encrypt(
    file: Option<PathBuf>,
    context: &KeyContext,
    aad: Option<String>,
    layout: Layout,
    limit: Limit,
) -> Result<(), Failure> {
    let mut buf = read_plaintext(file.as_deref(), limit)?;
    let vault = vault_from_env(true)?;
    let options = EncryptOptions::new()
        .aad(aad.as_deref().unwrap_or_default().as_bytes())
        .layout(layout);
    let start =
        runtime()?.block_on(vault.encrypt_in_place(&mut buf, HEAD_ROOM, context, &options))?;
    // Sealed in place, the buffer holds no plaintext any more: it is freed
    // without the wiping pass a plaintext needs (a failed seal wipes it).
    let sealed = std::mem::take(&mut *buf);
    write_base64_line(&sealed[start..])
}

fn decrypt(
    file: Option<PathBuf>,
    aad: Option<String>,
    data_key_file: Option<PathBuf>,
    layout: Option<Layout>,
    limit: Limit,
) -> Result<(), Failure> {
    let mut options = DecryptOptions::new().aad(aad.as_deref().unwrap_or_default().as_bytes());
    if let Some(layout) = layout {
        options = options.layout(layout);
    }
    // Read before the input: a bad key is refused without touching it.
    let data_key = offline_data_key(data_key_file)?;
    let mut buf = read_envelope(file.as_deref(), limit)?;
    match data_key {
        Some(key) => vault::decrypt_in_place_with_data_key(&mut buf, &key, &options)?,
        None => {
            // Opened only now, after the input is read: in the README's
            // `encrypt | decrypt` pipe, encrypt creates the keyring first.
            let vault = vault_from_env(false)?;
            runtime()?.block_on(vault.decrypt_in_place(&mut buf, &options))?;
        }
    }
    write_stdout(&buf)
}

/// The data key of `--data-key-file`, or of `WORKOS_VAULT_DATA_KEY`; never
/// an argument, which `ps` and shell history would show.
fn offline_data_key(file: Option<PathBuf>) -> Result<Option<DataKey>, Failure> {
    let from_env = match std::env::var(DATA_KEY_VAR) {
        Ok(text) if text.trim().is_empty() => {
            return Err(Failure::input(format!(
                "{DATA_KEY_VAR} is set but empty; set it to a base64 data key or unset it"
            )))
        }
        Ok(text) => Some(zeroize::Zeroizing::new(text)),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Failure::input(format!("{DATA_KEY_VAR} is not base64")))
        }
    };
    let (text, origin) = match (file, from_env) {
        (Some(_), Some(_)) => {
            return Err(Failure::input(format!(
                "both --data-key-file and {DATA_KEY_VAR} are set; give the data key once"
            )))
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Failure::input(format!(
                    "cannot read --data-key-file {}: {e}",
                    path.display()
                ))
            })?;
            (zeroize::Zeroizing::new(text), "--data-key-file".to_owned())
        }
        (None, Some(text)) => (text, DATA_KEY_VAR.to_owned()),
        (None, None) => return Ok(None),
    };
    DataKey::from_base64("offline", text.trim())
        .map(Some)
        .map_err(|e| Failure::input(format!("{origin}: {e}")))
}

fn keyring(command: KeyringCommand) -> Result<(), Failure> {
    let path = vault::keyring_path()?;
    let service = match command {
        // The one keyring command that may create the file.
        KeyringCommand::Init => match LocalKeyService::open(&path) {
            Ok(service) => service,
            Err(_) if !path.exists() => {
                let keyring = Keyring::open_or_create(&path)?;
                crate::note(&created_keyring_line(&path));
                LocalKeyService::new(keyring)
            }
            Err(error) => return Err(error.into()),
        },
        KeyringCommand::Rotate | KeyringCommand::Show => LocalKeyService::open(&path)?,
    };
    if let KeyringCommand::Rotate = command {
        service.rotate()?;
    }
    write_json(&service.keyring_info())
}
