//! `cargo xtask slowloris`: `/health` latency of a release `workos-vault serve`
//! while 1,000 idle and 200 slow-loris connections hold on, over plain
//! HTTP and over TLS (the `slowloris` mode of vault-bench-net).
//!
//! Each row starts a fresh server and is bounded in time (at most
//! [`SETTLE_SECS`] to open the attack, [`PROBE_SECS`] of probing). The
//! attackers connect from 127.0.0.2 (idle) and 127.0.0.3 (slow), the
//! prober from 127.0.0.1: loopback has many addresses, so each is a peer
//! of its own, as on a network. Rows:
//! - quiet: no attack, the reference;
//! - attack: the defaults (256 connections per peer, a 5 s first request
//!   timeout);
//! - attack, no per-peer limit: `--max-connections-per-peer 100000`, to
//!   show what the limit is worth.
//!
//! Writes `<target>/slowloris/summary.json` and prints a table.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::bench::{run_json, ServerProcess};
use crate::util::{self, cargo};

/// Idle connections: connect, send nothing.
const IDLE: usize = 1000;
/// Slow-loris connections: a request head, one line a second.
const SLOW: usize = 200;
/// Longest wait for the attack connections to open.
const SETTLE_SECS: u64 = 5;
/// Probes per row, if they fit in [`PROBE_SECS`].
const PROBES: usize = 500;
/// Longest probing per row.
const PROBE_SECS: u64 = 30;
/// The target: `/health` p99 under attack, in milliseconds.
const TARGET_P99_MS: f64 = 100.0;

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`slowloris` takes no arguments, got {arg:?}"));
    }
    util::run(cargo(&["build", "--release", "-p", "vault-cli"]))?;
    util::run(cargo(&["build", "--release", "-p", "vault-bench"]))?;
    let root = util::root();
    let bin = root.join("target").join("release");
    let out_dir = root.join("target").join("slowloris");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let net = bin.join("vault-bench-net");
    tls_files(&net, &out_dir)?;
    let ca_pem = fs::read_to_string(out_dir.join("ca.pem"))
        .map_err(|e| format!("cannot read the test CA: {e}"))?;

    let mut rows = Vec::new();
    for tls in [false, true] {
        let mut quiet_p99 = None;
        for (name, attack, extra) in [
            ("quiet", false, &[][..]),
            ("attack", true, &[][..]),
            (
                "attack, no per-peer limit",
                true,
                &["--max-connections-per-peer", "100000"][..],
            ),
        ] {
            let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
            if tls {
                args.push("--tls-cert".into());
                args.push(out_dir.join("cert.pem").into());
                args.push("--tls-key".into());
                args.push(out_dir.join("key.pem").into());
            }
            let server =
                ServerProcess::start_with(&bin.join("workos-vault"), &out_dir, &args, &[])?;
            let address = server
                .url
                .split("://")
                .nth(1)
                .ok_or("the server printed no URL")?
                .to_owned();
            let (idle, slow) = if attack { (IDLE, SLOW) } else { (0, 0) };
            let request = json!({
                "address": address,
                "ca_pem": tls.then(|| ca_pem.clone()),
                "idle": idle,
                "slow": slow,
                "probes": PROBES,
                "probe_secs": PROBE_SECS,
                "idle_from": "127.0.0.2",
                "slow_from": "127.0.0.3",
                "probe_from": "127.0.0.1",
                "settle_secs": SETTLE_SECS,
            });
            let label = format!("{} {name}", if tls { "TLS" } else { "plain" });
            eprintln!("slowloris: {label}");
            let mut command = Command::new(&net);
            command.arg("slowloris");
            let outcome = run_json(command, Some(&request))?;
            drop(server);
            let p99_ms = ms(&outcome["p99_us"]);
            if !attack {
                quiet_p99 = Some(p99_ms);
            }
            rows.push(json!({
                "row": label,
                "outcome": outcome,
                "p99_vs_quiet": quiet_p99.filter(|q| *q > 0.0).map(|q| p99_ms / q),
            }));
        }
    }
    let path = out_dir.join("summary.json");
    let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", table(&rows));
    eprintln!("slowloris: wrote {}", path.display());
    let missed: Vec<&str> = rows
        .iter()
        .filter(|row| {
            let label = row["row"].as_str().unwrap_or_default();
            label.ends_with(" attack")
                && (ms(&row["outcome"]["p99_us"]) >= TARGET_P99_MS
                    || row["outcome"]["failed"].as_u64() != Some(0))
        })
        .filter_map(|row| row["row"].as_str())
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "/health p99 missed {TARGET_P99_MS} ms (or probes failed) under attack: {}",
            missed.join(", ")
        ))
    }
}

/// Has vault-bench-net write a CA, and a certificate for 127.0.0.1 it
/// signed, into `dir`.
fn tls_files(net: &Path, dir: &Path) -> Result<(), String> {
    let mut command = Command::new(net);
    command.arg("tls-files").arg(dir);
    util::run(command)
}

fn ms(micros: &Value) -> f64 {
    micros.as_u64().unwrap_or(0) as f64 / 1000.0
}

fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| row | probes answered | failed | p50 ms | p99 ms | max ms | p99 vs quiet | attack connects |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let o = &row["outcome"];
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            row["row"].as_str().unwrap_or_default(),
            o["answered"],
            o["failed"],
            ms(&o["p50_us"]),
            ms(&o["p99_us"]),
            ms(&o["max_us"]),
            row["p99_vs_quiet"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}x")),
            o["attack_connects"],
        ));
    }
    out
}
