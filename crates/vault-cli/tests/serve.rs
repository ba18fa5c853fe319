//! `workos-vault serve` and its keyring: created owner-only, refused when others
//! may read it.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;

/// An API key long enough for `workos-vault serve` (16 characters at least).
const API_KEY: &str = "sk_test_serve_3b9d51e0";

fn vault(home: &Path, keyring: &Path) -> Command {
    let mut command = Command::cargo_bin("workos-vault").unwrap();
    command
        .env_clear()
        .env("HOME", home)
        .env("WORKOS_VAULT_KEYRING", keyring)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WORKOS_VAULT_SERVER_API_KEY", API_KEY);
    command
}

#[test]
fn serve_refuses_a_keyring_others_may_read() {
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.json");
        vault(dir.path(), &keyring)
            .args(["keyring", "init"])
            .assert()
            .success();
        std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(mode)).unwrap();

        let output = vault(dir.path(), &keyring)
            .args(["serve", "--listen", "127.0.0.1:0"])
            // A safety net only: a server that starts would serve forever.
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "mode {mode:o}: {stderr}");
        assert!(stderr.contains("chmod 600"), "mode {mode:o}: {stderr}");
        assert!(stderr.contains(&keyring.display().to_string()), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn serve_creates_the_keyring_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("new").join("keyring.json");
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .env("HOME", dir.path())
        .env("WORKOS_VAULT_KEYRING", &keyring)
        .env("WORKOS_VAULT_SERVER_API_KEY", API_KEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server says it created the keyring, then where it listens once
    // the keyring is open.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut created = String::new();
    stderr.read_line(&mut created).unwrap();
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let mode = std::fs::metadata(&keyring).map(|m| m.permissions().mode() & 0o777);
    let dir_mode =
        std::fs::metadata(keyring.parent().unwrap()).map(|m| m.permissions().mode() & 0o777);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        created.contains(&keyring.display().to_string())
            && created.contains("back it up: what it encrypts cannot be decrypted without it"),
        "{created}"
    );
    assert!(line.contains("serving WorkOS key endpoints"), "{line}");
    assert_eq!(mode.unwrap(), 0o600);
    assert_eq!(dir_mode.unwrap(), 0o700);
}

#[test]
fn a_taken_address_is_a_system_failure_not_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = vault(dir.path(), &keyring)
        .args(["serve", "--listen", &address])
        // A safety net only: a server that starts would serve forever.
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    drop(taken);
}

#[test]
fn serve_refuses_an_api_key_shorter_than_16_characters() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    let output = vault(dir.path(), &keyring)
        .env("WORKOS_VAULT_SERVER_API_KEY", "sk_test_x")
        .args(["serve", "--listen", "127.0.0.1:0"])
        // A safety net only: a server that starts would serve forever.
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shorter than 16 characters"), "{stderr}");
    assert!(
        !stderr.contains("sk_test_x"),
        "the key is not echoed: {stderr}"
    );
    assert!(!keyring.exists(), "nothing is created before the refusal");
}

#[test]
fn serve_warns_when_listening_beyond_loopback_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    let stderr_of = |listen: &str| {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("workos-vault"))
            .env_clear()
            .env("HOME", dir.path())
            .env("WORKOS_VAULT_KEYRING", &keyring)
            .env("WORKOS_VAULT_SERVER_API_KEY", API_KEY)
            .args(["serve", "--listen", listen, "--no-access-log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Everything up to the line that says it serves.
        let mut lines = Vec::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let serving = line.contains("serving WorkOS key endpoints");
            lines.push(line);
            if serving {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        lines.join("\n")
    };
    let wide = stderr_of("0.0.0.0:0");
    assert!(
        wide.contains("warning: listening on 0.0.0.0:0 without TLS"),
        "{wide}"
    );
    assert!(wide.contains("serving WorkOS key endpoints"), "{wide}");
    let local = stderr_of("127.0.0.1:0");
    assert!(!local.contains("without TLS"), "{local}");
    assert!(local.contains("serving WorkOS key endpoints"), "{local}");
}
