//! One operation: an encrypt/decrypt round trip, and its verdict.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vault::{KeyService, KeyServiceErrorKind as ErrorKind, Layout, Vault};

use super::case::Case;
use super::retries::{epoch_ms, Retries, RETRIES};

/// The key service call of a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Encrypt,
    Decrypt,
}

impl Step {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Encrypt => "encrypt",
            Step::Decrypt => "decrypt",
        }
    }
}

/// How an operation ended: exactly one of these.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Decrypt gave back exactly the plaintext.
    Ok,
    /// A typed error a retry may fix.
    Retryable {
        step: Step,
        kind: ErrorKind,
        status: Option<u16>,
    },
    /// Any other error: a failure.
    NonRetryable { step: Step, error: String },
    /// Decrypt succeeded with other bytes: a failure.
    WrongPlaintext { expected_len: usize, got_len: usize },
}

/// Classifies an error of `step`.
pub(crate) fn judge_error(step: Step, error: &vault::Error) -> Outcome {
    match error {
        vault::Error::KeyService(e) if e.is_retryable() => Outcome::Retryable {
            step,
            kind: e.kind(),
            status: e.status(),
        },
        other => Outcome::NonRetryable {
            step,
            error: format!("{other} ({other:?})"),
        },
    }
}

/// Classifies what decrypt returned against what was encrypted.
pub(crate) fn judge_decrypt(expected: &[u8], got: &Result<Vec<u8>, vault::Error>) -> Outcome {
    match got {
        Ok(bytes) if bytes.as_slice() == expected => Outcome::Ok,
        Ok(bytes) => Outcome::WrongPlaintext {
            expected_len: expected.len(),
            got_len: bytes.len(),
        },
        Err(error) => judge_error(Step::Decrypt, error),
    }
}

/// One operation's result.
#[derive(Debug)]
pub(crate) struct OpReport {
    pub(crate) index: u64,
    pub(crate) outcome: Outcome,
    pub(crate) retries: Retries,
    pub(crate) latency: Duration,
    /// When it started and ended, in milliseconds since the Unix epoch.
    pub(crate) span_ms: (u64, u64),
    /// The ciphertext, when encrypt succeeded.
    pub(crate) ciphertext: Option<String>,
}

/// The vaults an operation picks from by layout; all share one client.
#[derive(Clone)]
pub(crate) struct Vaults {
    by_layout: Arc<[(Layout, Vault)]>,
}

impl Vaults {
    pub(crate) fn new(service: Arc<dyn KeyService>) -> Vaults {
        let by_layout = [Layout::A12, Layout::B, Layout::A32, Layout::APrime]
            .into_iter()
            .map(|layout| {
                let vault = Vault::builder()
                    .shared_key_service(service.clone())
                    .layout(layout)
                    .build()
                    .expect("vault");
                (layout, vault)
            })
            .collect();
        Vaults { by_layout }
    }

    pub(crate) fn get(&self, layout: Layout) -> &Vault {
        &self
            .by_layout
            .iter()
            .find(|(l, _)| *l == layout)
            .expect("a vault per layout")
            .1
    }
}

/// Encrypts and decrypts operation `index`'s case once, handing back the
/// ciphertext (when there is one) to be checked again later.
async fn round_trip(vaults: &Vaults, seed: u64, index: u64) -> (Outcome, Option<String>) {
    let case = Case::new(seed, index);
    let vault = vaults.get(case.layout);
    let ciphertext = match vault
        .encrypt_with(
            &case.plaintext,
            &case.context,
            &vault::EncryptOptions::new().aad(case.aad.as_deref().unwrap_or_default()),
        )
        .await
    {
        Ok(ciphertext) => ciphertext,
        Err(error) => return (judge_error(Step::Encrypt, &error), None),
    };
    let outcome = decrypt_and_judge(vaults, &case, &ciphertext).await;
    (outcome, Some(ciphertext))
}

/// Decrypts `ciphertext` (any vault reads any layout: the default one
/// does) and compares it with the case's plaintext.
pub(crate) async fn decrypt_and_judge(vaults: &Vaults, case: &Case, ciphertext: &str) -> Outcome {
    let got = vaults
        .get(Layout::A12)
        .decrypt_with(
            ciphertext,
            &vault::DecryptOptions::new().aad(case.aad.as_deref().unwrap_or_default()),
        )
        .await;
    judge_decrypt(&case.plaintext, &got)
}

/// Operation `index`, with the retries its calls made.
pub(crate) async fn operation(vaults: Vaults, seed: u64, index: u64) -> OpReport {
    RETRIES
        .scope(RefCell::new(Retries::default()), async move {
            let (start, started_ms) = (Instant::now(), epoch_ms());
            let (outcome, ciphertext) = round_trip(&vaults, seed, index).await;
            let latency = start.elapsed();
            OpReport {
                index,
                outcome,
                retries: RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut())),
                latency,
                span_ms: (started_ms, epoch_ms()),
                ciphertext,
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The judge: the exact bytes pass; other bytes, and errors that are not
    /// retryable key service errors, fail.
    #[test]
    fn the_verification_flags_wrong_plaintexts_and_non_retryable_errors() {
        let expected = Case::new(7, 42).plaintext;
        assert!(matches!(
            judge_decrypt(&expected, &Ok(expected.clone())),
            Outcome::Ok
        ));
        let other = Case::new(7, 43).plaintext;
        if other != expected {
            assert!(matches!(
                judge_decrypt(&expected, &Ok(other)),
                Outcome::WrongPlaintext { .. }
            ));
        }
        let mut flipped = expected.clone();
        flipped.push(0);
        assert!(matches!(
            judge_decrypt(&expected, &Ok(flipped)),
            Outcome::WrongPlaintext { .. }
        ));
        assert!(matches!(
            judge_decrypt(&expected, &Err(vault::Error::Decrypt)),
            Outcome::NonRetryable { .. }
        ));
        let retryable = vault_api::Error::new(ErrorKind::Api, "x").with_status(503);
        assert!(matches!(
            judge_decrypt(&expected, &Err(vault::Error::KeyService(retryable))),
            Outcome::Retryable {
                step: Step::Decrypt,
                kind: ErrorKind::Api,
                status: Some(503)
            }
        ));
        let refused = vault_api::Error::new(ErrorKind::Api, "x").with_status(400);
        assert!(matches!(
            judge_decrypt(&expected, &Err(vault::Error::KeyService(refused))),
            Outcome::NonRetryable { .. }
        ));
    }
}
