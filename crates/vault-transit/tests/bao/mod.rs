//! A real OpenBao dev server on 127.0.0.1 for the tests, with TLS from its
//! own CA.
//!
//! The `bao` binary comes from `WORKOS_VAULT_TEST_BAO` (`cargo xtask ci` installs
//! the pinned one and sets it). Without it a test is skipped with a
//! message, unless `WORKOS_VAULT_REQUIRE_BAO=1`, which makes it fail.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vault_transit::TransitKeyServiceBuilder;

/// A running `bao server -dev`, killed when dropped.
pub struct Bao {
    child: Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`.
    pub address: String,
    /// The root token.
    pub token: String,
}

impl Bao {
    /// A fresh server with Transit enabled at `transit/`, or `None` (after
    /// saying why) when no binary is configured and none is required.
    pub fn start_or_skip(test: &str) -> Option<Bao> {
        let bin = match std::env::var_os("WORKOS_VAULT_TEST_BAO").filter(|v| !v.is_empty()) {
            Some(bin) => PathBuf::from(bin),
            None if std::env::var("WORKOS_VAULT_REQUIRE_BAO").as_deref() == Ok("1") => {
                panic!("WORKOS_VAULT_REQUIRE_BAO=1 but WORKOS_VAULT_TEST_BAO is unset; run `cargo xtask ci`")
            }
            None => {
                eprintln!(
                    "skipping {test}: set WORKOS_VAULT_TEST_BAO to a `bao` binary \
                     (`cargo xtask openbao` installs one and prints it)"
                );
                return None;
            }
        };
        let bao = Bao::start(bin);
        bao.ok(&["secrets", "enable", "transit"]);
        Some(bao)
    }

    fn start(bin: PathBuf) -> Bao {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port_pair();
        let token = format!("root-{port}-{}", std::process::id());
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let child = Command::new(&bin)
            .args(["server", "-dev", "-dev-tls", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut bao = Bao {
            child,
            bin,
            dir,
            address: format!("https://127.0.0.1:{port}"),
            token,
        };
        bao.wait_until_ready();
        bao
    }

    /// Polls `bao status` (exit 0: unsealed and serving) for up to 60 s.
    fn wait_until_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("bao exited early ({status}):\n{}", self.log());
            }
            if self.ca().is_file() && self.cli(&["status"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("bao did not become ready in 60 s:\n{}", self.log());
    }

    /// The dev server's CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// Runs the `bao` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.token)
            .env("BAO_CACERT", self.ca())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs the CLI and requires success.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A builder pointed at this server: root token, its CA, key `key`,
    /// quick retries.
    pub fn service(&self, key: &str) -> TransitKeyServiceBuilder {
        TransitKeyServiceBuilder::new()
            .address(&self.address)
            .token(&self.token)
            .ca_file(self.ca())
            .key(key)
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
    }

    /// A directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port `p` such that `p` and `p + 1` (the dev server's cluster port)
/// are free now.
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free ports on 127.0.0.1");
}
