//! Transit's retries over a scripted, in-memory transport on tokio's
//! paused clock: `Retry-After` is honoured as delta seconds and as an
//! HTTP date, as `HttpKeyService` honours it (one `RetryPolicy` serves
//! both).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::time::Instant;
use vault_api::transport::{http, Bytes, Transport, TransportError};
use vault_transit::TransitKeyService;

/// Answers the first request with 503 and `retry_after`, then 204.
#[derive(Debug)]
struct Throttled {
    retry_after: String,
    attempts: Mutex<u32>,
}

#[async_trait]
impl Transport for Throttled {
    async fn send(
        &self,
        _request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let first = {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            *attempts == 1
        };
        let response = if first {
            http::Response::builder()
                .status(503)
                .header("retry-after", self.retry_after.as_str())
                .body(Bytes::from_static(br#"{"errors":["Vault is sealed"]}"#))
        } else {
            http::Response::builder().status(204).body(Bytes::new())
        };
        Ok(response.unwrap())
    }
}

async fn waited_for(retry_after: String) -> Duration {
    let transport = Arc::new(Throttled {
        retry_after,
        attempts: Mutex::new(0),
    });
    let service = TransitKeyService::builder()
        .address("http://127.0.0.1:1")
        .token("s.test")
        .key("dek")
        // A backoff far below every Retry-After here, so the wait shows
        // which rule chose it.
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .transport(transport.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    service.create_key().await.unwrap();
    assert_eq!(*transport.attempts.lock().unwrap(), 2);
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_seconds_or_an_http_date_is_honoured() {
    assert_eq!(waited_for("7".to_owned()).await, Duration::from_secs(7));
    assert_eq!(waited_for("3600".to_owned()).await, Duration::from_secs(60));
    // An HTTP date has whole seconds, and the wall clock moves on while
    // the test runs: the wait is within a second of the 10 s asked for.
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
    let waited = waited_for(date).await;
    assert!(
        (Duration::from_secs(8)..=Duration::from_secs(10)).contains(&waited),
        "{waited:?}"
    );
}
