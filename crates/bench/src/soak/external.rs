//! A phase against a server outside this process (`workos-vault serve` over a
//! Raft cluster, say): the same verified load, no fault injection, and
//! afterwards every ciphertext the load produced decrypted again.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::case::Case;
use super::operation::{decrypt_and_judge, Outcome, Vaults};
use super::params::Params;
use super::phase::{client_for, run_load};
use super::report::Report;
use super::retries::install_retry_counter;
use super::tally::{Recheck, Tally};

/// Where the server is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct External {
    /// Its base URL, `http://127.0.0.1:8080` say.
    pub url: String,
    /// One of its API keys.
    pub api_key: String,
}

/// Runs `params.ops` round trips against `server`, recording every
/// operation's [`super::Event`], then decrypts every ciphertext again (the
/// ones whose decrypt failed retryably included): none may be lost.
/// `params.faults` and `params.protocol` do not apply; the server's
/// request counts in the report are zero (not counted).
pub async fn run_external(params: Params, server: External) -> Report {
    install_retry_counter();
    let client = client_for(&server.url, &server.api_key, None, params.client);
    let vaults = Vaults::new(Arc::new(client));
    let mut load = run_load(&params, &vaults, Tally::recording()).await;
    let ciphertexts = std::mem::take(&mut load.tally.rechecks);
    let recheck = recheck_all(&vaults, &params, ciphertexts, &mut load.tally).await;
    Report {
        external: Some(server.url),
        ..load.report(params, recheck)
    }
}

/// Decrypts `ciphertexts` again, `params.concurrency` at a time, each
/// against its own operation's plaintext.
async fn recheck_all(
    vaults: &Vaults,
    params: &Params,
    ciphertexts: Vec<(u64, String)>,
    tally: &mut Tally,
) -> Recheck {
    let mut recheck = Recheck::default();
    let mut tasks = JoinSet::new();
    let mut pending = ciphertexts.into_iter();
    loop {
        while tasks.len() < params.concurrency {
            let Some((index, ciphertext)) = pending.next() else {
                break;
            };
            let (vaults, seed) = (vaults.clone(), params.seed);
            tasks.spawn(async move {
                let case = Case::new(seed, index);
                (index, decrypt_and_judge(&vaults, &case, &ciphertext).await)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((_, Outcome::Ok)) => recheck.ok += 1,
            Ok((index, other)) => {
                recheck.failed += 1;
                tally.example(format!("op {index}: decrypt after the load: {other:?}"));
            }
            Err(error) => {
                recheck.failed += 1;
                tally.example(format!("a decrypt after the load panicked: {error}"));
            }
        }
    }
    recheck
}
