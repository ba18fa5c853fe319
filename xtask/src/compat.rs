//! `cargo xtask compat`: installs the pinned official SDKs (Node 11.0.0,
//! 8.13.0 and 7.47.0, Python 10.8.0, and the Rust crate `workos` 3.5.0
//! behind a driver built outside the workspace) and runs the cross-SDK
//! tests, which start `vault-server` on `127.0.0.1:0` with a temporary
//! keyring and API key.

use crate::util::{self, cargo};

/// Tells the tests where the Rust crate's driver was built.
const RUST_DRIVER_ENV: &str = "WORKOS_VAULT_COMPAT_RUST_DRIVER";

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`compat` takes no arguments, got {arg:?}"));
    }
    let root = util::root();
    crate::compat_install::install(&root)?;
    let rust_driver = crate::compat_install::install_rust_driver(&root)?;
    // The tests compare against what `workos-vault data-key decrypt` prints.
    util::run(cargo(&["build", "-p", "vault-cli"]))?;
    let mut test = cargo(&[
        "test",
        "-p",
        "vault-tests",
        "--test",
        "compat",
        "--",
        "--include-ignored",
    ]);
    test.env(RUST_DRIVER_ENV, rust_driver);
    util::run(test)
}
