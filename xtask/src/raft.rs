//! `cargo xtask raft`: a 3-node OpenBao Raft cluster on loopback, `vault
//! serve` over its Transit engine, verified load through it, and the
//! leader killed (SIGKILL) mid-run and restarted.
//!
//! `workos-vault serve` talks to a standby node: standbys forward requests to the
//! active node, so the address it holds survives the leader's loss (the
//! standby forwards to whichever node wins the election, or becomes the
//! active node itself). The load is `vault-bench-soak --url` (every
//! plaintext checked, every ciphertext decrypted again after the load).
//!
//! Time to recover: from the kill to the end of the first round trip that
//! *started after* the kill and decrypted its own plaintext, read from the
//! soak's per-operation events (Unix epoch milliseconds on one machine).
//! Beside it, the time until a surviving node answered `/v1/sys/health`
//! as active (polled every 20 ms).

pub(crate) mod cluster;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::openbao;
use crate::util::{self, cargo};
use cluster::{epoch_ms, wait_until, Cluster, Proc};

const USAGE: &str = "usage: cargo xtask raft [--ops N] [--concurrency N] [--kill-after-secs N]
                        [--down-secs N] [--after-return-secs N] [--seed N]
                        [--mode forward|standby-reads|both]

Starts a 3-node OpenBao Raft cluster on 127.0.0.1 (under <target>/raft),
enables Transit with a derived key, runs `workos-vault serve` (release) over a
standby node, and runs verified round trips through it at concurrency 16
by default. --kill-after-secs (default 8) into the load, the active node
is killed with SIGKILL; --down-secs (default 5) after a new leader is
active, it is restarted and unsealed. The load is time-bound: it runs
until --after-return-secs (default 5) after the restarted node is a
standby again, whatever the machine's speed (--ops, default 10,000,000,
only bounds it). A load that ends before the kill or before that point is
a harness error. Afterwards every ciphertext is decrypted again. Once per mode (default both): forward
(disable_standby_reads = true: standbys forward every request to the
active node) and standby-reads (OpenBao's default: standbys answer Transit
encrypt and decrypt themselves). Writes <target>/raft/summary.txt and
<target>/raft/<mode>/summary.json.";

/// The Transit key `workos-vault serve` wraps data keys under.
const KEY_NAME: &str = "vault-dek";
/// `workos-vault serve`'s API key for the load.
const API_KEY: &str = "sk_test_vault_rs_raft_5c1a07";

#[derive(Debug, PartialEq)]
struct Args {
    ops: u64,
    concurrency: u64,
    kill_after: Duration,
    down: Duration,
    after_return: Duration,
    seed: Option<u64>,
    modes: Vec<Mode>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        ops: 10_000_000,
        concurrency: 16,
        kill_after: Duration::from_secs(8),
        down: Duration::from_secs(5),
        after_return: Duration::from_secs(5),
        seed: None,
        modes: vec![Mode::Forward, Mode::StandbyReads],
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let text = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        if flag == "--mode" {
            parsed.modes = match text.as_str() {
                "both" => vec![Mode::Forward, Mode::StandbyReads],
                "forward" => vec![Mode::Forward],
                "standby-reads" => vec![Mode::StandbyReads],
                other => return Err(format!("--mode: unknown mode {other:?}\n{USAGE}")),
            };
            continue;
        }
        let number = text
            .parse::<u64>()
            .map_err(|_| format!("{flag}: {text:?} is not a number\n{USAGE}"))?;
        let positive = || match number {
            0 => Err(format!("{flag} must be positive\n{USAGE}")),
            n => Ok(n),
        };
        match flag.as_str() {
            "--ops" => parsed.ops = positive()?,
            "--concurrency" => parsed.concurrency = positive()?,
            "--kill-after-secs" => parsed.kill_after = Duration::from_secs(positive()?),
            "--down-secs" => parsed.down = Duration::from_secs(number),
            "--after-return-secs" => parsed.after_return = Duration::from_secs(number),
            "--seed" => parsed.seed = Some(number),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// A cluster's way with requests to standbys.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `disable_standby_reads = true`: standbys forward every request to
    /// the active node, so the leader's loss interrupts the load.
    Forward,
    /// OpenBao's default: standbys answer requests that write nothing
    /// (Transit encrypt and decrypt among them) themselves.
    StandbyReads,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Forward => "forward",
            Mode::StandbyReads => "standby-reads",
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = parse(args)?;
    let bao = openbao::install()?;
    // Apart, so the bench's features (vault-server's test-util) cannot
    // reach the served binary.
    util::run(cargo(&["build", "--release", "-p", "vault-cli"]))?;
    let mut soak_build = cargo(&["build", "--release", "-p", "vault-bench"]);
    soak_build.args(["--bin", "vault-bench-soak"]);
    util::run(soak_build)?;

    let root = openbao::target_dir().join("raft");
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|e| format!("cannot remove {}: {e}", root.display()))?;
    }
    let (mut texts, mut failed) = (String::new(), Vec::new());
    for &mode in &args.modes {
        let dir = root.join(mode.name());
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        match run_mode(&bao, mode, &args, &dir) {
            Ok(text) => texts.push_str(&text),
            Err(error) => failed.push(format!("{}: {error}", mode.name())),
        }
    }
    println!("\n{texts}");
    fs::write(root.join("summary.txt"), &texts).map_err(|e| e.to_string())?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// One cluster, one load, one failover; the figures' text.
fn run_mode(bao: &Path, mode: Mode, args: &Args, dir: &Path) -> Result<String, String> {
    let release = openbao::target_dir().join("release");
    eprintln!("raft: mode {}", mode.name());
    let mut cluster = Cluster::start(bao, dir, mode == Mode::StandbyReads)?;
    cluster.enable_transit(KEY_NAME)?;
    let target = cluster.standby()?;
    let (serve, serve_url) = start_serve(&release.join("workos-vault"), &cluster, target, dir)?;
    eprintln!(
        "raft: workos-vault serve at {serve_url} over {} ({})",
        cluster.node(target).name,
        cluster.node(target).url()
    );
    let stop_file = dir.join("stop-load");
    let mut soak = start_soak(
        &release.join("vault-bench-soak"),
        &serve_url,
        args,
        dir,
        &stop_file,
    )?;
    let failover = failover(&mut cluster, target, &mut soak, args, &stop_file);
    // Whatever happened, the load stops now.
    let _ = fs::write(&stop_file, "");
    let status = soak
        .0
        .wait()
        .map_err(|e| format!("waiting for the soak: {e}"));
    drop(serve);
    let (failover, status) = (failover?, status?);
    let (text, recovered) = summarize(dir, mode, args, &failover)?;
    match (status.success(), recovered) {
        (true, true) => Ok(text),
        _ => Err(format!("the failover run failed (soak: {status}):\n{text}")),
    }
}

/// `workos-vault serve` over Transit at the node `target`, and its URL.
fn start_serve(
    vault: &Path,
    cluster: &Cluster,
    target: usize,
    dir: &Path,
) -> Result<(Proc, String), String> {
    let address = cluster.node(target).url();
    let env = [
        ("VAULT_ADDR", address.as_str()),
        ("VAULT_TOKEN", cluster.root_token()),
        ("WORKOS_VAULT_TRANSIT_KEY", KEY_NAME),
    ];
    cluster::vault_serve(vault, &env, API_KEY, &dir.join("serve.log"))
}

fn start_soak(
    soak: &Path,
    url: &str,
    args: &Args,
    dir: &Path,
    stop_file: &Path,
) -> Result<Proc, String> {
    let mut command = Command::new(soak);
    command
        .args(["--phase", "raft", "--faults", "none", "--url", url])
        .arg("--stop-file")
        .arg(stop_file)
        .args(["--api-key", API_KEY])
        .args(["--ops", &args.ops.to_string()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .arg("--out")
        .arg(dir)
        .stdin(Stdio::null());
    if let Some(seed) = args.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    eprintln!("raft: starting the load: {command:?}");
    let child: Child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", soak.display()))?;
    Ok(Proc(child))
}

/// What happened to the cluster during the load, on the Unix epoch clock.
#[derive(Debug, Default)]
struct Failover {
    killed: String,
    killed_ms: u64,
    new_leader: String,
    new_leader_ms: u64,
    restarted_ms: u64,
    rejoined_ms: u64,
    /// What a Transit encrypt on `workos-vault serve`'s node answered while there
    /// was no active node (distinct answers, the first few).
    target_errors: Vec<String>,
}

/// Kills the active node `args.kill_after` into the load, waits for a new
/// leader, restarts the killed node `args.down` later, waits until it is a
/// standby again, and stops the load `args.after_return` after that (by
/// creating `stop_file`). A load that ended before the kill, or before it
/// was stopped, missed the failover: a harness error.
fn failover(
    cluster: &mut Cluster,
    target: usize,
    soak: &mut Proc,
    args: &Args,
    stop_file: &Path,
) -> Result<Failover, String> {
    std::thread::sleep(args.kill_after);
    if soak.0.try_wait().map_err(|e| e.to_string())?.is_some() {
        return Err(
            "harness error: the load ended before the kill, so the kill missed it \
             (see the soak's output above)"
                .to_owned(),
        );
    }
    let leader = cluster.active()?;
    if leader == target {
        return Err("workos-vault serve's node became the leader before the kill".to_owned());
    }
    let mut failover = Failover {
        killed: cluster.node(leader).name.clone(),
        killed_ms: epoch_ms(),
        ..Failover::default()
    };
    cluster.node_mut(leader).kill();
    eprintln!("raft: killed {} (SIGKILL)", failover.killed);
    let mut new_leader = None;
    wait_until(Duration::from_secs(60), "a new active node", || {
        if let Some(error) = cluster.probe(target, KEY_NAME) {
            if !failover.target_errors.contains(&error) && failover.target_errors.len() < 4 {
                failover.target_errors.push(error);
            }
        }
        new_leader = cluster.active().ok();
        new_leader.is_some()
    })?;
    failover.new_leader_ms = epoch_ms();
    failover.new_leader = cluster.node(new_leader.unwrap_or(leader)).name.clone();
    eprintln!(
        "raft: {} is active after {} ms",
        failover.new_leader,
        failover.new_leader_ms - failover.killed_ms
    );
    std::thread::sleep(args.down);
    failover.restarted_ms = epoch_ms();
    cluster.restart(leader)?;
    failover.rejoined_ms = epoch_ms();
    eprintln!(
        "raft: {} restarted, unsealed and standby after {} ms",
        failover.killed,
        failover.rejoined_ms - failover.restarted_ms
    );
    std::thread::sleep(args.after_return);
    if soak.0.try_wait().map_err(|e| e.to_string())?.is_some() {
        return Err(format!(
            "harness error: the load ended before {} s past the restarted node's return, \
             so it did not cover the failover (raise --ops, or see the soak's output above)",
            args.after_return.as_secs()
        ));
    }
    fs::write(stop_file, "").map_err(|e| format!("cannot write {}: {e}", stop_file.display()))?;
    eprintln!(
        "raft: stopping the load, {} s after {} returned",
        args.after_return.as_secs(),
        failover.killed
    );
    Ok(failover)
}

/// One line of the soak's events file.
struct Event {
    start: u64,
    end: u64,
    ok: bool,
    retries: u64,
}

fn events(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .ok_or_else(|| format!("bad events line {line:?}"))
            };
            Ok(Event {
                start: number(0)?,
                end: number(1)?,
                ok: fields.get(2) == Some(&"ok"),
                retries: number(3)?,
            })
        })
        .collect()
}

/// The figures of the events after the kill.
#[derive(Debug, PartialEq)]
struct AfterKill {
    /// The end of the first round trip started after the kill that
    /// decrypted its plaintext.
    recovered_ms: Option<u64>,
    /// Round trips in flight at the kill or started after it that failed.
    failed: u64,
    /// Of those round trips, the ones whose calls were retried.
    retried: u64,
    /// The longest of those round trips.
    longest_ms: u64,
}

fn after_kill(events: &[Event], killed_ms: u64) -> AfterKill {
    let touched: Vec<&Event> = events.iter().filter(|e| e.end >= killed_ms).collect();
    AfterKill {
        recovered_ms: touched
            .iter()
            .filter(|e| e.ok && e.start >= killed_ms)
            .map(|e| e.end)
            .min(),
        failed: touched.iter().filter(|e| !e.ok).count() as u64,
        retried: touched.iter().filter(|e| e.retries > 0).count() as u64,
        longest_ms: touched.iter().map(|e| e.end - e.start).max().unwrap_or(0),
    }
}

/// Joins the soak's summary and the failover's figures into
/// `summary.txt` and `summary.json`; returns the text and whether a round
/// trip started after the kill verified.
fn summarize(
    dir: &Path,
    mode: Mode,
    args: &Args,
    failover: &Failover,
) -> Result<(String, bool), String> {
    let read = |name: &str| {
        let path: PathBuf = dir.join(name);
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let soak_text = read("raft.txt")?;
    let soak_json: serde_json::Value =
        serde_json::from_str(&read("raft.json")?).map_err(|e| format!("raft.json: {e}"))?;
    let after = after_kill(&events(&read("raft.events")?)?, failover.killed_ms);
    let since_kill = |ms: u64| ms.saturating_sub(failover.killed_ms);
    let recovered = after
        .recovered_ms
        .map_or_else(|| "never".to_owned(), |ms| format!("{} ms", since_kill(ms)));
    let text = format!(
        "{soak_text}raft failover ({}): killed the active node {} (SIGKILL) {} s into the load\n  \
         new active node {} after {} ms; {} restarted {} ms after the kill, standby again {} ms after the kill\n  \
         time to recover (kill -> end of the first round trip started after it that verified): {recovered}\n  \
         round trips ending after the kill: {} failed, {} retried; longest {} ms\n  \
         workos-vault serve's node answered a Transit encrypt until then with: {}\n\n",
        mode.name(),
        failover.killed,
        args.kill_after.as_secs(),
        failover.new_leader,
        since_kill(failover.new_leader_ms),
        failover.killed,
        since_kill(failover.restarted_ms),
        since_kill(failover.rejoined_ms),
        after.failed,
        after.retried,
        after.longest_ms,
        match failover.target_errors.is_empty() {
            true => "success".to_owned(),
            false => failover.target_errors.join(" | "),
        },
    );
    let json = serde_json::json!({
        "mode": mode.name(),
        "soak": soak_json,
        "killed": failover.killed,
        "kill_after_secs": args.kill_after.as_secs(),
        "new_leader": failover.new_leader,
        "new_leader_after_ms": since_kill(failover.new_leader_ms),
        "restarted_after_ms": since_kill(failover.restarted_ms),
        "rejoined_after_ms": since_kill(failover.rejoined_ms),
        "recovered_after_ms": after.recovered_ms.map(since_kill),
        "target_node_errors_during_election": failover.target_errors,
        "ops_ending_after_kill": {
            "failed": after.failed,
            "retried": after.retried,
            "longest_ms": after.longest_ms,
        },
    });
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("summary.txt", text.clone())?;
    write("summary.json", format!("{json:#}\n"))?;
    Ok((text, after.recovered_ms.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<Args, String> {
        let args: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn flags_and_their_errors() {
        let parsed = args("").expect("defaults");
        assert_eq!((parsed.ops, parsed.concurrency), (10_000_000, 16));
        assert_eq!(parsed.after_return, Duration::from_secs(5));
        let parsed = args(
            "--ops 5 --concurrency 2 --kill-after-secs 3 --down-secs 0 --after-return-secs 2 --seed 9",
        )
        .expect("flags");
        assert_eq!(
            parsed,
            Args {
                ops: 5,
                concurrency: 2,
                kill_after: Duration::from_secs(3),
                down: Duration::ZERO,
                after_return: Duration::from_secs(2),
                seed: Some(9),
                modes: vec![Mode::Forward, Mode::StandbyReads],
            }
        );
        assert_eq!(
            args("--mode forward").expect("mode").modes,
            vec![Mode::Forward]
        );
        for bad in [
            "--ops",
            "--ops 0",
            "--ops x",
            "--kill-after-secs 0",
            "--fast 1",
            "--mode all",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recovery_is_the_first_verified_round_trip_started_after_the_kill() {
        let text = "100 200 ok 0 -\n150 900 ok 2 700\n\
                    300 400 failed 3 390\n350 800 ok 1 500\n320 600 ok 0 -\n";
        let events = events(text).expect("events");
        let after = after_kill(&events, 250);
        assert_eq!(
            after,
            AfterKill {
                recovered_ms: Some(600),
                failed: 1,
                retried: 3,
                longest_ms: 750,
            }
        );
        assert_eq!(after_kill(&events, 1000).recovered_ms, None);
        assert!(self::events("1 2 ok").is_err());
    }
}
