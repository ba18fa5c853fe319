//! `vault-bench-soak`: one soak phase (see `vault_bench::soak`), as
//! `cargo xtask soak` runs it once per phase, in release.
//!
//! ```text
//! vault-bench-soak [--phase NAME] [--ops N] [--concurrency N]
//!                  [--faults none|issue|U,D,T] [--protocol h1|h2] [--seed N]
//!                  [--time-limit-secs N] [--stop-file PATH] [--out DIR]
//!                  [--url URL --api-key KEY]
//! ```
//!
//! With `--stop-file`, the load is time-bound: no round trip starts once
//! that file exists (`--ops` is then an upper bound), as `cargo xtask
//! raft` stops it a set time after the restarted node's return.
//!
//! Defaults: phase `faults`, 50,000 round trips, concurrency 64, the
//! issue's fault mix, HTTP/1.1 (`h2`: HTTPS, HTTP/2 by ALPN), a random
//! seed, 900 s. It prints the phase's summary
//! and, with `--out`, writes `DIR/<phase>.json` and `DIR/<phase>.txt`. It
//! exits with 1 when the phase fails, 2 on bad arguments.
//!
//! With `--url`, the load goes to that server (`workos-vault serve`, started by
//! someone else; `--api-key` or `WORKOS_VAULT_BENCH_API_KEY` is one of its keys)
//! instead of one in this process: `--faults` and `--protocol` do not
//! apply, retries are allowed, every ciphertext is decrypted again after
//! the load, and `--out` also gets `DIR/<phase>.events`, one line per
//! operation (`start_ms end_ms ok|failed retries last_retry_ms|-`, Unix
//! epoch milliseconds), as `cargo xtask raft` reads it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vault_bench::soak::{self, ClientSettings, External, Params, Protocol};

const USAGE: &str = "usage: vault-bench-soak [--phase NAME] [--ops N] [--concurrency N] \
                     [--faults none|issue|U,D,T] [--protocol h1|h2] [--seed N] \
                     [--time-limit-secs N] [--stop-file PATH] [--out DIR] \
                     [--url URL --api-key KEY]";

/// What the command line asks for.
struct Parsed {
    params: Params,
    out: Option<PathBuf>,
    url: Option<String>,
    api_key: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let parsed = match parse(&args).and_then(|parsed| Ok((external(&parsed)?, parsed))) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("vault-bench-soak: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (external, Parsed { params, out, .. }) = parsed;
    let report = match external {
        Some(server) => soak::runtime().block_on(soak::run_external(params, server)),
        None => soak::runtime().block_on(soak::run_phase(params, |_| {})),
    };
    let text = report.text();
    println!("{text}");
    if let Some(dir) = out {
        if let Err(error) = report.write(&dir) {
            eprintln!(
                "vault-bench-soak: cannot write to {}: {error}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The server of `--url`, if given, with its API key.
fn external(parsed: &Parsed) -> Result<Option<External>, String> {
    let Some(url) = parsed.url.clone() else {
        return match parsed.api_key {
            Some(_) => Err("--api-key needs --url".to_owned()),
            None => Ok(None),
        };
    };
    let api_key = parsed
        .api_key
        .clone()
        .or_else(|| std::env::var("WORKOS_VAULT_BENCH_API_KEY").ok())
        .ok_or("--url needs --api-key KEY (or WORKOS_VAULT_BENCH_API_KEY)")?;
    Ok(Some(External { url, api_key }))
}

/// The phase's parameters, the output directory and the external server.
fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut params = Params {
        name: "faults".to_owned(),
        ops: 50_000,
        concurrency: 64,
        faults: Some(soak::issue_faults()),
        seed: soak::random_seed(),
        client: ClientSettings::Defaults,
        protocol: Protocol::Http1,
        progress: true,
        time_limit: Duration::from_secs(900),
        stop_file: None,
    };
    let (mut out, mut url, mut api_key) = (None, None, None);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--phase" => params.name = value.clone(),
            "--ops" => params.ops = number()?,
            "--concurrency" => {
                params.concurrency = usize::try_from(number()?.max(1)).unwrap_or(usize::MAX)
            }
            "--faults" => params.faults = soak::parse_faults(value)?,
            "--protocol" => params.protocol = Protocol::parse(value)?,
            "--seed" => params.seed = number()?,
            "--time-limit-secs" => params.time_limit = Duration::from_secs(number()?),
            "--stop-file" => params.stop_file = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--url" => url = Some(value.clone()),
            "--api-key" => api_key = Some(value.clone()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Parsed {
        params,
        out,
        url,
        api_key,
    })
}
