//! The soak's small versions, on every `cargo test`: verified
//! encrypt/decrypt load against `vault-server` in this process, with the
//! harness of `vault_bench::soak` (whose own tests check its verdicts).
//! `cargo xtask soak` runs the full phases, in release.

use std::time::Duration;

use vault_bench::soak::{self, ClientSettings, Params, Protocol};

/// The issue's fault mix, plus one of each fault armed up front so every
/// kind is met at least once.
#[test]
fn soak_smoke_with_faults() {
    let params = Params {
        stop_file: None,
        name: "smoke".to_owned(),
        ops: 500,
        concurrency: 16,
        faults: Some(soak::issue_faults()),
        seed: soak::random_seed(),
        client: ClientSettings::Quick,
        protocol: Protocol::Http1,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = soak::runtime().block_on(soak::run_phase(params, |faults| {
        faults.fail_next(1, 503, None);
        faults.drop_next(1);
        faults.fail_next(1, 429, Some("1"));
    }));
    let text = report.text();
    println!("{text}");
    assert!(report.failures().is_empty(), "{text}");
    let t = &report.tally;
    assert_eq!(t.completed, 500, "{text}");
    assert_eq!(
        t.ok_first_try + t.ok_after_retries + t.failed_retryable_total,
        500,
        "{text}"
    );
    assert!(t.ok_after_retries > 0, "{text}");
    for cause in ["503", "429", "Connect"] {
        assert!(t.retries_by_cause.contains_key(cause), "{cause}: {text}");
    }
}

/// The same load without faults: no retries, nothing fails.
#[test]
fn soak_smoke_without_faults() {
    let params = Params {
        stop_file: None,
        name: "smoke-clean".to_owned(),
        ops: 200,
        concurrency: 16,
        faults: None,
        seed: soak::random_seed(),
        client: ClientSettings::Quick,
        protocol: Protocol::Http1,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = soak::runtime().block_on(soak::run_phase(params, |_| {}));
    let text = report.text();
    assert!(report.failures().is_empty(), "{text}");
    assert_eq!(report.tally.ok_first_try, 200, "{text}");
    assert_eq!(report.server_total, 400, "{text}");
}

/// The fault mix over HTTPS, where ALPN picks HTTP/2: the same verdicts,
/// and every request the server saw arrived over HTTP/2.
#[test]
fn soak_smoke_over_h2_with_faults() {
    let params = Params {
        stop_file: None,
        name: "smoke-h2".to_owned(),
        ops: 300,
        concurrency: 16,
        faults: Some(soak::issue_faults()),
        seed: soak::random_seed(),
        client: ClientSettings::Quick,
        protocol: Protocol::H2,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = soak::runtime().block_on(soak::run_phase(params, |faults| {
        faults.drop_next(1);
    }));
    let text = report.text();
    println!("{text}");
    assert!(report.failures().is_empty(), "{text}");
    assert_eq!(report.tally.completed, 300, "{text}");
    assert_eq!(report.tally.wrong_plaintexts, 0, "{text}");
    assert_eq!(report.server_h2, Some(report.server_total), "{text}");
    assert!(
        report.tally.retries_by_cause.contains_key("Connect"),
        "{text}"
    );
}

#[test]
fn a_stop_file_ends_a_time_bound_load() {
    // The file exists from the start: not one of the million round trips
    // begins, and the phase ends at once instead of running them all.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stop_file = dir.path().join("stop");
    std::fs::write(&stop_file, "").expect("write the stop file");
    let params = Params {
        stop_file: Some(stop_file),
        name: "stopped".to_owned(),
        ops: 1_000_000,
        concurrency: 4,
        faults: None,
        seed: 1,
        client: ClientSettings::Quick,
        protocol: Protocol::Http1,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = soak::runtime().block_on(soak::run_phase(params, |_| {}));
    assert!(!report.hung, "{}", report.text());
    assert!(report.tally.completed < 1_000_000, "{}", report.text());
    assert!(report.text().contains("time-bound"), "{}", report.text());
}
