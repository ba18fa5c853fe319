//! `workos-vault object ...`: WorkOS Vault's objects (key-value) API from the
//! command line, over the service `vault::objects_for` picks on the command's backend (WorkOS
//! with `WORKOS_API_KEY`, else the local store beside the keyring or at
//! `WORKOS_VAULT_DATABASE_URL`). Values are read from stdin or
//! `--value-file`, never from an argument (arguments end up in shell
//! history and `ps`). Every answer is JSON on stdout.

use std::path::PathBuf;

use clap::Subcommand;
use vault::object::{
    CreateObjectRequest, ListObjectsOptions, ObjectName, Order, UpdateObjectRequest,
};
use zeroize::Zeroizing;

use crate::cli::ContextArgs;
use crate::failure::Failure;
use crate::io::{read_input, write_json, Limit};

/// The objects commands.
#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Store a new object; its value is read from stdin or --value-file.
    Create {
        /// The object's unique name (at most 200 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        context: ContextArgs,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
    /// Print an object with its value, by id or by --name.
    Get {
        /// The object id.
        #[arg(required_unless_present = "name", conflicts_with = "name")]
        id: Option<String>,
        /// Read by name instead.
        #[arg(long)]
        name: Option<String>,
    },
    /// List objects (ids, names, change times).
    List {
        /// Objects per page (1 to 100; default 10).
        #[arg(long)]
        limit: Option<u32>,
        /// The page before this cursor.
        #[arg(long, conflicts_with = "after")]
        before: Option<String>,
        /// The page after this cursor.
        #[arg(long)]
        after: Option<String>,
        /// asc (oldest first) or desc (the default).
        #[arg(long, value_parser = ["asc", "desc"])]
        order: Option<String>,
        /// Only names containing this text (case-sensitive).
        #[arg(long)]
        search: Option<String>,
        /// Only objects changed after this RFC 3339 time.
        #[arg(long)]
        updated_after: Option<String>,
    },
    /// Write a new version; the value is read from stdin or --value-file.
    Update {
        /// The object id.
        id: String,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        value_file: Option<PathBuf>,
        /// Only if this is still the current version id (else exit 7).
        #[arg(long)]
        version_check: Option<String>,
    },
    /// Delete an object and all its versions.
    Delete {
        /// The object id.
        id: String,
        /// Only if this is still the current version id (else exit 7).
        #[arg(long)]
        version_check: Option<String>,
    },
    /// List an object's versions, newest first.
    Versions {
        /// The object id.
        id: String,
    },
    /// Print an object's name and metadata, without its value.
    Describe {
        /// The object id.
        id: String,
    },
}

/// The most of a value read from a pipe: far above any store's value
/// limit (ours is 512 KiB), so a larger input is refused before it fills
/// memory, and the store names its own limit for the rest.
const MAX_VALUE_INPUT: u64 = 16 << 20;

/// The value from `file` or stdin, which must be UTF-8; kept exactly as
/// read (a trailing newline is part of the value).
fn read_value(file: Option<PathBuf>) -> Result<Zeroizing<String>, Failure> {
    let bytes = Zeroizing::new(read_input(file.as_deref(), Limit::new(MAX_VALUE_INPUT))?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::input("the value is not UTF-8 text".to_owned()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn name(text: String) -> Result<ObjectName, Failure> {
    ObjectName::new(text).map_err(|e| Failure::input(e.to_string()))
}

/// Runs one objects command.
pub fn run(command: ObjectCommand) -> Result<(), Failure> {
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        // Only commands that store a value mint data keys: only they may
        // create the keyring.
        let mints = matches!(
            command,
            ObjectCommand::Create { .. } | ObjectCommand::Update { .. }
        );
        let objects = vault::objects_for(crate::cli::backend(mints)?).await?;
        match command {
            ObjectCommand::Create {
                name: object_name,
                context,
                value_file,
            } => {
                let context = context.parse()?;
                let value = read_value(value_file)?;
                let request = CreateObjectRequest::new(name(object_name)?, value.as_str(), context);
                write_json(&objects.create_object(&request).await?)
            }
            ObjectCommand::Get { id, name } => {
                let object = match (id, name) {
                    (_, Some(name)) => objects.read_object_by_name(&name).await?,
                    (Some(id), None) => objects.read_object(&id).await?,
                    (None, None) => {
                        return Err(Failure::input("give an object id or --name".to_owned()))
                    }
                };
                write_json(&object)
            }
            ObjectCommand::List {
                limit,
                before,
                after,
                order,
                search,
                updated_after,
            } => {
                let mut options = ListObjectsOptions::new();
                options.limit = limit;
                options.before = before;
                options.after = after;
                options.order = order.map(|o| if o == "asc" { Order::Asc } else { Order::Desc });
                options.search = search;
                options.updated_after = updated_after;
                write_json(&objects.list_objects(&options).await?)
            }
            ObjectCommand::Update {
                id,
                value_file,
                version_check,
            } => {
                let value = read_value(value_file)?;
                let mut request = UpdateObjectRequest::new(value.as_str());
                request.version_check = version_check;
                write_json(&objects.update_object(&id, &request).await?)
            }
            ObjectCommand::Delete { id, version_check } => {
                write_json(&objects.delete_object(&id, version_check.as_deref()).await?)
            }
            ObjectCommand::Versions { id } => write_json(&objects.list_object_versions(&id).await?),
            ObjectCommand::Describe { id } => write_json(&objects.describe_object(&id).await?),
        }
    })
}
