//! Project Wycheproof AES-GCM vectors through both back ends.
//!
//! Every AES-256 case with a 12-byte IV goes through the ring path (as an
//! A12 envelope), every AES-256 case with a 32-byte IV through the
//! `aes-gcm` path (as an A32 envelope). Other IV sizes are no layout of
//! ours: they are counted as skipped. The AES-GCM file has no
//! "acceptable" cases; one would fail the test so it gets looked at.
//!
//! The file has a single valid AES-256 case with a 32-byte IV, so each
//! valid 32-byte-IV case also yields derived negatives (one bit flipped in
//! the IV, the tag or the ciphertext, or a changed AAD) that must fail.

use vault_crypto::{open, DataKey, Envelope, Layout};
use wycheproof::aead::{TestName, TestSet};
use wycheproof::TestResult;

#[derive(Default)]
struct Counts {
    passed: usize,
    expected: usize,
}

#[test]
fn aes_256_gcm() {
    let set = TestSet::load(TestName::AesGcm).expect("wycheproof AES-GCM vectors load");
    let mut ring_path = Counts::default();
    let mut aes_gcm_path = Counts::default();
    let mut derived = Counts::default();
    let mut skipped = 0;
    let mut failures = Vec::new();
    for group in &set.test_groups {
        if group.key_size != 256 {
            continue;
        }
        let (layout, counts) = match group.nonce_size {
            96 => (Layout::A12, &mut ring_path),
            256 => (Layout::A32, &mut aes_gcm_path),
            _ => {
                skipped += group.tests.len();
                continue;
            }
        };
        for test in &group.tests {
            counts.expected += 1;
            let key = DataKey::from_slice("wycheproof", &test.key).expect("32-byte key");
            let result = Envelope::new(layout, &test.nonce, &test.tag, b"", &test.ct)
                .map_err(vault_crypto::Error::from)
                .and_then(|envelope| open(&key, &envelope, &test.aad));
            let ok = match (&test.result, &result) {
                (TestResult::Valid, Ok(plaintext)) => plaintext[..] == test.pt[..],
                (TestResult::Invalid, Err(_)) => true,
                _ => false,
            };
            if layout == Layout::A32 && test.result == TestResult::Valid {
                for m in mutations(&test.nonce, &test.tag, &test.ct, &test.aad) {
                    derived.expected += 1;
                    let envelope =
                        Envelope::new(layout, &m.iv, &m.tag, b"", &m.ct).expect("sizes kept");
                    match open(&key, &envelope, &m.aad) {
                        Err(vault_crypto::Error::Decrypt) => derived.passed += 1,
                        other => failures.push(format!(
                            "tcId {} with {}: expected Decrypt, got {:?}",
                            test.tc_id,
                            m.what,
                            other.map(|_| "plaintext")
                        )),
                    }
                }
            }
            if ok {
                counts.passed += 1;
            } else {
                failures.push(format!(
                    "tcId {} ({}): expected {:?}, got {:?}",
                    test.tc_id,
                    test.comment,
                    test.result,
                    result.map(|_| "plaintext")
                ));
            }
        }
    }
    println!(
        "wycheproof AES-256-GCM: ring path (12-byte IV) {}/{} passed, \
         aes-gcm path (32-byte IV) {}/{} passed (+{}/{} derived negatives), \
         {} skipped (other IV sizes)",
        ring_path.passed,
        ring_path.expected,
        aes_gcm_path.passed,
        aes_gcm_path.expected,
        derived.passed,
        derived.expected,
        skipped
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert!(ring_path.expected > 0 && aes_gcm_path.expected > 0);
    assert_eq!(ring_path.passed, ring_path.expected);
    assert_eq!(aes_gcm_path.passed, aes_gcm_path.expected);
    assert!(derived.expected > 0);
    assert_eq!(derived.passed, derived.expected);
}

/// A valid case with one change applied.
#[derive(Clone)]
struct Mutant {
    what: String,
    iv: Vec<u8>,
    tag: Vec<u8>,
    ct: Vec<u8>,
    aad: Vec<u8>,
}

/// One-bit flips of every IV, tag and ciphertext byte, and a changed AAD.
fn mutations(iv: &[u8], tag: &[u8], ct: &[u8], aad: &[u8]) -> Vec<Mutant> {
    let base = Mutant {
        what: String::new(),
        iv: iv.to_vec(),
        tag: tag.to_vec(),
        ct: ct.to_vec(),
        aad: aad.to_vec(),
    };
    let mut out = Vec::new();
    for part in ["iv", "tag", "ct"] {
        let len = match part {
            "iv" => iv.len(),
            "tag" => tag.len(),
            _ => ct.len(),
        };
        for i in 0..len {
            let mut m = base.clone();
            let target = match part {
                "iv" => &mut m.iv,
                "tag" => &mut m.tag,
                _ => &mut m.ct,
            };
            target[i] ^= 1 << (i % 8);
            m.what = format!("{part}[{i}] flipped");
            out.push(m);
        }
    }
    let mut m = base;
    m.aad.push(0);
    m.what = "aad extended".to_owned();
    out.push(m);
    out
}
