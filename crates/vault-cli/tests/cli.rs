//! The `vault` command end to end, in a temporary HOME with a temporary
//! keyring.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use assert_cmd::Command;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn keyring(&self) -> std::path::PathBuf {
        self.dir.path().join("keys").join("keyring.json")
    }

    fn vault(&self) -> Command {
        let mut command = Command::cargo_bin("workos-vault").unwrap();
        command
            .env_clear()
            .env("HOME", self.dir.path())
            .env("WORKOS_VAULT_KEYRING", self.keyring())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
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
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn json(bytes: Vec<u8>) -> Value {
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn encrypt_then_decrypt() {
    let env = Env::new();
    let ciphertext = env.ok(
        &[
            "encrypt",
            "--context",
            "organization_id=org_123",
            "--aad",
            "row",
        ],
        b"keep it secret\n",
    );
    let plaintext = env.ok(&["decrypt", "--aad", "row"], &ciphertext);
    assert_eq!(plaintext, b"keep it secret\n");
    for layout in ["B", "A32", "A-prime"] {
        let ciphertext = env.ok(&["encrypt", "-c", "org=o", "--layout", layout], b"x");
        assert_eq!(env.ok(&["decrypt"], &ciphertext), b"x", "{layout}");
    }
}

#[test]
fn encrypt_reads_a_file_argument() {
    let env = Env::new();
    let file = env.dir.path().join("plain.txt");
    std::fs::write(&file, b"from a file").unwrap();
    let ciphertext = env.ok(&["encrypt", "-c", "org=o", file.to_str().unwrap()], b"");
    let stored = env.dir.path().join("cipher.txt");
    std::fs::write(&stored, &ciphertext).unwrap();
    assert_eq!(
        env.ok(&["decrypt", stored.to_str().unwrap()], b""),
        b"from a file"
    );
}

#[test]
fn inspect_prints_json() {
    let env = Env::new();
    let ciphertext = env.ok(&["encrypt", "-c", "org=o"], b"12345");
    let info = json(env.ok(&["inspect"], &ciphertext));
    assert_eq!(info["layout"], "A12");
    assert_eq!(info["iv_len"], 12);
    assert_eq!(info["ciphertext_len"], 5);
    assert_eq!(info["key_blob_kind"], "local");
    assert_eq!(info["key_blob_version"], "v1");
    assert_eq!(info["data_key_id"].as_str().map(str::len), Some(36));
    assert!(info["keys_len"].as_u64().unwrap() > 47);
    let keys = info["encrypted_keys"].as_str().unwrap();
    let key = json(env.ok(&["data-key", "decrypt", keys], b""));
    assert_eq!(key["id"], info["data_key_id"]);
}

#[test]
fn data_key_create_then_decrypt() {
    let env = Env::new();
    let created = json(env.ok(&["data-key", "create", "-c", "organization_id=org_1"], b""));
    assert_eq!(created["context"]["organization_id"], "org_1");
    let keys = created["encrypted_keys"].as_str().unwrap();
    let decrypted = json(env.ok(&["data-key", "decrypt", keys], b""));
    assert_eq!(decrypted["data_key"], created["data_key"]);
    assert_eq!(decrypted["id"], created["id"]);
    let from_stdin = json(env.ok(&["data-key", "decrypt"], keys.as_bytes()));
    assert_eq!(from_stdin["data_key"], created["data_key"]);
}

#[test]
fn rekey_then_decrypt_under_the_new_context() {
    let env = Env::new();
    let ciphertext = env.ok(&["encrypt", "-c", "org=one"], b"payload");
    let rekeyed = env.ok(&["rekey", "-c", "org=two"], &ciphertext);
    assert_ne!(rekeyed, ciphertext);
    assert_eq!(env.ok(&["decrypt"], &rekeyed), b"payload");
    let before = json(env.ok(&["inspect"], &ciphertext));
    let after = json(env.ok(&["inspect"], &rekeyed));
    assert_eq!(before["data_key_id"], after["data_key_id"]);
}

#[test]
fn keyring_commands_never_print_key_material() {
    let env = Env::new();
    let shown = json(env.ok(&["keyring", "init"], b""));
    assert!(env.keyring().exists());
    let ciphertext = env.ok(&["encrypt", "-c", "org=o"], b"before rotation");
    let rotated = text(env.ok(&["keyring", "rotate"], b""));
    let after = text(env.ok(&["keyring", "show"], b""));
    let file: Value = serde_json::from_slice(&std::fs::read(env.keyring()).unwrap()).unwrap();
    let keys: Vec<String> = file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "rotation adds a version");
    for key in &keys {
        assert!(!rotated.contains(key.as_str()) && !after.contains(key.as_str()));
        assert!(!shown.to_string().contains(key.as_str()));
    }
    assert_eq!(env.ok(&["decrypt"], &ciphertext), b"before rotation");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.keyring())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn exit_codes() {
    let env = Env::new();
    let ciphertext = env.ok(&["encrypt", "-c", "org=o", "--aad", "a"], b"secret");

    // 1: decryption failure, with nothing on stdout.
    let wrong_aad = env.run(&["decrypt", "--aad", "b"], &ciphertext);
    assert_eq!(wrong_aad.status.code(), Some(1));
    assert!(wrong_aad.stdout.is_empty());
    let stderr = text(wrong_aad.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");

    // 2: bad input and usage errors.
    let short_key = env.dir.path().join("short.key");
    std::fs::write(&short_key, "c2hvcnQ=\n").unwrap();
    let short_key = short_key.display().to_string();
    for (args, stdin) in [
        (&["decrypt"][..], &b"not base64!"[..]),
        (&["decrypt"][..], &b""[..]),
        (&["inspect"][..], &b"AAAA"[..]),
        (&["encrypt"][..], &b"x"[..]),
        (&["encrypt", "-c", "no-equals-sign"][..], &b"x"[..]),
        (&["encrypt", "-c", "=empty-name"][..], &b"x"[..]),
        (&["decrypt", "--layout", "Z"][..], &ciphertext[..]),
        (
            &["decrypt", "--data-key-file", &short_key][..],
            &ciphertext[..],
        ),
        (&["frobnicate"][..], &b""[..]),
    ] {
        let output = env.run(args, stdin);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }

    // 3: the key service is unreachable (nothing listens on port 9).
    let output = env
        .vault()
        .env("WORKOS_API_KEY", "sk_test_unreachable")
        .env("WORKOS_BASE_URL", "http://127.0.0.1:9")
        .args(["data-key", "create", "-c", "org=o"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("sk_test_unreachable"));
}

#[test]
fn the_readme_pipeline_works() {
    // The README's first command, with `cargo run -q -p vault-cli --` replaced
    // by the binary under test, so the documented command cannot rot.
    let readme = include_str!("../../../README.md");
    let line = readme
        .lines()
        .find(|line| {
            line.starts_with("echo ") && line.contains("| cargo run -q -p vault-cli -- decrypt")
        })
        .expect("README has the encrypt | decrypt pipeline");
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let pipeline = line.replace(
        "cargo run -q -p vault-cli --",
        &binary.display().to_string(),
    );
    let env = Env::new();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&pipeline)
        .env("HOME", env.dir.path())
        .env("WORKOS_VAULT_KEYRING", env.keyring())
        .env_remove("WORKOS_API_KEY")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let echoed = line
        .split('\'')
        .nth(1)
        .expect("the README echoes a quoted string");
    assert_eq!(text(output.stdout), format!("{echoed}\n"));
}

#[test]
fn inspect_reads_the_api_references_decrypt_example() {
    let env = Env::new();
    let example = vault_testdata::api_reference();
    let info = json(env.ok(&["inspect"], example.decrypt_ciphertext_b64.as_bytes()));
    assert_eq!(info["layout"], "A32");
    assert_eq!(info["iv_len"], 32);
    assert_eq!(info["key_blob_kind"], "workos");
    assert_eq!(
        info["data_key_id"],
        example.decrypt_ciphertext_expect.data_key_id.as_str()
    );
}

#[test]
fn large_files_round_trip_across_chunk_boundaries_and_wrapped_text() {
    let env = Env::new();
    // Over 3 MiB: several encode and decode pieces, none aligned.
    let plaintext: Vec<u8> = (0..3 * (1 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let input = env.dir.path().join("big.bin");
    std::fs::write(&input, &plaintext).unwrap();
    for layout in ["A12", "B", "A32", "A-prime"] {
        let ciphertext = env.ok(
            &[
                "encrypt",
                "-c",
                "org=o",
                "--layout",
                layout,
                input.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(ciphertext.last(), Some(&b'\n'));
        let sealed = env.dir.path().join("big.enc");
        std::fs::write(&sealed, &ciphertext).unwrap();
        assert_eq!(
            env.ok(&["decrypt", sealed.to_str().unwrap()], b""),
            plaintext,
            "{layout}"
        );

        // Text wrapped at 76 columns, as `base64` and MIME write it.
        let line = String::from_utf8(ciphertext).unwrap();
        let wrapped: Vec<u8> = line
            .trim_end()
            .as_bytes()
            .chunks(76)
            .flat_map(|row| row.iter().copied().chain(*b"\r\n"))
            .collect();
        assert_eq!(
            env.ok(&["decrypt"], &wrapped),
            plaintext,
            "{layout} wrapped"
        );
    }
}

/// A sparse file of `len` bytes: no disk or memory is used.
fn sparse_file(env: &Env, len: u64) -> std::path::PathBuf {
    let path = env.dir.path().join(format!("sparse-{len}"));
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

#[test]
fn inputs_past_the_aes_gcm_limit_are_refused_before_any_output() {
    let env = Env::new();
    let huge = sparse_file(&env, (1 << 36) + 1);
    let output = env.run(&["encrypt", "-c", "org=o", huge.to_str().unwrap()], b"");
    let stderr = text(output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("64 GiB"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn inputs_past_available_memory_are_refused_before_any_output() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let available_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    let len = available_kib * 1024 + (1 << 30);
    assert!(
        len < 1 << 36,
        "this machine has more memory than the test expects"
    );
    let env = Env::new();
    let big = sparse_file(&env, len);
    let ciphertext = sparse_file(&env, len / 3 * 4);
    for (args, file) in [
        (&["encrypt", "-c", "org=o"][..], &big),
        (&["decrypt"][..], &ciphertext),
    ] {
        let mut args = args.to_vec();
        args.push(file.to_str().unwrap());
        let output = env.run(&args, b"");
        let stderr = text(output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("MiB is available"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn encrypt_for_an_sdk_writes_the_layout_it_reads() {
    let env = Env::new();
    for (sdk, layout) in [
        ("go", "B"),
        ("go@6", "A12"),
        ("rust", "B"),
        ("dotnet", "A-prime"),
        ("node@7.47.0", "A32"),
        ("python", "A12"),
    ] {
        let ciphertext = env.ok(&["encrypt", "-c", "org=o", "--for", sdk], b"neighbour");
        let info = json(env.ok(&["inspect"], &ciphertext));
        assert_eq!(info["layout"], layout, "--for {sdk}");
        assert_eq!(env.ok(&["decrypt"], &ciphertext), b"neighbour");
    }
    for args in [
        &["encrypt", "-c", "org=o", "--for", "cobol"][..],
        &["encrypt", "-c", "org=o", "--for", "node@7.10"][..],
        &["encrypt", "-c", "org=o", "--for", "go", "--layout", "A12"][..],
    ] {
        let output = env.run(args, b"x");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty());
    }
}
