//! `GET /health/ready`: whether the key service can serve, asked within a
//! time bound, one probe at a time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vault_api::{KeyContext, KeyService};

use crate::config::Readiness;

/// How long a verdict is reused: probes that come faster share it, so
/// unauthenticated probes cannot drive the key service harder than this.
const VERDICT_REUSE: Duration = Duration::from_secs(1);
/// The key context of the probe's data key.
const PROBE_CONTEXT: (&str, &str) = ("vault_server", "readiness");

/// `Ok`, or why key requests cannot be served (for the log: key service
/// errors never carry secrets).
pub(crate) type Verdict = Result<(), String>;

/// Asks the key service (and the configured check) whether requests can
/// be served.
pub(crate) struct ReadyProbe {
    service: Arc<dyn KeyService>,
    check: Option<Readiness>,
    timeout: Duration,
    state: Mutex<State>,
}

enum State {
    /// No probe running; the last verdict and when it was reached.
    Idle(Option<(Instant, Verdict)>),
    /// A probe is running: wait for its verdict.
    Running(watch::Receiver<Option<Verdict>>),
}

impl ReadyProbe {
    pub(crate) fn new(
        service: Arc<dyn KeyService>,
        check: Option<Readiness>,
        timeout: Duration,
    ) -> Arc<ReadyProbe> {
        Arc::new(ReadyProbe {
            service,
            check,
            timeout,
            state: Mutex::new(State::Idle(None)),
        })
    }

    /// The configured check (on a blocking thread, every time), then the
    /// key service's verdict, each within the timeout.
    pub(crate) async fn verdict(self: &Arc<Self>) -> Verdict {
        if let Some(check) = self.check.clone() {
            let check = tokio::task::spawn_blocking(move || check());
            match tokio::time::timeout(self.timeout, check).await {
                Ok(Ok(verdict)) => verdict?,
                Ok(Err(_)) => return Err("the readiness check panicked".to_owned()),
                Err(_) => {
                    return Err(format!(
                        "the readiness check did not finish within {:?}",
                        self.timeout
                    ))
                }
            }
        }
        self.service_verdict().await
    }

    /// The verdict of a key service probe: a fresh one, one in flight, or
    /// one reached within the last [`VERDICT_REUSE`]. The probe runs in a
    /// task of its own, so a prober that hangs up does not cut it short.
    async fn service_verdict(self: &Arc<Self>) -> Verdict {
        let mut running = {
            let mut state = lock(&self.state);
            match &*state {
                State::Idle(Some((at, verdict))) if at.elapsed() < VERDICT_REUSE => {
                    return verdict.clone();
                }
                State::Running(running) => running.clone(),
                State::Idle(_) => {
                    let (done, running) = watch::channel(None);
                    *state = State::Running(running.clone());
                    let probe = self.clone();
                    tokio::spawn(async move {
                        let verdict = tokio::time::timeout(probe.timeout, probe.probe())
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!(
                                    "the key service did not answer the readiness probe within {:?}",
                                    probe.timeout
                                ))
                            });
                        *lock(&probe.state) = State::Idle(Some((Instant::now(), verdict.clone())));
                        let _ = done.send(Some(verdict));
                    });
                    running
                }
            }
        };
        let verdict = match running.wait_for(Option::is_some).await {
            Ok(verdict) => verdict.clone(),
            Err(_) => None,
        };
        verdict.unwrap_or_else(|| {
            // The probe's task died (it panicked): the next prober starts
            // a new one.
            let mut state = lock(&self.state);
            if matches!(&*state, State::Running(stale) if stale.same_channel(&running)) {
                *state = State::Idle(None);
            }
            Err("the readiness probe ended without a verdict".to_owned())
        })
    }

    /// A data key created and decrypted again.
    async fn probe(&self) -> Verdict {
        let context = KeyContext::new()
            .with(PROBE_CONTEXT.0, PROBE_CONTEXT.1)
            .map_err(|e| e.to_string())?;
        let pair = self
            .service
            .create_data_key(&context)
            .await
            .map_err(|e| format!("the key service cannot create a data key: {e}"))?;
        let again = self
            .service
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .map_err(|e| format!("the key service cannot decrypt a data key it made: {e}"))?;
        if again != pair.data_key {
            return Err("the key service decrypted a data key it made to another key".to_owned());
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
