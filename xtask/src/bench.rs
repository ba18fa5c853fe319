//! `cargo xtask bench [--quick]`: builds the benchmark binaries in release
//! mode, installs the pinned peer SDKs, starts `vault serve` in its own
//! process, runs every measurement (ours and each baseline in the same
//! run), writes `target/bench/summary.json` and prints a table.
//!
//! The measuring code lives in the `vault-bench` crate (`bench/`) and in
//! the SDK drivers under `tests/compat/bench/`; this module only
//! orchestrates. `--quick` runs far fewer pairs and rounds (a smoke test,
//! under a minute once built); the full run is what docs/BENCHMARKS.md
//! publishes.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::util::{self, cargo};

/// What `--help` prints.
const DOC: &str = "Builds release binaries, installs the pinned peer SDKs, starts `vault serve`
in its own process and measures, each against its baseline in the same run:
AEAD against raw ring, the local decrypt path (ns and allocations per op),
end to end against @workos-inc/node 11.0.0 and workos 10.8.0 (Python),
caching, server throughput, and the peak memory and wall time of encrypting
and decrypting a 256 MiB file (against coreutils base64; GNU time measures
memory). Writes target/bench/summary.json and prints
a table. --quick runs far fewer pairs and rounds (a smoke test).
";

/// How much of everything to run.
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Repeats of each end-to-end and load measurement; the median is
    /// reported.
    pub(crate) repeats: usize,
    /// Encrypt+decrypt pairs per end-to-end run.
    pairs: usize,
    /// Requests per server load run.
    requests: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                repeats: 1,
                pairs: 500,
                requests: 10_000,
            }
        } else {
            Plan {
                quick,
                repeats: 3,
                pairs: 10_000,
                requests: 100_000,
            }
        }
    }

    fn flag(&self) -> &'static [&'static str] {
        if self.quick {
            &["--quick"]
        } else {
            &[]
        }
    }
}

/// Concurrencies of the end-to-end comparison.
const E2E_CONCURRENCY: [usize; 2] = [1, 32];
/// Concurrency of the server load test.
const LOAD_CONCURRENCY: usize = 64;
/// Plaintext size of the end-to-end pairs.
const E2E_SIZE: usize = 1024;
/// Least pairs/s ratio over each SDK aimed for at concurrency 32.
const E2E_TARGET: f64 = 8.0;
/// Most client CPU per pair aimed for, in microseconds.
const CPU_BUDGET_US: f64 = 100.0;
/// Data-key requests per second aimed for on 2 cores (reported only).
const DATA_KEY_AIM: f64 = 20_000.0;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--transit" => return crate::bench_transit::run_alone(args),
            "-h" | "--help" => {
                println!("usage: cargo xtask bench [--quick]\n\n{}", DOC.trim_end());
                return Ok(());
            }
            other => return Err(format!("`bench` takes only --quick, got {other:?}")),
        }
    }
    let plan = Plan::new(quick);
    let root = util::root();
    // Two builds: in one, vault-bench's `test-util` feature of
    // vault-server would be compiled into the `vault` binary measured.
    util::run(cargo(&["build", "--release", "-p", "vault-cli"]))?;
    util::run(cargo(&["build", "--release", "-p", "vault-bench"]))?;
    crate::compat_install::install(&root)?;
    let out_dir = root.join("target").join("bench");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let bin = root.join("target").join("release");
    let micro = bin.join("vault-bench-micro");
    let net = bin.join("vault-bench-net");

    let mut summary = Vec::new();
    eprintln!("bench: AEAD, ours against ring");
    summary.extend(measurements(&micro, &["aead"], plan.flag())?);
    eprintln!("bench: the local decrypt path");
    summary.extend(measurements(&micro, &["local"], plan.flag())?);
    {
        let server = ServerProcess::start(&bin.join("vault"), &out_dir)?;
        eprintln!("bench: end to end against {}", server.url);
        summary.extend(end_to_end(&root, &net, &server, &plan)?);
        eprintln!("bench: server throughput");
        summary.extend(server_load(&net, &server, &plan)?);
    }
    eprintln!("bench: objects through vault serve, on SQLite and on PostgreSQL");
    {
        let server = ServerProcess::start(&bin.join("vault"), &out_dir)?;
        summary.extend(object_load(&net, &server, &plan, "SQLite")?);
    }
    {
        let postgres = crate::postgres::start_durable()?;
        let env = [("WORKOS_VAULT_DATABASE_URL", postgres.url().to_owned())];
        let server = ServerProcess::start_with(&bin.join("vault"), &out_dir, &env)?;
        summary.extend(object_load(&net, &server, &plan, "PostgreSQL")?);
    }
    eprintln!("bench: caching");
    summary.extend(measurements(&net, &["cache"], plan.flag())?);
    eprintln!("bench: over Transit (bao server -dev), against the local keyring");
    summary.extend(crate::bench_transit::rows(
        &bin,
        &out_dir,
        plan.quick,
        plan.repeats,
    )?);
    eprintln!("bench: big inputs, against coreutils base64");
    summary.extend(crate::bench_big::big_inputs(
        &bin.join("vault"),
        &out_dir,
        &plan,
    )?);

    let path = out_dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", table(&summary));
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}

/// Runs a binary that prints a JSON array of measurements.
fn measurements(binary: &Path, args: &[&str], flag: &[&str]) -> Result<Vec<Value>, String> {
    let mut command = Command::new(binary);
    command.args(args).args(flag);
    match run_json(command, None)? {
        Value::Array(items) => Ok(items),
        other => Err(format!(
            "{} printed {other}, not an array",
            binary.display()
        )),
    }
}

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

/// `vault serve` on a free loopback port, with a throwaway keyring and API
/// key, in its own process (so a client's CPU time is its own). Killed on
/// drop.
struct ServerProcess {
    child: Child,
    url: String,
    api_key: String,
    dir: PathBuf,
}

impl ServerProcess {
    fn start(vault: &Path, out_dir: &Path) -> Result<Self, String> {
        Self::start_with(vault, out_dir, &[])
    }

    /// [`ServerProcess::start`] with more environment (an object store's
    /// `WORKOS_VAULT_DATABASE_URL`, say).
    fn start_with(vault: &Path, out_dir: &Path, env: &[(&str, String)]) -> Result<Self, String> {
        let dir = out_dir.join(format!("server-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let api_key = format!("sk_test_bench_{}", random_hex(16)?);
        let mut child = Command::new(vault)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("VAULT_KEYRING", dir.join("keyring.json"))
            // Through the environment, so it is not on the command line.
            .env("VAULT_SERVER_API_KEY", &api_key)
            .env_remove("WORKOS_API_KEY")
            .env_remove("WORKOS_VAULT_DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", vault.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
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
                let _ = child.kill();
                let _ = child.wait();
                return Err("vault serve exited before it listened".to_owned());
            }
            if let Some(rest) = line.split(MARKER).nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            eprint!("vault serve: {line}");
        };
        // Keep draining its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Ok(ServerProcess {
            child,
            url,
            api_key,
            dir,
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// One end-to-end client.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    Ours,
    Node,
    Python,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Ours => "vault (Rust)",
            Client::Node => "@workos-inc/node 11.0.0",
            Client::Python => "workos 10.8.0 (Python)",
        }
    }

    fn command(self, root: &Path, net: &Path) -> Command {
        let drivers = root.join("tests").join("compat").join("bench");
        match self {
            Client::Ours => {
                let mut command = Command::new(net);
                command.arg("e2e");
                command
            }
            Client::Node => {
                let mut command = Command::new("node");
                command.arg(drivers.join("node.mjs"));
                command
            }
            Client::Python => {
                let python =
                    std::env::var("VAULT_COMPAT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
                let mut command = Command::new(python);
                command.arg(drivers.join("python.py"));
                command
            }
        }
    }
}

/// One driver run: pairs per second and client CPU microseconds per pair.
fn pairs_run(
    client: Client,
    root: &Path,
    net: &Path,
    server: &ServerProcess,
    count: usize,
    concurrency: usize,
) -> Result<(f64, f64), String> {
    let request = json!({
        "base_url": server.url,
        "api_key": server.api_key,
        "count": count,
        "concurrency": concurrency,
        "size": E2E_SIZE,
    });
    let answer = run_json(client.command(root, net), Some(&request))
        .map_err(|e| format!("{}: {e}", client.name()))?;
    let number = |field: &str| {
        answer[field]
            .as_f64()
            .ok_or_else(|| format!("{} printed no {field}: {answer}", client.name()))
    };
    let (pairs, seconds, cpu) = (number("pairs")?, number("seconds")?, number("cpu_seconds")?);
    Ok((pairs / seconds, cpu / pairs * 1e6))
}

fn end_to_end(
    root: &Path,
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
) -> Result<Vec<Value>, String> {
    let clients = [Client::Ours, Client::Node, Client::Python];
    let mut out = Vec::new();
    for concurrency in E2E_CONCURRENCY {
        // runs[client][repeat] = (pairs/s, CPU us/pair); clients take turns
        // within each repeat, so drift hits them all alike.
        let mut runs = vec![Vec::new(); clients.len()];
        for repeat in 0..plan.repeats {
            for (i, &client) in clients.iter().enumerate() {
                let run = pairs_run(client, root, net, server, plan.pairs, concurrency)?;
                eprintln!(
                    "bench: c={concurrency} #{}: {}: {:.0} pairs/s, {:.0} us CPU/pair",
                    repeat + 1,
                    client.name(),
                    run.0,
                    run.1
                );
                runs[i].push(run);
            }
        }
        let ours = &runs[0];
        let target = (concurrency == 32).then_some(E2E_TARGET);
        for (i, &client) in clients.iter().enumerate().skip(1) {
            let theirs = &runs[i];
            out.push(entry(
                &format!("e2e c={concurrency}: pairs/s, 1 KiB, vs {}", client.name()),
                "pairs/s",
                ours.iter().map(|r| r.0).collect(),
                theirs.iter().map(|r| r.0).collect(),
                client.name(),
                true,
                target,
            ));
            out.push(entry(
                &format!("e2e c={concurrency}: client CPU/pair vs {}", client.name()),
                "us/pair",
                ours.iter().map(|r| r.1).collect(),
                theirs.iter().map(|r| r.1).collect(),
                client.name(),
                false,
                None,
            ));
        }
        out.push(entry(
            &format!("e2e c={concurrency}: client CPU/pair vs budget"),
            "us/pair",
            ours.iter().map(|r| r.1).collect(),
            vec![CPU_BUDGET_US; ours.len()],
            "budget",
            false,
            Some(1.0),
        ));
    }
    Ok(out)
}

fn server_load(net: &Path, server: &ServerProcess, plan: &Plan) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for path in ["data-key", "decrypt"] {
        let (mut rates, mut p50s, mut p99s) = (vec![], vec![], vec![]);
        for _ in 0..plan.repeats {
            let (rate, p50, p99) = load_run(net, server, plan, path)?;
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
        }
        let name = format!("server {path}, c={LOAD_CONCURRENCY}");
        if path == "data-key" {
            out.push(entry(
                &format!("{name}: req/s"),
                "req/s",
                rates.clone(),
                vec![DATA_KEY_AIM; rates.len()],
                "aim (2 cores)",
                true,
                None,
            ));
        } else {
            out.push(report(&format!("{name}: req/s"), "req/s", median(&rates)));
        }
        out.push(report(&format!("{name}: p50 latency"), "us", median(&p50s)));
        out.push(report(&format!("{name}: p99 latency"), "us", median(&p99s)));
    }
    Ok(out)
}

/// req/s, p50 and p99 latency (us) of one load run.
type LoadResult = (f64, f64, f64);

/// One load run of `path` against `server`.
fn load_run(
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
    path: &str,
) -> Result<LoadResult, String> {
    let request = json!({
        "base_url": server.url,
        "api_key": server.api_key,
        "path": path,
        "concurrency": LOAD_CONCURRENCY,
        "requests": plan.requests,
    });
    let mut command = Command::new(net);
    command.arg("load");
    let answer = run_json(command, Some(&request))?;
    let number = |field: &str| {
        answer[field]
            .as_f64()
            .ok_or_else(|| format!("load printed no {field}: {answer}"))
    };
    let rate = number("requests")? / number("seconds")?;
    eprintln!("bench: {path}: {rate:.0} req/s");
    Ok((rate, number("p50_us")?, number("p99_us")?))
}

/// Objects create and read through `server` (its store on `backend`),
/// against the data-key route of the same server in the same repeats.
fn object_load(
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
    backend: &str,
) -> Result<Vec<Value>, String> {
    let mut data_key = Vec::new();
    let mut runs: [(&str, Vec<LoadResult>); 2] =
        [("object-create", Vec::new()), ("object-read", Vec::new())];
    for _ in 0..plan.repeats {
        data_key.push(load_run(net, server, plan, "data-key")?.0);
        for (path, results) in &mut runs {
            results.push(load_run(net, server, plan, path)?);
        }
    }
    let mut out = Vec::new();
    for (path, results) in runs {
        let what = if path == "object-create" {
            "create"
        } else {
            "read"
        };
        let name = format!("objects {what} on {backend}, c={LOAD_CONCURRENCY}");
        let rates: Vec<f64> = results.iter().map(|r| r.0).collect();
        out.push(entry(
            &format!("{name}: req/s"),
            "req/s",
            rates,
            data_key.clone(),
            "data-key route, same server and run",
            true,
            None,
        ));
        let p50s: Vec<f64> = results.iter().map(|r| r.1).collect();
        let p99s: Vec<f64> = results.iter().map(|r| r.2).collect();
        out.push(report(&format!("{name}: p50 latency"), "us", median(&p50s)));
        out.push(report(&format!("{name}: p99 latency"), "us", median(&p99s)));
    }
    Ok(out)
}

/// A measurement of ours against a baseline over repeats: medians of each,
/// and the median of the per-repeat ratios.
pub(crate) fn entry(
    name: &str,
    unit: &str,
    ours: Vec<f64>,
    theirs: Vec<f64>,
    baseline_name: &str,
    higher_is_better: bool,
    target: Option<f64>,
) -> Value {
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(o, t)| if higher_is_better { o / t } else { t / o })
        .collect();
    json!({
        "name": name,
        "unit": unit,
        "ours": median(&ours),
        "baseline": median(&theirs),
        "baseline_name": baseline_name,
        "ratio": median(&ratios),
        "target": target,
    })
}

fn report(name: &str, unit: &str, ours: f64) -> Value {
    json!({
        "name": name,
        "unit": unit,
        "ours": ours,
        "baseline": null,
        "baseline_name": null,
        "ratio": null,
        "target": null,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A number for the table: three significant figures, at most.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A target ratio: whole numbers as written, fractions to two places.
fn target_text(target: f64) -> String {
    if target.fract() == 0.0 {
        format!(">= {target}x")
    } else {
        format!(">= {target:.2}x")
    }
}

/// The summary as a Markdown table, ratios first.
fn table(summary: &[Value]) -> String {
    let mut out = String::from(
        "| measurement | ratio | target | met | ours | baseline | unit |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for m in summary {
        let ratio = m["ratio"].as_f64();
        let target = m["target"].as_f64();
        let met = match (ratio, target) {
            (Some(r), Some(t)) if r >= t => "yes",
            (_, Some(_)) => "**no**",
            _ => "",
        };
        let baseline = match (m["baseline"].as_f64(), m["baseline_name"].as_str()) {
            (Some(b), Some(name)) => format!("{} ({name})", number(b)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {met} | {} | {baseline} | {} |\n",
            m["name"].as_str().unwrap_or("?"),
            ratio.map(|r| format!("{}x", number(r))).unwrap_or_default(),
            target.map(target_text).unwrap_or_default(),
            m["ours"].as_f64().map(number).unwrap_or_default(),
            m["unit"].as_str().unwrap_or(""),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_take_medians_and_orient_ratios() {
        let faster = entry(
            "x",
            "pairs/s",
            vec![100.0, 300.0, 200.0],
            vec![10.0, 10.0, 20.0],
            "them",
            true,
            Some(8.0),
        );
        assert_eq!(faster["ours"], 200.0);
        assert_eq!(faster["baseline"], 10.0);
        assert_eq!(faster["ratio"], 10.0);
        let cheaper = entry("y", "us", vec![50.0], vec![100.0], "budget", false, None);
        assert_eq!(cheaper["ratio"], 2.0);
        assert_eq!(cheaper["target"], Value::Null);
    }

    #[test]
    fn table_marks_targets() {
        let rows = [
            entry("a", "u", vec![9.0], vec![1.0], "b", true, Some(8.0)),
            entry("c", "u", vec![7.0], vec![1.0], "b", true, Some(8.0)),
            report("d", "us", 1234.5),
        ];
        let text = table(&rows);
        assert!(
            text.contains("| a | 9.00x | >= 8x | yes | 9.00 | 1.00 (b) | u |"),
            "{text}"
        );
        assert!(text.contains("| c | 7.00x | >= 8x | **no** |"), "{text}");
        assert!(text.contains("| d |  |  |  | 1234 |  | us |"), "{text}");
        assert_eq!(target_text(1.0 / 1.5), ">= 0.67x");
    }
}
