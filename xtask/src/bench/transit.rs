//! The Transit rows of `cargo xtask bench`: data-key and decrypt requests
//! per second through `workos-vault serve` over Transit (one `bao server -dev`,
//! plain HTTP on loopback) against `workos-vault serve` over the local keyring,
//! and the cache's effect over Transit (`vault-bench-net transit-cache`).
//! Ratios are Transit's figure over the keyring's: below 1 is the cost of
//! a network round trip to the engine per key.
//!
//! `cargo xtask bench --transit [--quick]` runs these rows alone.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::process::measurement_rows;
use super::process::Proc;
use super::process::{random_hex, run_json};
use super::summary::{entry, Measurement};
use crate::openbao;
use crate::raft::cluster::{clear_engine_env, free_port, http_status, vault_serve, wait_until};
use crate::util::{self, cargo};

/// Load concurrency, as the server rows use.
const CONCURRENCY: usize = 64;
/// The Transit key.
const KEY: &str = "vault-bench-dek";

/// The rows, with the binaries in `bin` and scratch files under `out_dir`.
pub fn rows(
    bin: &Path,
    out_dir: &Path,
    quick: bool,
    repeats: usize,
) -> Result<Vec<Measurement>, String> {
    let dir = out_dir.join("transit");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let token = format!("bench-{}", random_hex(12)?);
    let (_engine, address) = dev_server(&openbao::install()?, &token, &dir)?;
    let api_key = format!("sk_test_bench_{}", random_hex(12)?);
    let vault = bin.join("workos-vault");
    let transit_env = [
        ("VAULT_ADDR", address.as_str()),
        ("VAULT_TOKEN", token.as_str()),
        ("WORKOS_VAULT_TRANSIT_KEY", KEY),
    ];
    let (_transit, transit_url) = vault_serve(
        &vault,
        &transit_env,
        &api_key,
        &dir.join("serve-transit.log"),
    )?;
    let keyring = dir.join("keyring.json");
    let local_env = [(
        "WORKOS_VAULT_KEYRING",
        keyring.to_str().ok_or("a non-UTF-8 path")?,
    )];
    let (_local, local_url) =
        vault_serve(&vault, &local_env, &api_key, &dir.join("serve-local.log"))?;

    let requests = if quick { 2_000 } else { 20_000 };
    let net = bin.join("vault-bench-net");
    let mut out = Vec::new();
    for path in ["data-key", "decrypt"] {
        let (mut transit, mut local) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            transit.push(load(&net, &transit_url, &api_key, path, requests)?);
            local.push(load(&net, &local_url, &api_key, path, requests)?);
            eprintln!(
                "bench: {path} over Transit {:.0} req/s, over the keyring {:.0} req/s",
                transit[transit.len() - 1],
                local[local.len() - 1]
            );
        }
        out.push(entry(
            &format!("server {path} over Transit, c={CONCURRENCY}: req/s"),
            "req/s",
            transit,
            local,
            "local keyring",
            true,
            None,
        ));
    }
    let request = json!({"address": address, "token": token, "key": KEY});
    let mut command = Command::new(&net);
    command.arg("transit-cache");
    if quick {
        command.arg("--quick");
    }
    out.extend(measurement_rows(
        "transit-cache",
        run_json(command, Some(&request))?,
    )?);
    Ok(out)
}

/// `bao server -dev` on a free port with root token `token`, Transit
/// enabled and a derived key; returns it and its address.
fn dev_server(bao: &Path, token: &str, dir: &Path) -> Result<(Proc, String), String> {
    let port = free_port()?;
    let address = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(bao);
    command
        .args(["server", "-dev"])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"));
    clear_engine_env(&mut command);
    // Through the environment, so it is not on the command line.
    command.env("BAO_DEV_ROOT_TOKEN_ID", token);
    let engine = Proc::spawn(command, &dir.join("bao.log"), "bao server -dev")?;
    wait_until(Duration::from_secs(30), "bao server -dev", || {
        http_status(port, "/v1/sys/health") == Some(200)
    })?;
    let bao_cli = |args: &[&str]| {
        let mut command = Command::new(bao);
        clear_engine_env(&mut command);
        command
            .args(args)
            .env("BAO_ADDR", &address)
            .env("BAO_TOKEN", token);
        util::run(command)
    };
    bao_cli(&["secrets", "enable", "transit"])?;
    bao_cli(&[
        "write",
        "-f",
        &format!("transit/keys/{KEY}"),
        "derived=true",
    ])?;
    Ok((engine, address))
}

/// `vault-bench-net load` of `requests` POSTs to `path`: requests/s.
fn load(net: &Path, url: &str, api_key: &str, path: &str, requests: usize) -> Result<f64, String> {
    let request = json!({
        "base_url": url,
        "api_key": api_key,
        "path": path,
        "concurrency": CONCURRENCY,
        "requests": requests,
    });
    let mut command = Command::new(net);
    command.arg("load");
    let answer = run_json(command, Some(&request))?;
    let number = |field: &str| {
        answer[field]
            .as_f64()
            .ok_or_else(|| format!("load printed no {field}: {answer}"))
    };
    Ok(number("requests")? / number("seconds")?)
}

/// `cargo xtask bench --transit [--quick]`: builds, runs [`rows`], prints
/// them and writes `<target>/bench/transit.json`.
pub fn run_alone(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    util::run(cargo(&["build", "--release", "-p", "vault-cli"]))?;
    util::run(cargo(&["build", "--release", "-p", "vault-bench"]))?;
    let target = openbao::target_dir();
    let out_dir = target.join("bench");
    let rows = rows(
        &target.join("release"),
        &out_dir,
        quick,
        if quick { 1 } else { 3 },
    )?;
    let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    let path = out_dir.join("transit.json");
    std::fs::write(&path, format!("{text}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{text}");
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}
