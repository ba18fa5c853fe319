//! A phase: a server with faults, the load, the recheck, the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinHandle, JoinSet};
use vault::{HttpKeyService, KeyService, LocalKeyService};
use vault_api::transport::Proxies;
use vault_api::wire::{DATA_KEY_PATH, DECRYPT_PATH};
use vault_server::{Faults, Server, ServerConfig, TlsConfig};

use super::case::Case;
use super::operation::{decrypt_and_judge, operation, Outcome, Vaults};
use super::params::{ClientSettings, Params, Protocol};
use super::report::{proc_status_kib, Report};
use super::retries::install_retry_counter;
use super::tally::{Recheck, Tally};

/// The API key of a phase's server.
const API_KEY: &str = "sk_test_vault_rs_soak_7d2e91";

/// What the load measured.
pub(super) struct Load {
    pub(super) tally: Tally,
    pub(super) elapsed: Duration,
    pub(super) hung: bool,
    pub(super) rss_samples: Vec<(u64, Option<u64>)>,
}

/// Runs `params.ops` round trips against a server in this process (over a
/// temporary keyring file), then, with the faults cleared, decrypts again
/// the ciphertexts whose decrypt failed retryably. `arm` may arm one-shot
/// faults before the load starts.
pub async fn run_phase(params: Params, arm: impl FnOnce(&Faults)) -> Report {
    install_retry_counter();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (server, faults) = start_server(&dir.path().join("keyring.json"), params.protocol).await;
    let vaults = Vaults::new(Arc::new(client(&server, params.client)));
    if let Some(rates) = params.faults {
        // The run's seed picks the faults too, so a failing run replays.
        faults.seed(params.seed);
        faults.set_rates(rates);
    }
    arm(&faults);

    let mut load = run_load(&params, &vaults, Tally::default()).await;

    // Counted before the recheck, which adds requests of its own.
    let server_data_key = faults.requests(DATA_KEY_PATH);
    let server_decrypt = faults.requests(DECRYPT_PATH);
    let server_total = faults.total_requests();
    let server_faults = faults.injected();

    faults.clear();
    let rechecks = std::mem::take(&mut load.tally.rechecks);
    let recheck = recheck(&vaults, params.seed, rechecks, &mut load.tally).await;
    let rechecked = faults.total_requests().saturating_sub(server_total);
    // The access log is written by a thread of its own, drained by the
    // shutdown: count its lines then, less the recheck's.
    let server_h2 = server
        .shutdown()
        .await
        .expect("server shutdown")
        .map(|h2| h2.saturating_sub(rechecked));

    Report {
        server_data_key,
        server_decrypt,
        server_total,
        server_h2,
        server_faults,
        ..load.report(params, recheck)
    }
}

impl Load {
    /// The report of this load, with no server counts and no external
    /// server (for the caller to fill in).
    pub(super) fn report(self, params: Params, recheck: Recheck) -> Report {
        Report {
            params,
            tally: self.tally,
            recheck,
            elapsed: self.elapsed,
            hung: self.hung,
            server_data_key: 0,
            server_decrypt: 0,
            server_total: 0,
            server_h2: None,
            server_faults: 0,
            vm_hwm_kib: proc_status_kib("VmHWM"),
            rss_samples_kib: self.rss_samples,
            external: None,
        }
    }
}

/// Runs the operations within the time limit, with progress if asked,
/// counting them into `tally`.
pub(super) async fn run_load(params: &Params, vaults: &Vaults, mut tally: Tally) -> Load {
    let completed = Arc::new(AtomicU64::new(0));
    let progress = params
        .progress
        .then(|| report_progress(completed.clone(), params.ops));
    let start = Instant::now();
    let mut rss_samples = Vec::new();
    let load = drive(params, vaults, &completed, &mut tally, &mut rss_samples);
    let hung = tokio::time::timeout(params.time_limit, load).await.is_err();
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    Load {
        tally,
        elapsed,
        hung,
        rss_samples,
    }
}

/// Keeps `params.concurrency` operations in flight until all have ended,
/// tallying each, and samples VmRSS at each quarter of the load.
async fn drive(
    params: &Params,
    vaults: &Vaults,
    completed: &AtomicU64,
    tally: &mut Tally,
    rss_samples: &mut Vec<(u64, Option<u64>)>,
) {
    let milestones: Vec<u64> = (1..=4).map(|q| params.ops * q / 4).collect();
    let stop = StopFile::watch(params.stop_file.clone());
    let mut tasks = JoinSet::new();
    let mut next = 0u64;
    while (next < params.ops && !stop.requested()) || !tasks.is_empty() {
        while next < params.ops && tasks.len() < params.concurrency && !stop.requested() {
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
}

/// Whether a stop file has appeared, watched by a task of its own.
struct StopFile {
    seen: Arc<std::sync::atomic::AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl StopFile {
    fn watch(path: Option<std::path::PathBuf>) -> StopFile {
        let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = path.map(|path| {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_millis(50));
                loop {
                    ticks.tick().await;
                    let file = path.clone();
                    let exists = tokio::task::spawn_blocking(move || file.exists()).await;
                    if exists.unwrap_or(false) {
                        seen.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            })
        });
        StopFile { seen, watcher }
    }

    fn requested(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for StopFile {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
    }
}

/// Prints how far the load is on stderr every 5 s.
fn report_progress(completed: Arc<AtomicU64>, ops: u64) -> JoinHandle<()> {
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
}

fn client(server: &PhaseServer, settings: ClientSettings) -> HttpKeyService {
    let url = server.server.url();
    client_for(&url, API_KEY, server.ca_pem.as_deref(), settings)
}

/// A client of the server at `url`, trusting `ca_pem` if given.
pub(super) fn client_for(
    url: &str,
    api_key: &str,
    ca_pem: Option<&str>,
    settings: ClientSettings,
) -> HttpKeyService {
    let mut builder = HttpKeyService::builder()
        .api_key(api_key)
        .base_url(url)
        .proxies(Proxies::none());
    if let Some(ca) = ca_pem {
        builder = builder.root_certificates_pem(ca.as_bytes().to_vec());
    }
    let builder = match settings {
        ClientSettings::Defaults => builder,
        ClientSettings::Quick => builder
            .backoff(Duration::from_millis(1), Duration::from_millis(10))
            .timeout(Duration::from_secs(10))
            .deadline(Duration::from_secs(30)),
    };
    builder.build().expect("client")
}

/// The phase's server, and what its client needs to know of it.
struct PhaseServer {
    server: Server,
    /// The CA the client must trust, over TLS.
    ca_pem: Option<String>,
    /// Requests logged as HTTP/2, over TLS.
    h2: Option<Arc<AtomicU64>>,
}

impl PhaseServer {
    /// Shuts down (which drains the access log), then counts its HTTP/2
    /// lines.
    async fn shutdown(self) -> std::io::Result<Option<usize>> {
        let PhaseServer { server, h2, .. } = self;
        server.shutdown().await?;
        Ok(h2.map(|count| usize::try_from(count.load(Ordering::Relaxed)).unwrap_or(usize::MAX)))
    }
}

/// Counts the access log lines of HTTP/2 requests, writing nothing.
struct H2Counter(Arc<AtomicU64>);

impl std::io::Write for H2Counter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        // The access log writes each line whole.
        if line.windows(19).any(|w| w == br#""version":"HTTP/2.0"#) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server over a keyring file, with a fault handle; over TLS with a CA
/// of its own for [`Protocol::H2`].
async fn start_server(keyring: &std::path::Path, protocol: Protocol) -> (PhaseServer, Faults) {
    let service: Arc<dyn KeyService> =
        Arc::new(LocalKeyService::open_or_create(keyring).expect("a keyring file"));
    let faults = Faults::new();
    let mut config = ServerConfig::new().api_key(API_KEY).faults(faults.clone());
    let (mut ca_pem, mut h2) = (None, None);
    if protocol == Protocol::H2 {
        let (tls, ca) = phase_tls();
        let count = Arc::new(AtomicU64::new(0));
        config = config.tls(tls).access_log(H2Counter(count.clone()));
        (ca_pem, h2) = (Some(ca), Some(count));
    }
    let server = Server::bind("127.0.0.1:0".parse().expect("address"), service, config)
        .await
        .expect("bind the server");
    (PhaseServer { server, ca_pem, h2 }, faults)
}

/// A certificate for 127.0.0.1 signed by a CA made now: the server's TLS
/// configuration and the CA's PEM.
fn phase_tls() -> (TlsConfig, String) {
    let pki = crate::LoopbackPki::new().expect("a CA and a certificate");
    let tls = TlsConfig::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("a TLS configuration");
    (tls, pki.ca_pem)
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

#[cfg(test)]
mod tests {
    use vault::KeyServiceErrorKind as ErrorKind;

    use super::super::{random_seed, runtime};
    use super::*;
    use crate::soak::operation::Step;

    /// Retries that run out end in a retryable error, counted as such, with
    /// the retries charged to the operation that made them.
    #[test]
    fn exhausted_retries_are_retryable_failures() {
        let params = Params {
            stop_file: None,
            name: "exhausted".to_owned(),
            ops: 2,
            concurrency: 1,
            faults: None,
            seed: random_seed(),
            client: ClientSettings::Quick,
            protocol: Protocol::Http1,
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
            let (server, faults) =
                start_server(&dir.path().join("keyring.json"), Protocol::Http1).await;
            let vaults = Vaults::new(Arc::new(client(&server, ClientSettings::Quick)));
            let seed = 1;
            let case = Case::new(seed, 5);
            assert_ne!(case.plaintext, Case::new(seed, 6).plaintext);
            let ciphertext = vaults
                .get(case.layout)
                .encrypt_with(
                    &case.plaintext,
                    &case.context,
                    &vault::EncryptOptions::new().aad(case.aad.as_deref().unwrap_or_default()),
                )
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
}
