//! `HttpKeyService` over a scripted, in-memory `Transport`: retries,
//! `Retry-After`, timeouts and the deadline on tokio's paused clock, so no
//! test sleeps and every elapsed time is exact. The real-server tests are
//! in `tests/tests/http.rs`.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::time::Instant;
use vault_api::transport::{
    http, Bytes, Transport, TransportError, TransportErrorKind, MAX_RESPONSE_BYTES,
};
use vault_api::{
    DataKeyPair, Error, ErrorKind, HttpKeyService, HttpKeyServiceBuilder, KeyContext, KeyService,
};

const API_KEY: &str = "sk_test_transport_5e1d";
const BASE_URL: &str = "https://keys.example.com/prefix";
const DATA_KEY_ID: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

/// What the transport does with one request.
#[derive(Debug, Clone)]
enum Step {
    /// Answers this status, with a `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// Answers the status, then breaks while reading the body.
    BrokenBody(u16, Option<&'static str>),
    /// Answers 200 with a body of this many bytes.
    Oversized(usize),
    /// Answers this status with this body.
    Body(u16, &'static str),
    /// Fails without an answer.
    Fail(TransportErrorKind),
    /// Never answers.
    Hang,
}

/// A request as the transport saw it.
#[derive(Debug)]
struct Seen {
    path: String,
    uri: String,
    method: http::Method,
    headers: http::HeaderMap,
    body: serde_json::Value,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Plays `script` one step a request, then answers every request well
/// (or plays `always` forever, when set). Records every request.
#[derive(Debug, Default)]
struct Scripted {
    script: Mutex<VecDeque<Step>>,
    always: Option<Step>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    fn new(script: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::new(script.into_iter().collect()),
            ..Scripted::default()
        })
    }

    fn always(step: Step) -> Arc<Self> {
        Arc::new(Scripted {
            always: Some(step),
            ..Scripted::default()
        })
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn idempotency_keys(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|s| s.header("idempotency-key").to_owned())
            .collect()
    }

    fn next_step(&self) -> Option<Step> {
        self.always
            .clone()
            .or_else(|| self.script.lock().unwrap().pop_front())
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (head, body) = request.into_parts();
        let seen = Seen {
            path: head.uri.path().to_owned(),
            uri: head.uri.to_string(),
            method: head.method,
            headers: head.headers,
            body: serde_json::from_slice(&body).unwrap(),
            at: Instant::now(),
        };
        let answer = good_answer(&seen);
        self.seen.lock().unwrap().push(seen);
        match self.next_step() {
            None => Ok(response(200, None, answer)),
            Some(Step::Status(status, retry_after)) => Ok(response(
                status,
                retry_after,
                json!({"error": "scripted"}).to_string(),
            )),
            Some(Step::BrokenBody(status, retry_after)) => {
                let (head, _) = response(status, retry_after, String::new()).into_parts();
                Err(TransportError::new(TransportErrorKind::Interrupted)
                    .with_source("connection reset while reading the body")
                    .with_response_head(head))
            }
            Some(Step::Oversized(len)) => Ok(response(200, None, "x".repeat(len))),
            Some(Step::Body(status, body)) => Ok(response(status, None, body.to_owned())),
            Some(Step::Fail(kind)) => {
                Err(TransportError::new(kind).with_source("scripted transport failure"))
            }
            Some(Step::Hang) => std::future::pending().await,
        }
    }
}

fn response(status: u16, retry_after: Option<&str>, body: String) -> http::Response<Bytes> {
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-request-id", "req_scripted");
    if let Some(value) = retry_after {
        builder = builder.header("retry-after", value);
    }
    builder.body(Bytes::from(body)).unwrap()
}

/// The answer a key service would give to `seen`.
fn good_answer(seen: &Seen) -> String {
    let data_key = vault_format::b64::encode(&[7; 32]);
    let answer = match seen.path.strip_prefix("/prefix") {
        Some(vault_api::wire::DECRYPT_PATH) => json!({"data_key": data_key, "id": DATA_KEY_ID}),
        _ => json!({
            "context": seen.body["context"],
            "data_key": data_key,
            "encrypted_keys": "a2V5cw==",
            "id": DATA_KEY_ID,
        }),
    };
    answer.to_string()
}

fn service(transport: &Arc<Scripted>) -> HttpKeyServiceBuilder {
    HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(BASE_URL)
        .transport(transport.clone())
}

/// No backoff, so elapsed times are the timeouts' alone.
fn no_backoff(transport: &Arc<Scripted>) -> HttpKeyServiceBuilder {
    service(transport).backoff(Duration::ZERO, Duration::ZERO)
}

fn context() -> KeyContext {
    KeyContext::new().with("organization_id", "org_1").unwrap()
}

/// Creates a data key through `builder`'s service, and how long that took
/// on the paused clock.
async fn timed_create(builder: HttpKeyServiceBuilder) -> (Result<DataKeyPair, Error>, Duration) {
    let client = builder.build().unwrap();
    let start = Instant::now();
    let result = client.create_data_key(&context()).await;
    (result, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_one_idempotency_key() {
    let failures = [
        Step::Status(408, None),
        Step::Status(429, None),
        Step::Status(500, None),
        Step::Status(502, None),
        Step::Status(503, None),
        Step::Status(504, None),
        Step::Fail(TransportErrorKind::Connect),
        Step::Fail(TransportErrorKind::Interrupted),
        Step::Fail(TransportErrorKind::Timeout),
        Step::BrokenBody(200, None),
        Step::BrokenBody(503, None),
    ];
    for failure in failures {
        let transport = Scripted::new([failure.clone(), failure.clone()]);
        let client = service(&transport).build().unwrap();
        let pair = client.create_data_key(&context()).await.unwrap();
        assert_eq!(pair.encrypted_keys, b"keys");
        assert_eq!(transport.attempts(), 3, "{failure:?}");
        let keys = transport.idempotency_keys();
        assert!(keys.iter().all(|key| key == &keys[0]), "{keys:?}");
        assert_eq!(keys[0].len(), 36);

        // The next call has its own key, kept across its own retry.
        transport.script.lock().unwrap().push_back(failure.clone());
        let data_key = client.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
        assert_eq!(data_key, pair.data_key);
        let keys = transport.idempotency_keys();
        assert_eq!(keys.len(), 5, "{failure:?}");
        assert_eq!(keys[3], keys[4]);
        assert_ne!(keys[3], keys[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn other_failures_are_not_retried() {
    for (failure, kind, status) in [
        (Step::Status(400, None), ErrorKind::Api, Some(400)),
        (Step::Status(401, None), ErrorKind::Unauthorized, Some(401)),
        (Step::Status(403, None), ErrorKind::Unauthorized, Some(403)),
        (Step::Status(404, None), ErrorKind::Api, Some(404)),
        (Step::Status(409, None), ErrorKind::Api, Some(409)),
        (
            Step::Status(422, None),
            ErrorKind::InvalidContext,
            Some(422),
        ),
        (
            Step::BrokenBody(401, None),
            ErrorKind::Unauthorized,
            Some(401),
        ),
        (
            Step::Fail(TransportErrorKind::Other),
            ErrorKind::Connect,
            None,
        ),
        (
            Step::Fail(TransportErrorKind::BodyTooLarge),
            ErrorKind::InvalidResponse,
            None,
        ),
        (
            Step::Oversized(MAX_RESPONSE_BYTES + 1),
            ErrorKind::InvalidResponse,
            Some(200),
        ),
    ] {
        let transport = Scripted::new([failure.clone()]);
        let (result, elapsed) = timed_create(service(&transport)).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), kind, "{failure:?}: {error}");
        assert_eq!(elapsed, Duration::ZERO, "no wait: {failure:?}");
        assert_eq!(error.status(), status, "{failure:?}");
        assert!(!error.is_retryable(), "{failure:?}");
        assert_eq!(transport.attempts(), 1, "{failure:?}");
        if status.is_some() {
            assert_eq!(error.request_id(), Some("req_scripted"), "{failure:?}");
        }
        assert!(!error.to_string().contains(API_KEY));
    }

    // On decrypt, 400 and 404 mean the keys.
    let transport = Scripted::new([Step::Status(404, None)]);
    let error = service(&transport)
        .build()
        .unwrap()
        .decrypt_data_key(b"keys")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    assert_eq!(transport.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_body_of_exactly_the_limit_is_read() {
    // The limit is inclusive: a body of MAX_RESPONSE_BYTES is parsed (and
    // fails as JSON), one byte more is refused before parsing.
    let transport = Scripted::new([Step::Oversized(MAX_RESPONSE_BYTES)]);
    let error = timed_create(service(&transport)).await.0.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert!(
        error.to_string().contains("not the expected JSON"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    // A backoff far from every Retry-After below, so each wait shows
    // which rule chose it.
    let backoff = Duration::from_secs(20);
    for (step, wait) in [
        (Step::Status(429, Some("0")), Duration::ZERO),
        (Step::Status(429, Some("7")), Duration::from_secs(7)),
        (Step::Status(503, Some("3600")), Duration::from_secs(60)),
        // Honoured when the body of the error broke, too.
        (Step::BrokenBody(503, Some("3")), Duration::from_secs(3)),
    ] {
        let transport = Scripted::new([step.clone()]);
        let (result, elapsed) = timed_create(service(&transport).backoff(backoff, backoff)).await;
        result.unwrap();
        assert_eq!(elapsed, wait, "{step:?}");
        assert_eq!(transport.attempts(), 2);
    }

    // An unparsable value falls back to the backoff: between half and all
    // of it.
    let transport = Scripted::new([Step::Status(503, Some("later"))]);
    let (result, elapsed) = timed_create(service(&transport).backoff(backoff, backoff)).await;
    result.unwrap();
    assert!(
        (backoff / 2..=backoff).contains(&elapsed),
        "{elapsed:?} is not the backoff"
    );

    // A wait that would reach the deadline is not started.
    let transport = Scripted::new([Step::Status(503, Some("50"))]);
    let (result, elapsed) =
        timed_create(service(&transport).deadline(Duration::from_secs(30))).await;
    assert_eq!(result.unwrap_err().status(), Some(503));
    assert_eq!(transport.attempts(), 1);
    assert_eq!(elapsed, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_transport_that_never_answers_times_out_per_attempt() {
    let transport = Scripted::always(Step::Hang);
    let builder = no_backoff(&transport)
        .timeout(Duration::from_secs(5))
        .max_retries(2);
    let (result, elapsed) = timed_create(builder).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert_eq!(error.status(), None);
    assert!(error.to_string().contains("per-attempt timeout"), "{error}");
    assert_eq!(transport.attempts(), 3);
    assert_eq!(elapsed, Duration::from_secs(15));
    let seen = transport.seen.lock().unwrap();
    let starts: Vec<Duration> = seen.iter().map(|s| s.at - seen[0].at).collect();
    assert_eq!(
        starts,
        [0, 5, 10].map(Duration::from_secs),
        "each attempt starts when the last one timed out"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_the_last_attempt_and_stops_retries() {
    let deadline = Duration::from_secs(45);
    let transport = Scripted::always(Step::Hang);
    let builder = no_backoff(&transport)
        .timeout(Duration::from_secs(30))
        .deadline(deadline)
        .max_retries(10);
    let (result, elapsed) = timed_create(builder).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("deadline"), "{error}");
    assert_eq!(transport.attempts(), 2, "30 s, then the 15 s left");
    assert_eq!(elapsed, deadline);

    // Failures that come at once are retried until the deadline leaves no
    // room for the next wait.
    let transport = Scripted::always(Step::Status(503, Some("10")));
    let builder = service(&transport).deadline(deadline).max_retries(10);
    let (result, elapsed) = timed_create(builder).await;
    assert_eq!(result.unwrap_err().status(), Some(503));
    assert_eq!(transport.attempts(), 5, "at 0, 10, 20, 30 and 40 s");
    assert_eq!(elapsed, Duration::from_secs(40));
}

#[tokio::test(start_paused = true)]
async fn max_retries_is_respected() {
    for (max_retries, attempts) in [(Some(0), 1), (Some(2), 3), (None, 4)] {
        let transport = Scripted::always(Step::Status(503, None));
        let mut builder = service(&transport);
        if let Some(max_retries) = max_retries {
            builder = builder.max_retries(max_retries);
        }
        let error = timed_create(builder).await.0.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Api);
        assert_eq!(error.status(), Some(503));
        assert!(error.is_retryable());
        assert_eq!(error.request_id(), Some("req_scripted"));
        assert_eq!(
            transport.attempts(),
            attempts,
            "max_retries {max_retries:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_the_headers_and_the_body() {
    let transport = Scripted::new([Step::Status(503, Some("0"))]);
    let client = service(&transport)
        .user_agent("my-app/1.0")
        .build()
        .unwrap();
    let pair = client.create_data_key(&context()).await.unwrap();
    client
        .rekey(&pair.encrypted_keys, &context())
        .await
        .unwrap();
    client.decrypt_data_key(b"keys").await.unwrap();

    let seen = transport.seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for request in seen.iter() {
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(request.header("authorization"), format!("Bearer {API_KEY}"));
        assert!(request.headers["authorization"].is_sensitive());
        assert!(!format!("{:?}", request.headers).contains(API_KEY));
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("accept"), "application/json");
        assert_eq!(request.header("user-agent"), "my-app/1.0");
    }
    let paths: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        paths,
        [
            "https://keys.example.com/prefix/vault/v1/keys/data-key",
            "https://keys.example.com/prefix/vault/v1/keys/data-key",
            "https://keys.example.com/prefix/vault/v1/keys/rekey",
            "https://keys.example.com/prefix/vault/v1/keys/decrypt",
        ]
    );
    let context = json!({"organization_id": "org_1"});
    assert_eq!(seen[0].body, json!({"context": context}));
    assert_eq!(seen[1].body, seen[0].body, "a retry sends the same body");
    assert_eq!(
        seen[2].body,
        json!({"context": context, "encrypted_keys": "a2V5cw=="})
    );
    assert_eq!(seen[3].body, json!({"keys": "a2V5cw=="}));
}

#[tokio::test(start_paused = true)]
async fn the_default_user_agent_names_this_sdk() {
    let transport = Scripted::new([]);
    let client = service(&transport).build().unwrap();
    client.create_data_key(&context()).await.unwrap();
    let seen = transport.seen.lock().unwrap();
    assert!(
        seen[0].header("user-agent").starts_with("vault-rs/"),
        "{:?}",
        seen[0].headers
    );
}

#[tokio::test(start_paused = true)]
async fn empty_contexts_and_keys_are_refused_before_sending() {
    let transport = Scripted::new([]);
    let client = service(&transport).build().unwrap();
    let error = client
        .create_data_key(&KeyContext::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    let error = client.rekey(b"keys", &KeyContext::new()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    let error = client.rekey(b"", &context()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    let error = client.decrypt_data_key(b"").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    assert_eq!(transport.attempts(), 0);
}

#[tokio::test]
async fn debug_shows_the_transport_and_hides_the_api_key() {
    let transport = Scripted::new([]);
    let client = service(&transport).build().unwrap();
    let debug = format!("{client:?}");
    assert!(debug.contains("Scripted"), "{debug}");
    assert!(!debug.contains(API_KEY), "{debug}");
    let builder = format!("{:?}", service(&transport));
    assert!(builder.contains("Scripted"), "{builder}");
    assert!(!builder.contains(API_KEY), "{builder}");
}

#[tokio::test(start_paused = true)]
async fn workos_error_codes_and_details_are_kept_and_shown() {
    let transport = Scripted::always(Step::Body(
        422,
        r#"{"message":"Validation failed","code":"invalid_request_parameters",
            "errors":[{"field":"context","code":"too_many_entries"}]}"#,
    ));
    let service = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(BASE_URL)
        .transport(transport.clone())
        .build()
        .unwrap();
    let context = KeyContext::new().with("organization_id", "org_1").unwrap();
    let error = service.create_data_key(&context).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    assert_eq!(error.status(), Some(422));
    assert_eq!(error.code(), Some("invalid_request_parameters"));
    assert_eq!(error.request_id(), Some("req_scripted"));
    let text = error.to_string();
    assert!(
        text.contains(
            "Validation failed (code invalid_request_parameters; context: too_many_entries)"
        ),
        "{text}"
    );
    assert_eq!(transport.attempts(), 1, "a 422 is not retried");
}
