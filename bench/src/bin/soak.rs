//! `vault-bench-soak`: one soak phase (see `vault_bench::soak`), as
//! `cargo xtask soak` runs it once per phase, in release.
//!
//! ```text
//! vault-bench-soak [--phase NAME] [--ops N] [--concurrency N]
//!                  [--faults none|issue|U,D,T] [--protocol h1|h2] [--seed N]
//!                  [--time-limit-secs N] [--out DIR]
//! ```
//!
//! Defaults: phase `faults`, 50,000 round trips, concurrency 64, the
//! issue's fault mix, HTTP/1.1 (`h2`: HTTPS, HTTP/2 by ALPN), a random
//! seed, 900 s. It prints the phase's summary
//! and, with `--out`, writes `DIR/<phase>.json` and `DIR/<phase>.txt`. It
//! exits with 1 when the phase fails, 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vault_bench::soak::{self, ClientSettings, Params, Protocol};

const USAGE: &str = "usage: vault-bench-soak [--phase NAME] [--ops N] [--concurrency N] \
                     [--faults none|issue|U,D,T] [--protocol h1|h2] [--seed N] \
                     [--time-limit-secs N] [--out DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (params, out) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("vault-bench-soak: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = soak::runtime().block_on(soak::run_phase(params, |_| {}));
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

/// The phase's parameters and the output directory.
fn parse(args: &[String]) -> Result<(Params, Option<PathBuf>), String> {
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
    };
    let mut out = None;
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
            "--out" => out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((params, out))
}
