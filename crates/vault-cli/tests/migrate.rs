//! `workos-vault migrate` end to end, in a temporary HOME whose local keyring is
//! the key service.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use vault::{DataKey, Layout};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keyring(&self) -> PathBuf {
        self.path("keys/keyring.json")
    }

    fn vault(&self) -> Command {
        let mut command = Command::cargo_bin("workos-vault").unwrap();
        command
            .env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.path("data"))
            .env("WORKOS_VAULT_KEYRING", self.keyring())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.vault().args(args).write_stdin(stdin).output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let output = self.run(args, stdin);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Encrypts `plaintext` through the CLI under `org`, in `layout`.
    fn encrypt(&self, plaintext: &str, org: &str, aad: &str, layout: &str) -> String {
        let context = format!("org={org}");
        let mut args = vec!["encrypt", "-c", &context, "--layout", layout];
        if !aad.is_empty() {
            args.extend(["--aad", aad]);
        }
        text(self.ok(&args, plaintext.as_bytes())).trim().to_owned()
    }

    fn decrypt(&self, ciphertext: &str, aad: &str) -> Output {
        let mut args = vec!["decrypt"];
        if !aad.is_empty() {
            args.extend(["--aad", aad]);
        }
        self.run(&args, ciphertext.as_bytes())
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn layout_of(ciphertext: &str) -> String {
    vault::inspect(ciphertext).unwrap().layout.to_string()
}

fn reframed(ciphertext: &str, layout: Layout) -> String {
    vault_format::reframe_base64(ciphertext, layout).unwrap()
}

#[test]
fn every_sdk_vector_is_reframed_offline_and_back() {
    let env = Env::new();
    let vectors: Vec<_> = vault_testdata::sdk_vectors()
        .vectors
        .into_iter()
        .filter(|v| v.layout != "A32")
        .collect();
    let input: String = vectors
        .iter()
        .map(|v| v.ciphertext_b64.clone() + "\n")
        .collect();

    for (sdk, layout) in [("rust", "B"), ("python", "A12"), ("dotnet", "A-prime")] {
        let output = env.run(&["migrate", "--for", sdk], input.as_bytes());
        assert!(output.status.success(), "{sdk}: {}", stderr(&output));
        let lines: Vec<&str> = std::str::from_utf8(&output.stdout)
            .unwrap()
            .lines()
            .collect();
        assert_eq!(lines.len(), vectors.len());
        for (vector, line) in vectors.iter().zip(&lines) {
            assert_eq!(layout_of(line), layout, "{}", vector.id);
            let key = DataKey::from_base64(&vector.data_key_id, &vector.data_key_b64).unwrap();
            let plaintext = vault::decrypt_with_data_key(
                line,
                &key,
                &vault::DecryptOptions::new().aad(vector.aad_bytes()),
            )
            .unwrap();
            assert_eq!(plaintext, vector.plaintext_utf8.as_bytes(), "{}", vector.id);
            // And back to the vector's own layout, byte for byte.
            let back = env.ok(&["migrate", "--layout", &vector.layout], line.as_bytes());
            assert_eq!(
                text(back).trim_end(),
                vector.ciphertext_b64,
                "{}",
                vector.id
            );
        }
    }
    // No key service was touched: no keyring was created.
    assert!(!env.keyring().exists());
}

#[test]
fn a32_is_resealed_through_the_key_service() {
    let env = Env::new();
    let a32 = env.encrypt("legacy", "o", "row-1", "A32");
    assert_eq!(layout_of(&a32), "A32");
    for (sdk, layout) in [("go", "B"), ("node", "A12"), ("dotnet", "A-prime")] {
        let out = env.ok(
            &["migrate", "--for", sdk, "--aad", "row-1", "--verify"],
            format!("{a32}\n").as_bytes(),
        );
        let migrated = text(out).trim().to_owned();
        assert_eq!(layout_of(&migrated), layout);
        let output = env.decrypt(&migrated, "row-1");
        assert_eq!(output.stdout, b"legacy", "{}", stderr(&output));
    }
    // Rows that share a keys blob share one key service call.
    let other = env.encrypt("other", "o", "row-1", "A32");
    let rows = format!("{a32}\n{a32}\n{other}\n{a32}\n");
    let output = env.run(
        &["migrate", "--for", "go", "--aad", "row-1"],
        rows.as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("key service calls: 2 "),
        "{}",
        stderr(&output)
    );
    // Without the AAD it was sealed with, the row is reported and kept.
    let output = env.run(&["migrate", "--for", "go"], format!("{a32}\n").as_bytes());
    assert_eq!(output.status.code(), Some(5));
    assert_eq!(text(output.stdout.clone()), format!("{a32}\n"));
    let message = stderr(&output);
    assert!(message.contains("line 1: cannot decrypt"), "{message}");
    assert!(message.contains("A32: 1 failed"), "{message}");
}

#[test]
fn a_new_context_moves_rows_and_a_rerun_changes_nothing() {
    let env = Env::new();
    let rows = [
        env.encrypt("one", "old", "", "A12"),
        env.encrypt("two", "old", "", "B"),
    ];
    let input = format!("{}\n{}\n", rows[0], rows[1]);
    let args = ["migrate", "--for", "go", "-c", "org=new", "--verify"];
    let first = env.run(&args, input.as_bytes());
    assert!(first.status.success(), "{}", stderr(&first));
    let moved = text(first.stdout.clone());
    let summary = stderr(&first);
    assert!(summary.contains("A12: 1 rekeyed"), "{summary}");
    assert!(summary.contains("B: 1 rekeyed"), "{summary}");
    for (line, plaintext) in moved.lines().zip(["one", "two"]) {
        assert_eq!(layout_of(line), "B");
        assert_eq!(env.decrypt(line, "").stdout, plaintext.as_bytes());
        // The keys blob names the new context (the local blob stores it).
        let keys = vault::b64::decode(&vault::inspect(line).unwrap().encrypted_keys).unwrap();
        assert_eq!(
            vault_local::blob_context(&keys).unwrap().get("org"),
            Some("new")
        );
    }
    // Idempotent: a rerun over the output writes it back unchanged.
    let second = env.run(&args, moved.as_bytes());
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(text(second.stdout.clone()), moved);
    assert!(stderr(&second).contains("0 converted, 2 unchanged"));
}

#[test]
fn a_rerun_of_an_offline_migration_changes_nothing() {
    let env = Env::new();
    let input = format!(
        "{}\n{}",
        env.encrypt("a", "o", "", "A12"),
        env.encrypt("b", "o", "", "A-prime")
    );
    let once = env.ok(&["migrate", "--for", "rust"], input.as_bytes());
    let twice = env.run(&["migrate", "--for", "rust"], &once);
    assert!(twice.status.success());
    assert_eq!(twice.stdout, once);
    assert!(
        stderr(&twice).contains("B: 2 unchanged"),
        "{}",
        stderr(&twice)
    );
    // The last line had no newline, and still has none.
    assert!(!once.ends_with(b"\n"));
}

#[test]
fn bad_rows_are_reported_and_nothing_else_is_disturbed() {
    let env = Env::new();
    let good = env.encrypt("ok", "o", "", "A12");
    let truncated = &good[..good.len() / 2];
    let input =
        format!("{good}\r\n{truncated}\r\n\r\nnot a ciphertext at all\r\n  {good}  \r\n{good}");
    let output = env.run(&["migrate", "--for", "go"], input.as_bytes());
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let b = reframed(&good, Layout::B);
    let expected = format!("{b}\r\n{truncated}\r\n\r\nnot a ciphertext at all\r\n  {b}  \r\n{b}");
    assert_eq!(text(output.stdout.clone()), expected);
    let message = stderr(&output);
    assert!(message.contains("line 2: not a ciphertext"), "{message}");
    assert!(message.contains("line 4: not a ciphertext"), "{message}");
    assert!(
        message.contains("5 record(s): 3 converted, 0 unchanged, 2 failed"),
        "{message}"
    );
    assert!(message.contains("A12: 3 reframed"), "{message}");
}

#[test]
fn jsonl_replaces_only_the_field() {
    let env = Env::new();
    let one = env.encrypt("one", "o", "7", "A12");
    // A row whose text has a `/`, so its JSON can spell it `\/`.
    let two = std::iter::repeat_with(|| env.encrypt("two", "o", "8", "A12"))
        .find(|row| row.contains('/'))
        .unwrap();
    let slashed = two.replace('/', "\\/");
    let input = [
        format!(r#"{{"id": 7,  "data" : {{"ssn":"{one}", "z": [1, "}}"]}}, "tail":true}}"#),
        r#"{"id": 9, "data": {"other": "x"}}"#.to_owned(),
        r#"{"id": 10, "data": "#.to_owned(),
        format!(r#"{{"data":{{"ssn":"{slashed}"}},"id":"8"}}"#),
    ]
    .join("\n")
        + "\n";
    let output = env.run(
        &[
            "migrate",
            "--for",
            "go",
            "--format",
            "jsonl",
            "--field",
            "data.ssn",
            "--aad-field",
            "id",
            "--verify",
        ],
        input.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let expected = input
        .replace(&one, &reframed(&one, Layout::B))
        .replace(&slashed, &reframed(&two, Layout::B).replace('/', "\\/"));
    assert_eq!(text(output.stdout.clone()), expected);
    let message = stderr(&output);
    assert!(
        message.contains("line 2: no field \"data.ssn\""),
        "{message}"
    );
    assert!(message.contains("line 3: not a JSON object"), "{message}");
    assert!(message.contains("A12: 2 reframed"), "{message}");
}

#[test]
fn csv_replaces_only_the_column() {
    let env = Env::new();
    let one = env.encrypt("one", "o", "", "A12");
    let two = env.encrypt("two", "o", "", "A12");
    let input = format!(
        "id,note,secret\r\n1,\"a, quoted comma\",{one}\r\n2,\"an embedded\nnewline, and \"\"quotes\"\"\",\"{two}\"\r\n3,short row\r\n4,x,garbage"
    );
    let output = env.run(
        &[
            "migrate", "--for", "go", "--format", "csv", "--column", "secret",
        ],
        input.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let expected = input
        .replace(&one, &reframed(&one, Layout::B))
        .replace(&two, &reframed(&two, Layout::B));
    assert_eq!(text(output.stdout.clone()), expected);
    let message = stderr(&output);
    // The header is line 1; row 2 spans lines 3 and 4.
    assert!(message.contains("line 5: no column 3"), "{message}");
    assert!(message.contains("line 6: not a ciphertext"), "{message}");
    assert!(message.contains("A12: 2 reframed"), "{message}");

    let missing = env.run(
        &[
            "migrate", "--for", "go", "--format", "csv", "--column", "nope",
        ],
        input.as_bytes(),
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no column \"nope\""));
    assert!(missing.stdout.is_empty());
}

#[test]
fn an_empty_input_is_an_empty_output() {
    let env = Env::new();
    for format in [
        &["--format", "lines"][..],
        &["--format", "csv", "--column", "c"],
    ] {
        let mut args = vec!["migrate", "--for", "go"];
        args.extend(format);
        let output = env.run(&args, b"");
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(output.stdout.is_empty());
        assert!(stderr(&output).contains("0 record(s)"));
    }
}

#[test]
fn dry_run_writes_nothing_and_output_replaces_atomically() {
    let env = Env::new();
    let input_path = env.path("rows.txt");
    let row = env.encrypt("x", "o", "", "A12");
    std::fs::write(&input_path, format!("{row}\n")).unwrap();
    let out = env.path("out.txt");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "migrate".to_owned(),
            "--for".to_owned(),
            "go".to_owned(),
            input_path.to_str().unwrap().to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    let dry = env
        .vault()
        .args(args(&["-o", out.to_str().unwrap(), "--dry-run"]))
        .output()
        .unwrap();
    assert!(dry.status.success());
    assert!(dry.stdout.is_empty());
    assert!(!out.exists());
    assert!(
        stderr(&dry).contains("1 would be converted"),
        "{}",
        stderr(&dry)
    );
    assert_eq!(files_in(env.dir.path()), ["keys", "rows.txt"]);

    // In place: OUTPUT may be INPUT, written through a temporary file.
    let in_place = env
        .vault()
        .args(args(&["-o", input_path.to_str().unwrap()]))
        .output()
        .unwrap();
    assert!(in_place.status.success(), "{}", stderr(&in_place));
    assert_eq!(
        std::fs::read_to_string(&input_path).unwrap(),
        format!("{}\n", reframed(&row, Layout::B))
    );
    assert_eq!(files_in(env.dir.path()), ["keys", "rows.txt"]);
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn to_service_reencrypts_under_the_new_keyring() {
    let env = Env::new();
    let row = env.encrypt("moving", "o", "r", "A12");
    let new_keyring = env.path("new/keyring.json");
    let output = env
        .vault()
        .env("WORKOS_VAULT_TO_KEYRING", &new_keyring)
        .args([
            "migrate",
            "--for",
            "go",
            "--to-service",
            "keyring",
            "-c",
            "org=o",
            "--aad",
            "r",
            "--verify",
        ])
        .write_stdin(format!("{row}\n"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("A12: 1 re-encrypted"), "{message}");
    assert!(message.contains("no key service can wrap"), "{message}");
    let moved = text(output.stdout.clone()).trim().to_owned();
    // The old keyring no longer opens it; the new one does.
    assert!(!env.decrypt(&moved, "r").status.success());
    let opened = env
        .vault()
        .env("WORKOS_VAULT_KEYRING", &new_keyring)
        .args(["decrypt", "--aad", "r"])
        .write_stdin(moved)
        .output()
        .unwrap();
    assert_eq!(opened.stdout, b"moving");

    // Without its variable, --to-service fails closed and names it.
    let output = env.run(
        &[
            "migrate",
            "--for",
            "go",
            "--to-service",
            "keyring",
            "-c",
            "org=o",
        ],
        row.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("WORKOS_VAULT_TO_KEYRING"));
}

#[test]
fn usage_errors_name_the_fix() {
    let env = Env::new();
    for (args, needle) in [
        (
            &["migrate", "--for", "go", "--format", "jsonl"][..],
            "--field PATH",
        ),
        (
            &["migrate", "--for", "go", "--format", "csv"][..],
            "--column NAME",
        ),
        (
            &["migrate", "--for", "go", "--field", "x"][..],
            "--format jsonl",
        ),
        (&["migrate"][..], "--for"),
    ] {
        let output = env.run(args, b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let help = text(env.ok(&["migrate", "--help"], b""));
    assert!(
        help.contains("Exit codes") && help.contains("5 some records"),
        "{help}"
    );
}

#[test]
fn many_rows_keep_their_order_across_workers() {
    let env = Env::new();
    let blob = b"WOS.EKM.v1\x00d4ecdb90-30fc-560a-80c4-a1ad67b2b53c".to_vec();
    let rows: Vec<String> = (0u32..10_000)
        .map(|i| {
            let mut iv = [0u8; 12];
            iv[..4].copy_from_slice(&i.to_be_bytes());
            vault_format::Envelope::new(Layout::A12, &iv, &[9; 16], &blob, &i.to_le_bytes())
                .unwrap()
                .to_base64()
        })
        .collect();
    let input = rows.join("\n");
    let output = env.run(&["migrate", "--for", "go", "--jobs", "3"], input.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let expected: Vec<String> = rows.iter().map(|r| reframed(r, Layout::B)).collect();
    assert_eq!(text(output.stdout.clone()), expected.join("\n"));
    assert!(
        stderr(&output).contains("B: 10000") || stderr(&output).contains("A12: 10000 reframed")
    );
}

/// The server's API key: 16 characters or more, as `workos-vault serve` requires.
const API_KEY: &str = "sk_test_migrate_0123456789";

/// `workos-vault serve` over its own keyring, killed when dropped.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(env: &Env, keyring: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("workos-vault"))
            .env_clear()
            .env("HOME", env.dir.path())
            .env("WORKOS_VAULT_KEYRING", keyring)
            .env("WORKOS_VAULT_SERVER_API_KEY", API_KEY)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The first lines may say the keyring was created; the address
        // line follows.
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut url = None;
        for _ in 0..4 {
            let mut line = String::new();
            stderr.read_line(&mut line).unwrap();
            url = line
                .split_whitespace()
                .find(|word| word.starts_with("http://"))
                .map(str::to_owned);
            if url.is_some() {
                break;
            }
        }
        let url = url.expect("workos-vault serve printed no address");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn to_service_workos_moves_rows_to_the_api_and_a_rerun_changes_nothing() {
    let env = Env::new();
    let server = Server::start(&env, &env.path("server/keyring.json"));
    let rows = format!(
        "{}\n{}\n",
        env.encrypt("first", "o", "r", "A12"),
        env.encrypt("second", "o", "r", "A32")
    );
    let migrate = |input: &[u8]| {
        env.vault()
            .env("WORKOS_VAULT_TO_API_KEY", API_KEY)
            .env("WORKOS_VAULT_TO_BASE_URL", &server.url)
            .args([
                "migrate",
                "--for",
                "python",
                "--to-service",
                "workos",
                "-c",
                "org=o",
                "--aad",
                "r",
                "--verify",
            ])
            .write_stdin(input)
            .output()
            .unwrap()
    };
    let output = migrate(rows.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("A12: 1 re-encrypted"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("A32: 1 re-encrypted"),
        "{}",
        stderr(&output)
    );
    let moved = text(output.stdout.clone());
    for (line, plaintext) in moved.lines().zip(["first", "second"]) {
        assert_eq!(layout_of(line), "A12");
        // Through the API the rows open; with the old keyring they do not.
        let opened = env
            .vault()
            .env("WORKOS_API_KEY", API_KEY)
            .env("WORKOS_BASE_URL", &server.url)
            .args(["decrypt", "--aad", "r"])
            .write_stdin(line)
            .output()
            .unwrap();
        assert_eq!(opened.stdout, plaintext.as_bytes(), "{}", stderr(&opened));
        assert!(!env.decrypt(line, "r").status.success());
    }
    // A rerun finds them already moved.
    let again = migrate(moved.as_bytes());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(text(again.stdout.clone()), moved);
    assert!(
        stderr(&again).contains("A12: 2 unchanged"),
        "{}",
        stderr(&again)
    );
}
