//! A phase's figures, its verdict, and their text and JSON forms.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::params::Params;
use super::tally::{Recheck, Tally};

/// A phase's figures and verdict.
#[derive(Debug)]
pub struct Report {
    /// What was run.
    pub params: Params,
    /// What the load counted.
    pub tally: Tally,
    /// The decrypts tried again once the faults were cleared.
    pub recheck: Recheck,
    /// How long the load took.
    pub elapsed: Duration,
    /// Whether the load outran [`Params::time_limit`].
    pub hung: bool,
    /// Data-key requests the server saw.
    pub server_data_key: usize,
    /// Decrypt requests the server saw.
    pub server_decrypt: usize,
    /// Requests the server saw in all.
    pub server_total: usize,
    /// Requests that arrived over HTTP/2, for an h2 phase.
    pub server_h2: Option<usize>,
    /// Faults the server injected (drops and statuses).
    pub server_faults: usize,
    /// Peak RSS of the process (VmHWM), on Linux.
    pub vm_hwm_kib: Option<u64>,
    /// VmRSS after a quarter, half, three quarters and all of the load.
    pub rss_samples_kib: Vec<(u64, Option<u64>)>,
    /// The URL of the server, when it runs outside this process (its
    /// requests are not counted here, and its outages are the point:
    /// retries are allowed without faults).
    pub external: Option<String>,
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
    pub fn client_attempts(&self) -> u64 {
        self.tally.calls + self.tally.total_retries
    }

    /// Attempts the server never counted: written to a connection that
    /// was reset before the server read the request.
    fn unseen_attempts(&self) -> u64 {
        self.client_attempts()
            .saturating_sub(self.server_total as u64)
    }

    /// Everything that makes the phase fail: empty when it passes.
    pub fn failures(&self) -> Vec<String> {
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
        if self.params.faults.is_none()
            && self.external.is_none()
            && (t.failed_retryable_total > 0 || t.total_retries > 0)
        {
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
        let armed = self
            .params
            .faults
            .is_some_and(|rates| rates != vault_server::FaultRates::default());
        if armed && self.external.is_none() && self.server_faults == 0 {
            failures.push(format!(
                "faults were configured but none fired (seed {}): the phase proves nothing about retries",
                self.params.seed
            ));
        }
        if let Some(h2) = self.server_h2.filter(|h2| *h2 != self.server_total) {
            failures.push(format!(
                "only {h2} of {} requests arrived over HTTP/2",
                self.server_total
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

    /// The summary printed per phase (the format of the figures in
    /// `docs/RELIABILITY.md`).
    pub fn text(&self) -> String {
        let failures = self.failures();
        let verdict = if failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL\n    {}", failures.join("\n    "))
        };
        let p = &self.params;
        let round_trips = match p.stop_file {
            None => p.ops.to_string(),
            Some(_) => format!("{} (time-bound) of at most {}", self.tally.completed, p.ops),
        };
        let mut lines = vec![format!(
            "soak phase {:?}: {round_trips} round trips at concurrency {} over {}, {} (seed {})",
            p.name,
            p.concurrency,
            self.protocol_text(),
            self.faults_text(),
            p.seed
        )];
        lines.extend(
            [
                self.speed_text(),
                self.memory_text(),
                self.outcomes_text(),
                format!("retries per op: {}", pairs(&self.tally.retries_histogram)),
                format!(
                    "retries by cause: {}",
                    map_text(&self.tally.retries_by_cause)
                ),
                format!(
                    "failed retryable: {}",
                    map_text(&self.tally.failed_retryable)
                ),
                self.recheck_text(),
                self.requests_text(),
                format!("verdict: {verdict}"),
            ]
            .map(|line| format!("  {line}")),
        );
        lines.join("\n")
    }

    fn recheck_text(&self) -> String {
        let what = if self.external.is_some() {
            "every ciphertext decrypted again after the load"
        } else {
            "rechecked after faults cleared"
        };
        format!(
            "{what}: {} of {} decrypted correctly",
            self.recheck.ok,
            self.recheck.ok + self.recheck.failed
        )
    }

    fn protocol_text(&self) -> String {
        match self.server_h2 {
            None => "HTTP/1.1".to_owned(),
            Some(h2) => format!("HTTP/2 + TLS ({h2} requests over h2)"),
        }
    }

    fn speed_text(&self) -> String {
        format!(
            "{} completed in {:.1} s: {:.0} ops/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.tally.completed,
            self.elapsed.as_secs_f64(),
            self.ops_per_sec(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
        )
    }

    fn memory_text(&self) -> String {
        let rss = self
            .rss_samples_kib
            .iter()
            .map(|(done, kib)| format!("{done} ops {}", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", ");
        let process = match self.external {
            Some(_) => "client only, every ciphertext kept",
            None => "server in-process",
        };
        format!(
            "peak RSS (VmHWM, {process}): {}; VmRSS at {rss}",
            mib(self.vm_hwm_kib)
        )
    }

    fn outcomes_text(&self) -> String {
        let t = &self.tally;
        format!(
            "outcomes: {} ok first try, {} ok after retries, {} failed with retryable errors, \
             {} non-retryable errors, {} wrong plaintexts, {} panics",
            t.ok_first_try,
            t.ok_after_retries,
            t.failed_retryable_total,
            t.non_retryable,
            t.wrong_plaintexts,
            t.panics
        )
    }

    fn requests_text(&self) -> String {
        if let Some(url) = &self.external {
            return format!(
                "server requests: not counted (server at {url}); client: {} calls + {} retries = {} attempts",
                self.tally.calls,
                self.tally.total_retries,
                self.client_attempts()
            );
        }
        format!(
            "server requests: data-key {}, decrypt {}, total {} ({} faults injected); client: {} calls + \
             {} retries = {} attempts ({} never reached the server)",
            self.server_data_key,
            self.server_decrypt,
            self.server_total,
            self.server_faults,
            self.tally.calls,
            self.tally.total_retries,
            self.client_attempts(),
            self.unseen_attempts()
        )
    }

    /// The phase's figures as JSON: one entry of `summary.json`.
    pub fn json(&self) -> serde_json::Value {
        let t = &self.tally;
        serde_json::json!({
            "phase": self.params.name,
            "ops": self.params.ops,
            "concurrency": self.params.concurrency,
            "protocol": self.params.protocol.name(),
            "server_h2_requests": self.server_h2,
            "faults": self.params.faults.map(|r| serde_json::json!({
                "unavailable_503": r.unavailable,
                "dropped": r.dropped,
                "throttled_429_retry_after_1": r.throttled,
            })),
            "seed": self.params.seed,
            "server_faults_injected": self.server_faults,
            "server": self.external.as_deref().unwrap_or("in-process"),
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

    /// Writes `<phase>.json` and `<phase>.txt` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let name = &self.params.name;
        let json = serde_json::to_string_pretty(&self.json()).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{name}.json")), json)?;
        std::fs::write(
            dir.join(format!("{name}.txt")),
            format!("{}\n", self.text()),
        )?;
        if self.tally.keep_all {
            let lines: String = self
                .tally
                .events
                .iter()
                .map(|event| event.line() + "\n")
                .collect();
            std::fs::write(dir.join(format!("{name}.events")), lines)?;
        }
        Ok(())
    }
}

fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    }
}

/// `k: v, k: v`.
fn pairs<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`pairs`], or `none`.
fn map_text(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        pairs(map)
    }
}

/// A `kB` field of `/proc/self/status` (Linux only).
pub(crate) fn proc_status_kib(field: &str) -> Option<u64> {
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
