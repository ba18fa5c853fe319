//! `cargo xtask compat`: installs the pinned official SDKs (Node 11.0.0 and
//! 8.13.0, Python 10.8.0) and runs the cross-SDK tests, which start
//! `vault-server` on `127.0.0.1:0` with a temporary keyring and API key.

use crate::util::{self, cargo};

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`compat` takes no arguments, got {arg:?}"));
    }
    crate::compat_install::install(&util::root())?;
    // The tests compare against what `vault data-key decrypt` prints.
    util::run(cargo(&["build", "-p", "vault-cli"]))?;
    util::run(cargo(&[
        "test",
        "-p",
        "vault-tests",
        "--test",
        "compat",
        "--",
        "--include-ignored",
    ]))
}
