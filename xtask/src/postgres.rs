//! `cargo xtask postgres`: a throwaway PostgreSQL 15 for the object store's
//! tests. `initdb` under `<target>/postgres`, then `postgres` on
//! 127.0.0.1 at a free port (and a Unix socket in the same directory),
//! trust authentication for the `vault` superuser, durability switched off
//! for speed (test data only). As root (CI), both run as `nobody` through
//! `setpriv`, since PostgreSQL refuses to run as root.
//!
//! The binaries come from Debian's `postgresql-15` (`/usr/lib/postgresql/15/bin`,
//! or `WORKOS_VAULT_PG_BIN`); `.ci/run` installs the pinned package.
//! `cargo xtask ci` calls [`start`] and passes [`Postgres::test_env`] to the
//! tests, with `WORKOS_VAULT_REQUIRE_POSTGRES=1` so they fail instead of skipping.
//!
//! `cargo xtask postgres` runs the store's tests against it;
//! `cargo xtask postgres --serve` prints the URL and serves until ctrl-c.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, cargo};

/// Where Debian puts PostgreSQL 15.
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The variable the tests read the server's URL from.
pub const URL_VAR: &str = "WORKOS_VAULT_TEST_POSTGRES_URL";

/// A running server, stopped (fast shutdown) when dropped.
pub struct Postgres {
    child: Child,
    url: String,
}

impl Postgres {
    /// `postgres://vault@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The variables that point the tests at this server and require it.
    pub fn test_env(&self) -> [(&'static str, String); 2] {
        [
            (URL_VAR, self.url.clone()),
            ("WORKOS_VAULT_REQUIRE_POSTGRES", "1".to_owned()),
        ]
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown. Only our own child, by id.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("WORKOS_VAULT_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
    if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "no PostgreSQL 15 in {}: install it with `apt-get install postgresql-15` \
             (or point WORKOS_VAULT_PG_BIN at its bin directory)",
            dir.display()
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program` from `bin`, as `nobody` when we are root.
fn command(bin: &Path, program: &str, root: bool) -> Command {
    if root {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// A fresh cluster under `<target>/postgres`, started, with durability
/// off (tests).
pub fn start() -> Result<Postgres, String> {
    start_cluster(false)
}

/// [`start`] with PostgreSQL's default durability (fsync, synchronous
/// commit), for the benchmark rows.
pub fn start_durable() -> Result<Postgres, String> {
    start_cluster(true)
}

fn start_cluster(durable: bool) -> Result<Postgres, String> {
    let bin = bin_dir()?;
    let root = is_root();
    let dir = crate::openbao::target_dir().join("postgres");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if root {
        util::run({
            let mut chown = Command::new("chown");
            chown.args(["nobody:nogroup"]).arg(&dir);
            chown
        })?;
    }
    let data = dir.join("data");
    let mut initdb = command(&bin, "initdb", root);
    initdb
        .args([
            "--auth=trust",
            "--username=vault",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null());
    util::run(initdb).map_err(|e| {
        format!(
            "{e}; initdb must be able to write {} (as nobody when run as root)",
            dir.display()
        )
    })?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("postgres.log"))
        .map_err(|e| format!("cannot create the PostgreSQL log: {e}"))?;
    let mut postgres = command(&bin, "postgres", root);
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(&dir)
        // Room for every test's pools.
        .args(["-c", "max_connections=300"]);
    if !durable {
        // Test data only: durability off.
        postgres.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    postgres
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let child = postgres
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let server = Postgres {
        child,
        url: format!("postgres://vault@127.0.0.1:{port}/postgres"),
    };
    wait_ready(&bin, port, &dir)?;
    eprintln!("postgres: ready at {}", server.url());
    Ok(server)
}

/// Polls `pg_isready` until the server accepts connections (30 s at most).
fn wait_ready(bin: &Path, port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "PostgreSQL did not start within 30 s; see {}",
                dir.join("postgres.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let serve = match args {
        [] => false,
        [flag] if flag == "--serve" => true,
        [other, ..] => return Err(format!("`postgres` takes only --serve, got {other:?}")),
    };
    let server = start()?;
    if serve {
        println!("export {URL_VAR}={}", server.url());
        eprintln!("postgres: serving until ctrl-c");
        loop {
            std::thread::park();
        }
    }
    let mut test = cargo(&["test", "-p", "vault-store"]);
    test.envs(server.test_env());
    util::run(test)
}
