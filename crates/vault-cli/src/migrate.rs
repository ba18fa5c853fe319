//! `workos-vault migrate`: move stored ciphertexts to the layout another SDK
//! reads, to another key context or to another key service, in bulk.
//!
//! The input is read one record at a time; batches of records go through
//! a bounded channel to one worker per core and come back in order, so
//! memory stays bounded whatever the input size. Every byte outside the
//! ciphertext (other fields and columns, spacing, key order, line endings,
//! a last line without a newline) is written back as it was.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};

use vault::{b64, Change, KeyContext, KeyService, Layout, Migration, Sdk};

use crate::failure::{one_line, Failure, PARTIAL};

/// Records per batch handed to a worker, at most.
const BATCH_RECORDS: usize = 2048;
/// Bytes per batch, at most (a single longer record is one batch).
const BATCH_BYTES: usize = 1 << 20;
/// Environment variables that configure `--to-service`.
const TO_KEYRING_VAR: &str = "WORKOS_VAULT_TO_KEYRING";
const TO_API_KEY_VAR: &str = "WORKOS_VAULT_TO_API_KEY";
const TO_BASE_URL_VAR: &str = "WORKOS_VAULT_TO_BASE_URL";
const TO_TRANSIT_ADDR_VAR: &str = "WORKOS_VAULT_TO_TRANSIT_ADDR";
const TO_TRANSIT_TOKEN_VAR: &str = "WORKOS_VAULT_TO_TRANSIT_TOKEN";
const TO_TRANSIT_KEY_VAR: &str = "WORKOS_VAULT_TO_TRANSIT_KEY";
const TO_TRANSIT_MOUNT_VAR: &str = "WORKOS_VAULT_TO_TRANSIT_MOUNT";

/// What `workos-vault migrate --help` says after the options.
const AFTER_HELP: &str = "\
Among A12, B and A-prime the conversion is offline: no key service, no
plaintext. A32 (either way), --context and --to-service use the key service
(the current one, chosen as for every command); resealing A32 and moving to
another service need each record's AAD (--aad, --aad-field, --aad-column).

A record that cannot be converted is written back unchanged and named on
stderr with its line number and the reason; the summary on stderr counts the
records by layout and outcome. A rerun over the output changes nothing more:
records already migrated are written unchanged.

--to-service keyring reads WORKOS_VAULT_TO_KEYRING (the new keyring file);
workos reads WORKOS_VAULT_TO_API_KEY and WORKOS_VAULT_TO_BASE_URL; transit
reads WORKOS_VAULT_TO_TRANSIT_ADDR, _TOKEN, _KEY and _MOUNT. It needs
--context: no key service can wrap a data key it did not mint, so each
record is decrypted and encrypted under a new data key from the new service.

-o OUTPUT is written to a temporary file beside it and renamed at the end,
so OUTPUT may be INPUT (migrated in place) and is never left half written.

Exit codes: 0 every record migrated or already in place; 2 usage error or
bad configuration; 4 cannot read or write; 5 some records could not be
migrated (written back unchanged, listed on stderr; an unreachable key
service fails the records that need it, so a rerun finishes the job).";

/// The arguments of `workos-vault migrate`; see [`AFTER_HELP`] for the rest of
/// its help.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct MigrateArgs {
    /// Input file; stdin when absent or `-`.
    input: Option<PathBuf>,
    /// Output file (written via a temporary file and renamed); stdout when
    /// absent.
    #[arg(short, long, value_name = "OUTPUT")]
    output: Option<PathBuf>,
    /// The SDK that will read the records: node, go, python, ruby, php,
    /// kotlin, dotnet, rust, swift, optionally @VERSION (go@6, node@7.47).
    #[arg(long = "for", value_name = "SDK", required_unless_present = "layout")]
    sdk: Option<Sdk>,
    /// The layout to write instead of naming an SDK: A12, B, A-prime, A32.
    #[arg(long, conflicts_with = "sdk")]
    layout: Option<Layout>,
    /// Move the records to this key context (NAME=VALUE; repeat for more):
    /// each keys blob is rewrapped, the payload kept.
    #[arg(long = "context", short = 'c', value_name = "NAME=VALUE")]
    context: Vec<String>,
    /// Move the records to another key service: keyring, workos or
    /// transit, configured by WORKOS_VAULT_TO_* variables (see below).
    #[arg(long, value_name = "SERVICE", requires = "context")]
    to_service: Option<ToService>,
    /// How records are stored: one ciphertext per line (lines), a field of
    /// a JSON object per line (jsonl), or a column of a CSV file with a
    /// header row (csv).
    #[arg(long, value_enum, default_value = "lines")]
    format: Format,
    /// For jsonl: the dotted path of the ciphertext field (`secret`,
    /// `data.ssn`).
    #[arg(long, value_name = "PATH", conflicts_with = "column")]
    field: Option<String>,
    /// For csv: the name of the ciphertext column in the header row.
    #[arg(long, value_name = "NAME")]
    column: Option<String>,
    /// The associated data every record was sealed with.
    #[arg(long, conflicts_with_all = ["aad_field", "aad_column"])]
    aad: Option<String>,
    /// For jsonl: the dotted path of the field holding each record's AAD.
    #[arg(long, value_name = "PATH")]
    aad_field: Option<String>,
    /// For csv: the column holding each record's AAD.
    #[arg(long, value_name = "NAME")]
    aad_column: Option<String>,
    /// Read and report what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Decrypt every result and compare it with the original's plaintext
    /// (never printed); a mismatch fails the record. Needs the key service.
    #[arg(long)]
    verify: bool,
    /// Worker threads; the number of cores when absent.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

/// The key service `--to-service` moves records to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ToService {
    /// A local keyring file (WORKOS_VAULT_TO_KEYRING).
    Keyring,
    /// WorkOS Vault (WORKOS_VAULT_TO_API_KEY, WORKOS_VAULT_TO_BASE_URL).
    Workos,
    /// OpenBao / HashiCorp Vault Transit (WORKOS_VAULT_TO_TRANSIT_*).
    Transit,
}

impl ToService {
    /// As `--to-service` spells it.
    fn name(self) -> &'static str {
        match self {
            ToService::Keyring => "keyring",
            ToService::Workos => "workos",
            ToService::Transit => "transit",
        }
    }
}

/// How records are stored in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One ciphertext per line.
    Lines,
    /// One JSON object per line, the ciphertext at --field.
    Jsonl,
    /// CSV with a header row, the ciphertext in --column.
    Csv,
}

/// Where the ciphertext (and the AAD) sit in a record.
#[derive(Debug)]
enum Locator {
    Lines,
    Jsonl {
        field: Vec<String>,
        aad: Option<Vec<String>>,
    },
    Csv {
        column: usize,
        aad: Option<usize>,
    },
}

/// Everything a worker needs, shared.
#[derive(Debug)]
struct Plan {
    layout: Layout,
    locator: Locator,
    aad: Option<String>,
    offline: bool,
    verify: bool,
    keyed: OnceLock<Result<Keyed, String>>,
    build: Builder,
}

/// What makes the keyed half, once, when a record first needs it.
#[derive(Debug)]
struct Builder {
    context: Option<KeyContext>,
    to_service: Option<Arc<dyn KeyService>>,
}

/// The facade's migration and a runtime to drive it from worker threads.
#[derive(Debug)]
struct Keyed {
    runtime: tokio::runtime::Runtime,
    migration: Migration,
}

/// Runs `workos-vault migrate`.
pub fn run(args: MigrateArgs) -> Result<(), Failure> {
    let layout = match (args.sdk, args.layout) {
        (Some(sdk), _) => sdk.layout(),
        (None, Some(layout)) => layout,
        (None, None) => return Err(Failure::input("give --for SDK or --layout".to_owned())),
    };
    check_format_options(&args)?;
    let context = parse_context(&args.context)?;
    let to_service = args.to_service.map(target_service).transpose()?;

    let mut input: Box<dyn BufRead + Send> = match args.input.as_deref() {
        None => Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())),
        Some(path) if path == Path::new("-") => {
            Box::new(BufReader::with_capacity(1 << 16, std::io::stdin()))
        }
        Some(path) => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(path)
                .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?,
        )),
    };
    let total = args
        .input
        .as_deref()
        .filter(|p| *p != Path::new("-"))
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());

    let mut reader = RecordReader::new(args.format);
    // CSV: the header names the columns; it is written back as it was.
    let mut header = Vec::new();
    let locator = match args.format {
        Format::Lines => Locator::Lines,
        Format::Jsonl => Locator::Jsonl {
            field: dotted(args.field.as_deref().unwrap_or_default()),
            aad: args.aad_field.as_deref().map(dotted),
        },
        Format::Csv => {
            let lines = reader
                .next(&mut input, &mut header)
                .map_err(|e| Failure::system(format!("cannot read the input: {e}")))?;
            if lines == 0 {
                Locator::Csv {
                    column: 0,
                    aad: None,
                }
            } else {
                let names = csv_header(&header);
                let find = |name: &str| {
                    names.iter().position(|n| n == name).ok_or_else(|| {
                        Failure::input(format!(
                            "the CSV header has no column {name:?}; it has {}",
                            names.join(", ")
                        ))
                    })
                };
                Locator::Csv {
                    column: find(args.column.as_deref().unwrap_or_default())?,
                    aad: args.aad_column.as_deref().map(find).transpose()?,
                }
            }
        }
    };

    let offline = context.is_none() && to_service.is_none();
    let plan = Arc::new(Plan {
        layout,
        locator,
        aad: args.aad,
        offline,
        verify: args.verify,
        keyed: OnceLock::new(),
        build: Builder {
            context,
            to_service,
        },
    });
    // A keyed plan fails fast on a bad configuration, before any output.
    if !offline || args.verify {
        if let Err(message) = plan.keyed() {
            return Err(Failure::input(message.clone()));
        }
    }

    let mut sink = Sink::open(args.output.as_deref(), args.dry_run)?;
    sink.write(&header)?;
    let jobs = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let progress = progress_bar(total);
    progress.inc(header.len() as u64);
    let header_lines = reader.lines;

    let summary = pipeline(
        &plan,
        input,
        reader,
        jobs,
        header_lines,
        &mut sink,
        &progress,
    )?;
    progress.finish_and_clear();
    sink.finish()?;
    summary.print(args.dry_run, plan.build.to_service.is_some());
    if let Some(Ok(keyed)) = plan.keyed.get() {
        eprintln!(
            "  key service calls: {} (one per distinct keys blob and step)",
            keyed.migration.key_service_calls()
        );
    }
    if summary.failed > 0 {
        return Err(Failure {
            message: format!(
                "{} record(s) could not be migrated (listed above){}",
                summary.failed,
                if args.dry_run {
                    ""
                } else {
                    "; they were written back unchanged"
                }
            ),
            code: PARTIAL,
        });
    }
    Ok(())
}

fn check_format_options(args: &MigrateArgs) -> Result<(), Failure> {
    let wrong = |flag: &str, format: &str| {
        Err(Failure::input(format!(
            "{flag} is for --format {format}, not --format {}",
            format_name(args.format)
        )))
    };
    match args.format {
        Format::Lines => {
            if args.field.is_some() || args.aad_field.is_some() {
                return wrong("--field/--aad-field", "jsonl");
            }
            if args.column.is_some() || args.aad_column.is_some() {
                return wrong("--column/--aad-column", "csv");
            }
        }
        Format::Jsonl => {
            if args.column.is_some() || args.aad_column.is_some() {
                return wrong("--column/--aad-column", "csv");
            }
            if args.field.as_deref().is_none_or(str::is_empty) {
                return Err(Failure::input(
                    "--format jsonl needs --field PATH, the dotted path of the ciphertext field"
                        .to_owned(),
                ));
            }
        }
        Format::Csv => {
            if args.field.is_some() || args.aad_field.is_some() {
                return wrong("--field/--aad-field", "jsonl");
            }
            if args.column.as_deref().is_none_or(str::is_empty) {
                return Err(Failure::input(
                    "--format csv needs --column NAME, the header of the ciphertext column"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(())
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Lines => "lines",
        Format::Jsonl => "jsonl",
        Format::Csv => "csv",
    }
}

fn dotted(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

fn parse_context(entries: &[String]) -> Result<Option<KeyContext>, Failure> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut context = KeyContext::new();
    for entry in entries {
        let (name, value) = entry.split_once('=').ok_or_else(|| {
            Failure::input(format!(
                "--context {entry:?} must be NAME=VALUE, such as organization_id=org_123"
            ))
        })?;
        context
            .insert(name, value)
            .map_err(|e| Failure::input(e.to_string()))?;
    }
    Ok(Some(context))
}

/// Checks that a required `WORKOS_VAULT_TO_*` variable is set.
fn required_var(name: &str, service: &str) -> Result<(), Failure> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|_| ())
        .ok_or_else(|| {
            Failure::input(format!(
                "--to-service {service} needs {name}; set it to the new service's {}",
                match name {
                    TO_KEYRING_VAR => "keyring file",
                    TO_API_KEY_VAR => "API key",
                    TO_TRANSIT_ADDR_VAR => "address",
                    TO_TRANSIT_TOKEN_VAR => "token",
                    _ => "key name",
                }
            ))
        })
}

/// The key service `--to-service` names, chosen by the same function as
/// every other backend ([`vault::env::backend_from_lookup`]), over the
/// `WORKOS_VAULT_TO_*` variables instead of the process's own.
fn target_service(service: ToService) -> Result<Arc<dyn KeyService>, Failure> {
    use vault::env::{backend_from_lookup, BackendKind, EnvOptions};
    let (kind, required): (_, &[&str]) = match service {
        ToService::Keyring => (BackendKind::Keyring, &[TO_KEYRING_VAR]),
        ToService::Workos => (BackendKind::WorkOs, &[TO_API_KEY_VAR]),
        ToService::Transit => (
            BackendKind::Transit,
            &[
                TO_TRANSIT_ADDR_VAR,
                TO_TRANSIT_TOKEN_VAR,
                TO_TRANSIT_KEY_VAR,
            ],
        ),
    };
    let name = service.name();
    for var in required {
        required_var(var, name)?;
    }
    // Only the chosen service's variables are seen: another service's,
    // set as well, cannot make the choice ambiguous.
    let lookup = |var: &str| {
        let ours = match (service, var) {
            (ToService::Keyring, vault::env::KEYRING_VAR) => TO_KEYRING_VAR,
            (ToService::Workos, vault::env::API_KEY_VAR) => TO_API_KEY_VAR,
            (ToService::Workos, vault::env::BASE_URL_VAR) => TO_BASE_URL_VAR,
            (ToService::Transit, vault::env::TRANSIT_KEY_VAR) => TO_TRANSIT_KEY_VAR,
            (ToService::Transit, "VAULT_ADDR") => TO_TRANSIT_ADDR_VAR,
            (ToService::Transit, "VAULT_TOKEN") => TO_TRANSIT_TOKEN_VAR,
            (ToService::Transit, "WORKOS_VAULT_TRANSIT_MOUNT") => TO_TRANSIT_MOUNT_VAR,
            _ => return None,
        };
        std::env::var(ours).ok()
    };
    // Moving rows to a keyring mints keys there: it may be created.
    let backend = backend_from_lookup(EnvOptions::new().create_keyring(true), &lookup)
        .map_err(|e| Failure::input(format!("--to-service {name}: {}", one_line(&e))))?;
    debug_assert_eq!(backend.kind(), kind);
    if let Some(path) = backend.keyring_path().filter(|_| backend.created_keyring()) {
        crate::note(&crate::cli::created_keyring_line(path));
    }
    Ok(backend.into_service())
}

impl Plan {
    /// The keyed half, made on first use: the key service from the
    /// environment, as for every other command.
    fn keyed(&self) -> Result<&Keyed, &String> {
        self.keyed
            .get_or_init(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
                let vault = crate::cli::vault_from_env(false).map_err(|f| f.message)?;
                let mut migration = vault.migration(self.layout);
                if let Some(context) = &self.build.context {
                    migration = migration.with_context(context.clone());
                }
                if let Some(service) = &self.build.to_service {
                    migration = migration.to_service(Arc::clone(service));
                }
                Ok(Keyed { runtime, migration })
            })
            .as_ref()
    }

    /// Converts one ciphertext, appending the new text to `out`.
    fn convert(
        &self,
        text: &str,
        aad: Option<&[u8]>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<(Layout, Change), String> {
        if self.offline {
            // Offline re-framing: no key service, no plaintext.
            scratch.raw.clear();
            b64::decode_into(text, &mut scratch.raw)
                .map_err(|e| format!("not a ciphertext: {e}"))?;
            let envelope = vault_format::Envelope::parse(&scratch.raw)
                .map_err(|e| format!("not a ciphertext: {e}"))?;
            let from = envelope.layout();
            if envelope.can_reframe(self.layout) {
                let start = out.len();
                let change = if from == self.layout {
                    out.extend_from_slice(text.as_bytes());
                    Change::Unchanged
                } else {
                    scratch.framed.clear();
                    envelope
                        .reframe_into(self.layout, &mut scratch.framed)
                        .map_err(|e| e.to_string())?;
                    let len = b64::encoded_len(scratch.framed.len());
                    out.resize(start + len, 0);
                    b64::encode_to_slice(&scratch.framed, &mut out[start..]);
                    Change::Reframed
                };
                if self.verify && change != Change::Unchanged {
                    let migrated = std::str::from_utf8(&out[start..]).unwrap_or_default();
                    let result = self.verify(text, migrated, aad);
                    if let Err(reason) = result {
                        out.truncate(start);
                        return Err(reason);
                    }
                }
                return Ok((from, change));
            }
        }
        let keyed = self
            .keyed()
            .map_err(|e| format!("needs the key service: {e}"))?;
        let migrated = keyed
            .runtime
            .block_on(keyed.migration.migrate(text, aad.unwrap_or_default()))
            .map_err(|e| match e {
                vault::Error::Decrypt => "cannot decrypt: the AAD (--aad, --aad-field, \
                                          --aad-column) or the key service does not match \
                                          this record"
                    .to_owned(),
                e => one_line(&e),
            })?;
        if self.verify && migrated.change != Change::Unchanged {
            self.verify(text, &migrated.ciphertext, aad)?;
        }
        out.extend_from_slice(migrated.ciphertext.as_bytes());
        Ok((migrated.from, migrated.change))
    }

    fn verify(&self, original: &str, migrated: &str, aad: Option<&[u8]>) -> Result<(), String> {
        let keyed = self
            .keyed()
            .map_err(|e| format!("--verify needs the key service: {e}"))?;
        match keyed.runtime.block_on(keyed.migration.verify(
            original,
            migrated,
            aad.unwrap_or_default(),
        )) {
            Ok(true) => Ok(()),
            Ok(false) => Err(
                "verification failed: the result does not decrypt to the original's plaintext"
                    .to_owned(),
            ),
            Err(e) => Err(format!("verification failed: {}", one_line(&e))),
        }
    }
}

/// Buffers a worker reuses from record to record.
#[derive(Debug, Default)]
struct Scratch {
    raw: Vec<u8>,
    framed: Vec<u8>,
}

/// Reads whole records: a line, or for CSV, lines until the quotes
/// balance (a quoted field may hold newlines).
#[derive(Debug)]
struct RecordReader {
    csv: bool,
    /// Lines read so far.
    lines: u64,
}

impl RecordReader {
    fn new(format: Format) -> Self {
        RecordReader {
            csv: format == Format::Csv,
            lines: 0,
        }
    }

    /// Appends the next record (with its line ending) to `buf`; returns
    /// the number of lines it spans, 0 at the end of the input.
    fn next(&mut self, input: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<u64> {
        let mut lines = 0;
        let mut quotes = 0usize;
        loop {
            let line_start = buf.len();
            let n = input.read_until(b'\n', buf)?;
            if n == 0 {
                break;
            }
            lines += 1;
            if !self.csv {
                break;
            }
            // Quotes balance at the end of a record: `""` escapes keep
            // the parity.
            quotes += buf[line_start..].iter().filter(|&&b| b == b'"').count();
            if quotes.is_multiple_of(2) || buf.last() != Some(&b'\n') {
                break;
            }
        }
        self.lines += lines;
        Ok(lines)
    }
}

/// A batch: records back to back, with each one's range and first line.
#[derive(Debug, Default)]
struct Batch {
    seq: u64,
    bytes: Vec<u8>,
    records: Vec<(Range<usize>, u64)>,
}

/// A converted batch: its output, counts and the failures to report.
#[derive(Debug, Default)]
struct Done {
    seq: u64,
    out: Vec<u8>,
    input_len: u64,
    summary: Summary,
    reports: Vec<String>,
}

/// Counts by layout and outcome.
#[derive(Debug, Default)]
struct Summary {
    records: u64,
    converted: u64,
    unchanged: u64,
    failed: u64,
    by: BTreeMap<(String, &'static str), u64>,
}

impl Summary {
    fn add(&mut self, layout: String, outcome: &'static str) {
        self.records += 1;
        match outcome {
            "failed" => self.failed += 1,
            "unchanged" => self.unchanged += 1,
            _ => self.converted += 1,
        }
        *self.by.entry((layout, outcome)).or_default() += 1;
    }

    fn merge(&mut self, other: Summary) {
        self.records += other.records;
        self.converted += other.converted;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        for (key, count) in other.by {
            *self.by.entry(key).or_default() += count;
        }
    }

    fn print(&self, dry_run: bool, moved_service: bool) {
        let verb = if dry_run { "would be " } else { "" };
        eprintln!(
            "workos-vault migrate: {} record(s): {} {verb}converted, {} unchanged, {} failed{}",
            self.records,
            self.converted,
            self.unchanged,
            self.failed,
            if dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        for ((layout, outcome), count) in &self.by {
            eprintln!("  {layout}: {count} {outcome}");
        }
        if moved_service
            && self
                .by
                .keys()
                .any(|(_, o)| *o == Change::Reencrypted.name())
        {
            eprintln!(
                "  re-encrypted: decrypted with the old key service and encrypted under new \
                 data keys from the new one (no key service can wrap a data key it did not mint)"
            );
        }
    }
}

/// Reads batches, converts them on `jobs` threads, writes them in order.
fn pipeline(
    plan: &Arc<Plan>,
    mut input: Box<dyn BufRead + Send>,
    mut reader: RecordReader,
    jobs: usize,
    first_line: u64,
    sink: &mut Sink,
    progress: &indicatif::ProgressBar,
) -> Result<Summary, Failure> {
    let (batch_tx, batch_rx) = sync_channel::<Batch>(jobs * 2);
    let batch_rx = Arc::new(std::sync::Mutex::new(batch_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(jobs * 2);
    // Batches in flight (read, not yet written), at most: this bounds the
    // reorder buffer too, whatever one slow batch holds up.
    let in_flight = jobs * 4;
    let (token_tx, token_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.send(());
    }

    let reader_thread = std::thread::spawn(move || -> std::io::Result<()> {
        let mut line = first_line + 1;
        let mut seq = 0;
        loop {
            if token_rx.recv().is_err() {
                return Ok(());
            }
            let mut batch = Batch {
                seq,
                ..Batch::default()
            };
            while batch.records.len() < BATCH_RECORDS && batch.bytes.len() < BATCH_BYTES {
                let start = batch.bytes.len();
                let lines = reader.next(&mut input, &mut batch.bytes)?;
                if lines == 0 {
                    break;
                }
                batch.records.push((start..batch.bytes.len(), line));
                line += lines;
            }
            if batch.records.is_empty() {
                return Ok(());
            }
            seq += 1;
            if batch_tx.send(batch).is_err() {
                return Ok(());
            }
        }
    });
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let plan = Arc::clone(plan);
            let batch_rx = Arc::clone(&batch_rx);
            let done_tx = done_tx.clone();
            std::thread::spawn(move || worker(&plan, &batch_rx, &done_tx))
        })
        .collect();
    drop(done_tx);

    let mut summary = Summary::default();
    let mut pending = BTreeMap::new();
    let mut next = 0;
    let mut result = Ok(());
    for done in done_rx.iter() {
        pending.insert(done.seq, done);
        while let Some(done) = pending.remove(&next) {
            next += 1;
            for report in &done.reports {
                progress.suspend(|| eprintln!("workos-vault migrate: {report}"));
            }
            if result.is_ok() {
                result = sink.write(&done.out);
            }
            progress.inc(done.input_len);
            let _ = token_tx.try_send(());
            summary.merge(done.summary);
            progress.set_message(format!("{} rows", summary.records));
        }
        if result.is_err() {
            break;
        }
    }
    drop(done_rx);
    // A reader waiting for a token after a write failure stops here.
    drop(token_tx);
    for worker in workers {
        let _ = worker.join();
    }
    let read = reader_thread
        .join()
        .map_err(|_| Failure::system("the input reader stopped unexpectedly".to_owned()))?;
    result?;
    read.map_err(|e| Failure::system(format!("cannot read the input: {e}")))?;
    Ok(summary)
}

fn worker(plan: &Plan, batches: &std::sync::Mutex<Receiver<Batch>>, done: &SyncSender<Done>) {
    let mut scratch = Scratch::default();
    loop {
        let batch = {
            let rx = batches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match rx.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            }
        };
        let mut result = Done {
            seq: batch.seq,
            out: Vec::with_capacity(batch.bytes.len() + batch.bytes.len() / 8),
            input_len: batch.bytes.len() as u64,
            ..Done::default()
        };
        for (range, line) in &batch.records {
            let record = &batch.bytes[range.clone()];
            migrate_record(plan, record, *line, &mut scratch, &mut result);
        }
        if done.send(result).is_err() {
            return;
        }
    }
}

/// Converts one record into `done.out`; on failure writes it unchanged and
/// records the reason.
fn migrate_record(plan: &Plan, record: &[u8], line: u64, scratch: &mut Scratch, done: &mut Done) {
    let (body, ending) = split_ending(record);
    if body.iter().all(u8::is_ascii_whitespace) {
        // A blank line is no record.
        done.out.extend_from_slice(record);
        return;
    }
    let start = done.out.len();
    match locate(plan, body) {
        Ok((span, aad)) => {
            let text = match std::str::from_utf8(&body[span.range.clone()]) {
                Ok(text) => text,
                Err(_) => {
                    let reason = "not a ciphertext: not UTF-8".to_owned();
                    fail(done, record, line, "not a ciphertext".to_owned(), reason);
                    return;
                }
            };
            let aad = aad.as_deref().or(plan.aad.as_deref().map(str::as_bytes));
            let unescaped;
            let text = if span.escaped_slashes {
                unescaped = text.replace("\\/", "/");
                unescaped.as_str()
            } else {
                text
            };
            done.out.extend_from_slice(&body[..span.range.start]);
            let value_start = done.out.len();
            match plan.convert(text, aad, scratch, &mut done.out) {
                Ok((from, change)) => {
                    if span.escaped_slashes {
                        escape_slashes(&mut done.out, value_start);
                    }
                    done.out.extend_from_slice(&body[span.range.end..]);
                    done.out.extend_from_slice(ending);
                    done.summary.add(from.name().to_owned(), change.name());
                }
                Err(reason) => {
                    done.out.truncate(start);
                    let layout = vault::inspect(text).map_or_else(
                        |_| "not a ciphertext".to_owned(),
                        |i| i.layout.name().to_owned(),
                    );
                    fail(done, record, line, layout, reason);
                }
            }
        }
        Err(reason) => fail(done, record, line, "no ciphertext".to_owned(), reason),
    }
}

fn fail(done: &mut Done, record: &[u8], line: u64, layout: String, reason: String) {
    done.out.extend_from_slice(record);
    done.summary.add(layout, "failed");
    done.reports.push(format!("line {line}: {reason}"));
}

/// The record without its line ending, and the ending (`\r\n`, `\n` or
/// nothing).
fn split_ending(record: &[u8]) -> (&[u8], &[u8]) {
    let cut = if record.ends_with(b"\r\n") {
        2
    } else if record.ends_with(b"\n") {
        1
    } else {
        0
    };
    record.split_at(record.len() - cut)
}

/// Where a ciphertext value sits in a record.
#[derive(Debug)]
struct Span {
    range: Range<usize>,
    /// A JSON string that spelt `/` as `\/`: the new value is spelt so too.
    escaped_slashes: bool,
}

/// The ciphertext's span in `body`, and the record's own AAD if any.
fn locate(plan: &Plan, body: &[u8]) -> Result<(Span, Option<Vec<u8>>), String> {
    match &plan.locator {
        Locator::Lines => {
            let start = body
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(body.len());
            let end = body
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(start, |p| p + 1);
            Ok((
                Span {
                    range: start..end,
                    escaped_slashes: false,
                },
                None,
            ))
        }
        Locator::Jsonl { field, aad } => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
                return Err("not a JSON object".to_owned());
            }
            let found = json_find(body, field)?
                .ok_or_else(|| format!("no field {:?} in this JSON object", field.join(".")))?;
            if body[found.start - 1] != b'"' {
                return Err(format!("field {:?} is not a string", field.join(".")));
            }
            let raw = &body[found.clone()];
            let escaped_slashes = raw.windows(2).any(|w| w == b"\\/");
            let aad = match aad {
                Some(path) => Some(json_aad(body, path)?),
                None => None,
            };
            if raw.contains(&b'\\') && !escaped_slashes {
                return Err("not a ciphertext: the JSON string holds escapes".to_owned());
            }
            Ok((
                Span {
                    range: found,
                    escaped_slashes,
                },
                aad,
            ))
        }
        Locator::Csv { column, aad } => {
            let fields = csv_fields(body);
            let range = fields
                .get(*column)
                .cloned()
                .ok_or_else(|| format!("no column {} in this row", column + 1))?;
            let range = unquote(body, range)?;
            let aad = match aad {
                Some(index) => {
                    let range = fields
                        .get(*index)
                        .cloned()
                        .ok_or_else(|| format!("no AAD column {} in this row", index + 1))?;
                    let range = unquote(body, range)?;
                    Some(body[range].to_vec())
                }
                None => None,
            };
            Ok((
                Span {
                    range,
                    escaped_slashes: false,
                },
                aad,
            ))
        }
    }
}

/// Rewrites `/` as `\/` in `out[from..]`.
fn escape_slashes(out: &mut Vec<u8>, from: usize) {
    let tail = out.split_off(from);
    for byte in tail {
        if byte == b'/' {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// The AAD at a JSON path: a string's decoded value or a number's text.
fn json_aad(body: &[u8], path: &[String]) -> Result<Vec<u8>, String> {
    let found = json_find(body, path)?
        .ok_or_else(|| format!("no AAD field {:?} in this JSON object", path.join(".")))?;
    if body[found.start - 1] == b'"' {
        let text: String = serde_json::from_slice(&body[found.start - 1..found.end + 1])
            .map_err(|e| format!("AAD field: {e}"))?;
        Ok(text.into_bytes())
    } else {
        Ok(body[found].to_vec())
    }
}

/// The span of the value at `path` in a JSON object: a string's content
/// inside its quotes, or any other scalar's text. `None` when a key is
/// missing. The text has been checked to be JSON.
fn json_find(body: &[u8], path: &[String]) -> Result<Option<Range<usize>>, String> {
    let mut scanner = Scanner { b: body, i: 0 };
    scanner.find(path)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string at the cursor; its content range (inside the quotes).
    fn string(&mut self) -> Result<Range<usize>, String> {
        if self.peek() != Some(b'"') {
            return Err("not a JSON object".to_owned());
        }
        self.i += 1;
        let start = self.i;
        while let Some(byte) = self.peek() {
            match byte {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Ok(start..self.i - 1);
                }
                _ => self.i += 1,
            }
        }
        Err("not a JSON object".to_owned())
    }

    /// Skips any value.
    fn skip(&mut self) -> Result<Range<usize>, String> {
        self.ws();
        let start = self.i;
        match self.peek() {
            Some(b'"') => return self.string(),
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                let mut depth = 1;
                while depth > 0 {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b) if b == open => depth += 1,
                        Some(b) if b == close => depth -= 1,
                        Some(_) => {}
                        None => return Err("not a JSON object".to_owned()),
                    }
                    self.i += 1;
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.i += 1;
                }
            }
        }
        Ok(start..self.i)
    }

    fn find(&mut self, path: &[String]) -> Result<Option<Range<usize>>, String> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err("not a JSON object".to_owned());
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            return Ok(None);
        }
        loop {
            self.ws();
            let key = self.string()?;
            let raw = &self.b[key.clone()];
            let matches = if raw.contains(&b'\\') {
                serde_json::from_slice::<String>(&self.b[key.start - 1..key.end + 1])
                    .is_ok_and(|k| k == path[0])
            } else {
                raw == path[0].as_bytes()
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err("not a JSON object".to_owned());
            }
            self.i += 1;
            self.ws();
            if matches {
                if path.len() == 1 {
                    return self.skip().map(Some);
                }
                if self.peek() != Some(b'{') {
                    return Ok(None);
                }
                return self.find(&path[1..]);
            }
            self.skip()?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => return Ok(None),
                _ => return Err("not a JSON object".to_owned()),
            }
        }
    }
}

/// The byte ranges of a CSV row's fields (quotes included).
fn csv_fields(body: &[u8]) -> Vec<Range<usize>> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, &byte) in body.iter().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                fields.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(start..body.len());
    fields
}

/// A field's content: inside its quotes if quoted. A quoted ciphertext
/// holds no quotes, so `""` escapes need no undoing here.
fn unquote(body: &[u8], range: Range<usize>) -> Result<Range<usize>, String> {
    let field = &body[range.clone()];
    if field.first() == Some(&b'"') {
        if field.len() < 2 || field.last() != Some(&b'"') {
            return Err("malformed CSV: unbalanced quotes".to_owned());
        }
        return Ok(range.start + 1..range.end - 1);
    }
    Ok(range)
}

/// The header row's names, unquoted, without a byte-order mark.
fn csv_header(header: &[u8]) -> Vec<String> {
    let (body, _) = split_ending(header);
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    csv_fields(body)
        .into_iter()
        .map(|range| {
            let field = String::from_utf8_lossy(&body[range]).into_owned();
            match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
                Some(inner) => inner.replace("\"\"", "\""),
                None => field,
            }
        })
        .collect()
}

/// Where the output goes: stdout, a temporary file renamed over OUTPUT at
/// the end, or nowhere (`--dry-run`).
enum Sink {
    Nowhere,
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File(TempOutput),
}

/// OUTPUT being written: a temporary file beside it, removed unless the
/// run finishes and renames it over OUTPUT.
struct TempOutput {
    file: std::io::BufWriter<File>,
    temp: PathBuf,
    path: PathBuf,
    renamed: bool,
}

impl Drop for TempOutput {
    /// A failed run leaves OUTPUT as it was: the temporary file goes.
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl Sink {
    fn open(output: Option<&Path>, dry_run: bool) -> Result<Self, Failure> {
        if dry_run {
            return Ok(Sink::Nowhere);
        }
        let Some(path) = output else {
            return Ok(Sink::Stdout(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )));
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| Failure::input(format!("-o {}: not a file name", path.display())))?;
        let temp = dir.join(format!(
            ".{}.migrate-{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Failure::system(format!("cannot create {}: {e}", temp.display())))?;
        // Keep the permissions of a file being replaced.
        if let Ok(metadata) = std::fs::metadata(path) {
            let _ = std::fs::set_permissions(&temp, metadata.permissions());
        }
        Ok(Sink::File(TempOutput {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            temp,
            path: path.to_owned(),
            renamed: false,
        }))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let result = match self {
            Sink::Nowhere => Ok(()),
            Sink::Stdout(out) => out.write_all(bytes),
            Sink::File(output) => output.file.write_all(bytes),
        };
        result.map_err(|e| Failure::system(format!("cannot write the output: {e}")))
    }

    fn finish(self) -> Result<(), Failure> {
        let result = match self {
            Sink::Nowhere => Ok(()),
            Sink::Stdout(mut out) => out.flush(),
            Sink::File(mut output) => output
                .file
                .flush()
                .and_then(|()| output.file.get_ref().sync_all())
                .and_then(|()| std::fs::rename(&output.temp, &output.path))
                .map(|()| output.renamed = true),
        };
        result.map_err(|e| Failure::system(format!("cannot write the output: {e}")))
    }
}

/// Rows, bytes, rate and ETA on stderr when it is a terminal; hidden
/// otherwise.
fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{bar:30} {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}"
    } else {
        "{spinner} {bytes} {msg} {bytes_per_sec}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(body: &str, path: &str) -> Option<String> {
        json_find(body.as_bytes(), &dotted(path))
            .unwrap()
            .map(|r| body[r].to_owned())
    }

    #[test]
    fn json_paths_find_string_spans() {
        let body = r#"{"a": 1, "b" : {"c":"x\"y", "d": "v"}, "e": [1, {"f": "g"}], "h":"z"}"#;
        assert_eq!(find(body, "a").as_deref(), Some("1"));
        assert_eq!(find(body, "b.d").as_deref(), Some("v"));
        assert_eq!(find(body, "b.c").as_deref(), Some("x\\\"y"));
        assert_eq!(find(body, "h").as_deref(), Some("z"));
        assert_eq!(find(body, "f"), None);
        assert_eq!(find(body, "a.b"), None);
        assert_eq!(find(r#"{"k\u0065y": "v"}"#, "key").as_deref(), Some("v"));
    }

    #[test]
    fn csv_fields_respect_quotes() {
        let body = br#"1,"a,b","x""y
z",last"#;
        let fields: Vec<&[u8]> = csv_fields(body).into_iter().map(|r| &body[r]).collect();
        assert_eq!(fields, [&b"1"[..], b"\"a,b\"", b"\"x\"\"y\nz\"", b"last"]);
        assert_eq!(
            csv_header(b"\xef\xbb\xbfid,\"se\"\"cret\"\r\n"),
            ["id", "se\"cret"]
        );
    }
}
