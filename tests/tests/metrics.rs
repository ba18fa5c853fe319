//! What `vault-server` reports: Prometheus metrics on an address of their
//! own, one JSON access log line per request, and `/health` (alive) apart
//! from `/health/ready` (the readiness check).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::Method;
use vault_api::KeyService;
use vault_server::{Metrics, ServerConfig};
use vault_tests::capture::{BlockedWriter, LogBuffer};
use vault_tests::{client_for, context, raw_request, start_server_with, API_KEY};

/// GETs `url` with a plain HTTP/1.1 client: the status and the body.
async fn get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let response = client
        .get(url.parse().expect("a URL"))
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_routes_statuses_latency_and_key_service_errors() {
    let metrics = Metrics::new();
    let server = start_server_with(ServerConfig::new().metrics(metrics.clone())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics_url = format!("http://{}", listener.local_addr().expect("addr"));
    let scraper = tokio::spawn(vault_server::serve_metrics(listener, metrics));

    let client = client_for(&server)
        .max_retries(0)
        .build()
        .expect("a client");
    let pair = client
        .create_data_key(&context("org_m"))
        .await
        .expect("a key");
    client
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect("decrypted");
    // Well-formed but unknown keys: the key service refuses them.
    let unknown = client
        .decrypt_data_key(b"WOS.EKM.v1\0not-a-known-blob-at-all")
        .await;
    assert!(unknown.is_err());
    let missing = raw_request(&server, Method::GET, "/nope", None, "", false).await;
    assert_eq!(missing.status, 404);

    let (status, text) = get(&format!("{metrics_url}/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        r#"vault_server_requests_total{route="data_key",status="200"} 1"#,
        r#"vault_server_requests_total{route="decrypt",status="200"} 1"#,
        r#"vault_server_requests_total{route="decrypt",status="400"} 1"#,
        r#"vault_server_requests_total{route="not_found",status="404"} 1"#,
        r#"vault_server_request_duration_seconds_count{route="decrypt"} 2"#,
        r#"vault_server_request_duration_seconds_bucket{route="decrypt",le="+Inf"} 2"#,
        r#"vault_server_key_service_errors_total{kind="InvalidKeys"} 1"#,
        "vault_server_requests_in_flight 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("/nope"), "paths are not labels: {text}");
    assert_eq!(get(&format!("{metrics_url}/other")).await.0, 404);
    scraper.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_one_json_access_log_line_without_secrets() {
    let log = LogBuffer::new();
    let server = start_server_with(ServerConfig::new().access_log(log.clone())).await;
    let client = client_for(&server).build().expect("a client");
    client
        .create_data_key(&context("org_log"))
        .await
        .expect("a key");
    let refused = raw_request(
        &server,
        Method::POST,
        "/vault/v1/keys/decrypt",
        Some("sk_wrong"),
        "{}",
        true,
    )
    .await;
    assert_eq!(refused.status, 401);

    let lines = log.wait_for_lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (first, second) = (&lines[0], &lines[1]);
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/vault/v1/keys/data-key");
    assert_eq!(first["route"], "data_key");
    assert_eq!(first["status"], 200);
    assert_eq!(first["version"], "HTTP/1.1");
    assert_eq!(first["tls"], false);
    assert!(first["request_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("req_")));
    assert!(first["remote"]
        .as_str()
        .is_some_and(|r| r.starts_with("127.0.0.1:")));
    assert!(first["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(first["time"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.len() == 24));
    assert_eq!(second["status"], 401);
    assert_eq!(second["version"], "HTTP/2.0");
    let text = format!("{lines:?}");
    assert!(
        !text.contains(API_KEY) && !text.contains("sk_wrong"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_alive_and_ready_asks_the_readiness_check() {
    let readable = Arc::new(AtomicBool::new(true));
    let check = readable.clone();
    let config = ServerConfig::new().readiness(move || {
        if check.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("the keyring cannot be read".to_owned())
        }
    });
    let server = start_server_with(config).await;
    let probe = |path: &'static str| raw_request(&server, Method::GET, path, None, "", false);
    assert_eq!(probe("/health/ready").await.json()["status"], "ready");
    readable.store(false, Ordering::SeqCst);
    let not_ready = probe("/health/ready").await;
    assert_eq!(not_ready.status, 503);
    assert_eq!(not_ready.json()["status"], "not ready");
    assert!(
        !String::from_utf8_lossy(&not_ready.body).contains("keyring"),
        "reasons stay in the log"
    );
    for alive in ["/health", "/health/live"] {
        let answer = probe(alive).await;
        assert_eq!(
            (answer.status, answer.json()["status"].clone()),
            (200, "ok".into()),
            "{alive}"
        );
    }
    assert_eq!(
        raw_request(&server, Method::POST, "/health/ready", None, "", false)
            .await
            .status,
        405
    );
    readable.store(true, Ordering::SeqCst);
    assert_eq!(probe("/health/ready").await.status, 200);
}

/// The value of an unlabelled counter in Prometheus text.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_access_log_never_stalls_serving() {
    // A stderr whose reader stopped reading: every write blocks.
    let stalled = BlockedWriter::new();
    let server = start_server_with(ServerConfig::new().access_log(stalled.clone())).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let health: hyper::Uri = format!("{}/health", server.url()).parse().expect("a URL");
    // More requests than the log's queue holds, while its writer is stuck
    // on the first line.
    for _ in 0..1100 {
        let answer = client.get(health.clone()).await.expect("/health answers");
        assert_eq!(answer.status(), 200);
    }
    vault_tests::round_trip(
        &client_for(&server).build().expect("a client"),
        "org_stalled",
    )
    .await;
    let text = server.metrics().render();
    let dropped = counter(&text, "vault_server_access_log_dropped_lines_total");
    assert!(dropped >= 1100 - 1024 - 1, "{text}");
    stalled.open();
    server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_cannot_flood_the_access_log() {
    let log = LogBuffer::new();
    let server = start_server_with(ServerConfig::new().access_log(log.clone())).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        let request = hyper::Request::post(format!("{}/vault/v1/keys/decrypt", server.url()))
            .header("authorization", "Bearer sk_guess")
            .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
                b"{}",
            )))
            .expect("a request");
        let answer = client.request(request).await.expect("an answer");
        assert_eq!(answer.status(), 401);
    }
    let took = started.elapsed();
    let text = server.metrics().render();
    server.shutdown().await.expect("a clean shutdown");

    let lines = log.json_lines();
    assert!(lines.iter().all(|line| line["status"] == 401), "{lines:?}");
    // A burst of 10, then one a second.
    let allowed = 10 + took.as_secs() + 1;
    let logged = u64::try_from(lines.len()).expect("a count");
    assert!(
        logged <= allowed,
        "{logged} lines in {took:?}, at most {allowed}"
    );
    assert!(logged >= 10, "the burst is logged: {logged}");
    assert_eq!(
        counter(&text, "vault_server_access_log_suppressed_lines_total"),
        1000 - logged,
        "{text}"
    );
    assert_eq!(
        counter(&text, "vault_server_access_log_dropped_lines_total"),
        0
    );
}
