//! A real HTTP proxy for the tests: Debian's `tinyproxy`, started on a free
//! loopback port with a configuration of the test's own.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Set to `1` (CI does) to fail, not skip, when tinyproxy is missing.
pub const REQUIRE_VAR: &str = "WORKOS_VAULT_REQUIRE_TINYPROXY";

/// How long to wait for a log line that should come: a bound on a
/// failure, not a synchronisation.
const LOG_WAIT: Duration = Duration::from_secs(30);

/// A running tinyproxy, stopped when dropped.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    lines: Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy on loopback, asking for `credentials` (`user`,
    /// `password`) if given. `None` (after saying why on stderr) when the
    /// binary is missing and [`REQUIRE_VAR`] is not set; panics when it is.
    pub fn start(credentials: Option<(&str, &str)>) -> Option<Tinyproxy> {
        let Some(binary) = find_binary() else {
            let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "tinyproxy is not installed but {REQUIRE_VAR}=1: install Debian's tinyproxy"
            );
            eprintln!(
                "SKIPPED: tinyproxy is not installed (apt-get install tinyproxy); \
                 set {REQUIRE_VAR}=1 to make this a failure"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let config = dir.path().join("tinyproxy.conf");
        std::fs::write(&config, config_text(port, credentials)).expect("write the config");
        let mut child = Command::new(binary)
            .args(["-d", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        // tinyproxy in the foreground logs to stdout: one reader thread
        // hands every line over, and keeps the pipe from filling.
        let stdout = child.stdout.take().expect("a stdout pipe");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let proxy = Tinyproxy {
            child,
            port,
            lines,
            _dir: dir,
        };
        proxy.wait_for_line(|line| line.contains("Accepting connections"));
        Some(proxy)
    }

    /// `http://[user:password@]127.0.0.1:<port>`.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Reads tinyproxy's log until a line satisfies `want`, and returns
    /// it; panics with the lines read if none does within 30 s or
    /// tinyproxy exits. Lines before it are consumed.
    pub fn wait_for_line(&self, want: impl Fn(&str) -> bool) -> String {
        let give_up = Instant::now() + LOG_WAIT;
        let mut seen = Vec::new();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "tinyproxy never logged the line wanted; it logged:\n{}",
                        seen.join("\n")
                    )
                }
            }
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary() -> Option<PathBuf> {
    [
        "/usr/bin/tinyproxy",
        "/usr/sbin/tinyproxy",
        "/usr/local/bin/tinyproxy",
    ]
    .iter()
    .map(Path::new)
    .find(|path| path.exists())
    .map(Path::to_path_buf)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Loopback only, any port for CONNECT (no `ConnectPort` line: the test
/// servers' ports are random), logging every request.
fn config_text(port: u16, credentials: Option<(&str, &str)>) -> String {
    let mut text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\n\
         Allow 127.0.0.1\nLogLevel Info\nDisableViaHeader Yes\n"
    );
    if let Some((user, password)) = credentials {
        text.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    text
}
