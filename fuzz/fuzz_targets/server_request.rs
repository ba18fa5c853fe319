//! vault-server's request handling with no network: method, path,
//! headers and JSON body through `RequestHandler`, the code the server runs
//! for every request, over a local key service.
//!
//! Input: two control bytes, then the body.
//! - byte 0: bits 0-2 pick the method; bits 3-4 the `Authorization`
//!   header (the right key, a wrong one, none, a malformed one); bit 5 adds
//!   a `Content-Length` equal to the body's length, bit 6 a huge one.
//! - byte 1: bits 0-2 pick the path; the rest picks which real blob
//!   replaces each `@BLOB@` in the body (as base64), so the fuzzer reaches
//!   successful decrypts and rekeys too.
//!
//! Every answer must be a JSON object with a request id, never a 500 (bad
//! input is the client's fault), never a data key in an error, and a 200
//! from decrypt or rekey only for a blob the service wrote.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use tokio::runtime::{Builder, Runtime};
use vault_api::{DataKeyPair, KeyContext, KeyService};
use vault_local::LocalKeyService;
use vault_server::{RequestHandler, ServerConfig};

const API_KEY: &str = "sk_test_fuzz_0123456789";
const METHODS: [&[u8]; 8] = [
    b"POST", b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"BREW",
];
const PATHS: [&str; 8] = [
    "/vault/v1/keys/data-key",
    "/vault/v1/keys/decrypt",
    "/vault/v1/keys/rekey",
    "/health",
    "/vault/v1/keys/decrypt/",
    "/vault/v1/keys/data-key?x=1",
    "/VAULT/v1/keys/rekey",
    "//",
];

struct Fixture {
    runtime: Runtime,
    handler: RequestHandler,
    pairs: Vec<DataKeyPair>,
    blobs_base64: Vec<String>,
    keys_base64: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let service = Arc::new(LocalKeyService::ephemeral());
    let mut pairs = Vec::new();
    for context in [
        KeyContext::new().with("organization_id", "org_123"),
        KeyContext::new().with("a", "b"),
    ] {
        let context = context.expect("a valid context");
        let pair = runtime
            .block_on(service.create_data_key(&context))
            .expect("create a data key");
        pairs.push(pair);
    }
    let blobs_base64 = pairs.iter().map(|p| p.encrypted_keys_base64()).collect();
    let keys_base64 = pairs
        .iter()
        .map(|p| p.data_key.secret_base64().to_string())
        .collect();
    let config = ServerConfig::new().api_key(API_KEY).max_body_bytes(2048);
    Fixture {
        runtime,
        handler: RequestHandler::new(service, config),
        pairs,
        blobs_base64,
        keys_base64,
    }
});

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let [control, route, body @ ..] = data else {
        return;
    };
    let method = METHODS[usize::from(control & 7)];
    let path = PATHS[usize::from(route & 7)];
    let blob = &fixture.blobs_base64[usize::from(route >> 3) % fixture.blobs_base64.len()];
    let body = replace(body, b"@BLOB@", blob.as_bytes());

    let authorization = match (control >> 3) & 3 {
        0 => Some(format!("Bearer {API_KEY}")),
        1 => Some("Bearer sk_test_wrong".to_owned()),
        2 => None,
        _ => Some(format!("bearer   {API_KEY}x ")),
    };
    let length = body.len().to_string();
    let mut headers: Vec<(&[u8], &[u8])> = vec![(b"content-type", b"application/json")];
    if let Some(value) = &authorization {
        headers.push((b"authorization", value.as_bytes()));
    }
    if control & 0x20 != 0 {
        headers.push((b"content-length", length.as_bytes()));
    }
    if control & 0x40 != 0 {
        headers.push((b"content-length", b"18446744073709551615"));
    }

    let Some((status, headers, answer)) = fixture
        .runtime
        .block_on(fixture.handler.handle(method, path, &headers, &body))
    else {
        panic!("no fault is armed, so every request is answered");
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    assert_eq!(header("content-type"), Some(&b"application/json"[..]));
    assert!(header("x-request-id").is_some_and(|id| id.starts_with(b"req_")));
    let json: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
    assert!(json.is_object());
    assert!(status != 500, "bad input got a 500: {json}");
    if status == 200 {
        return check_success(fixture, path, &body, &json);
    }
    assert!(json["error"].is_string(), "{json}");
    let text = String::from_utf8_lossy(&answer);
    for key in &fixture.keys_base64 {
        assert!(!text.contains(key.as_str()), "an error carries a data key");
    }
});

/// A 200 from decrypt or rekey names a blob the service wrote, and hands
/// back that blob's data key.
fn check_success(fixture: &Fixture, path: &str, body: &[u8], json: &serde_json::Value) {
    let field = match path {
        "/vault/v1/keys/decrypt" => "keys",
        "/vault/v1/keys/rekey" => "encrypted_keys",
        _ => return,
    };
    let request: serde_json::Value = serde_json::from_slice(body).expect("a JSON request");
    let sent = request[field].as_str().expect("the keys field is text");
    let blob = vault_format::b64::decode(sent).expect("base64 keys");
    let pair = fixture
        .pairs
        .iter()
        .find(|p| p.encrypted_keys == blob)
        .expect("only a blob the service wrote unwraps");
    assert_eq!(
        json["data_key"].as_str(),
        Some(pair.data_key.secret_base64().as_str())
    );
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
