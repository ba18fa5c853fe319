//! `vault`: encrypt, decrypt, inspect and serve WorkOS Vault ciphertexts.
//!
//! The backend is chosen by `vault::env::backend_from_env`, as
//! `vault::Vault::from_env` chooses it: WorkOS when `WORKOS_API_KEY` is set,
//! Transit when `WORKOS_VAULT_TRANSIT_KEY` is, otherwise the local keyring. Exit
//! codes are in [`failure`]: 0 success, 1 authentication or decryption
//! failure, 2 usage error or bad input, 3 key service unreachable, 4 local
//! system failure, 5 `migrate` left some
//! records unchanged, 6 object not found, 7 object conflict (name taken,
//! stale version check).

mod cli;
mod failure;
mod io;
mod migrate;
mod object;
mod process;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before anything holds a key: no core dumps, no ptrace attach.
    process::harden();
    process::install_tracing();
    let args = cli::Args::parse();
    if args.output_is_the_result() && process::stdout_was_closed() {
        note("workos-vault: stdout is closed (`>&-`), so the output would be lost; redirect it to a file, or to /dev/null to discard it");
        return ExitCode::from(failure::SYSTEM);
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            note(&format!("workos-vault: {}", failure.message));
            ExitCode::from(failure.code)
        }
    }
}

/// Writes one line to stderr. A diagnostic that cannot be written (stderr
/// closed, on a full disk, a stalled pipe's reader gone) is dropped: it
/// must never turn into a panic or change the exit code.
pub(crate) fn note(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(line.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"));
}
