//! `cargo xtask bench [--quick]`: builds the benchmark binaries in release
//! mode, installs the pinned peer SDKs, starts `workos-vault serve` in its own
//! process, runs every measurement (ours and each baseline in the same
//! run), writes `target/bench/summary.json` and prints a table.
//!
//! The measuring code lives in the `vault-bench` crate (`crates/bench/`) and in
//! the SDK drivers under `tests/compat/bench/`; this module only
//! orchestrates. `--quick` runs far fewer pairs and rounds (a smoke test,
//! under a minute once built); the full run is what docs/BENCHMARKS.md
//! publishes.

//!
//! Parts, depending one way: this module runs them in order; `e2e`
//! (end to end, server load), `big` (large files) and `transit` (over
//! OpenBao) measure; `plan`, `process` (children, with one kill-on-drop
//! guard) and `summary` (rows and the table) serve them.

mod big;
mod e2e;
mod migrate;
mod plan;
mod process;
mod summary;
mod transit;

use std::fs;

use crate::util::{self, cargo};
use plan::Plan;
use process::measurements;
pub(crate) use process::{run_json, ServerProcess};

/// What `--help` prints.
const DOC: &str = "Builds release binaries, installs the pinned peer SDKs, starts `workos-vault serve`
in its own process and measures, each against its baseline in the same run:
AEAD against raw ring, the local decrypt path (ns and allocations per op),
end to end against @workos-inc/node 11.0.0 and workos 10.8.0 (Python),
caching, server throughput, objects create and read on SQLite and
PostgreSQL (against the data-key route of the same server), and the peak memory and wall time of encrypting
and decrypting a 256 MiB file (against coreutils base64; GNU time measures
memory), and `workos-vault migrate` re-framing a 1 GiB file of 1 KiB ciphertexts
(against `base64 -d | base64 -w0`; peak memory against 64 MiB). Writes
target/bench/summary.json and prints a table.

Options:
  --quick    far fewer pairs and rounds (a smoke test, under a minute once built)
  --transit  only the Transit rows (bao server -dev against the local keyring),
             written to target/bench/transit.json; combines with --quick
  --migrate  only the migrate rows, printed as JSON; combines with --quick
  -h, --help this text
";

/// The command line `--help` and errors show.
const USAGE: &str = "usage: cargo xtask bench [--quick] [--transit] [--migrate]";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--transit" => return transit::run_alone(args),
            "--migrate" => return migrate::run_alone(args),
            "-h" | "--help" => {
                println!("{USAGE}\n\n{}", DOC.trim_end());
                return Ok(());
            }
            other => return Err(format!("{USAGE}: unknown option {other:?}")),
        }
    }
    let plan = Plan::new(quick);
    let root = util::root();
    // Two builds: in one, vault-bench's `test-util` feature of
    // vault-server would be compiled into the `workos-vault` binary measured.
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
        let server = ServerProcess::start(&bin.join("workos-vault"), &out_dir)?;
        eprintln!("bench: end to end against {}", server.url);
        summary.extend(e2e::end_to_end(&root, &net, &server, &plan)?);
        eprintln!("bench: server throughput");
        summary.extend(e2e::server_load(&net, &server, &plan)?);
    }
    eprintln!("bench: objects through workos-vault serve, on SQLite and on PostgreSQL");
    {
        let server = ServerProcess::start(&bin.join("workos-vault"), &out_dir)?;
        summary.extend(e2e::object_load(&net, &server, &plan, "SQLite")?);
    }
    {
        let postgres = crate::postgres::start_durable()?;
        let env = [("WORKOS_VAULT_DATABASE_URL", postgres.url().to_owned())];
        let server = ServerProcess::start_with(&bin.join("workos-vault"), &out_dir, &[], &env)?;
        summary.extend(e2e::object_load(&net, &server, &plan, "PostgreSQL")?);
    }
    eprintln!("bench: caching");
    summary.extend(measurements(&net, &["cache"], plan.flag())?);
    eprintln!("bench: over Transit (bao server -dev), against the local keyring");
    summary.extend(transit::rows(&bin, &out_dir, plan.quick, plan.repeats)?);
    eprintln!("bench: big inputs, against coreutils base64");
    summary.extend(big::big_inputs(&bin.join("workos-vault"), &out_dir, &plan)?);
    eprintln!("bench: migrate re-framing, against coreutils base64");
    summary.extend(migrate::rows(
        &bin.join("workos-vault"),
        &out_dir,
        plan.quick,
        plan.repeats,
    )?);

    let path = out_dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", summary::table(&summary));
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}
