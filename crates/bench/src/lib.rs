//! The measurements behind `cargo xtask bench`, as two binaries that print
//! JSON on stdout, and the soak behind `cargo xtask soak`:
//!
//! - `vault-bench-micro`, with a counting global allocator: `aead` (our
//!   seal and open against raw ring) and `local` (the steps of a local
//!   decrypt, in ns/op and allocations/op). Each prints an array of
//!   [`Measurement`]s.
//! - `vault-bench-net`: `e2e` (encrypt+decrypt pairs through the facade
//!   against a running server), `load` (a keep-alive HTTP/1 load generator
//!   for the server's endpoints) and `cache` (decrypts with and without
//!   `CachingKeyService`, against a server it starts in process). `e2e` and
//!   `load` read one JSON request object on stdin, like the drivers in
//!   `tests/compat/bench/`; `cache` prints [`Measurement`]s.
//! - `vault-bench-soak`: one phase of the soak ([`soak`]): verified
//!   encrypt/decrypt load against a server in process, with or without
//!   injected faults, for `cargo xtask soak`.
//!
//! Comparisons are always made within one run: ours and the baseline
//! alternate, and medians are reported. `cargo xtask bench` builds the first two in
//! release mode, starts the server, runs the peer SDK drivers and writes
//! `target/bench/summary.json`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "measure")]
pub mod slowloris;
#[cfg(feature = "measure")]
pub mod soak;

use serde::{Deserialize, Serialize};

/// One line of `summary.json`.
///
/// `ratio` says how many times better ours is than the baseline, whatever
/// the unit: >= 1.0 means we win. `target` is the least ratio aimed for, or
/// `None` where the figure is only reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// The unit of `ours` and `baseline`.
    pub unit: String,
    /// Our figure.
    pub ours: f64,
    /// The baseline's figure, measured in the same run (or a budget).
    pub baseline: Option<f64>,
    /// What the baseline is.
    pub baseline_name: Option<String>,
    /// How many times better ours is.
    pub ratio: Option<f64>,
    /// The least ratio aimed for.
    pub target: Option<f64>,
}

impl Measurement {
    /// A figure where more is better (throughput): ratio = ours / baseline.
    pub fn higher(name: &str, unit: &str, ours: f64, baseline: f64, baseline_name: &str) -> Self {
        Measurement {
            name: name.to_owned(),
            unit: unit.to_owned(),
            ours,
            baseline: Some(baseline),
            baseline_name: Some(baseline_name.to_owned()),
            ratio: Some(ours / baseline),
            target: None,
        }
    }

    /// A figure where less is better (time, allocations, calls):
    /// ratio = baseline / ours.
    pub fn lower(name: &str, unit: &str, ours: f64, baseline: f64, baseline_name: &str) -> Self {
        Measurement {
            ratio: Some(baseline / ours),
            ..Measurement::higher(name, unit, ours, baseline, baseline_name)
        }
    }

    /// A figure reported on its own.
    pub fn report(name: &str, unit: &str, ours: f64) -> Self {
        Measurement {
            name: name.to_owned(),
            unit: unit.to_owned(),
            ours,
            baseline: None,
            baseline_name: None,
            ratio: None,
            target: None,
        }
    }

    /// Sets the least ratio aimed for.
    #[must_use]
    pub fn target(mut self, target: f64) -> Self {
        self.target = Some(target);
        self
    }

    /// Replaces the ratio, for a median of per-round ratios.
    #[must_use]
    pub fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio);
        self
    }
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaN for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `p`-th percentile (0 to 100) of sorted values, nearest rank; 0 for
/// none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A CA made now and a server certificate for 127.0.0.1 it signed, PEM.
#[cfg(feature = "measure")]
pub struct LoopbackPki {
    /// The CA's certificate: what clients trust.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server certificate's private key.
    pub key_pem: String,
}

#[cfg(feature = "measure")]
impl LoopbackPki {
    /// A fresh CA and certificate.
    pub fn new() -> Result<LoopbackPki, rcgen::Error> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])?
            .signed_by(&leaf_key, &ca, &ca_key)?;
        Ok(LoopbackPki {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }
}

/// The plaintext every benchmark and driver encrypts: `size` bytes of
/// ASCII (`a`..`z`, `0`..`9`, repeating), so it is also valid UTF-8 for
/// the SDKs that take strings. The drivers in `tests/compat/bench/` build
/// the same bytes.
pub fn payload(size: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..size)
        .map(|i| char::from(ALPHABET[i % ALPHABET.len()]))
        .collect()
}

/// The key context every end-to-end benchmark uses.
pub const CONTEXT: (&str, &str) = ("organization_id", "org_bench");

/// The AAD every benchmark passes.
pub const AAD: &str = "user_42";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn ratios_say_how_many_times_better() {
        let faster = Measurement::higher("x", "ops/s", 200.0, 100.0, "them");
        assert_eq!(faster.ratio, Some(2.0));
        let fewer = Measurement::lower("y", "allocs/op", 2.0, 4.0, "before");
        assert_eq!(fewer.ratio, Some(2.0));
        assert_eq!(fewer.target(1.0).target, Some(1.0));
        let json = serde_json::to_value(Measurement::report("z", "us", 5.0)).unwrap();
        assert_eq!(json["baseline"], serde_json::Value::Null);
        assert_eq!(json["ratio"], serde_json::Value::Null);
    }

    #[test]
    fn payload_is_ascii_of_the_asked_size() {
        assert_eq!(payload(0), "");
        assert_eq!(payload(40), "abcdefghijklmnopqrstuvwxyz0123456789abcd");
        assert_eq!(payload(1024).len(), 1024);
    }
}
