//! `cargo xtask ci`: the gate every change passes, in the order a newcomer
//! would run it by hand, ending with a quick benchmark run as a smoke test.
//! The tests run with OpenBao installed and a PostgreSQL started, so neither
//! the Transit tests nor the object store's PostgreSQL half can skip.

use crate::util::{self, cargo};

pub fn run_all() -> Result<(), String> {
    util::run(cargo(&["fmt", "--all", "--check"]))?;
    util::run(cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The Transit tests run against a real OpenBao, required here.
    let bao = crate::openbao::install()?;
    let postgres = crate::postgres::start()?;
    let mut test = cargo(&["test", "--workspace"]);
    test.envs(crate::openbao::test_env(&bao));
    test.envs(postgres.test_env());
    util::run(test)?;
    drop(postgres);
    let mut doc = cargo(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    util::run(doc)?;
    crate::compat::run(&[])?;
    // A smoke run: checks that every benchmark works, asserts no timings.
    crate::bench::run(&["--quick".to_owned()])
}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`ci` takes no arguments, got {arg:?}"));
    }
    run_all()
}
