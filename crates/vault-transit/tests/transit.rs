//! The Transit key service against a real OpenBao dev server (TLS with its
//! own CA) on 127.0.0.1. See `bao/mod.rs` for how the server is found.

#![allow(clippy::unwrap_used)]

mod bao;

use std::sync::Arc;
use std::time::Duration;

use bao::Bao;
use vault_api::{CacheConfig, CachingKeyService, ErrorKind, KeyContext, KeyService};
use vault_format::{KeyBlob, Layout};
use vault_transit::TransitKeyService;

fn context(org: &str) -> KeyContext {
    KeyContext::new()
        .with("organization_id", org)
        .unwrap()
        .with("env", "prod")
        .unwrap()
}

fn key_version(blob: &[u8]) -> u32 {
    match KeyBlob::parse(blob) {
        KeyBlob::Transit { key_version, .. } => key_version,
        other => panic!("not a Transit blob: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_rotation_and_rewrap() {
    let Some(bao) = Bao::start_or_skip("round_trips_rotation_and_rewrap") else {
        return;
    };
    let service = bao.service("dek").build().unwrap();
    service.create_key().await.unwrap();
    service.check().await.unwrap();

    let pair = service.create_data_key(&context("org_1")).await.unwrap();
    let blob = KeyBlob::parse(&pair.encrypted_keys);
    assert_eq!(blob.kind().name(), "transit");
    assert_eq!(blob.data_key_id(), Some(pair.id()));
    assert_eq!(key_version(&pair.encrypted_keys), 1);
    let again = service
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .unwrap();
    assert_eq!(again, pair.data_key);
    assert_eq!(again.id(), pair.id());

    // Rekey: same data key, new context, and only the new context opens it.
    let rekeyed = service
        .rekey(&pair.encrypted_keys, &context("org_2"))
        .await
        .unwrap();
    assert_eq!(rekeyed.data_key, pair.data_key);
    assert_eq!(rekeyed.context, context("org_2"));
    assert_ne!(rekeyed.encrypted_keys, pair.encrypted_keys);
    assert_eq!(
        service
            .decrypt_data_key(&rekeyed.encrypted_keys)
            .await
            .unwrap(),
        pair.data_key
    );

    // A payload sealed before the rotation, in layout B (detected by magic).
    let sealed = vault_crypto::seal_to_base64(
        &pair.data_key,
        Layout::B,
        &pair.encrypted_keys,
        b"hello",
        b"row-1",
    )
    .unwrap();

    service.rotate().await.unwrap();
    let newer = service.create_data_key(&context("org_1")).await.unwrap();
    assert_eq!(key_version(&newer.encrypted_keys), 2);
    assert_eq!(
        service
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .unwrap(),
        pair.data_key,
        "old versions still unwrap"
    );

    // Rewrap after rotation: the payload is untouched, the keys move to v2.
    let rewrapped = service.rewrap_ciphertext(&sealed).await.unwrap();
    let before = vault_format::b64::decode(&sealed).unwrap();
    let after = vault_format::b64::decode(&rewrapped).unwrap();
    let (before, after) = (
        vault_format::Envelope::parse(&before).unwrap(),
        vault_format::Envelope::parse(&after).unwrap(),
    );
    assert_eq!(
        (
            before.layout(),
            before.iv(),
            before.tag(),
            before.ciphertext()
        ),
        (after.layout(), after.iv(), after.tag(), after.ciphertext())
    );
    assert_eq!(key_version(after.keys()), 2);
    assert_eq!(KeyBlob::parse(after.keys()).data_key_id(), Some(pair.id()));

    // Retire version 1: old blobs stop opening, rewrapped ones still do.
    bao.ok(&[
        "write",
        "transit/keys/dek/config",
        "min_decryption_version=2",
    ]);
    let retired = service
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .unwrap_err();
    assert_eq!(retired.kind(), ErrorKind::InvalidKeys, "{retired}");
    let key = service.decrypt_data_key(after.keys()).await.unwrap();
    assert_eq!(key, pair.data_key);
    assert_eq!(
        vault_crypto::open_base64(&key, &rewrapped, b"row-1").unwrap(),
        b"hello"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear() {
    let Some(bao) = Bao::start_or_skip("refusals_are_clear") else {
        return;
    };
    let service = bao.service("dek").build().unwrap();
    service.create_key().await.unwrap();
    let pair = service.create_data_key(&context("org_1")).await.unwrap();

    // Wrong token: Unauthorized, not retried, the token never shown.
    let wrong = bao
        .service("dek")
        .token("s.wrong-token-value")
        .build()
        .unwrap();
    for error in [
        wrong.create_data_key(&context("org_1")).await.unwrap_err(),
        wrong
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
        assert!(!error.is_retryable());
        assert_eq!(error.status(), Some(403));
        assert!(error.to_string().contains("VAULT_TOKEN"), "{error}");
        assert!(!format!("{error} {error:?}").contains("wrong-token-value"));
    }
    let debug = format!("{service:?} {wrong:?}");
    assert!(
        !debug.contains(&bao.token) && !debug.contains("wrong-token-value"),
        "{debug}"
    );

    // Context mismatch: the same ciphertext under another context.
    let moved = replace(&pair.encrypted_keys, b"org_1", b"org_9");
    let error = service.decrypt_data_key(&moved).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys, "{error}");

    // Every changed byte makes unwrapping fail, and never with a panic.
    for at in 0..pair.encrypted_keys.len() {
        let mut tampered = pair.encrypted_keys.clone();
        tampered[at] ^= 0x01;
        let result = service.decrypt_data_key(&tampered).await;
        let error = result
            .err()
            .unwrap_or_else(|| panic!("byte {at} changed, still opened"));
        assert_eq!(error.kind(), ErrorKind::InvalidKeys, "byte {at}: {error}");
    }
    let local = vault_local::LocalKeyService::ephemeral()
        .create_data_key(&context("o"))
        .await
        .unwrap();
    let error = service
        .decrypt_data_key(&local.encrypted_keys)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("local key service"), "{error}");

    // Keys that would not bind the context, or do not exist, are refused.
    bao.ok(&["write", "-f", "transit/keys/plain"]);
    let plain = bao.service("plain").build().unwrap();
    let error = plain.create_data_key(&context("o")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("not a derived key"), "{error}");
    let missing = bao.service("missing").build().unwrap();
    let error = missing.check().await.unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");

    // No trust in the server's CA: a connection error, not an answer.
    let untrusted = TransitKeyService::builder()
        .address(&bao.address)
        .token(&bao.token)
        .key("dek")
        .max_retries(0)
        .build()
        .unwrap();
    assert_eq!(
        untrusted.check().await.unwrap_err().kind(),
        ErrorKind::Connect
    );

    // Sealed: 503, retryable (the CLI exits 3), after the retries.
    bao.ok(&["operator", "seal"]);
    let error = service
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::Api, Some(503)),
        "{error}"
    );
    assert!(error.is_retryable());
    assert!(error.to_string().contains("sealed"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_a_cache_in_front() {
    let Some(bao) = Bao::start_or_skip("namespaces_and_a_cache_in_front") else {
        return;
    };
    bao.ok(&["namespace", "create", "team-a"]);
    bao.ok(&["secrets", "enable", "-namespace=team-a", "transit"]);
    let team = bao.service("dek").namespace("team-a").build().unwrap();
    team.create_key().await.unwrap();
    let root = bao.service("dek").build().unwrap();
    root.create_key().await.unwrap();
    let pair = team.create_data_key(&context("org_1")).await.unwrap();
    assert_eq!(
        team.decrypt_data_key(&pair.encrypted_keys).await.unwrap(),
        pair.data_key
    );
    let error = root
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidKeys,
        "another namespace's key: {error}"
    );

    let cache = CachingKeyService::new(Arc::new(team.clone()), CacheConfig::default());
    let cached = cache.create_data_key(&context("org_1")).await.unwrap();
    assert_eq!(
        cache
            .decrypt_data_key(&cached.encrypted_keys)
            .await
            .unwrap(),
        cached.data_key
    );
    for _ in 0..3 {
        assert_eq!(
            cache.decrypt_data_key(&pair.encrypted_keys).await.unwrap(),
            pair.data_key
        );
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.decrypt_misses, stats.decrypt_hits),
        (1, 3),
        "{stats:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_connect_error() {
    let port = bao::free_port_pair();
    let service = TransitKeyService::builder()
        .address(format!("http://127.0.0.1:{port}"))
        .token("s.unused")
        .key("dek")
        .max_retries(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .build()
        .unwrap();
    let error = service
        .create_data_key(&context("org_1"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .unwrap();
    [&haystack[..at], to, &haystack[at + from.len()..]].concat()
}
