//! `workos-vault object ...` against the local store beside the keyring, and
//! through `workos-vault serve` with WORKOS_API_KEY (the HTTP client end to end).

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

fn vault(home: &Path) -> Command {
    let mut command = Command::cargo_bin("workos-vault").unwrap();
    command
        .env_clear()
        .env("HOME", home)
        .env("WORKOS_VAULT_KEYRING", home.join("keyring.json"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .timeout(Duration::from_secs(60));
    command
}

fn json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The objects commands, run with `env` on top of the home's keyring.
fn exercise(home: &Path, env: &[(&str, String)]) {
    let run = |args: &[&str], stdin: &str| {
        let mut command = vault(home);
        command.envs(env.iter().map(|(k, v)| (k, v))).args(args);
        command.write_stdin(stdin.to_owned()).output().unwrap()
    };
    let created = json(&run(
        &[
            "object",
            "create",
            "--name",
            "db password",
            "-c",
            "organization_id=org_1",
        ],
        "hunter2\n",
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let v1 = created["version_id"].as_str().unwrap().to_owned();
    let read = json(&run(&["object", "get", &id], ""));
    assert_eq!(read["value"], "hunter2\n", "the value is kept exactly");
    let by_name = json(&run(&["object", "get", "--name", "db password"], ""));
    assert_eq!(by_name["id"], id.as_str());
    let duplicate = run(
        &[
            "object",
            "create",
            "--name",
            "db password",
            "-c",
            "organization_id=org_1",
        ],
        "x",
    );
    assert_eq!(duplicate.status.code(), Some(7), "conflict");

    let dir = tempfile::tempdir().unwrap();
    let value_file = dir.path().join("value");
    std::fs::write(&value_file, "from a file").unwrap();
    let file = value_file.to_str().unwrap();
    let updated = json(&run(
        &[
            "object",
            "update",
            &id,
            "--value-file",
            file,
            "--version-check",
            &v1,
        ],
        "",
    ));
    assert!(updated.get("value").is_none());
    let stale = run(&["object", "update", &id, "--version-check", &v1], "lost");
    assert_eq!(stale.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("version"));
    let versions = json(&run(&["object", "versions", &id], ""));
    assert_eq!(versions["data"].as_array().unwrap().len(), 2);
    let described = json(&run(&["object", "describe", &id], ""));
    assert_eq!(described, updated);
    let list = json(&run(
        &["object", "list", "--search", "db", "--order", "asc"],
        "",
    ));
    assert_eq!(list["data"][0]["id"], id.as_str());

    let deleted = json(&run(&["object", "delete", &id], ""));
    assert_eq!(deleted["success"], true);
    let missing = run(&["object", "get", &id], "");
    assert_eq!(missing.status.code(), Some(6), "not found");
    assert!(missing.stdout.is_empty());
    let bad_id = run(&["object", "get", "not-an-id"], "");
    assert_eq!(bad_id.status.code(), Some(2));
    // A value is never an argument.
    let refused = run(
        &[
            "object", "create", "--name", "n", "-c", "o=1", "--value", "secret",
        ],
        "",
    );
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn object_commands_use_a_store_beside_the_keyring() {
    let home = tempfile::tempdir().unwrap();
    exercise(home.path(), &[]);
    let db = home.path().join("objects.db");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the object store is owner-only");
}

#[test]
fn a_database_url_that_is_blank_or_unknown_is_refused() {
    let home = tempfile::tempdir().unwrap();
    // A keyring exists: the URL, not a missing keyring, is what is refused.
    let init = vault(home.path())
        .args(["keyring", "init"])
        .output()
        .unwrap();
    assert!(init.status.success());
    for (url, hint) in [("", "empty"), ("mysql://x/y", "postgres://")] {
        let output = vault(home.path())
            .env("WORKOS_VAULT_DATABASE_URL", url)
            .args(["object", "list"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(hint), "{url}: {stderr}");
    }
}

#[test]
fn workos_and_a_database_url_together_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let output = vault(home.path())
        .env("WORKOS_API_KEY", "sk_test_x")
        .env("WORKOS_VAULT_DATABASE_URL", "sqlite:///tmp/x.db")
        .args(["object", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unset WORKOS_VAULT_DATABASE_URL"),
        "{stderr}"
    );
    assert!(!home.path().join("objects.db").exists());
}

#[test]
fn vault_serve_speaks_the_objects_api_to_the_http_client() {
    let home = tempfile::tempdir().unwrap();
    let common::Served {
        mut child,
        url,
        line,
    } = common::serve(home.path(), "127.0.0.1:0", "sk_test_objects_0123", &[]);
    assert!(line.contains("objects in sqlite"), "{line}");
    let client_home = tempfile::tempdir().unwrap();
    exercise(
        client_home.path(),
        &[
            ("WORKOS_API_KEY", "sk_test_objects_0123".to_owned()),
            ("WORKOS_BASE_URL", url),
        ],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(home.path().join("objects.db").exists());
    assert!(
        !client_home.path().join("objects.db").exists(),
        "the client keeps nothing"
    );
}
