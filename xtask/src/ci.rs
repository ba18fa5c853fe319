//! `cargo xtask ci`: the gate every change passes, in the order a newcomer
//! would run it by hand, ending with a quick benchmark run as a smoke test.
//! The tests run with OpenBao installed, a PostgreSQL started and
//! `WORKOS_VAULT_REQUIRE_BAO=1`, `WORKOS_VAULT_REQUIRE_TINYPROXY=1` and
//! `WORKOS_VAULT_REQUIRE_POSTGRES=1` set (as `.ci/run` does), so neither the
//! Transit tests, the proxy tests nor the object store's PostgreSQL half
//! can skip: a missing `bao`, `tinyproxy` or PostgreSQL fails the run.

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
    test.envs(test_env(&bao));
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

/// The environment of `cargo test` in CI: OpenBao's, and the proxy tests
/// required (they need `tinyproxy` on the PATH).
fn test_env(bao: &std::path::Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut env = crate::openbao::test_env(bao).to_vec();
    env.push(("WORKOS_VAULT_REQUIRE_TINYPROXY", "1".into()));
    env
}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`ci` takes no arguments, got {arg:?}"));
    }
    run_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_requires_openbao_and_tinyproxy() {
        let env = test_env(std::path::Path::new("/opt/bao"));
        for required in ["WORKOS_VAULT_REQUIRE_BAO", "WORKOS_VAULT_REQUIRE_TINYPROXY"] {
            assert!(
                env.iter()
                    .any(|(name, value)| *name == required && value == "1"),
                "{required}=1 in {env:?}"
            );
        }
    }
}
