//! Load with verification: encrypt/decrypt round trips through the `vault`
//! facade over `HttpKeyService` against `vault-server` (in this process,
//! over a `LocalKeyService` with a temporary keyring file), optionally with
//! server-side fault injection, over HTTP/1.1 or over HTTP/2 with TLS.
//!
//! Every operation derives its plaintext (size and contents), AAD, key
//! context and layout from its index, and checks that decrypting its own
//! ciphertext gives back exactly its own plaintext. Each operation ends in
//! exactly one outcome:
//!
//! - success, on the first attempt of both key service calls or after
//!   retries (counted from the client's "retrying" trace events, checked
//!   against the server's request counters);
//! - a typed, retryable error (`vault::Error::KeyService(e)` with
//!   `e.is_retryable()`): allowed under faults. A ciphertext whose decrypt
//!   failed that way is decrypted again once the faults are cleared;
//! - anything else (a non-retryable error, a wrong plaintext, a panic):
//!   a failure.
//!
//! [`run_external`] runs the same load against a server in another process
//! (`cargo xtask raft`: `workos-vault serve` over an OpenBao cluster that loses
//! its leader), decrypts every ciphertext again afterwards, and records
//! each operation's times ([`Event`]) for the recovery figures.
//!
//! [`run_phase`] runs one phase and returns its [`Report`]. `cargo xtask
//! soak` runs the `vault-bench-soak` binary once per phase, in release; the
//! tests crate's `tests/soak.rs` runs small phases on every `cargo test`.
//!
//! The phase installs a global `tracing` subscriber (to count retries), so
//! a process that runs phases must not install its own.

mod case;
mod external;
mod operation;
mod params;
mod phase;
mod report;
mod retries;
mod tally;

pub use external::{run_external, External};
pub use params::{ClientSettings, Params, Protocol};
pub use phase::run_phase;
pub use report::Report;
pub use retries::epoch_ms;
pub use tally::{Event, Recheck, Tally};

use vault_server::FaultRates;

/// The issue's fault mix: 5% 503, 1% dropped connections, 1% 429 with
/// `Retry-After: 1`.
pub fn issue_faults() -> FaultRates {
    FaultRates::default()
        .with_unavailable(0.05)
        .with_dropped(0.01)
        .with_throttled(0.01)
}

/// `none` (or nothing), `issue` ([`issue_faults`]) or `U,D,T`: the rates
/// of 503, dropped connections and 429.
pub fn parse_faults(text: &str) -> Result<Option<FaultRates>, String> {
    match text.trim() {
        "none" | "" => Ok(None),
        "issue" => Ok(Some(issue_faults())),
        rates => {
            let parts = rates
                .split(',')
                .map(|p| p.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("faults {rates:?}: {e}"))?;
            let [unavailable, dropped, throttled] = parts[..] else {
                return Err(format!("faults {rates:?}: three rates, or none or issue"));
            };
            Ok(Some(
                FaultRates::default()
                    .with_unavailable(unavailable)
                    .with_dropped(dropped)
                    .with_throttled(throttled),
            ))
        }
    }
}

/// A seed from the system's randomness.
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("randomness");
    u64::from_le_bytes(bytes)
}

/// A multi-threaded Tokio runtime with one worker per CPU, for a phase's
/// client and server alike.
pub fn runtime() -> tokio::runtime::Runtime {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_mixes_by_name_or_rates() {
        assert_eq!(parse_faults("none"), Ok(None));
        assert_eq!(parse_faults(" "), Ok(None));
        assert_eq!(parse_faults("issue"), Ok(Some(issue_faults())));
        let rates = parse_faults("0.3, 0.2,0.05").expect("three rates");
        assert_eq!(
            rates,
            Some(
                FaultRates::default()
                    .with_unavailable(0.3)
                    .with_dropped(0.2)
                    .with_throttled(0.05)
            )
        );
        for bad in ["0.1,0.1", "0.1,0.1,0.1,0.1", "x,0,0", "some"] {
            assert!(parse_faults(bad).is_err(), "{bad}");
        }
    }
}
