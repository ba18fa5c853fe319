//! The processes a benchmark runs: binaries that print JSON, and `vault
//! serve` in its own process. Every child is held by the one kill-on-drop
//! guard, [`Proc`].

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use vault_bench::Measurement;

pub(crate) use crate::raft::cluster::Proc;

/// Runs `command`, feeding `stdin` if given, and parses its stdout as JSON.
pub(crate) fn run_json(mut command: Command, stdin: Option<&Value>) -> Result<Value, String> {
    let what = format!("{:?}", command.get_program());
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if let (Some(request), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The request holds the API key: it goes through a pipe, never
        // the command line.
        pipe.write_all(request.to_string().as_bytes())
            .map_err(|e| format!("cannot write to {what}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{what} did not finish: {e}"))?;
    if !output.status.success() {
        return Err(format!("{what} failed with {}", output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Runs a binary that prints a JSON array of measurements.
pub(crate) fn measurements(
    binary: &Path,
    args: &[&str],
    flag: &[&str],
) -> Result<Vec<Measurement>, String> {
    let mut command = Command::new(binary);
    command.args(args).args(flag);
    measurement_rows(&binary.display().to_string(), run_json(command, None)?)
}

/// The measurements a binary printed, typed: an array of
/// [`Measurement`]s, or an error that quotes what it printed instead.
pub(crate) fn measurement_rows(what: &str, printed: Value) -> Result<Vec<Measurement>, String> {
    serde_json::from_value(printed.clone())
        .map_err(|e| format!("{what} printed {printed}, not an array of measurements: {e}"))
}

/// `workos-vault serve` on a free loopback port, with a throwaway keyring and API
/// key, in its own process (so a client's CPU time is its own). Killed on
/// drop.
pub(crate) struct ServerProcess {
    /// Killed and reaped on drop.
    _process: Proc,
    pub(crate) url: String,
    pub(crate) api_key: String,
    dir: PathBuf,
}

impl ServerProcess {
    pub(crate) fn start(vault: &Path, out_dir: &Path) -> Result<Self, String> {
        Self::start_with(vault, out_dir, &[], &[])
    }

    /// [`start`](Self::start) with more `workos-vault serve` arguments and more
    /// environment (an object store's `WORKOS_VAULT_DATABASE_URL`, say).
    pub(crate) fn start_with(
        vault: &Path,
        out_dir: &Path,
        args: &[std::ffi::OsString],
        env: &[(&str, String)],
    ) -> Result<Self, String> {
        let dir = out_dir.join(format!("server-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let api_key = format!("sk_test_bench_{}", random_hex(16)?);
        let child = Command::new(vault)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("WORKOS_VAULT_KEYRING", dir.join("keyring.json"))
            // Through the environment, so it is not on the command line.
            .env("WORKOS_VAULT_SERVER_API_KEY", &api_key)
            .env_remove("WORKOS_API_KEY")
            .env_remove("WORKOS_VAULT_DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", vault.display()))?;
        let mut process = Proc(child);
        let stderr = process.0.stderr.take().ok_or("no stderr pipe")?;
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        // The server prints one line once it listens: wait for it.
        const MARKER: &str = "serving WorkOS key endpoints on ";
        let url = loop {
            line.clear();
            let read = lines
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the server's output: {e}"))?;
            if read == 0 {
                // `process` is killed and reaped as it drops.
                return Err("workos-vault serve exited before it listened".to_owned());
            }
            if let Some(rest) = line.split(MARKER).nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            eprint!("workos-vault serve: {line}");
        };
        // Keep draining its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Ok(ServerProcess {
            _process: process,
            url,
            api_key,
            dir,
        })
    }
}

impl Drop for ServerProcess {
    /// The scratch directory goes; the process is the guard's to kill.
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn random_hex(len: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; len];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
