//! The official SDKs against our server, and their ciphertexts against ours.
//!
//! Needs the pinned peers installed and the `workos-vault` binary built:
//! `cargo xtask compat` does both, then runs these tests with
//! `--include-ignored`. Each SDK is one test, driven through its driver in
//! `tests/compat/` in two batched process starts. Every cell asserts what
//! the SDK does, including what it cannot do (a layout it does not read, an
//! AAD it does not take, bytes that are not UTF-8): nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use vault::{HttpKeyService, KeyContext, Layout, LocalKeyService, Vault};
use vault_server::{Server, ServerConfig};

const API_KEY: &str = "sk_test_compat_3b7e";

/// Where `cargo xtask compat` says it built the Rust crate's driver.
const RUST_DRIVER_ENV: &str = "WORKOS_VAULT_COMPAT_RUST_DRIVER";

/// One SDK behind its driver.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sdk {
    Node11,
    Node8,
    Node7,
    Python,
    Rust,
}

/// What an SDK's decrypt gives for a plaintext that is not UTF-8.
enum NonUtf8 {
    /// Each invalid byte becomes U+FFFD.
    Mangled,
    /// The decrypt fails with this `error_type`.
    Refused(&'static str),
}

impl Sdk {
    fn name(self) -> &'static str {
        match self {
            Sdk::Node11 => "@workos-inc/node 11.0.0",
            Sdk::Node8 => "@workos-inc/node 8.13.0",
            Sdk::Node7 => "@workos-inc/node 7.47.0",
            Sdk::Python => "workos 10.8.0 (Python)",
            Sdk::Rust => "workos 3.5.0 (Rust crate)",
        }
    }

    /// The one layout it writes, and the only one it reads.
    fn layout(self) -> Layout {
        match self {
            Sdk::Node11 | Sdk::Node8 | Sdk::Python => Layout::A12,
            Sdk::Node7 => Layout::A32,
            Sdk::Rust => Layout::B,
        }
    }

    /// Whether its encrypt and decrypt take associated data (7.42-7.49
    /// have `encrypt(data, context)` and `decrypt(encryptedData)`).
    fn takes_aad(self) -> bool {
        self != Sdk::Node7
    }

    /// Whether it has a rekey call (Node added `createRekey` after 8.x).
    fn has_rekey(self) -> bool {
        matches!(self, Sdk::Node11 | Sdk::Python | Sdk::Rust)
    }

    fn non_utf8(self) -> NonUtf8 {
        match self {
            Sdk::Node11 | Sdk::Node8 | Sdk::Node7 => NonUtf8::Mangled,
            Sdk::Python => NonUtf8::Refused("UnicodeDecodeError"),
            Sdk::Rust => NonUtf8::Refused("VaultCrypto"),
        }
    }

    fn command(self) -> Command {
        let compat = root().join("tests").join("compat");
        let node = |folder: &str| {
            let mut command = Command::new("node");
            command
                .arg(compat.join("node").join("driver.mjs"))
                .arg(folder);
            command
        };
        match self {
            Sdk::Node11 => node("node11"),
            Sdk::Node8 => node("node8"),
            Sdk::Node7 => node("node7"),
            Sdk::Python => {
                let python = std::env::var("WORKOS_VAULT_COMPAT_PYTHON")
                    .unwrap_or_else(|_| "python3".into());
                let mut command = Command::new(python);
                command.arg(compat.join("python").join("driver.py"));
                command
            }
            Sdk::Rust => Command::new(rust_driver()),
        }
    }

    /// Runs `ops` in one process; returns one result per op.
    fn batch(self, server: &Server, ops: Vec<Value>) -> Vec<Value> {
        let request = json!({
            "base_url": server.url(),
            "api_key": API_KEY,
            "op": "batch",
            "ops": ops,
        });
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start driver: {e}", self.name()));
        let stdin = child.stdin.take().expect("piped stdin");
        let body = serde_json::to_vec(&request).expect("request serialises");
        let writer = std::thread::spawn(move || {
            let mut stdin = stdin;
            std::io::Write::write_all(&mut stdin, &body)
        });
        let output = child.wait_with_output().expect("driver runs");
        // A driver that exits early breaks the pipe: its stderr says why.
        assert!(
            output.status.success(),
            "{} driver failed: {}",
            self.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        writer
            .join()
            .expect("stdin writer")
            .expect("driver reads stdin");
        let response: Value = serde_json::from_slice(&output.stdout).expect("driver prints JSON");
        let results = response["results"]
            .as_array()
            .expect("batch results")
            .clone();
        assert_eq!(results.len(), request["ops"].as_array().map_or(0, Vec::len));
        results
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The target directory this test binary was built in (`<target>/<profile>/deps/compat-*`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target dir above the test binary")
        .to_path_buf()
}

/// The `workos-vault` binary next to this test's deps folder (`cargo xtask compat`
/// builds it first).
fn vault_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let binary = dir.join(format!("workos-vault{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask compat`",
        binary.display()
    );
    binary
}

/// The Rust crate's driver: where `cargo xtask compat` built it, else
/// `<target>/compat-rust/release/`, where it builds it by default.
fn rust_driver() -> PathBuf {
    let binary = std::env::var_os(RUST_DRIVER_ENV).map_or_else(
        || {
            target_dir()
                .join("compat-rust")
                .join("release")
                .join(format!("vault-compat-rust{}", std::env::consts::EXE_SUFFIX))
        },
        PathBuf::from,
    );
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask compat`",
        binary.display()
    );
    binary
}

struct Fixture {
    _dir: tempfile::TempDir,
    keyring: PathBuf,
    server: Server,
    ours: Vault,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let keyring = dir.path().join("keyring.json");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let service: Arc<dyn vault::KeyService> =
            Arc::new(LocalKeyService::open_or_create(&keyring).expect("keyring"));
        let server = runtime
            .block_on(Server::bind(
                "127.0.0.1:0".parse().expect("addr"),
                service,
                ServerConfig::new().api_key(API_KEY),
            ))
            .expect("server starts");
        let client = HttpKeyService::builder()
            .api_key(API_KEY)
            .base_url(server.url())
            .build()
            .expect("client");
        Fixture {
            _dir: dir,
            keyring,
            server,
            ours: Vault::new(client),
            runtime,
        }
    }

    fn ours_with(&self, layout: Layout) -> Vault {
        Vault::builder()
            .shared_key_service(self.ours.key_service().clone())
            .layout(layout)
            .build()
            .expect("vault")
    }

    /// Our encrypt in `layout`.
    fn encrypt(
        &self,
        layout: Layout,
        plaintext: impl AsRef<[u8]>,
        org: &str,
        aad: Option<&str>,
    ) -> String {
        self.runtime
            .block_on(self.ours_with(layout).encrypt_with(
                plaintext,
                &key_context(org),
                &vault::EncryptOptions::new().aad(aad.unwrap_or_default().as_bytes()),
            ))
            .expect("our encrypt")
    }

    /// Our decrypt (detecting the layout).
    fn decrypt(&self, ciphertext: &str, aad: Option<&str>) -> Result<String, vault::Error> {
        self.runtime.block_on(self.ours.decrypt_to_string(
            ciphertext,
            &vault::DecryptOptions::new().aad(aad.unwrap_or_default().as_bytes()),
        ))
    }

    /// What `workos-vault data-key decrypt` prints for `keys`, with the server's keyring.
    fn cli_data_key(&self, keys: &str) -> Value {
        let output = Command::new(vault_binary())
            .args(["data-key", "decrypt", keys])
            .env("WORKOS_VAULT_KEYRING", &self.keyring)
            .env_remove("WORKOS_API_KEY")
            .output()
            .expect("vault runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    }
}

struct Case {
    name: &'static str,
    plaintext: String,
    aad: Option<&'static str>,
}

impl Case {
    /// The AAD this case uses with `sdk`: none for an SDK that takes none
    /// (the `aad_refused` cells assert that refusal).
    fn aad(&self, sdk: Sdk) -> Option<&'static str> {
        self.aad.filter(|_| sdk.takes_aad())
    }
}

/// The case whose AAD the wrong-AAD cells change.
const WITH_AAD: usize = 1;

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "ascii, no aad",
            plaintext: "keep it secret, keep it safe".into(),
            aad: None,
        },
        Case {
            name: "ascii, aad",
            plaintext: "card 4242".into(),
            aad: Some("user_42"),
        },
        Case {
            name: "empty string",
            plaintext: String::new(),
            aad: None,
        },
        Case {
            name: "unicode, unicode aad",
            plaintext: "h\u{e9}llo w\u{f6}rld \u{1f510}\u{200d}\u{1f9d1} \u{0}".into(),
            aad: Some("r\u{e9}cord-\u{2603}"),
        },
        Case {
            name: "1 MiB",
            plaintext: "0123456789abcdef".repeat(1 << 16),
            aad: Some("big"),
        },
    ]
}

fn context(org: &str) -> Value {
    json!({ "organization_id": org })
}

fn key_context(org: &str) -> KeyContext {
    KeyContext::new()
        .with("organization_id", org)
        .expect("valid context")
}

fn ok<'a>(sdk: Sdk, what: &str, result: &'a Value) -> &'a Value {
    assert!(
        result.get("error").is_none(),
        "{}: {what}: {result}",
        sdk.name()
    );
    result
}

/// What one driver result must be.
enum Expect {
    /// `{"plaintext": ...}` with this text.
    Plaintext(String),
    /// `{"data_key": ...}` with this base64 secret.
    DataKey(String),
    /// A data-key pair for `context` holding the same data key as
    /// `data_key`, whose `encrypted_keys` our CLI unwraps to that key.
    Rekeyed { data_key: Value, context: Value },
    /// The SDK's own refusal of this kind: not any error (a driver or
    /// network failure would pass that), the specific one.
    Refused(Refusal),
    /// An SDK error of this `error_type`.
    FailsWith(&'static str),
}

/// How an SDK refuses what it must not read, as observed from each pinned
/// SDK against our server.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The GCM tag did not verify (a wrong or missing AAD): the SDK's
    /// authentication failure.
    TagMismatch,
    /// A layout it does not read: it takes other bytes for the keys region
    /// and our key service refuses them (HTTP 400, "not written by the
    /// local key service", as the SDK's API error), or, for an SDK that
    /// checks its framing, its framing error.
    WrongLayout,
}

impl Refusal {
    fn matches(self, sdk: Sdk, result: &Value) -> bool {
        let error_type = result["error_type"].as_str().unwrap_or_default();
        let error = result["error"].as_str().unwrap_or_default();
        match self {
            Refusal::TagMismatch => match sdk {
                // Web Crypto's AES-GCM.
                Sdk::Node11 | Sdk::Node8 => {
                    error_type == "DOMException" && result["error_name"] == "OperationError"
                }
                // Node's crypto module.
                Sdk::Node7 => {
                    error_type == "Error" && error.contains("unable to authenticate data")
                }
                // cryptography's AESGCM.
                Sdk::Python => error_type == "InvalidTag",
                Sdk::Rust => error_type == "VaultCrypto" && error.contains("decrypt failed"),
            },
            Refusal::WrongLayout => {
                let api_error = match sdk {
                    Sdk::Node11 | Sdk::Node8 | Sdk::Node7 => "OauthException",
                    Sdk::Python => "BadRequestError",
                    Sdk::Rust => "Api",
                };
                let keys_refused = error_type == api_error
                    && result["status"] == 400
                    && error.contains("not written by the local key service");
                // The SDK's own framing refuses it first: the Rust crate
                // checks the keys length against the input (Node and Python
                // slices clamp, so they send what they got), and every
                // SDK's LEB128 reader refuses the random bytes it finds
                // where the length should be about once in 32 ciphertexts.
                let framing = match sdk {
                    Sdk::Rust => error_type == "VaultCrypto" && !error.contains("decrypt failed"),
                    Sdk::Node11 | Sdk::Node8 | Sdk::Node7 => {
                        error_type == "Error" && error.contains("LEB128")
                    }
                    Sdk::Python => error_type == "ValueError" && error.contains("LEB128"),
                };
                keys_refused || framing
            }
        }
    }
}

/// One cell of the matrix: an op for the driver and what it must give.
struct Cell {
    what: String,
    op: Value,
    expect: Expect,
    /// Whether it checks the SDK: a refusal the driver makes itself (an
    /// AAD or a call the SDK version does not take) is checked, so the
    /// driver cannot silently drop the argument, but is not counted as a
    /// compatibility check.
    counts: bool,
}

/// The `error_type` of a refusal the driver makes itself, without calling
/// the SDK.
const DRIVER_REFUSAL: &str = "Unsupported";

impl Cell {
    fn new(what: impl Into<String>, op: Value, expect: Expect) -> Self {
        Cell {
            what: what.into(),
            op,
            expect,
            counts: true,
        }
    }

    /// A cell the driver answers itself with [`DRIVER_REFUSAL`], because
    /// the SDK version has no way to take the op: checked, not counted.
    fn driver_refusal(what: impl Into<String>, op: Value) -> Self {
        Cell {
            counts: false,
            ..Cell::new(what, op, Expect::FailsWith(DRIVER_REFUSAL))
        }
    }

    fn check(&self, sdk: Sdk, fixture: &Fixture, result: &Value) {
        let what = &self.what;
        let name = sdk.name();
        match &self.expect {
            Expect::Plaintext(text) => assert_eq!(
                ok(sdk, what, result)["plaintext"].as_str(),
                Some(text.as_str()),
                "{name}: {what}"
            ),
            Expect::DataKey(key) => assert_eq!(
                ok(sdk, what, result)["data_key"].as_str(),
                Some(key.as_str()),
                "{name}: {what}"
            ),
            Expect::Rekeyed { data_key, context } => {
                let pair = ok(sdk, what, result);
                assert_eq!(&pair["data_key"], data_key, "{name}: {what}");
                assert_eq!(&pair["context"], context, "{name}: {what}");
                let keys = pair["encrypted_keys"].as_str().expect("encrypted_keys");
                let cli = fixture.cli_data_key(keys);
                assert_eq!(&cli["data_key"], data_key, "{name}: {what}: CLI");
                assert_eq!(cli["id"], pair["id"], "{name}: {what}: CLI");
            }
            Expect::Refused(refusal) => assert!(
                refusal.matches(sdk, result),
                "{name}: {what}: expected {refusal:?}, got {result}"
            ),
            Expect::FailsWith(error_type) => assert_eq!(
                result["error_type"].as_str(),
                Some(*error_type),
                "{name}: {what}: {result}"
            ),
        }
    }
}

/// Runs `cells` in one driver process; returns the results, each checked.
fn run_cells(sdk: Sdk, fixture: &Fixture, cells: &[Cell]) -> Vec<Value> {
    let ops = cells.iter().map(|cell| cell.op.clone()).collect();
    let results = sdk.batch(&fixture.server, ops);
    for (cell, result) in cells.iter().zip(&results) {
        cell.check(sdk, fixture, result);
    }
    results
}

/// What the SDK wrote in the first batch.
struct Written {
    /// Its `create_data_key` result.
    pair: Value,
    /// Its ciphertext of each case, in order.
    ciphertexts: Vec<String>,
    /// Its ciphertext of "empty aad" written with AAD `""`.
    empty_aad: String,
}

/// Batch 1: the SDK's data key and its encrypt of every case.
fn their_writes(sdk: Sdk, fixture: &Fixture, cases: &[Case]) -> (Written, usize) {
    let encrypt = |plaintext: &str, aad: Option<&str>| json!({"op": "encrypt", "context": context("org_compat"), "plaintext": plaintext, "aad": aad});
    let mut ops = vec![json!({"op": "create_data_key", "context": context("org_compat")})];
    ops.extend(
        cases
            .iter()
            .map(|case| encrypt(&case.plaintext, case.aad(sdk))),
    );
    ops.push(encrypt("empty aad", Some("")));
    if !sdk.takes_aad() {
        ops.push(encrypt("aad refused", Some("user_42")));
    }
    let results = sdk.batch(&fixture.server, ops);
    let mut passed = 0;

    // Its data key through our server equals what our CLI reads.
    let pair = ok(sdk, "create_data_key", &results[0]).clone();
    let keys = pair["encrypted_keys"].as_str().expect("encrypted_keys");
    let cli = fixture.cli_data_key(keys);
    assert_eq!(
        cli["data_key"],
        pair["data_key"],
        "{}: data key differs",
        sdk.name()
    );
    assert_eq!(cli["id"], pair["id"]);
    assert_eq!(pair["context"], context("org_compat"));
    passed += 1;

    let ciphertext = |i: usize, what: &str| {
        ok(sdk, what, &results[i])["ciphertext"]
            .as_str()
            .expect("ciphertext")
            .to_owned()
    };
    let ciphertexts = cases
        .iter()
        .enumerate()
        .map(|(i, case)| ciphertext(i + 1, case.name))
        .collect();
    let empty_aad = ciphertext(cases.len() + 1, "empty aad");
    passed += cases.len() + 1;
    if !sdk.takes_aad() {
        // The driver's own refusal: checked, not a compatibility check.
        let refused = Cell::driver_refusal("encrypt with aad", Value::Null);
        refused.check(sdk, fixture, &results[cases.len() + 2]);
    }
    let written = Written {
        pair,
        ciphertexts,
        empty_aad,
    };
    (written, passed)
}

/// Our decrypt of everything the SDK wrote: we detect its layout.
fn our_reads(sdk: Sdk, fixture: &Fixture, cases: &[Case], written: &Written) -> usize {
    let name = sdk.name();
    for (ciphertext, case) in written.ciphertexts.iter().zip(cases) {
        let inspection = vault::inspect(ciphertext).expect("inspect");
        assert_eq!(inspection.layout, sdk.layout(), "{name}: {}", case.name);
        let plaintext = fixture
            .decrypt(ciphertext, case.aad(sdk))
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", case.name));
        assert_eq!(plaintext, case.plaintext, "{name}: {}", case.name);
    }
    // An empty AAD is no AAD: either way reads it.
    for aad in [None, Some("")] {
        let plaintext = fixture
            .decrypt(&written.empty_aad, aad)
            .unwrap_or_else(|e| panic!("{name}: empty aad read with {aad:?}: {e}"));
        assert_eq!(plaintext, "empty aad");
    }
    // A wrong AAD (for Node 7.47.0: any AAD, it wrote none) fails.
    let with_aad = &written.ciphertexts[WITH_AAD];
    assert!(
        fixture.decrypt(with_aad, Some("wrong aad")).is_err(),
        "{name}: we accepted a wrong AAD"
    );
    cases.len() + 3
}

/// Batch 2: the SDK's decrypt of what we wrote, and its data-key calls on
/// our keys.
fn their_reads(sdk: Sdk, fixture: &Fixture, cases: &[Case], written: &Written) -> usize {
    let layout = sdk.layout();
    let decrypt = |ciphertext: &str, aad: Option<&str>| json!({"op": "decrypt", "ciphertext": ciphertext, "aad": aad});
    let mut cells: Vec<Cell> = cases
        .iter()
        .map(|case| {
            let ciphertext = fixture.encrypt(layout, &case.plaintext, "org_compat", case.aad(sdk));
            let op = decrypt(&ciphertext, case.aad(sdk));
            Cell::new(case.name, op, Expect::Plaintext(case.plaintext.clone()))
        })
        .collect();
    // An empty AAD is no AAD, written either way and read the other way.
    let empty = fixture.encrypt(layout, "empty aad", "org_compat", Some(""));
    let none = fixture.encrypt(layout, "no aad", "org_compat", None);
    cells.push(Cell::new(
        "our empty aad, read with none",
        decrypt(&empty, None),
        Expect::Plaintext("empty aad".into()),
    ));
    cells.push(Cell::new(
        "our no aad, read with empty",
        decrypt(&none, Some("")),
        Expect::Plaintext("no aad".into()),
    ));
    // Every other layout we write, which it does not read.
    for other in Layout::ALL.into_iter().filter(|&other| other != layout) {
        let ciphertext = fixture.encrypt(other, "other layout", "org_compat", None);
        let what = format!("our {other}, which it does not read");
        let expect = Expect::Refused(Refusal::WrongLayout);
        cells.push(Cell::new(what, decrypt(&ciphertext, None), expect));
    }
    cells.extend(aad_cells(sdk, fixture, cases));
    cells.extend(key_cells(sdk, fixture, written));
    cells.push(non_utf8_cell(sdk, fixture));
    run_cells(sdk, fixture, &cells);
    cells.iter().filter(|cell| cell.counts).count()
}

/// A wrong AAD fails; for an SDK that takes no AAD, AAD-bound data is
/// unreadable and passing an AAD is refused.
fn aad_cells(sdk: Sdk, fixture: &Fixture, cases: &[Case]) -> Vec<Cell> {
    let layout = sdk.layout();
    let case = &cases[WITH_AAD];
    let bound = fixture.encrypt(layout, &case.plaintext, "org_compat", case.aad);
    let decrypt = |aad: Option<&str>| json!({"op": "decrypt", "ciphertext": bound, "aad": aad});
    if sdk.takes_aad() {
        vec![Cell::new(
            "wrong aad",
            decrypt(Some("wrong aad")),
            Expect::Refused(Refusal::TagMismatch),
        )]
    } else {
        vec![
            Cell::new(
                "our aad-bound data, read without aad",
                decrypt(None),
                Expect::Refused(Refusal::TagMismatch),
            ),
            Cell::driver_refusal("decrypt with aad", decrypt(case.aad)),
        ]
    }
}

/// Our rekeyed ciphertext, its unwrap of our data key, and its rekey of its
/// own data key.
fn key_cells(sdk: Sdk, fixture: &Fixture, written: &Written) -> Vec<Cell> {
    let aad = Some("rk").filter(|_| sdk.takes_aad());
    let original = fixture.encrypt(sdk.layout(), "rekeyed payload", "org_old", aad);
    let rekeyed = fixture
        .runtime
        .block_on(fixture.ours.rekey(&original, &key_context("org_new")))
        .expect("rekey");
    let pair = fixture
        .runtime
        .block_on(fixture.ours.create_data_key(&key_context("org_compat")))
        .expect("data key");
    let rekey = json!({
        "op": "rekey",
        "context": context("org_rekeyed"),
        "encrypted_keys": written.pair["encrypted_keys"],
    });
    let rekey_cell = if sdk.has_rekey() {
        let expect = Expect::Rekeyed {
            data_key: written.pair["data_key"].clone(),
            context: context("org_rekeyed"),
        };
        Cell::new("rekey of its data key", rekey, expect)
    } else {
        Cell::driver_refusal("rekey of its data key", rekey)
    };
    vec![
        Cell::new(
            "our rekeyed ciphertext",
            json!({"op": "decrypt", "ciphertext": rekeyed, "aad": aad}),
            Expect::Plaintext("rekeyed payload".into()),
        ),
        Cell::new(
            "decrypt_data_key of our key",
            json!({"op": "decrypt_data_key", "keys": pair.encrypted_keys_base64()}),
            Expect::DataKey(pair.data_key.secret_base64().as_str().to_owned()),
        ),
        rekey_cell,
    ]
}

/// Our encrypt of bytes that are not UTF-8: every SDK's decrypt returns
/// text, so it mangles or refuses them.
fn non_utf8_cell(sdk: Sdk, fixture: &Fixture) -> Cell {
    let ciphertext = fixture.encrypt(sdk.layout(), b"ok\xff\xfe", "org_compat", None);
    let expect = match sdk.non_utf8() {
        NonUtf8::Mangled => Expect::Plaintext("ok\u{fffd}\u{fffd}".into()),
        NonUtf8::Refused(error_type) => Expect::FailsWith(error_type),
    };
    let op = json!({"op": "decrypt", "ciphertext": ciphertext, "aad": null});
    Cell::new("non-UTF-8 plaintext", op, expect)
}

fn run_matrix(sdk: Sdk) {
    let fixture = Fixture::new();
    let cases = cases();
    let (written, mut passed) = their_writes(sdk, &fixture, &cases);
    passed += our_reads(sdk, &fixture, &cases, &written);
    passed += their_reads(sdk, &fixture, &cases, &written);
    println!("{}: {passed} compatibility checks passed", sdk.name());
}

/// Every SDK's ciphertext through every SDK's decrypt, on one server: an
/// SDK reads another's only when both use the same layout.
#[test]
#[ignore = "needs cargo xtask compat"]
fn sdk_to_sdk() {
    const ALL: [Sdk; 5] = [Sdk::Node11, Sdk::Node8, Sdk::Node7, Sdk::Python, Sdk::Rust];
    let fixture = Fixture::new();
    let plaintext = "h\u{e9}llo \u{1f510} from ";
    let written: Vec<(Sdk, Vec<Value>)> = ALL
        .iter()
        .map(|&writer| {
            let text = format!("{plaintext}{}", writer.name());
            let mut ops = vec![json!({"op": "encrypt", "context": context("org_x"), "plaintext": text, "aad": null})];
            if writer.takes_aad() {
                ops.push(json!({"op": "encrypt", "context": context("org_x"), "plaintext": text, "aad": "row_7"}));
            }
            (writer, writer.batch(&fixture.server, ops))
        })
        .collect();
    let mut passed = 0;
    for reader in ALL {
        let mut cells = Vec::new();
        for (writer, results) in &written {
            let text = format!("{plaintext}{}", writer.name());
            let aads = [None, Some("row_7")];
            for (result, aad) in results.iter().zip(aads) {
                if aad.is_some() && !reader.takes_aad() {
                    continue;
                }
                let ciphertext = ok(*writer, "encrypt", result)["ciphertext"].clone();
                let what = format!("{} wrote ({aad:?}), {} reads", writer.name(), reader.name());
                let expect = if writer.layout() == reader.layout() {
                    Expect::Plaintext(text.clone())
                } else {
                    Expect::Refused(Refusal::WrongLayout)
                };
                let op = json!({"op": "decrypt", "ciphertext": ciphertext, "aad": aad});
                cells.push(Cell::new(what, op, expect));
            }
        }
        run_cells(reader, &fixture, &cells);
        passed += cells.len();
    }
    println!("SDK to SDK: {passed} cells passed");
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn node_11() {
    run_matrix(Sdk::Node11);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn node_8() {
    run_matrix(Sdk::Node8);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn node_7() {
    run_matrix(Sdk::Node7);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn python() {
    run_matrix(Sdk::Python);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn rust_crate() {
    run_matrix(Sdk::Rust);
}

/// `workos-vault migrate` of `rows` (one ciphertext per line) with `args`, using
/// the server's keyring as the key service (for A32); the migrated rows.
fn migrate(fixture: &Fixture, rows: &[String], args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("rows.txt");
    std::fs::write(&input, rows.join("\n") + "\n").expect("write rows");
    let output = Command::new(vault_binary())
        .arg("migrate")
        .args(args)
        .arg(&input)
        .env("WORKOS_VAULT_KEYRING", &fixture.keyring)
        .env_remove("WORKOS_API_KEY")
        .output()
        .expect("vault runs");
    assert!(
        output.status.success(),
        "workos-vault migrate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("base64 text")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Rows written by one SDK, migrated by `workos-vault migrate`, read by SDKs of
/// another layout: A12 (Node 11, Python) to B for the Rust crate, B (the
/// Rust crate) to A12 for Node and Python, and A32 (Node 7.47) to B and
/// A12 through the key service.
#[test]
#[ignore = "needs cargo xtask compat"]
fn migrated_rows_cross_sdks() {
    let fixture = Fixture::new();
    let text = "h\u{e9}llo \u{1f510} migrated";
    let write = |sdk: Sdk, aad: Option<&str>| {
        let op =
            json!({"op": "encrypt", "context": context("org_m"), "plaintext": text, "aad": aad});
        let results = sdk.batch(&fixture.server, vec![op]);
        ok(sdk, "encrypt", &results[0])["ciphertext"]
            .as_str()
            .expect("ciphertext")
            .to_owned()
    };
    let read_all = |reader: Sdk, rows: &[(String, Option<&str>)], what: &str| {
        let cells: Vec<Cell> = rows
            .iter()
            .map(|(ciphertext, aad)| {
                let op = json!({"op": "decrypt", "ciphertext": ciphertext, "aad": aad});
                Cell::new(what, op, Expect::Plaintext(text.to_owned()))
            })
            .collect();
        run_cells(reader, &fixture, &cells);
        cells.len()
    };
    let mut passed = 0;

    // A12 from Node 11 and Python, for the Rust crate (B), offline.
    for writer in [Sdk::Node11, Sdk::Python] {
        let rows = [write(writer, None), write(writer, Some("row_7"))];
        let migrated = migrate(&fixture, &rows, &["--for", "rust"]);
        let what = format!("{} A12 migrated --for rust", writer.name());
        let with_aad = [
            (migrated[0].clone(), None),
            (migrated[1].clone(), Some("row_7")),
        ];
        passed += read_all(Sdk::Rust, &with_aad, &what);
    }

    // B from the Rust crate, for Node and Python (A12), offline.
    let rows = [write(Sdk::Rust, None), write(Sdk::Rust, Some("row_7"))];
    let migrated = migrate(&fixture, &rows, &["--for", "node"]);
    let with_aad = [
        (migrated[0].clone(), None),
        (migrated[1].clone(), Some("row_7")),
    ];
    for reader in [Sdk::Node11, Sdk::Python] {
        passed += read_all(reader, &with_aad, "Rust crate B migrated --for node");
    }

    // A32 from Node 7.47 (no AAD), through the key service.
    let rows = [write(Sdk::Node7, None)];
    let to_b = migrate(&fixture, &rows, &["--for", "rust", "--verify"]);
    passed += read_all(Sdk::Rust, &[(to_b[0].clone(), None)], "Node 7.47 A32 -> B");
    let to_a12 = migrate(&fixture, &rows, &["--for", "python", "--verify"]);
    for reader in [Sdk::Node11, Sdk::Python] {
        passed += read_all(reader, &[(to_a12[0].clone(), None)], "Node 7.47 A32 -> A12");
    }
    // And back: Node 7.47 reads our A32 made from B.
    let back = migrate(&fixture, &to_b, &["--for", "node@7.47"]);
    passed += read_all(
        Sdk::Node7,
        &[(back[0].clone(), None)],
        "B -> A32 for Node 7.47",
    );
    println!("migrate across SDKs: {passed} cells passed");
}

/// The objects (key-value) API: the official SDK's every objects call
/// against `vault-server` over a real SQLite store: conflicts, pages in
/// both directions, order, search, `updatedAfter`, version checks and a
/// deleted object's 404.
fn objects_scenario(sdk: Sdk) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Arc<dyn vault::KeyService> =
        Arc::new(LocalKeyService::create(dir.path().join("keyring.json")).expect("keyring"));
    let server = runtime.block_on(async {
        let store =
            vault_store::ObjectStore::open_sqlite(&dir.path().join("objects.db"), keys.clone())
                .await
                .expect("store");
        Server::bind(
            "127.0.0.1:0".parse().expect("addr"),
            keys,
            ServerConfig::new()
                .api_key(API_KEY)
                .objects(Arc::new(store)),
        )
        .await
        .expect("server starts")
    });
    let name = sdk.name();
    let context = json!({"organization_id": "org_objects"});
    let names: Vec<String> = (0..5).map(|i| format!("compat: item {i}")).collect();
    let mut ops: Vec<Value> = names
        .iter()
        .map(|n| json!({"op": "create_object", "name": n, "value": format!("value of {n}"), "context": context}))
        .collect();
    ops.push(
        json!({"op": "create_object", "name": names[0], "value": "again", "context": context}),
    );
    ops.push(json!({"op": "read_object_by_name", "name": names[2]}));
    ops.push(json!({"op": "list_objects", "limit": 2, "order": "asc", "search": "compat: item"}));
    ops.push(json!({"op": "list_objects", "all": true, "search": "compat"}));
    ops.push(json!({"op": "list_objects", "search": "item 3"}));
    ops.push(json!({"op": "list_objects", "updated_after": "2000-01-01T00:00:00Z"}));
    ops.push(json!({"op": "list_objects", "updated_after": "2999-01-01T00:00:00Z"}));
    let results = sdk.batch(&server, ops);
    let created: Vec<&Value> = results[..5]
        .iter()
        .map(|r| ok(sdk, "create_object", r))
        .collect();
    for (object, n) in created.iter().zip(&names) {
        assert!(
            object["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("obj_")),
            "{name}: {object}"
        );
        assert!(object["version_id"]
            .as_str()
            .is_some_and(|v| v.starts_with("ver_")));
        assert_eq!(object["context"], context, "{name}: {n}");
        assert_eq!(object["environment_id"], "environment_local");
    }
    assert_eq!(
        results[5]["status"], 409,
        "{name}: duplicate name: {}",
        results[5]
    );
    let read = ok(sdk, "read_object_by_name", &results[6]);
    assert_eq!(read["value"], format!("value of {}", names[2]), "{name}");
    assert_eq!(read["id"], created[2]["id"]);
    let first = ok(sdk, "list_objects", &results[7]);
    assert_eq!(
        first["names"],
        json!([names[0], names[1]]),
        "{name}: first page, oldest first"
    );
    let after = first["after"].as_str().expect("an after cursor").to_owned();
    let all = ok(sdk, "list_objects", &results[8]);
    let newest_first: Vec<&String> = names.iter().rev().collect();
    assert_eq!(
        all["names"],
        json!(newest_first),
        "{name}: every page, newest first"
    );
    assert_eq!(
        ok(sdk, "list_objects", &results[9])["names"],
        json!([names[3]])
    );
    assert_eq!(
        ok(sdk, "list_objects", &results[10])["names"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "{name}: updatedAfter in the past"
    );
    assert_eq!(
        ok(sdk, "list_objects", &results[11])["names"],
        json!([]),
        "{name}: updatedAfter in the future"
    );

    let id = created[2]["id"].as_str().expect("id").to_owned();
    let v1 = created[2]["version_id"]
        .as_str()
        .expect("version")
        .to_owned();
    let results = sdk.batch(
        &server,
        vec![
            json!({"op": "list_objects", "limit": 2, "order": "asc", "search": "compat: item", "after": after}),
            json!({"op": "update_object", "id": id, "value": "second", "version_check": v1}),
            json!({"op": "update_object", "id": id, "value": "lost", "version_check": v1}),
            json!({"op": "update_object", "id": id, "value": "third"}),
            json!({"op": "read_object", "id": id}),
            json!({"op": "describe_object", "id": id}),
            json!({"op": "list_object_versions", "id": id}),
            json!({"op": "delete_object", "id": id, "version_check": v1}),
        ],
    );
    let second = ok(sdk, "list_objects", &results[0]);
    assert_eq!(
        second["names"],
        json!([names[2], names[3]]),
        "{name}: the page after"
    );
    let updated = ok(sdk, "update_object", &results[1]);
    assert!(
        updated.get("value").is_none(),
        "{name}: update answers without the value"
    );
    assert_eq!(
        results[2]["status"], 409,
        "{name}: stale version_check: {}",
        results[2]
    );
    let blind = ok(sdk, "update_object", &results[3]);
    let v3 = blind["version_id"].as_str().expect("version").to_owned();
    let read = ok(sdk, "read_object", &results[4]);
    assert_eq!(read["value"], "third", "{name}: no lost update");
    assert_eq!(read["version_id"], v3.as_str());
    let described = ok(sdk, "describe_object", &results[5]);
    assert_eq!(described["version_id"], v3.as_str());
    assert!(described.get("value").is_none());
    let versions = ok(sdk, "list_object_versions", &results[6])["versions"]
        .as_array()
        .expect("versions")
        .clone();
    assert_eq!(versions.len(), 3, "{name}");
    assert_eq!(versions[0]["id"], v3.as_str(), "{name}: newest first");
    assert_eq!(versions[0]["current_version"], true);
    assert_eq!(versions[2]["current_version"], false);
    assert_eq!(versions[0]["size"], 5);
    assert_eq!(
        results[7]["status"], 409,
        "{name}: stale delete: {}",
        results[7]
    );

    let before = second["before"]
        .as_str()
        .expect("a before cursor")
        .to_owned();
    let results = sdk.batch(
        &server,
        vec![
            json!({"op": "list_objects", "limit": 2, "order": "asc", "search": "compat: item", "before": before}),
            json!({"op": "delete_object", "id": id, "version_check": v3}),
            json!({"op": "read_object", "id": id}),
            json!({"op": "read_object_by_name", "name": names[2]}),
            json!({"op": "delete_object", "id": id}),
            json!({"op": "read_object", "id": "obj_1"}),
        ],
    );
    assert_eq!(
        ok(sdk, "list_objects", &results[0])["names"],
        json!([names[0], names[1]]),
        "{name}: the page before"
    );
    assert_eq!(ok(sdk, "delete_object", &results[1])["deleted"], true);
    for (i, status) in [(2, 404), (3, 404), (4, 404), (5, 400)] {
        assert_eq!(
            results[i]["status"], status,
            "{name}: op {i}: {}",
            results[i]
        );
    }
    drop(server);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn node_11_objects() {
    objects_scenario(Sdk::Node11);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn python_objects() {
    objects_scenario(Sdk::Python);
}

#[test]
#[ignore = "needs cargo xtask compat"]
fn rust_crate_objects() {
    objects_scenario(Sdk::Rust);
}
