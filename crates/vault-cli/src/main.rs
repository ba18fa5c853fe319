//! `vault`: encrypt, decrypt, inspect and serve WorkOS Vault ciphertexts.
//!
//! The backend is chosen like `vault::Vault::from_env`: WorkOS when
//! `WORKOS_API_KEY` is set, otherwise the local keyring. Exit codes are in
//! [`failure`]: 0 success, 1 authentication or decryption failure, 2 usage
//! error or bad input, 3 key service unreachable, 4 local system failure,
//! 5 object not found, 6 object conflict (name taken, stale version check).

mod cli;
mod failure;
mod io;
mod object;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("vault: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
