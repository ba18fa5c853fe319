//! `cargo xtask soak`: encrypt/decrypt round trips under load against
//! `vault-server`, verifying every plaintext, first without faults, then
//! with the issue's fault mix, each over HTTP/1.1 and over HTTP/2 with
//! TLS. The load generator is the `vault-bench-soak`
//! binary (`crates/bench/src/bin/soak.rs`, over `vault_bench::soak`), built in
//! release; each phase runs in its own process, so each has its own peak
//! RSS. Figures go to stdout and to `target/soak/summary.json`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::{self, cargo};

const USAGE: &str = "usage: cargo xtask soak [--ops N] [--concurrency N]
                        [--phase clean|faults|h2-clean|h2-faults|both|all] [--seed N]

Builds vault-bench-soak in release and runs it once per phase (clean: no
faults; faults: 5% 503, 1% dropped connections, 1% 429; both over HTTP/1.1,
and as h2-clean and h2-faults over HTTPS with HTTP/2; both: clean and faults;
all, the default: the four), 50,000 round trips at concurrency 64 by
default, with a random seed unless --seed is given.
Writes target/soak/<phase>.json, <phase>.txt and summary.json.";

/// The load generator, for `cargo build` and `cargo run`.
const SOAK_BIN: [&str; 5] = [
    "--release",
    "--package",
    "vault-bench",
    "--bin",
    "vault-bench-soak",
];

/// A phase: its name, and its `--faults` and `--protocol` for
/// `vault-bench-soak`.
type Phase = (&'static str, &'static str, &'static str);

const PHASES: [Phase; 4] = [
    ("clean", "none", "h1"),
    ("faults", "issue", "h1"),
    ("h2-clean", "none", "h2"),
    ("h2-faults", "issue", "h2"),
];

struct Args {
    ops: u64,
    concurrency: usize,
    phases: Vec<Phase>,
    seed: Option<u64>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        ops: 50_000,
        concurrency: 64,
        phases: PHASES.to_vec(),
        seed: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |text: &String| {
            text.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {text:?} is not a positive number\n{USAGE}"))
        };
        match flag.as_str() {
            "--ops" => parsed.ops = number(value()?)?,
            "--concurrency" => {
                parsed.concurrency =
                    usize::try_from(number(value()?)?).map_err(|e| e.to_string())?
            }
            "--seed" => {
                let text = value()?;
                parsed.seed = Some(
                    text.parse()
                        .map_err(|_| format!("--seed: {text:?} is not a number"))?,
                );
            }
            "--phase" => {
                parsed.phases = match value()?.as_str() {
                    "both" => PHASES[..2].to_vec(),
                    "all" => PHASES.to_vec(),
                    name => match PHASES.iter().find(|phase| phase.0 == name) {
                        Some(phase) => vec![*phase],
                        None => return Err(format!("--phase: unknown phase {name:?}\n{USAGE}")),
                    },
                }
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = parse(args)?;
    let out = util::root().join("target").join("soak");
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (name, _, _) in PHASES {
        for ext in ["json", "txt"] {
            let _ = fs::remove_file(out.join(format!("{name}.{ext}")));
        }
    }

    let mut build = cargo(&["build"]);
    build.args(SOAK_BIN);
    util::run(build)?;

    let mut failed = Vec::new();
    for phase in &args.phases {
        let name = phase.0;
        if let Err(error) = util::run(phase_command(phase, &args, &out)) {
            failed.push(format!("phase {name}: {error}"));
        }
    }

    let summary = summarize(&out, &args)?;
    println!("\n{summary}");
    println!("written to {}", out.join("summary.json").display());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// `cargo run` of one phase, writing its `<name>.json` and `<name>.txt`
/// into `out`.
fn phase_command(&(name, faults, protocol): &Phase, args: &Args, out: &Path) -> Command {
    let mut command = cargo(&["run", "--quiet"]);
    command.args(SOAK_BIN).arg("--").args([
        "--phase",
        name,
        "--faults",
        faults,
        "--protocol",
        protocol,
        "--ops",
        &args.ops.to_string(),
        "--concurrency",
        &args.concurrency.to_string(),
    ]);
    command.arg("--out").arg(out);
    if let Some(seed) = args.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    command
}

/// Joins the phases' JSON into `summary.json`, and returns their text.
fn summarize(out: &Path, args: &Args) -> Result<String, String> {
    let mut phases = Vec::new();
    let mut text = String::new();
    for (name, _, _) in &args.phases {
        match fs::read_to_string(out.join(format!("{name}.json"))) {
            Ok(json) => phases.push(format!("\"{name}\": {}", json.trim())),
            Err(_) => phases.push(format!("\"{name}\": null")),
        }
        match fs::read_to_string(out.join(format!("{name}.txt"))) {
            Ok(summary) => text.push_str(&summary),
            Err(_) => text.push_str(&format!(
                "soak phase {name:?}: no summary (it did not finish)\n"
            )),
        }
    }
    let json = format!(
        "{{\n\"ops\": {},\n\"concurrency\": {},\n\"phases\": {{\n{}\n}}\n}}\n",
        args.ops,
        args.concurrency,
        phases.join(",\n")
    );
    let path = out.join("summary.json");
    fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<Args, String> {
        let args: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn defaults_are_the_issues_numbers() {
        let parsed = args("").unwrap();
        assert_eq!((parsed.ops, parsed.concurrency), (50_000, 64));
        assert_eq!(parsed.phases, PHASES.to_vec());
        assert_eq!(parsed.seed, None);
    }

    #[test]
    fn flags_and_their_errors() {
        let parsed = args("--ops 500 --concurrency 16 --phase faults --seed 7").unwrap();
        assert_eq!((parsed.ops, parsed.concurrency), (500, 16));
        assert_eq!(parsed.phases, vec![PHASES[1]]);
        assert_eq!(parsed.seed, Some(7));
        assert_eq!(args("--phase h2-faults").unwrap().phases, vec![PHASES[3]]);
        assert_eq!(args("--phase both").unwrap().phases, PHASES[..2].to_vec());
        for bad in [
            "--ops",
            "--ops 0",
            "--ops x",
            "--phase warm",
            "--concurrency -1",
            "--fast",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
