//! Three `bao server` processes with Raft storage on loopback: started,
//! initialised, unsealed, joined; and the processes around them.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL) and reaped when dropped, so an
/// error half-way leaves no server behind.
pub struct Proc(pub Child);

impl Proc {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: &Path, what: &str) -> Result<Proc, String> {
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("cannot open {}: {e}", log.display()))
        };
        command.stdin(Stdio::null()).stdout(open()?).stderr(open()?);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        Ok(Proc(child))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Now, in milliseconds since the Unix epoch: the clock of the soak's
/// events.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The status of `GET path` on 127.0.0.1:`port`, or `None` when nothing
/// answers within a second or two.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Polls `done` every 20 ms until it holds, for at most `limit`; returns
/// how long it took.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("gave up waiting for {what} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(start.elapsed())
}

/// Removes the engine's variables (both spellings), so the shell's
/// settings cannot point a command at another engine.
pub fn clear_engine_env(command: &mut Command) {
    for prefix in ["VAULT", "BAO"] {
        for name in ["ADDR", "TOKEN", "NAMESPACE", "CACERT", "TRANSIT_KEY"] {
            command.env_remove(format!("{prefix}_{name}"));
        }
    }
}

/// `workos-vault serve` on a free loopback port with `env` set (the engine's
/// variables cleared first, and `api_key` passed through the environment,
/// not the command line), its output appended to `log`; returns once it
/// answers `/health`, with its URL.
pub fn vault_serve(
    vault: &Path,
    env: &[(&str, &str)],
    api_key: &str,
    log: &Path,
) -> Result<(Proc, String), String> {
    let port = free_port()?;
    let mut command = Command::new(vault);
    command
        .args(["serve", "--no-access-log", "--listen"])
        .arg(format!("127.0.0.1:{port}"));
    clear_engine_env(&mut command);
    command
        .env_remove("WORKOS_API_KEY")
        .env_remove("WORKOS_VAULT_KEYRING")
        .env("WORKOS_VAULT_SERVER_API_KEY", api_key)
        .envs(env.iter().copied());
    let mut serve = Proc::spawn(command, log, "workos-vault serve")?;
    wait_until(
        Duration::from_secs(30),
        "workos-vault serve to answer",
        || http_status(port, "/health") == Some(200) || !matches!(serve.0.try_wait(), Ok(None)),
    )?;
    if !matches!(serve.0.try_wait(), Ok(None)) {
        let said = fs::read_to_string(log).unwrap_or_default();
        return Err(format!("workos-vault serve exited: {}", said.trim()));
    }
    Ok((serve, format!("http://127.0.0.1:{port}")))
}

/// `/v1/sys/health`: 200 active, 429 standby (503 sealed, 501 not
/// initialised).
const ACTIVE: u16 = 200;
const STANDBY: u16 = 429;

/// One node: its ports, its directory and its process.
pub struct Node {
    pub name: String,
    api: u16,
    cluster: u16,
    dir: PathBuf,
    process: Option<Proc>,
}

impl Node {
    /// Its API address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }

    fn health(&self) -> Option<u16> {
        http_status(self.api, "/v1/sys/health")
    }

    /// Its configuration: Raft storage under its directory, joining
    /// `leader` (the first node's API port) if given; standbys answer
    /// what does not write unless `standby_reads` is off.
    fn config(&self, leader: Option<u16>, standby_reads: bool) -> String {
        let join = leader.map_or_else(String::new, |port| {
            format!("  retry_join {{\n    leader_api_addr = \"http://127.0.0.1:{port}\"\n  }}\n")
        });
        format!(
            "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"{name}\"\n  \
             performance_multiplier = 1\n{join}}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
             cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{api}\"\n\
             cluster_addr = \"https://127.0.0.1:{cluster}\"\n\
             disable_mlock = true\nui = false\ndisable_standby_reads = {disable}\n",
            data = self.dir.join("data").display(),
            name = self.name,
            api = self.api,
            cluster = self.cluster,
            disable = !standby_reads,
        )
    }

    /// Starts `bao server` and waits until its API answers (sealed).
    fn start(&mut self, bao: &Path) -> Result<(), String> {
        let mut command = Command::new(bao);
        command
            .arg("server")
            .arg(format!("-config={}", self.dir.join("node.hcl").display()));
        clear_engine_env(&mut command);
        let log = self.dir.join("server.log");
        self.process = Some(Proc::spawn(command, &log, &self.name)?);
        let what = format!("{} to listen", self.name);
        wait_until(Duration::from_secs(30), &what, || self.health().is_some())?;
        Ok(())
    }

    /// SIGKILL: no shutdown, no step-down.
    pub fn kill(&mut self) {
        self.process = None;
    }
}

/// The cluster, its root token and its unseal key.
pub struct Cluster {
    bao: PathBuf,
    nodes: Vec<Node>,
    root_token: String,
    unseal_key: String,
}

impl Cluster {
    /// Three nodes: the first initialised (one key share) and unsealed,
    /// the others joined to it and unsealed; returns once all three are
    /// Raft voters.
    pub fn start(bao: &Path, dir: &Path, standby_reads: bool) -> Result<Cluster, String> {
        let mut nodes = Vec::new();
        for i in 1..=3 {
            let node = Node {
                name: format!("node{i}"),
                api: free_port()?,
                cluster: free_port()?,
                dir: dir.join(format!("node{i}")),
                process: None,
            };
            fs::create_dir_all(node.dir.join("data")).map_err(|e| e.to_string())?;
            nodes.push(node);
        }
        let leader = nodes[0].api;
        for (i, node) in nodes.iter_mut().enumerate() {
            let config = node.config((i > 0).then_some(leader), standby_reads);
            fs::write(node.dir.join("node.hcl"), config).map_err(|e| e.to_string())?;
            node.start(bao)?;
        }
        let mut cluster = Cluster {
            bao: bao.to_owned(),
            nodes,
            root_token: String::new(),
            unseal_key: String::new(),
        };
        cluster.initialise()?;
        for i in 0..3 {
            cluster.unseal(i, if i == 0 { ACTIVE } else { STANDBY })?;
        }
        cluster.wait_for_voters()?;
        Ok(cluster)
    }

    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    pub fn node_mut(&mut self, index: usize) -> &mut Node {
        &mut self.nodes[index]
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// `bao ARGS` against node `index`, with the root token once there is
    /// one; its stdout.
    fn bao(&self, index: usize, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(&self.bao);
        clear_engine_env(&mut command);
        command.args(args).env("BAO_ADDR", self.nodes[index].url());
        if !self.root_token.is_empty() {
            command.env("BAO_TOKEN", &self.root_token);
        }
        let out = command
            .output()
            .map_err(|e| format!("cannot run bao {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "bao {} on {}: {}",
                args.first().copied().unwrap_or_default(),
                self.nodes[index].name,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn initialise(&mut self) -> Result<(), String> {
        let args = ["operator", "init", "-key-shares=1", "-key-threshold=1"];
        let out = self.bao(0, &[&args[..], &["-format=json"]].concat())?;
        let init: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("bao operator init: {e}"))?;
        let field = |name: &str, value: &serde_json::Value| {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("bao operator init printed no {name}"))
        };
        self.unseal_key = field("unseal key", &init["unseal_keys_b64"][0])?;
        self.root_token = field("root token", &init["root_token"])?;
        Ok(())
    }

    /// Unseals node `index` (retried: a joining node takes the key only
    /// once it has reached the leader) until its health is `want`.
    fn unseal(&self, index: usize, want: u16) -> Result<(), String> {
        let what = format!("{} to be unsealed", self.nodes[index].name);
        let mut last = String::new();
        wait_until(Duration::from_secs(60), &what, || {
            if self.nodes[index].health() == Some(want) {
                return true;
            }
            if let Err(error) = self.bao(index, &["operator", "unseal", &self.unseal_key]) {
                last = error;
            }
            std::thread::sleep(Duration::from_millis(200));
            false
        })
        .map_err(|e| format!("{e}: {last}"))?;
        Ok(())
    }

    /// Autopilot promotes a joined node to voter once it is stable; a
    /// cluster of one voter and two non-voters would not survive its
    /// leader.
    fn wait_for_voters(&self) -> Result<(), String> {
        let started = Instant::now();
        let mut last = String::new();
        wait_until(Duration::from_secs(90), "three Raft voters", || {
            let peers = self.bao(0, &["operator", "raft", "list-peers", "-format=json"]);
            let voters = peers.ok().and_then(|out| {
                let peers: serde_json::Value = serde_json::from_str(&out).ok()?;
                let servers = peers["data"]["config"]["servers"].as_array()?.clone();
                last = format!("{servers:?}");
                Some(servers.iter().filter(|s| s["voter"] == true).count())
            });
            voters == Some(3)
        })
        .map_err(|e| format!("{e}; peers: {last}"))?;
        eprintln!(
            "raft: 3 voters after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Enables Transit on the active node and creates the derived key.
    pub fn enable_transit(&self, key: &str) -> Result<(), String> {
        let active = self.active()?;
        self.bao(active, &["secrets", "enable", "transit"])?;
        let path = format!("transit/keys/{key}");
        self.bao(active, &["write", "-f", &path, "derived=true"])?;
        for index in 0..self.nodes.len() {
            self.wait_for_key(index, key)?;
        }
        Ok(())
    }

    /// Waits until node `index` knows the key: a decrypt without a context
    /// is refused for the missing context, not for a missing key (the
    /// probe `workos-vault serve` makes at start-up).
    fn wait_for_key(&self, index: usize, key: &str) -> Result<(), String> {
        let path = format!("transit/decrypt/{key}");
        let ciphertext = "ciphertext=vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let mut last = String::new();
        let took = wait_until(
            Duration::from_secs(60),
            "the key on every node",
            || match self.bao(index, &["write", &path, ciphertext]) {
                Err(error) if error.contains("missing 'context'") => true,
                Err(error) => {
                    last = error;
                    false
                }
                Ok(out) => {
                    last = out;
                    false
                }
            },
        )
        .map_err(|e| format!("{e}: {last}"))?;
        eprintln!(
            "raft: {} sees the key after {} ms",
            self.nodes[index].name,
            took.as_millis()
        );
        Ok(())
    }

    /// A Transit encrypt on node `index` with the root token, once (the
    /// CLI's own retries off): `None` when it succeeds, else the error.
    pub fn probe(&self, index: usize, key: &str) -> Option<String> {
        let path = format!("transit/encrypt/{key}");
        let args = ["write", &path, "plaintext=AAAA", "context=AAAA"];
        let mut command = Command::new(&self.bao);
        clear_engine_env(&mut command);
        command
            .args(args)
            .env("BAO_ADDR", self.nodes[index].url())
            .env("BAO_TOKEN", &self.root_token)
            .env("BAO_MAX_RETRIES", "0");
        match command.output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(
                String::from_utf8_lossy(&out.stderr)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Err(error) => Some(format!("cannot run bao: {error}")),
        }
    }

    /// The node that answers as active, if exactly one does.
    pub fn active(&self) -> Result<usize, String> {
        let active: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process.is_some() && self.nodes[i].health() == Some(ACTIVE))
            .collect();
        match active[..] {
            [one] => Ok(one),
            _ => Err(format!("{} active nodes", active.len())),
        }
    }

    /// A standby node.
    pub fn standby(&self) -> Result<usize, String> {
        (0..self.nodes.len())
            .find(|&i| self.nodes[i].health() == Some(STANDBY))
            .ok_or_else(|| "no standby node".to_owned())
    }

    /// Starts node `index` again on its own data and unseals it; returns
    /// once it is a standby.
    pub fn restart(&mut self, index: usize) -> Result<(), String> {
        let bao = self.bao.clone();
        self.nodes[index].start(&bao)?;
        self.unseal(index, STANDBY)
    }
}
