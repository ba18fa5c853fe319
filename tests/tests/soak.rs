//! Load with verification: encrypt/decrypt round trips through the `vault`
//! facade over `HttpKeyService` against `vault-server` (in this process,
//! over a `LocalKeyService` with a temporary keyring file), optionally with
//! server-side fault injection.
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
//! `cargo xtask soak` runs [`soak_phase`] (ignored here) in release with
//! the parameters in `VAULT_SOAK_*` variables. [`soak_smoke_with_faults`]
//! is the small version that every `cargo test` runs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vault::{ErrorKind, HttpKeyService, KeyContext, KeyService, Layout, LocalKeyService, Vault};
use vault_server::{FaultRates, Faults, Server, ServerConfig};
use vault_tests::API_KEY;

const DATA_KEY: &str = vault_api::wire::DATA_KEY_PATH;
const DECRYPT: &str = vault_api::wire::DECRYPT_PATH;

/// The issue's fault mix: 5% 503, 1% dropped connections, 1% 429 with
/// `Retry-After: 1`.
const ISSUE_FAULTS: (f64, f64, f64) = (0.05, 0.01, 0.01);

// ---------------------------------------------------------------------
// What each operation encrypts
// ---------------------------------------------------------------------

/// SplitMix64: a small, fast, well-mixed generator for test data.
struct Mix(u64);

impl Mix {
    fn new(seed: u64, index: u64) -> Mix {
        let mut mix = Mix(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        mix.next();
        mix
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> usize {
        usize::try_from(low + self.next() % (high - low + 1)).expect("fits in usize")
    }
}

/// Operation `index`'s inputs, a pure function of the run's seed and the
/// index, so the expected plaintext can be rebuilt at any time.
struct Case {
    plaintext: Vec<u8>,
    aad: Option<Vec<u8>>,
    context: KeyContext,
    layout: Layout,
}

impl Case {
    fn new(seed: u64, index: u64) -> Case {
        let mut mix = Mix::new(seed, index);
        // Mostly small, some kilobytes, a few up to 256 KiB; 5% empty.
        let len = match mix.next() % 100 {
            0..5 => 0,
            5..60 => mix.between(1, 256),
            60..90 => mix.between(257, 4096),
            90..99 => mix.between(4097, 64 << 10),
            _ => mix.between((64 << 10) + 1, 256 << 10),
        };
        let mut plaintext = match mix.next() % 4 {
            0 => {
                let mut bytes = Vec::with_capacity(len + 8);
                while bytes.len() < len {
                    bytes.extend_from_slice(&mix.next().to_le_bytes());
                }
                bytes
            }
            1 => format!("op {index}: ünïcödé 🔐 \0 ")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(len)
                .collect(),
            2 => vec![0; len],
            _ => vec![(mix.next() & 0xff) as u8; len],
        };
        plaintext.truncate(len);
        // Stamp the index so two operations never share a plaintext of 8
        // bytes or more.
        if len >= 8 {
            plaintext[..8].copy_from_slice(&index.to_le_bytes());
        }

        let aad = match mix.next() % 6 {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(format!("record/{index}/ü🔑").into_bytes()),
            _ => Some(format!("record:{index}:{}", "x".repeat(mix.between(0, 64))).into_bytes()),
        };

        let mut context = KeyContext::new()
            .with("organization_id", format!("org_{}", index % 997))
            .expect("valid context");
        if mix.next().is_multiple_of(3) {
            context = context
                .with("tenant", format!("tenant-{}", index % 13))
                .expect("valid context");
        }
        if mix.next().is_multiple_of(5) {
            context = context.with("purpose", "soak ✓").expect("valid context");
        }

        let layout = match index % 8 {
            5 => Layout::B,
            6 => Layout::A32,
            7 => Layout::APrime,
            _ => Layout::A12,
        };
        Case {
            plaintext,
            aad,
            context,
            layout,
        }
    }
}

// ---------------------------------------------------------------------
// Counting retries per operation
// ---------------------------------------------------------------------

/// The retries one operation's key service calls made, and why.
#[derive(Debug, Default)]
struct Retries {
    count: u32,
    /// "503", "429", "Connect", ...: the status, or else the error kind.
    causes: Vec<String>,
}

tokio::task_local! {
    static RETRIES: RefCell<Retries>;
}

/// A `tracing` subscriber that sees only `HttpKeyService`'s "retrying the
/// key service call" events (the only ones with a `wait_ms` field) and
/// charges each to the operation whose task emitted it.
struct RetryCounter;

fn is_retry_event(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_event()
        && metadata.target().starts_with("vault_api")
        && metadata.fields().field("wait_ms").is_some()
}

#[derive(Default)]
struct Cause {
    status: Option<u64>,
    kind: Option<String>,
}

impl tracing::field::Visit for Cause {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kind" {
            self.kind = Some(format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for RetryCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if is_retry_event(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        is_retry_event(metadata)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut cause = Cause::default();
        event.record(&mut cause);
        let cause = match (cause.status, cause.kind) {
            (Some(status), _) => status.to_string(),
            (None, Some(kind)) => kind,
            (None, None) => "unknown".to_owned(),
        };
        // Outside an operation (no task-local), there is nobody to charge.
        let _ = RETRIES.try_with(|retries| {
            let mut retries = retries.borrow_mut();
            retries.count += 1;
            retries.causes.push(cause);
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

fn install_retry_counter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(RetryCounter)
            .expect("no other global tracing subscriber in the soak tests");
    });
}

// ---------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Encrypt,
    Decrypt,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Encrypt => "encrypt",
            Step::Decrypt => "decrypt",
        }
    }
}

#[derive(Debug)]
enum Outcome {
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
fn judge_error(step: Step, error: &vault::Error) -> Outcome {
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
fn judge_decrypt(expected: &[u8], got: &Result<Vec<u8>, vault::Error>) -> Outcome {
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
struct OpReport {
    index: u64,
    outcome: Outcome,
    retries: Retries,
    latency: Duration,
    /// The ciphertext, when its decrypt failed with a retryable error.
    recheck: Option<String>,
}

/// The vaults an operation picks from by layout; all share one client.
#[derive(Clone)]
struct Vaults {
    by_layout: Arc<[(Layout, Vault)]>,
}

impl Vaults {
    fn new(service: Arc<dyn KeyService>) -> Vaults {
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

    fn get(&self, layout: Layout) -> &Vault {
        &self
            .by_layout
            .iter()
            .find(|(l, _)| *l == layout)
            .expect("a vault per layout")
            .1
    }
}

/// Encrypts and decrypts operation `index`'s case once. A retryable
/// decrypt failure hands back the ciphertext, to be checked again later.
async fn round_trip(vaults: &Vaults, seed: u64, index: u64) -> (Outcome, Option<String>) {
    let case = Case::new(seed, index);
    let vault = vaults.get(case.layout);
    let ciphertext = match vault
        .encrypt(&case.plaintext, &case.context, case.aad.as_deref())
        .await
    {
        Ok(ciphertext) => ciphertext,
        Err(error) => return (judge_error(Step::Encrypt, &error), None),
    };
    let outcome = decrypt_and_judge(vaults, &case, &ciphertext).await;
    let recheck = matches!(outcome, Outcome::Retryable { .. }).then_some(ciphertext);
    (outcome, recheck)
}

/// Decrypts `ciphertext` (any vault reads any layout: the default one
/// does) and compares it with the case's plaintext.
async fn decrypt_and_judge(vaults: &Vaults, case: &Case, ciphertext: &str) -> Outcome {
    let got = vaults
        .get(Layout::A12)
        .decrypt(ciphertext, case.aad.as_deref())
        .await;
    judge_decrypt(&case.plaintext, &got)
}

async fn operation(vaults: Vaults, seed: u64, index: u64) -> OpReport {
    RETRIES
        .scope(RefCell::new(Retries::default()), async move {
            let start = Instant::now();
            let (outcome, recheck) = round_trip(&vaults, seed, index).await;
            let latency = start.elapsed();
            OpReport {
                index,
                outcome,
                retries: RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut())),
                latency,
                recheck,
            }
        })
        .await
}

// ---------------------------------------------------------------------
// A phase
// ---------------------------------------------------------------------

/// How the client retries.
#[derive(Debug, Clone, Copy)]
enum ClientSettings {
    /// `HttpKeyService`'s defaults: what users get.
    Defaults,
    /// A 1-10 ms backoff, for quick tests (`Retry-After` still applies).
    Quick,
}

#[derive(Debug, Clone)]
struct Params {
    name: String,
    ops: u64,
    concurrency: usize,
    faults: Option<FaultRates>,
    seed: u64,
    client: ClientSettings,
    /// Report progress on stderr every few seconds.
    progress: bool,
    /// The load must finish within this, or the phase counts as hung.
    time_limit: Duration,
}

/// Everything a phase counted.
#[derive(Debug, Default)]
struct Tally {
    completed: u64,
    ok_first_try: u64,
    ok_after_retries: u64,
    /// Operations by the number of retries they needed (successful or not).
    retries_histogram: BTreeMap<u32, u64>,
    retries_by_cause: BTreeMap<String, u64>,
    total_retries: u64,
    /// "decrypt Api 503" -> count.
    failed_retryable: BTreeMap<String, u64>,
    failed_retryable_total: u64,
    non_retryable: u64,
    wrong_plaintexts: u64,
    panics: u64,
    /// The first few failures, for the report.
    failure_examples: Vec<String>,
    /// Key service calls made (one per encrypt, one per decrypt).
    calls: u64,
    latencies: Histogram,
    rechecks: Vec<(u64, String)>,
}

const MAX_EXAMPLES: usize = 10;

impl Tally {
    fn example(&mut self, text: String) {
        if self.failure_examples.len() < MAX_EXAMPLES {
            self.failure_examples.push(text);
        }
    }

    fn add(&mut self, report: OpReport) {
        self.completed += 1;
        self.latencies.record(report.latency);
        let retries = report.retries.count;
        *self.retries_histogram.entry(retries).or_default() += 1;
        self.total_retries += u64::from(retries);
        for cause in report.retries.causes {
            *self.retries_by_cause.entry(cause).or_default() += 1;
        }
        // Encrypt always calls the key service; decrypt does unless encrypt
        // failed.
        self.calls += match report.outcome {
            Outcome::Retryable {
                step: Step::Encrypt,
                ..
            }
            | Outcome::NonRetryable {
                step: Step::Encrypt,
                ..
            } => 1,
            _ => 2,
        };
        match report.outcome {
            Outcome::Ok if retries == 0 => self.ok_first_try += 1,
            Outcome::Ok => self.ok_after_retries += 1,
            Outcome::Retryable { step, kind, status } => {
                let status = status.map(|s| format!(" {s}")).unwrap_or_default();
                let key = format!("{} {kind:?}{status}", step.name());
                *self.failed_retryable.entry(key).or_default() += 1;
                self.failed_retryable_total += 1;
                if let Some(ciphertext) = report.recheck {
                    self.rechecks.push((report.index, ciphertext));
                }
            }
            Outcome::NonRetryable { step, error } => {
                self.non_retryable += 1;
                self.example(format!(
                    "op {}: {} failed, not retryable: {error}",
                    report.index,
                    step.name()
                ));
            }
            Outcome::WrongPlaintext {
                expected_len,
                got_len,
            } => {
                self.wrong_plaintexts += 1;
                self.example(format!(
                    "op {}: WRONG PLAINTEXT ({got_len} bytes back, {expected_len} expected)",
                    report.index
                ));
            }
        }
    }
}

/// Latencies in microseconds, in fixed memory (so the harness's own
/// memory does not grow with the number of operations): exact below 128
/// µs, then 64 buckets per power of two (within 1.6%).
#[derive(Debug)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

const LINEAR: u64 = 128;
const SUB_BUCKETS: u64 = 64;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; Histogram::bucket(u64::MAX) + 1],
            total: 0,
        }
    }
}

impl Histogram {
    fn bucket(micros: u64) -> usize {
        let index = if micros < LINEAR {
            micros
        } else {
            let exponent = u64::from(63 - micros.leading_zeros());
            let shift = exponent - SUB_BUCKETS.trailing_zeros() as u64;
            LINEAR + (exponent - 7) * SUB_BUCKETS + ((micros >> shift) & (SUB_BUCKETS - 1))
        };
        usize::try_from(index).expect("a small index")
    }

    /// The smallest value of bucket `index`.
    fn floor(index: usize) -> u64 {
        let index = index as u64;
        if index < LINEAR {
            return index;
        }
        let exponent = (index - LINEAR) / SUB_BUCKETS + 7;
        let sub = (index - LINEAR) % SUB_BUCKETS;
        let shift = exponent - SUB_BUCKETS.trailing_zeros() as u64;
        (1 << exponent) | (sub << shift)
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[Histogram::bucket(micros)] += 1;
        self.total += 1;
    }

    /// The latency at fraction `p` (0.0 to 1.0), to the bucket's floor.
    fn percentile(&self, p: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64 * p).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(Histogram::floor(index));
            }
        }
        Duration::MAX
    }
}

/// After the load, with faults cleared: decrypts of the ciphertexts whose
/// decrypt had failed retryably.
#[derive(Debug, Default)]
struct Recheck {
    ok: u64,
    failed: u64,
}

/// A phase's figures and verdict.
#[derive(Debug)]
struct Report {
    params: Params,
    tally: Tally,
    recheck: Recheck,
    elapsed: Duration,
    hung: bool,
    /// Requests the server saw, by endpoint.
    server_data_key: usize,
    server_decrypt: usize,
    server_total: usize,
    vm_hwm_kib: Option<u64>,
    /// VmRSS after a quarter, half, three quarters and all of the load.
    rss_samples_kib: Vec<(u64, Option<u64>)>,
}

impl Report {
    fn ops_per_sec(&self) -> f64 {
        self.tally.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        self.tally.latencies.percentile(p).as_secs_f64() * 1000.0
    }

    /// Attempts the client made, from its own trace: one per call plus
    /// one per retry.
    fn client_attempts(&self) -> u64 {
        self.tally.calls + self.tally.total_retries
    }

    /// Attempts the server never counted: written to a connection that
    /// was reset before the server read the request.
    fn unseen_attempts(&self) -> u64 {
        self.client_attempts()
            .saturating_sub(self.server_total as u64)
    }

    /// Everything that makes the phase fail.
    fn failures(&self) -> Vec<String> {
        let t = &self.tally;
        let mut failures = Vec::new();
        if self.hung {
            failures.push(format!(
                "the load did not finish within {:?}: {} of {} operations completed",
                self.params.time_limit, t.completed, self.params.ops
            ));
        }
        if t.wrong_plaintexts > 0 {
            failures.push(format!("{} wrong plaintexts", t.wrong_plaintexts));
        }
        if t.non_retryable > 0 {
            failures.push(format!("{} non-retryable errors", t.non_retryable));
        }
        if t.panics > 0 {
            failures.push(format!("{} operations panicked", t.panics));
        }
        if self.params.faults.is_none() && (t.failed_retryable_total > 0 || t.total_retries > 0) {
            failures.push(format!(
                "without faults, {} retries and {} failed operations",
                t.total_retries, t.failed_retryable_total
            ));
        }
        if self.recheck.failed > 0 {
            failures.push(format!(
                "{} ciphertexts did not decrypt once the faults were cleared",
                self.recheck.failed
            ));
        }
        // Fewer requests than attempts is possible: a request written to a
        // connection the server was closing is reset unread (and retried).
        // More would be requests the client sent without knowing.
        if !self.hung && self.server_total as u64 > self.client_attempts() {
            failures.push(format!(
                "the server saw {} requests, more than the client's {} attempts",
                self.server_total,
                self.client_attempts()
            ));
        }
        failures.extend(t.failure_examples.iter().cloned());
        failures
    }

    fn faults_text(&self) -> String {
        match self.params.faults {
            None => "no faults".to_owned(),
            Some(rates) => format!(
                "faults: 503 {}%, dropped connections {}%, 429 with Retry-After: 1 {}%",
                rates.unavailable * 100.0,
                rates.dropped * 100.0,
                rates.throttled * 100.0
            ),
        }
    }

    fn text(&self) -> String {
        let t = &self.tally;
        let mib = |kib: Option<u64>| match kib {
            Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
            None => "n/a".to_owned(),
        };
        let map = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let histogram = t
            .retries_histogram
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rss = self
            .rss_samples_kib
            .iter()
            .map(|(done, kib)| format!("{done} ops {}", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", ");
        let failures = self.failures();
        let verdict = if failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL\n    {}", failures.join("\n    "))
        };
        format!(
            "soak phase {name:?}: {ops} round trips at concurrency {conc}, {faults} (seed {seed})\n\
             \x20 {done} completed in {secs:.1} s: {rate:.0} ops/s; latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms\n\
             \x20 peak RSS (VmHWM, server in-process): {hwm}; VmRSS at {rss}\n\
             \x20 outcomes: {first} ok first try, {after} ok after retries, {retryable} failed with retryable errors, \
             {nonretryable} non-retryable errors, {wrong} wrong plaintexts, {panics} panics\n\
             \x20 retries per op: {histogram}\n\
             \x20 retries by cause: {causes}\n\
             \x20 failed retryable: {failed}\n\
             \x20 rechecked after faults cleared: {rok} of {rtotal} decrypted correctly\n\
             \x20 server requests: data-key {sdk}, decrypt {sdec}, total {stotal}; client: {calls} calls + {retries} retries = {attempts} attempts \
             ({unseen} never reached the server)\n\
             \x20 verdict: {verdict}",
            name = self.params.name,
            ops = self.params.ops,
            conc = self.params.concurrency,
            faults = self.faults_text(),
            seed = self.params.seed,
            done = t.completed,
            secs = self.elapsed.as_secs_f64(),
            rate = self.ops_per_sec(),
            p50 = self.percentile_ms(0.5),
            p99 = self.percentile_ms(0.99),
            max = self.percentile_ms(1.0),
            hwm = mib(self.vm_hwm_kib),
            first = t.ok_first_try,
            after = t.ok_after_retries,
            retryable = t.failed_retryable_total,
            nonretryable = t.non_retryable,
            wrong = t.wrong_plaintexts,
            panics = t.panics,
            causes = map(&t.retries_by_cause),
            failed = map(&t.failed_retryable),
            rok = self.recheck.ok,
            rtotal = self.recheck.ok + self.recheck.failed,
            sdk = self.server_data_key,
            sdec = self.server_decrypt,
            stotal = self.server_total,
            calls = t.calls,
            retries = t.total_retries,
            attempts = self.client_attempts(),
            unseen = self.unseen_attempts(),
        )
    }

    fn json(&self) -> serde_json::Value {
        let t = &self.tally;
        serde_json::json!({
            "phase": self.params.name,
            "ops": self.params.ops,
            "concurrency": self.params.concurrency,
            "faults": self.params.faults.map(|r| serde_json::json!({
                "unavailable_503": r.unavailable,
                "dropped": r.dropped,
                "throttled_429_retry_after_1": r.throttled,
            })),
            "seed": self.params.seed,
            "server": "in-process",
            "cpu": cpu_model(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "completed": t.completed,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "ops_per_sec": self.ops_per_sec(),
            "latency_ms": {
                "p50": self.percentile_ms(0.5),
                "p99": self.percentile_ms(0.99),
                "max": self.percentile_ms(1.0),
            },
            "peak_rss_kib": self.vm_hwm_kib,
            "rss_samples_kib": self.rss_samples_kib.iter()
                .map(|(done, kib)| serde_json::json!({"completed": done, "vm_rss_kib": kib}))
                .collect::<Vec<_>>(),
            "outcomes": {
                "ok_first_try": t.ok_first_try,
                "ok_after_retries": t.ok_after_retries,
                "failed_retryable": t.failed_retryable_total,
                "failed_retryable_by_kind": t.failed_retryable,
                "non_retryable": t.non_retryable,
                "wrong_plaintexts": t.wrong_plaintexts,
                "panics": t.panics,
            },
            "retries": {
                "total": t.total_retries,
                "per_op_histogram": t.retries_histogram.iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect::<BTreeMap<_, _>>(),
                "by_cause": t.retries_by_cause,
            },
            "recheck_after_faults_cleared": {
                "ok": self.recheck.ok,
                "failed": self.recheck.failed,
            },
            "requests": {
                "server_data_key": self.server_data_key,
                "server_decrypt": self.server_decrypt,
                "server_total": self.server_total,
                "client_calls": t.calls,
                "client_attempts": self.client_attempts(),
                "attempts_not_seen_by_server": self.unseen_attempts(),
            },
            "hung": self.hung,
            "failures": self.failures(),
            "pass": self.failures().is_empty(),
        })
    }
}

/// A `kB` field of `/proc/self/status` (Linux only).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "model name").then(|| value.trim().to_owned())
    })
}

fn client(server: &Server, settings: ClientSettings) -> HttpKeyService {
    let builder = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(server.url());
    let builder = match settings {
        ClientSettings::Defaults => builder,
        ClientSettings::Quick => builder
            .backoff(Duration::from_millis(1), Duration::from_millis(10))
            .timeout(Duration::from_secs(10))
            .deadline(Duration::from_secs(30)),
    };
    builder.build().expect("client")
}

/// A server over a temporary keyring file, with a fault handle.
async fn start_server(keyring: &std::path::Path) -> (Server, Faults) {
    let service: Arc<dyn KeyService> =
        Arc::new(LocalKeyService::open(keyring).expect("a keyring file"));
    let faults = Faults::new();
    let config = ServerConfig::new().api_key(API_KEY).faults(faults.clone());
    let server = Server::bind("127.0.0.1:0".parse().expect("address"), service, config)
        .await
        .expect("bind the server");
    (server, faults)
}

/// Decrypts again, once the faults are cleared, the ciphertexts whose
/// decrypt failed with a retryable error: none may be lost.
async fn recheck(
    vaults: &Vaults,
    seed: u64,
    ciphertexts: Vec<(u64, String)>,
    tally: &mut Tally,
) -> Recheck {
    let mut recheck = Recheck::default();
    for (index, ciphertext) in ciphertexts {
        match decrypt_and_judge(vaults, &Case::new(seed, index), &ciphertext).await {
            Outcome::Ok => recheck.ok += 1,
            other => {
                recheck.failed += 1;
                tally.example(format!("op {index}: recheck after faults: {other:?}"));
            }
        }
    }
    recheck
}

/// Runs `params.ops` round trips; `arm` may arm one-shot faults first.
async fn run_phase(params: Params, arm: impl FnOnce(&Faults)) -> Report {
    install_retry_counter();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (server, faults) = start_server(&dir.path().join("keyring.json")).await;
    let vaults = Vaults::new(Arc::new(client(&server, params.client)));
    if let Some(rates) = params.faults {
        faults.set_rates(rates);
    }
    arm(&faults);

    let completed = Arc::new(AtomicU64::new(0));
    let progress = params.progress.then(|| {
        let completed = completed.clone();
        let ops = params.ops;
        tokio::spawn(async move {
            let start = Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_secs(5));
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let done = completed.load(Ordering::Relaxed);
                eprintln!(
                    "soak: {done}/{ops} after {:.0} s, VmRSS {} kB",
                    start.elapsed().as_secs_f64(),
                    proc_status_kib("VmRSS").unwrap_or(0)
                );
            }
        })
    });

    let start = Instant::now();
    let mut tally = Tally::default();
    let mut rss_samples = Vec::new();
    let milestones: Vec<u64> = (1..=4).map(|q| params.ops * q / 4).collect();
    let load = async {
        let mut tasks = JoinSet::new();
        let mut next = 0u64;
        while next < params.ops || !tasks.is_empty() {
            while next < params.ops && tasks.len() < params.concurrency {
                tasks.spawn(operation(vaults.clone(), params.seed, next));
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok(report) => tally.add(report),
                Err(error) => {
                    tally.completed += 1;
                    tally.panics += 1;
                    tally.example(format!("an operation panicked: {error}"));
                }
            }
            let done = completed.fetch_add(1, Ordering::Relaxed) + 1;
            if milestones.contains(&done) {
                rss_samples.push((done, proc_status_kib("VmRSS")));
            }
        }
    };
    let hung = tokio::time::timeout(params.time_limit, load).await.is_err();
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }

    // Counted before the recheck, which adds requests of its own.
    let server_data_key = faults.requests(DATA_KEY);
    let server_decrypt = faults.requests(DECRYPT);
    let server_total = faults.total_requests();

    faults.clear();
    let recheck = recheck(
        &vaults,
        params.seed,
        std::mem::take(&mut tally.rechecks),
        &mut tally,
    )
    .await;
    server.shutdown().await.expect("server shutdown");

    Report {
        params,
        tally,
        recheck,
        elapsed,
        hung,
        server_data_key,
        server_decrypt,
        server_total,
        vm_hwm_kib: proc_status_kib("VmHWM"),
        rss_samples_kib: rss_samples,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not valid")),
        Err(_) => default,
    }
}

/// `none`, `issue` (the issue's mix) or `U,D,T` rates of 503, dropped and
/// 429.
fn parse_faults(text: &str) -> Option<FaultRates> {
    match text.trim() {
        "none" | "" => None,
        "issue" => Some(FaultRates::new(
            ISSUE_FAULTS.0,
            ISSUE_FAULTS.1,
            ISSUE_FAULTS.2,
        )),
        rates => {
            let parts: Vec<f64> = rates
                .split(',')
                .map(|p| p.trim().parse().expect("a fault rate"))
                .collect();
            assert_eq!(parts.len(), 3, "VAULT_SOAK_FAULTS: three rates, or none");
            Some(FaultRates::new(parts[0], parts[1], parts[2]))
        }
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("randomness");
    u64::from_le_bytes(bytes)
}

// ---------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------

/// One soak phase, parameterised by `VAULT_SOAK_PHASE` (a name),
/// `VAULT_SOAK_OPS` (50,000), `VAULT_SOAK_CONCURRENCY` (64),
/// `VAULT_SOAK_FAULTS` (`none`, `issue` or three rates; default `issue`),
/// `VAULT_SOAK_SEED` (random), `VAULT_SOAK_TIME_LIMIT_SECS` (900) and
/// `VAULT_SOAK_OUT` (a directory for `<phase>.json` and `<phase>.txt`).
#[test]
#[ignore = "run by cargo xtask soak"]
fn soak_phase() {
    let params = Params {
        name: env_or("VAULT_SOAK_PHASE", "faults".to_owned()),
        ops: env_or("VAULT_SOAK_OPS", 50_000),
        concurrency: env_or("VAULT_SOAK_CONCURRENCY", 64usize).max(1),
        faults: parse_faults(&env_or("VAULT_SOAK_FAULTS", "issue".to_owned())),
        seed: env_or("VAULT_SOAK_SEED", random_seed()),
        client: ClientSettings::Defaults,
        progress: true,
        time_limit: Duration::from_secs(env_or("VAULT_SOAK_TIME_LIMIT_SECS", 900)),
    };
    let report = runtime().block_on(run_phase(params, |_| {}));
    let text = report.text();
    println!("{text}");
    if let Ok(dir) = std::env::var("VAULT_SOAK_OUT") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("the output directory");
        let name = &report.params.name;
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&report.json()).expect("JSON"),
        )
        .expect("write the phase's JSON");
        std::fs::write(dir.join(format!("{name}.txt")), format!("{text}\n"))
            .expect("write the phase's summary");
    }
    assert!(report.failures().is_empty(), "{text}");
}

/// The small version every `cargo test` runs: the issue's fault mix, plus
/// one of each fault armed up front so every kind is met at least once.
#[test]
fn soak_smoke_with_faults() {
    let params = Params {
        name: "smoke".to_owned(),
        ops: 500,
        concurrency: 16,
        faults: Some(FaultRates::new(
            ISSUE_FAULTS.0,
            ISSUE_FAULTS.1,
            ISSUE_FAULTS.2,
        )),
        seed: random_seed(),
        client: ClientSettings::Quick,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = runtime().block_on(run_phase(params, |faults| {
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
        name: "smoke-clean".to_owned(),
        ops: 200,
        concurrency: 16,
        faults: None,
        seed: random_seed(),
        client: ClientSettings::Quick,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    let report = runtime().block_on(run_phase(params, |_| {}));
    let text = report.text();
    assert!(report.failures().is_empty(), "{text}");
    assert_eq!(report.tally.ok_first_try, 200, "{text}");
    assert_eq!(report.server_total, 400, "{text}");
}

/// Retries that run out end in a retryable error, counted as such, with
/// the retries charged to the operation that made them.
#[test]
fn exhausted_retries_are_retryable_failures() {
    let params = Params {
        name: "exhausted".to_owned(),
        ops: 2,
        concurrency: 1,
        faults: None,
        seed: random_seed(),
        client: ClientSettings::Quick,
        progress: false,
        time_limit: Duration::from_secs(300),
    };
    // Op 0's encrypt meets four 503s: the first attempt and three retries.
    let report = runtime().block_on(run_phase(params, |faults| {
        faults.fail_next(4, 503, None);
    }));
    let text = report.text();
    let t = &report.tally;
    assert_eq!(
        t.failed_retryable.get("encrypt Api 503"),
        Some(&1),
        "{text}"
    );
    assert_eq!(t.failed_retryable_total, 1, "{text}");
    assert_eq!(t.retries_by_cause.get("503"), Some(&3), "{text}");
    assert_eq!(t.retries_histogram.get(&3), Some(&1), "{text}");
    assert_eq!(t.ok_first_try, 1, "{text}");
    assert_eq!(report.server_total, 4 + 2, "{text}");
    assert_eq!(report.client_attempts(), 4 + 2, "{text}");
    // Without faults configured, any retry fails the phase.
    assert!(!report.failures().is_empty(), "{text}");
}

/// A decrypt that fails retryably keeps its ciphertext, which decrypts to
/// its own plaintext once the faults are gone.
#[test]
fn a_retryable_decrypt_failure_is_rechecked() {
    runtime().block_on(async {
        install_retry_counter();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (server, faults) = start_server(&dir.path().join("keyring.json")).await;
        let vaults = Vaults::new(Arc::new(client(&server, ClientSettings::Quick)));
        let seed = 1;
        let case = Case::new(seed, 5);
        assert_ne!(case.plaintext, Case::new(seed, 6).plaintext);
        let ciphertext = vaults
            .get(case.layout)
            .encrypt(&case.plaintext, &case.context, case.aad.as_deref())
            .await
            .expect("encrypt");
        faults.drop_next(4);
        let outcome = decrypt_and_judge(&vaults, &case, &ciphertext).await;
        assert!(
            matches!(
                outcome,
                Outcome::Retryable {
                    step: Step::Decrypt,
                    kind: ErrorKind::Connect,
                    status: None
                }
            ),
            "{outcome:?}"
        );
        let mut tally = Tally::default();
        let recheck = recheck(&vaults, seed, vec![(5, ciphertext.clone())], &mut tally).await;
        assert_eq!((recheck.ok, recheck.failed), (1, 0));
        // Checked against another op's plaintext, it is a failure.
        let recheck = recheck_as(&vaults, seed, 6, &ciphertext, &mut tally).await;
        assert_eq!((recheck.ok, recheck.failed), (0, 1));
        assert_eq!(tally.failure_examples.len(), 1);
        server.shutdown().await.expect("shutdown");
    });
}

/// [`recheck`] of `ciphertext` as if it were operation `index`'s.
async fn recheck_as(
    vaults: &Vaults,
    seed: u64,
    index: u64,
    ciphertext: &str,
    tally: &mut Tally,
) -> Recheck {
    recheck(vaults, seed, vec![(index, ciphertext.to_owned())], tally).await
}

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

#[test]
fn the_latency_histogram_is_within_two_percent() {
    for micros in [
        0,
        1,
        127,
        128,
        129,
        1000,
        65_535,
        1_000_000,
        30_000_000,
        u64::MAX / 3,
    ] {
        let floor = Histogram::floor(Histogram::bucket(micros));
        assert!(floor <= micros, "{micros}: {floor}");
        assert!(micros - floor <= micros / 60, "{micros}: {floor}");
    }
    let mut histogram = Histogram::default();
    for ms in 1..=100 {
        histogram.record(Duration::from_millis(ms));
    }
    let p50 = histogram.percentile(0.5).as_micros();
    assert!((49_000..=50_000).contains(&p50), "{p50}");
    assert!(histogram.percentile(1.0) <= Duration::from_millis(100));
    assert!(histogram.percentile(1.0) >= Duration::from_millis(98));
    assert_eq!(Histogram::default().percentile(0.5), Duration::ZERO);
}

/// Cases are a pure function of seed and index, vary, and stamp the index.
#[test]
fn cases_are_reproducible_and_distinct() {
    let a = Case::new(1, 10_000);
    let b = Case::new(1, 10_000);
    assert_eq!(a.plaintext, b.plaintext);
    assert_eq!(a.aad, b.aad);
    assert_eq!(a.context, b.context);
    let sizes: std::collections::BTreeSet<usize> =
        (0..2000).map(|i| Case::new(1, i).plaintext.len()).collect();
    assert!(sizes.contains(&0));
    assert!(sizes.iter().any(|&s| s > 4096));
    assert!(sizes.len() > 500);
    for i in 0..2000 {
        let case = Case::new(1, i);
        if case.plaintext.len() >= 8 {
            assert_eq!(case.plaintext[..8], i.to_le_bytes());
        }
    }
}
