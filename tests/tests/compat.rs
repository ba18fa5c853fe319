//! The official SDKs against our server, and their ciphertexts against ours.
//!
//! Needs the pinned peers installed and the `vault` binary built:
//! `cargo xtask compat` does both, then runs these tests with
//! `--include-ignored`. Each SDK is one test, driven through
//! `tests/compat/*/driver` in a few batched process starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use vault::{HttpKeyService, KeyContext, Layout, LocalKeyService, Vault};
use vault_server::{Server, ServerConfig};

const API_KEY: &str = "sk_test_compat_3b7e";

/// One SDK behind its driver script.
#[derive(Clone, Copy)]
enum Sdk {
    Node11,
    Node8,
    Python,
}

impl Sdk {
    fn name(self) -> &'static str {
        match self {
            Sdk::Node11 => "@workos-inc/node 11.0.0",
            Sdk::Node8 => "@workos-inc/node 8.13.0",
            Sdk::Python => "workos 10.8.0 (Python)",
        }
    }

    fn command(self) -> Command {
        let compat = root().join("tests").join("compat");
        match self {
            Sdk::Node11 | Sdk::Node8 => {
                let mut command = Command::new("node");
                command.arg(compat.join("node").join("driver.mjs"));
                command.arg(if matches!(self, Sdk::Node11) {
                    "node11"
                } else {
                    "node8"
                });
                command
            }
            Sdk::Python => {
                let python =
                    std::env::var("VAULT_COMPAT_PYTHON").unwrap_or_else(|_| "python3".into());
                let mut command = Command::new(python);
                command.arg(compat.join("python").join("driver.py"));
                command
            }
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
            std::io::Write::write_all(&mut stdin, &body).expect("driver reads stdin");
        });
        let output = child.wait_with_output().expect("driver runs");
        writer.join().expect("stdin writer");
        assert!(
            output.status.success(),
            "{} driver failed: {}",
            self.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        let response: Value = serde_json::from_slice(&output.stdout).expect("driver prints JSON");
        response["results"]
            .as_array()
            .expect("batch results")
            .clone()
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `vault` binary next to this test's deps folder (`cargo xtask compat`
/// builds it first).
fn vault_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let binary = dir.join(format!("vault{}", std::env::consts::EXE_SUFFIX));
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
            Arc::new(LocalKeyService::open(&keyring).expect("keyring"));
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

    /// What `vault data-key decrypt` prints for `keys`, with the server's keyring.
    fn cli_data_key(&self, keys: &str) -> Value {
        let output = Command::new(vault_binary())
            .args(["data-key", "decrypt", keys])
            .env("VAULT_KEYRING", &self.keyring)
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

fn run_matrix(sdk: Sdk) {
    let fixture = Fixture::new();
    let cases = cases();
    let mut passed = 0;

    // 1. The SDK's data keys through our server equal what our CLI reads.
    //    2. SDK encrypt for every case.
    let mut ops = vec![json!({"op": "create_data_key", "context": context("org_compat")})];
    ops.extend(cases.iter().map(|case| {
        json!({"op": "encrypt", "context": context("org_compat"), "plaintext": case.plaintext, "aad": case.aad})
    }));
    let results = sdk.batch(&fixture.server, ops);
    let created = ok(sdk, "create_data_key", &results[0]);
    let keys = created["encrypted_keys"].as_str().expect("encrypted_keys");
    let cli = fixture.cli_data_key(keys);
    assert_eq!(
        cli["data_key"],
        created["data_key"],
        "{}: data key differs",
        sdk.name()
    );
    assert_eq!(cli["id"], created["id"]);
    passed += 1;

    // SDK encrypt, our decrypt.
    let theirs: Vec<String> = results[1..]
        .iter()
        .zip(&cases)
        .map(|(result, case)| {
            ok(sdk, case.name, result)["ciphertext"]
                .as_str()
                .expect("ciphertext")
                .to_owned()
        })
        .collect();
    for (ciphertext, case) in theirs.iter().zip(&cases) {
        assert_eq!(
            Vault::inspect(ciphertext).expect("inspect").layout,
            "A12",
            "{}",
            case.name
        );
        let plaintext = fixture
            .runtime
            .block_on(
                fixture
                    .ours
                    .decrypt_to_string(ciphertext, case.aad.map(str::as_bytes)),
            )
            .unwrap_or_else(|e| panic!("{}: {}: {e}", sdk.name(), case.name));
        assert_eq!(plaintext, case.plaintext, "{}: {}", sdk.name(), case.name);
        passed += 1;
    }

    // Our encrypt (A12, and B which they cannot read), their decrypt; our
    // rekey output under a new context; their decryptDataKey of our key.
    let ours: Vec<String> = cases
        .iter()
        .map(|case| {
            fixture
                .runtime
                .block_on(fixture.ours.encrypt(
                    &case.plaintext,
                    &key_context("org_compat"),
                    case.aad.map(str::as_bytes),
                ))
                .expect("our encrypt")
        })
        .collect();
    let layout_b = fixture
        .runtime
        .block_on(fixture.ours_with(Layout::B).encrypt(
            "layout b",
            &key_context("org_compat"),
            None,
        ))
        .expect("our B encrypt");
    let original = fixture
        .runtime
        .block_on(
            fixture
                .ours
                .encrypt("rekeyed payload", &key_context("org_old"), Some(b"rk")),
        )
        .expect("encrypt before rekey");
    let rekeyed = fixture
        .runtime
        .block_on(fixture.ours.rekey(&original, &key_context("org_new")))
        .expect("rekey");
    let pair = fixture
        .runtime
        .block_on(fixture.ours.create_data_key(&key_context("org_compat")))
        .expect("data key");

    let mut ops: Vec<Value> = ours
        .iter()
        .zip(&cases)
        .map(|(ciphertext, case)| json!({"op": "decrypt", "ciphertext": ciphertext, "aad": case.aad}))
        .collect();
    ops.push(json!({"op": "decrypt", "ciphertext": layout_b, "aad": null}));
    ops.push(json!({"op": "decrypt", "ciphertext": rekeyed, "aad": "rk"}));
    ops.push(json!({"op": "decrypt_data_key", "keys": pair.encrypted_keys_base64()}));
    ops.push(json!({"op": "decrypt", "ciphertext": ours[1], "aad": "wrong aad"}));
    let results = sdk.batch(&fixture.server, ops);

    for (result, case) in results.iter().zip(&cases) {
        assert_eq!(
            ok(sdk, case.name, result)["plaintext"].as_str(),
            Some(case.plaintext.as_str()),
            "{}",
            case.name
        );
        passed += 1;
    }
    let n = cases.len();
    assert!(
        results[n].get("error").is_some(),
        "{}: read layout B, which it should not: {}",
        sdk.name(),
        results[n]
    );
    passed += 1;
    assert_eq!(
        ok(sdk, "rekeyed", &results[n + 1])["plaintext"],
        "rekeyed payload"
    );
    passed += 1;
    assert_eq!(
        ok(sdk, "decrypt_data_key", &results[n + 2])["data_key"].as_str(),
        Some(pair.data_key.secret_base64().as_str())
    );
    passed += 1;
    assert!(
        results[n + 3].get("error").is_some(),
        "{}: wrong AAD accepted",
        sdk.name()
    );
    passed += 1;

    println!("{}: {passed} compatibility checks passed", sdk.name());
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
fn python() {
    run_matrix(Sdk::Python);
}
