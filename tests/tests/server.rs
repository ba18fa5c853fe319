//! `vault-server` over raw HTTP: status codes, JSON error bodies, headers,
//! limits, HTTP/2.

use hyper::Method;
use vault_server::ServerConfig;
use vault_tests::{raw_request, start_server, start_server_with, RawResponse, API_KEY};

const DATA_KEY: &str = vault_api::wire::DATA_KEY_PATH;
const DECRYPT: &str = vault_api::wire::DECRYPT_PATH;
const REKEY: &str = vault_api::wire::REKEY_PATH;

/// Every answer is JSON with a request id.
fn assert_common(response: &RawResponse) {
    assert_eq!(response.header("content-type"), "application/json");
    assert!(
        response.header("x-request-id").starts_with("req_"),
        "{:?}",
        response.headers
    );
    serde_json::from_slice::<serde_json::Value>(&response.body).expect("a JSON body");
}

async fn post(server: &vault_server::Server, path: &str, body: &str) -> RawResponse {
    let response = raw_request(
        server,
        Method::POST,
        path,
        Some(API_KEY),
        body.to_owned(),
        false,
    )
    .await;
    assert_common(&response);
    response
}

#[tokio::test]
async fn success_bodies_have_the_workos_shape() {
    let server = start_server().await;
    let created = post(
        &server,
        DATA_KEY,
        r#"{"context":{"organization_id":"org_1"}}"#,
    )
    .await;
    assert_eq!(created.status, 200);
    let json = created.json();
    assert_eq!(json["context"]["organization_id"], "org_1");
    let data_key = base64_len(json["data_key"].as_str().unwrap());
    assert_eq!(data_key, 32);
    let id = json["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let keys = json["encrypted_keys"].as_str().unwrap().to_owned();
    // The local key service's blob magic, `VRS.LKS.v1\0`, as base64.
    assert!(keys.starts_with("VlJTLkxLUy52MQ"), "{keys}");

    let decrypted = post(&server, DECRYPT, &format!(r#"{{"keys":"{keys}"}}"#)).await;
    assert_eq!(decrypted.status, 200);
    assert_eq!(decrypted.json()["id"], id.as_str());
    assert_eq!(decrypted.json()["data_key"], json["data_key"]);

    let rekeyed = post(
        &server,
        REKEY,
        &format!(r#"{{"context":{{"org":"o2"}},"encrypted_keys":"{keys}"}}"#),
    )
    .await;
    assert_eq!(rekeyed.status, 200);
    assert_eq!(rekeyed.json()["data_key"], json["data_key"]);
    assert_eq!(rekeyed.json()["context"]["org"], "o2");
    assert_eq!(rekeyed.header("cache-control"), "no-store");
}

fn base64_len(text: &str) -> usize {
    vault_format::b64::decode(text).expect("base64").len()
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let server = start_server().await;
    let cases = [
        (DATA_KEY, "{not json", 400),
        (DATA_KEY, "", 400),
        (DATA_KEY, r#"{"context":{"org":"o"}"#, 400),
        (DATA_KEY, "{}", 400),
        (DATA_KEY, r#"{"context":{"org":1}}"#, 422),
        (DATA_KEY, r#"{"context":["org"]}"#, 400),
        (DATA_KEY, r#"{"context":{}}"#, 422),
        (DATA_KEY, r#"{"context":{"":"v"}}"#, 422),
        (DECRYPT, r#"{}"#, 400),
        (DECRYPT, r#"{"keys":42}"#, 400),
        (DECRYPT, r#"{"keys":"not*base64"}"#, 400),
        (DECRYPT, r#"{"keys":"V09TLkVLTS52MQ=="}"#, 400),
        (DECRYPT, r#"{"keys":""}"#, 400),
        (REKEY, r#"{"context":{"org":"o"}}"#, 400),
        (
            REKEY,
            r#"{"context":{"org":"o"},"encrypted_keys":"%%"}"#,
            400,
        ),
        (REKEY, r#"{"context":{},"encrypted_keys":"AAAA"}"#, 422),
    ];
    for (path, body, status) in cases {
        let response = post(&server, path, body).await;
        assert_eq!(
            response.status,
            status,
            "{path} {body}: {}",
            response.error()
        );
        assert!(!response.error().is_empty());
    }
    let missing = post(&server, DECRYPT, "{}").await;
    assert!(missing.error().contains("keys"), "{}", missing.error());
    let bad_base64 = post(&server, DECRYPT, r#"{"keys":"not*base64"}"#).await;
    assert!(
        bad_base64.error().contains("base64"),
        "{}",
        bad_base64.error()
    );
}

#[tokio::test]
async fn the_server_validates_contexts() {
    let server = start_server().await;
    let eleven: serde_json::Map<String, serde_json::Value> =
        (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    let body = serde_json::json!({ "context": eleven }).to_string();
    let response = post(&server, DATA_KEY, &body).await;
    assert_eq!(response.status, 422);
    assert!(
        response.error().contains("11 entries"),
        "{}",
        response.error()
    );

    let long_value = serde_json::json!({ "context": { "org": "v".repeat(501) } }).to_string();
    let response = post(&server, DATA_KEY, &long_value).await;
    assert_eq!(response.status, 422);
    assert!(!response.error().contains("vvvv"));
}

#[tokio::test]
async fn authentication_is_required() {
    let server = start_server().await;
    let body = r#"{"context":{"org":"o"}}"#;
    for key in [
        None,
        Some("sk_test_wrong"),
        Some(""),
        Some("sk_test_vault_rs"),
    ] {
        let response = raw_request(&server, Method::POST, DATA_KEY, key, body, false).await;
        assert_common(&response);
        assert_eq!(response.status, 401, "{key:?}");
        assert_eq!(response.header("www-authenticate"), "Bearer");
    }
    // A server without keys refuses everyone.
    let no_keys = vault_server::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        vault_tests::backing_service(),
        ServerConfig::new(),
    )
    .await
    .unwrap();
    let response = raw_request(&no_keys, Method::POST, DATA_KEY, Some(API_KEY), body, false).await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn routing_errors() {
    let server = start_server().await;
    let response = raw_request(
        &server,
        Method::POST,
        "/vault/v1/keys/nope",
        Some(API_KEY),
        "{}",
        false,
    )
    .await;
    assert_common(&response);
    assert_eq!(response.status, 404);

    for path in [DATA_KEY, DECRYPT, REKEY] {
        let response = raw_request(&server, Method::GET, path, Some(API_KEY), "", false).await;
        assert_common(&response);
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), "POST");
    }
    let response = raw_request(&server, Method::POST, "/health", None, "{}", false).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), "GET, HEAD");
}

#[tokio::test]
async fn health_needs_no_key() {
    let server = start_server().await;
    let response = raw_request(&server, Method::GET, "/health", None, "", false).await;
    assert_common(&response);
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = start_server().await;
    let padding = "x".repeat(2 << 20);
    let body = format!(r#"{{"context":{{"org":"o"}},"padding":"{padding}"}}"#);
    let response = raw_request(&server, Method::POST, DATA_KEY, Some(API_KEY), body, false).await;
    assert_common(&response);
    assert_eq!(response.status, 413);

    // The limit is configurable, and a body just under it is fine.
    let small = start_server_with(ServerConfig::new().max_body_bytes(64)).await;
    let body = r#"{"context":{"organization_id":"org_123456789"}}"#;
    assert!(body.len() < 64);
    let response = raw_request(&small, Method::POST, DATA_KEY, Some(API_KEY), body, false).await;
    assert_eq!(response.status, 200);
    let body = r#"{"context":{"organization_id":"org_123456789","b":"a longer value"}}"#;
    let response = raw_request(&small, Method::POST, DATA_KEY, Some(API_KEY), body, false).await;
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn injected_statuses_are_json_with_retry_after() {
    let server = start_server().await;
    server.faults().fail_next(1, 429, Some("7"));
    let response = post(&server, DATA_KEY, r#"{"context":{"org":"o"}}"#).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), "7");
    assert_eq!(response.error(), "Too Many Requests");
    let response = post(&server, DATA_KEY, r#"{"context":{"org":"o"}}"#).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn http2_with_prior_knowledge() {
    let server = start_server().await;
    let response = raw_request(
        &server,
        Method::POST,
        DATA_KEY,
        Some(API_KEY),
        r#"{"context":{"org":"o"}}"#,
        true,
    )
    .await;
    assert_eq!(response.version, hyper::Version::HTTP_2);
    assert_common(&response);
    assert_eq!(response.status, 200);
    let response = raw_request(&server, Method::GET, "/health", None, "", true).await;
    assert_eq!(response.status, 200);
}
