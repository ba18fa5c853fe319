//! One call of a key endpoint: encode, then attempt and retry within the
//! deadline.

use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::Method;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;
use tracing::Instrument;

use super::builder::authorization;
use super::response::{self, Answer, Failure};
use super::transport::{http, Bytes};
use super::{config_error, retry, Endpoint, Inner};
use crate::{Error, ErrorKind};

/// What every attempt of one call sends.
struct Outgoing {
    method: Method,
    path: String,
    body: Bytes,
    idempotency_key: HeaderValue,
}

impl Inner {
    /// Checks and POSTs `request`, retrying as the service's docs say.
    pub(super) async fn call<E: Endpoint>(&self, request: &E) -> Result<Answer<E::Answer>, Error> {
        request.check()?;
        self.send(Method::POST, E::PATH.to_owned(), encode(request)?)
            .await
    }

    /// Sends `body` (empty for none) with `method` to `path` (with its
    /// query), retrying as the service's docs say: every call the client
    /// makes goes through here.
    pub(super) async fn send<A: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Bytes,
    ) -> Result<Answer<A>, Error> {
        let outgoing = Outgoing {
            method,
            path,
            body,
            idempotency_key: HeaderValue::try_from(new_idempotency_key(&self.rng)?)
                .map_err(|_| config_error("could not build an idempotency key"))?,
        };
        let span = tracing::info_span!(
            "vault_api.call",
            method = %outgoing.method,
            path = %outgoing.path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        self.call_with_retries(&outgoing).instrument(span).await
    }

    /// Attempts until one succeeds, a failure is final, the retries are
    /// spent or the deadline leaves no room for the next wait.
    async fn call_with_retries<A: serde::de::DeserializeOwned>(
        &self,
        outgoing: &Outgoing,
    ) -> Result<Answer<A>, Error> {
        let span = tracing::Span::current();
        let deadline = Instant::now() + self.deadline;
        let mut retry = 0;
        loop {
            span.record("attempt", retry + 1);
            let failure = match self.attempt(outgoing, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let wait = self.wait_before_retry(retry, &failure, deadline);
            let Some(wait) = wait else {
                return Err(failure.error);
            };
            let error = &failure.error;
            tracing::info!(
                kind = ?error.kind(),
                status = error.status(),
                request_id = error.request_id(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying the key service call"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// How long to wait before retry number `retry`, or `None` when the
    /// failure is final: not retryable, retries spent, or a wait that
    /// would reach the deadline.
    fn wait_before_retry(
        &self,
        retry: u32,
        failure: &Failure,
        deadline: Instant,
    ) -> Option<Duration> {
        if !failure.error.is_retryable() || retry >= self.max_retries {
            return None;
        }
        let wait = failure.retry_after.unwrap_or_else(|| {
            retry::backoff(retry, self.backoff_base, self.backoff_cap, self.jitter())
        });
        if Instant::now() + wait >= deadline {
            tracing::debug!("no time left for another attempt before the deadline");
            return None;
        }
        Some(wait)
    }

    /// One request through the transport, cut at the per-attempt timeout
    /// or the deadline, whichever comes first.
    async fn attempt<A: serde::de::DeserializeOwned>(
        &self,
        outgoing: &Outgoing,
        deadline: Instant,
    ) -> Result<Answer<A>, Failure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::from(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the key service did not answer within the deadline of {:?}",
                    self.deadline
                ),
            )));
        }
        let limit = self.timeout.min(remaining);
        let request = self.request(outgoing)?;
        match tokio::time::timeout(limit, self.transport.send(request)).await {
            Ok(sent) => response::read(&outgoing.path, sent),
            Err(_) => {
                let what = if limit < self.timeout {
                    "the deadline of the call"
                } else {
                    "the per-attempt timeout"
                };
                Err(Failure::from(Error::new(
                    ErrorKind::Timeout,
                    format!("the key service did not answer within {limit:?} ({what})"),
                )))
            }
        }
    }

    /// The request of one attempt.
    fn request(&self, outgoing: &Outgoing) -> Result<http::Request<Bytes>, Error> {
        let mut request = http::Request::builder()
            .method(outgoing.method.clone())
            .uri(format!("{}{}", self.base_url, outgoing.path))
            .header(header::AUTHORIZATION, authorization(&self.api_key)?);
        if !outgoing.body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        request
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone())
            .header("idempotency-key", outgoing.idempotency_key.clone())
            .body(outgoing.body.clone())
            .map_err(|_| config_error("could not build the request"))
    }

    /// A uniform fraction for jitter.
    fn jitter(&self) -> f64 {
        let mut bytes = [0u8; 4];
        match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        }
    }
}

pub(super) fn encode(request: &impl serde::Serialize) -> Result<Bytes, Error> {
    let json = serde_json::to_vec(request).map_err(|error| {
        Error::new(
            ErrorKind::Encode,
            "the request could not be encoded as JSON",
        )
        .with_source(error)
    })?;
    Ok(Bytes::from(json))
}

/// A random UUID v4 from the system CSPRNG.
fn new_idempotency_key(rng: &SystemRandom) -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| Error::random_failed())?;
    Ok(vault_format::id::uuid_v4(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_uuid_v4() {
        let rng = SystemRandom::new();
        let a = new_idempotency_key(&rng).unwrap();
        let b = new_idempotency_key(&rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a.matches('-').count(), 4);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }
}
