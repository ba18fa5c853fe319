//! Request handling without a socket, through `RequestHandler`: malformed,
//! oversized and mistyped JSON bodies get JSON errors with the right
//! status, never a panic or a 500. The same harness drives the
//! `server_request` fuzz target; its crash inputs, if any, belong here.

use std::sync::Arc;

use vault_local::LocalKeyService;
use vault_server::{RequestHandler, ServerConfig};

const API_KEY: &str = "sk_test_handler";
const DATA_KEY: &str = "/vault/v1/keys/data-key";
const DECRYPT: &str = "/vault/v1/keys/decrypt";
const REKEY: &str = "/vault/v1/keys/rekey";

fn handler(config: ServerConfig) -> RequestHandler {
    RequestHandler::new(
        Arc::new(LocalKeyService::ephemeral()),
        config.api_key(API_KEY),
    )
}

/// POSTs `body` to `path` with the API key; returns the status and the
/// `error` message (or the whole JSON answer on success).
async fn post(handler: &RequestHandler, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let authorization = format!("Bearer {API_KEY}");
    let headers: [(&[u8], &[u8]); 2] = [
        (b"authorization", authorization.as_bytes()),
        (b"content-type", b"application/json"),
    ];
    let (status, headers, answer) = handler
        .handle(b"POST", path, &headers, body)
        .await
        .expect("an answer");
    assert!(headers
        .iter()
        .any(|(name, value)| name == "content-type" && value == b"application/json"));
    let json: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
    (status, json)
}

#[tokio::test]
async fn wrong_json_types_get_400() {
    let handler = handler(ServerConfig::new());
    let cases: [(&str, &str); 11] = [
        (DATA_KEY, r#"{"context":["org","o"]}"#),
        (DATA_KEY, r#"{"context":"org=o"}"#),
        (DATA_KEY, r#"[{"context":{"org":"o"}}]"#),
        (DATA_KEY, r#""context""#),
        (DECRYPT, r#"{"keys":42}"#),
        (DECRYPT, r#"{"keys":["V09TLkVLTS52MQ=="]}"#),
        (DECRYPT, r#"{"keys":{"b64":"AAAA"}}"#),
        (DECRYPT, r#"{"keys":true}"#),
        (REKEY, r#"{"context":{"org":"o"},"encrypted_keys":7}"#),
        (REKEY, r#"{"context":7,"encrypted_keys":"AAAA"}"#),
        (
            REKEY,
            r#"{"context":{"org":"o"},"encrypted_keys":"AAAA","encrypted_keys":"AAAA"}"#,
        ),
    ];
    for (path, body) in cases {
        let (status, json) = post(&handler, path, body.as_bytes()).await;
        assert_eq!(status, 400, "{path} {body}: {json}");
        assert!(json["error"].is_string(), "{json}");
    }
}

#[tokio::test]
async fn type_errors_inside_the_context_get_422_with_message() {
    let handler = handler(ServerConfig::new());
    for (path, body, what) in [
        (DATA_KEY, r#"{"context":{"org":1}}"#, "a number"),
        (DATA_KEY, r#"{"context":{"org":null}}"#, "null"),
        (DATA_KEY, r#"{"context":{"org":["o"]}}"#, "an array"),
        (
            REKEY,
            r#"{"context":{"org":true},"encrypted_keys":"AAAA"}"#,
            "a boolean",
        ),
    ] {
        let (status, json) = post(&handler, path, body.as_bytes()).await;
        assert_eq!(status, 422, "{path} {body}: {json}");
        let message = json["message"].as_str().expect("a message field");
        assert_eq!(json["error"], message, "{json}");
        assert!(
            message.contains(&format!("\"org\" must be a string, not {what}")),
            "{json}"
        );
    }
}

#[tokio::test]
async fn a_context_name_given_twice_gets_422() {
    let handler = handler(ServerConfig::new());
    for (path, body) in [
        (DATA_KEY, r#"{"context":{"a":"b","a":"c"}}"#),
        (DATA_KEY, r#"{"context":{"a":"b","z":"y","a":"b"}}"#),
        (
            REKEY,
            r#"{"context":{"a":"b","a":"c"},"encrypted_keys":"AAAA"}"#,
        ),
    ] {
        let (status, json) = post(&handler, path, body.as_bytes()).await;
        assert_eq!(status, 422, "{path} {body}: {json}");
        let message = json["message"].as_str().expect("a message field");
        assert!(message.contains("names \"a\" twice"), "{json}");
    }
}

#[tokio::test]
async fn malformed_json_gets_400() {
    let handler = handler(ServerConfig::new());
    let nested = "[".repeat(100_000);
    let cases: [&[u8]; 6] = [
        b"",
        b"{",
        b"{\"context\":{\"org\":\"o\"}} trailing",
        b"\xff\xfe{}",
        b"{\"context\":{\"org\":\"\xc3\x28\"}}",
        nested.as_bytes(),
    ];
    for body in cases {
        let (status, json) = post(&handler, DATA_KEY, body).await;
        assert_eq!(status, 400, "{:?}: {json}", String::from_utf8_lossy(body));
        assert!(json["error"].is_string(), "{json}");
    }
}

#[tokio::test]
async fn oversized_json_gets_413() {
    let handler = handler(ServerConfig::new().max_body_bytes(1024));
    let padding = "x".repeat(2048);
    let body = format!(r#"{{"context":{{"org":"o"}},"padding":"{padding}"}}"#);
    let (status, json) = post(&handler, DATA_KEY, body.as_bytes()).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"], "request body is over 1024 bytes");
    // Just under the limit is read.
    let body = format!(r#"{{"context":{{"org":"{}"}}}}"#, "v".repeat(400));
    assert!(body.len() < 1024);
    assert_eq!(post(&handler, DATA_KEY, body.as_bytes()).await.0, 200);
}

#[tokio::test]
async fn the_handler_answers_like_the_server() {
    let handler = handler(ServerConfig::new());
    let (status, created) = post(&handler, DATA_KEY, br#"{"context":{"org":"o"}}"#).await;
    assert_eq!(status, 200, "{created}");
    let keys = created["encrypted_keys"].as_str().expect("encrypted_keys");
    let body = format!(r#"{{"keys":"{keys}"}}"#);
    let (status, decrypted) = post(&handler, DECRYPT, body.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(decrypted["data_key"], created["data_key"]);

    // No key, a wrong method, an unknown path, an invalid method.
    let (status, _, _) = handler
        .handle(b"POST", DATA_KEY, &[], b"{}")
        .await
        .expect("an answer");
    assert_eq!(status, 401);
    let (status, headers, _) = handler
        .handle(b"GET", DECRYPT, &[], b"")
        .await
        .expect("an answer");
    assert_eq!(status, 405);
    assert!(headers.iter().any(|(n, v)| n == "allow" && v == b"POST"));
    let (status, _, _) = handler
        .handle(b"POST", "/nope", &[], b"")
        .await
        .expect("an answer");
    assert_eq!(status, 404);
    assert!(handler
        .handle(b"BAD METHOD", DECRYPT, &[], b"")
        .await
        .is_none());
    assert!(handler
        .handle(b"POST", "no slash", &[], b"")
        .await
        .is_none());
}
