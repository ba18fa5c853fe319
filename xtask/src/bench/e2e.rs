//! The end-to-end and server-load rows: our client against the official
//! Node and Python SDKs over one `workos-vault serve`, and the server's own
//! throughput and latency.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::plan::Plan;
use super::process::{run_json, ServerProcess};
use super::summary::{entry, median, Measurement};

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
                let python = std::env::var("WORKOS_VAULT_COMPAT_PYTHON")
                    .unwrap_or_else(|_| "python3".to_owned());
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

pub(crate) fn end_to_end(
    root: &Path,
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
) -> Result<Vec<Measurement>, String> {
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

pub(crate) fn server_load(
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
) -> Result<Vec<Measurement>, String> {
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
            out.push(Measurement::report(
                &format!("{name}: req/s"),
                "req/s",
                median(&rates),
            ));
        }
        out.extend(latency_rows(&name, &p50s, &p99s));
    }
    Ok(out)
}

/// The p50 and p99 latency rows of `name`: medians over the repeats.
fn latency_rows(name: &str, p50s: &[f64], p99s: &[f64]) -> [Measurement; 2] {
    [
        Measurement::report(&format!("{name}: p50 latency"), "us", median(p50s)),
        Measurement::report(&format!("{name}: p99 latency"), "us", median(p99s)),
    ]
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
pub(crate) fn object_load(
    net: &Path,
    server: &ServerProcess,
    plan: &Plan,
    backend: &str,
) -> Result<Vec<Measurement>, String> {
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
        out.extend(latency_rows(&name, &p50s, &p99s));
    }
    Ok(out)
}
