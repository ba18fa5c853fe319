//! Shared by the CLI's integration tests: a real `workos-vault serve`.

#![allow(clippy::unwrap_used)] // Tests panic on purpose.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `workos-vault serve`: kill the child when done.
pub struct Served {
    pub child: Child,
    /// Where to point clients, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The line that announced it (names the backend and object store).
    pub line: String,
}

/// `workos-vault serve --listen LISTEN --no-access-log` with its keyring in
/// `home`, `api_key` as its one API key and `env` besides, once it has
/// printed its address.
pub fn serve(home: &Path, listen: &str, api_key: &str, env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workos-vault"))
        .env_clear()
        .env("HOME", home)
        .env("WORKOS_VAULT_KEYRING", home.join("keyring.json"))
        .env("WORKOS_VAULT_SERVER_API_KEY", api_key)
        .envs(env.iter().copied())
        .args(["serve", "--listen", listen, "--no-access-log"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address line; a "created a new keyring" line may come first.
    const MARKER: &str = "serving WorkOS key endpoints on ";
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..4 {
        line.clear();
        stderr.read_line(&mut line).unwrap();
        if line.contains(MARKER) {
            break;
        }
    }
    let url = line
        .split(MARKER)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("workos-vault serve did not start: {line:?}"))
        .to_owned();
    Served { child, url, line }
}
