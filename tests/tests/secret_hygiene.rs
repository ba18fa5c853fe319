//! Secrets stay secret: a full encrypt, decrypt, rekey and serve cycle
//! (the facade over `HttpKeyService` over `vault-server` over
//! `LocalKeyService`, all in this process) with every tracing span and
//! event captured at TRACE level, plus the `Debug` and `Display` of every
//! public type involved, must never show a data key (hex or base64), a
//! master key, the API key or the plaintext.

use std::sync::Arc;

use base64::Engine;
use vault::{
    CacheConfig, CachingKeyService, HttpKeyService, KeyContext, KeyService, LocalKeyService,
    ReusePolicy, Vault,
};
use vault_local::Keyring;
use vault_server::{Server, ServerConfig};

const API_KEY: &str = "sk_test_hygiene_Q29uZmlkZW50aWFs";
const WRONG_API_KEY: &str = "sk_test_hygiene_wrong_V3Jvbmc";
const PLAINTEXT: &str = "plaintext-canary-4b1d7e0c: the launch codes are 0000";
const AAD: &[u8] = b"record_42";

fn captured() {
    vault_tests::capture::traces();
}

fn log_text() -> String {
    vault_tests::capture::traces()
}

/// Every spelling of a secret we look for.
fn spellings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut out: Vec<String> = engines.iter().map(|e| e.encode(secret)).collect();
    out.push(hex.to_uppercase());
    out.push(hex);
    // `{:?}` of the bytes, as a derived Debug would print them.
    out.push(format!("{secret:?}"));
    out
}

fn assert_clean(what: &str, text: &str, secrets: &[(&str, Vec<String>)]) {
    for (name, spellings) in secrets {
        for spelling in spellings {
            assert!(
                !text.contains(spelling.as_str()),
                "{what} shows the {name} as {spelling:?}"
            );
        }
    }
}

fn context(org: &str) -> KeyContext {
    KeyContext::new()
        .with("organization_id", org)
        .expect("a valid context")
}

#[tokio::test]
async fn no_secret_in_traces_debug_or_display() {
    captured();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keyring_path = dir.path().join("keyring.json");
    let local = Arc::new(LocalKeyService::open_or_create(&keyring_path).expect("a keyring"));
    let backing: Arc<dyn KeyService> = local.clone();
    let server_config = ServerConfig::new().api_key(API_KEY);
    let server_config_debug = format!("{server_config:?} {server_config:#?}");
    let server = Server::bind(
        "127.0.0.1:0".parse().expect("address"),
        backing,
        server_config,
    )
    .await
    .expect("bind");

    let http = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(server.url());
    let builder_debug = format!("{http:?}");
    let http = http.build().expect("a client");
    let vault = Vault::new(http.clone());

    // The cycle: encrypt, decrypt, rekey, decrypt again, in two layouts.
    let mut ciphertexts = Vec::new();
    let ciphertext = vault
        .encrypt_with(
            PLAINTEXT,
            &context("org_1"),
            &vault::EncryptOptions::new().aad(AAD),
        )
        .await
        .expect("encrypt");
    assert_eq!(
        vault
            .decrypt_to_string(&ciphertext, &vault::DecryptOptions::new().aad(AAD))
            .await
            .expect("decrypt"),
        PLAINTEXT
    );
    let rekeyed = vault
        .rekey(&ciphertext, &context("org_2"))
        .await
        .expect("rekey");
    assert_eq!(
        vault
            .decrypt_with(&rekeyed, &vault::DecryptOptions::new().aad(AAD))
            .await
            .expect("decrypt"),
        PLAINTEXT.as_bytes()
    );
    let b_layout = Vault::builder()
        .key_service(http.clone())
        .layout(vault::Layout::B)
        .build()
        .expect("a vault");
    let b_ciphertext = b_layout
        .encrypt(PLAINTEXT, &context("org_3"))
        .await
        .expect("encrypt");
    ciphertexts.extend([ciphertext.clone(), rekeyed.clone(), b_ciphertext]);

    // Through a cache, with reuse.
    let cache_config = CacheConfig::default().with_reuse(
        ReusePolicy::default()
            .with_max_age(std::time::Duration::from_secs(60))
            .with_max_messages(10)
            .with_max_bytes(1 << 20),
    );
    let caching = Arc::new(CachingKeyService::new(http.clone(), cache_config));
    let cached_vault = Vault::builder()
        .shared_key_service(caching.clone())
        .build()
        .expect("a vault");
    for _ in 0..2 {
        let text = cached_vault
            .encrypt_with(
                PLAINTEXT,
                &context("org_4"),
                &vault::EncryptOptions::new().aad(AAD),
            )
            .await
            .expect("encrypt");
        cached_vault
            .decrypt_with(&text, &vault::DecryptOptions::new().aad(AAD))
            .await
            .expect("decrypt");
        ciphertexts.push(text);
    }
    let pair = vault
        .create_data_key(&context("org_5"))
        .await
        .expect("a data key");
    let again = vault
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect("decrypt it");

    // Failures, whose errors are printed below.
    let wrong_aad = vault
        .decrypt_with(&ciphertext, &vault::DecryptOptions::new().aad(b"record_43"))
        .await
        .expect_err("wrong AAD");
    let mut tampered = pair.encrypted_keys.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered_keys = vault
        .decrypt_data_key(&tampered)
        .await
        .expect_err("tampered keys");
    let unauthorized = HttpKeyService::builder()
        .api_key(WRONG_API_KEY)
        .base_url(server.url())
        .build()
        .expect("a client")
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect_err("a wrong API key");
    let bad_format = vault.decrypt("AAAA").await.expect_err("not an envelope");
    let wrong_key =
        vault_crypto::open_base64(&pair.data_key, &ciphertext, AAD).expect_err("another data key");
    let format_error = vault_format::b64::decode("ab-c").expect_err("URL-safe");
    let local_error = local
        .decrypt_data_key(&tampered)
        .await
        .expect_err("tampered");
    let context_error = KeyContext::new()
        .with("", "value")
        .expect_err("an empty name");

    // Every data key that took part, as the backing service sees it.
    let mut secrets: Vec<(&str, Vec<String>)> = vec![
        ("API key", vec![API_KEY.to_owned()]),
        ("wrong API key", vec![WRONG_API_KEY.to_owned()]),
        ("plaintext", spellings(PLAINTEXT.as_bytes())),
    ];
    secrets
        .last_mut()
        .expect("plaintext")
        .1
        .push(PLAINTEXT.to_owned());
    for text in &ciphertexts {
        let bytes = vault_format::b64::decode(text).expect("base64");
        let envelope = vault_format::Envelope::parse(&bytes).expect("an envelope");
        let keys = envelope.encrypted_keys().expect("keys");
        let key = local.decrypt_data_key(&keys).await.expect("unwrap");
        secrets.push(("data key", spellings(key.secret_bytes())));
    }
    secrets.push(("data key", spellings(pair.data_key.secret_bytes())));
    let keyring_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&keyring_path).expect("the keyring file"))
            .expect("JSON");
    for key in keyring_file["keys"].as_array().expect("keys") {
        let text = key["key"].as_str().expect("a key");
        let bytes = vault_format::b64::decode(text).expect("base64");
        secrets.push(("master key", spellings(&bytes)));
    }

    // Debug and Display of everything a user can print.
    let keyring = Keyring::open(&keyring_path).expect("the keyring");
    let data_key_response = vault_api::wire::DecryptDataKeyResponse {
        data_key: vault_api::wire::SecretString::from(pair.data_key.secret_base64()),
        id: pair.id().to_owned(),
    };
    let printed = [
        format!("{:?} {:#?}", pair.data_key, pair.data_key),
        format!("{again:?}"),
        format!("{pair:?} {pair:#?}"),
        format!("{http:?} {http:#?}"),
        builder_debug,
        format!("{local:?} {:?}", local.keyring_info()),
        format!("{keyring:?} {keyring:#?} {:?}", keyring.info()),
        format!("{vault:?} {vault:#?} {cached_vault:?} {b_layout:?}"),
        format!("{caching:?} {caching:#?} {:?}", caching.stats()),
        format!("{context_error} {context_error:?}"),
        format!("{:?}", context("org_1")),
        format!("{:?}", Vault::builder().key_service(http.clone())),
        format!("{server:?}"),
        server_config_debug,
        format!("{data_key_response:?}"),
        format!("{wrong_aad} {wrong_aad:?}"),
        format!("{tampered_keys} {tampered_keys:?}"),
        format!("{unauthorized} {unauthorized:?}"),
        format!("{bad_format} {bad_format:?}"),
        format!("{wrong_key} {wrong_key:?}"),
        format!("{format_error} {format_error:?}"),
        format!("{local_error} {local_error:?}"),
        format!("{:?}", vault::inspect(&ciphertext).expect("inspect")),
    ];
    for (i, text) in printed.iter().enumerate() {
        assert_clean(&format!("printed value #{i} ({text})"), text, &secrets);
    }

    server.shutdown().await.expect("shut down");

    // The traces: present, detailed, and clean.
    let traces = log_text();
    assert!(!traces.is_empty(), "nothing was traced");
    for expected in [
        "/vault/v1/keys/data-key",
        "/vault/v1/keys/decrypt",
        "/vault/v1/keys/rekey",
        "local key service unwrapped a data key",
        "vault encrypted a message",
        "vault rekeyed a ciphertext",
        "DEBUG",
        "vault_server.request",
        "vault_api.call",
        "status=401",
        "data_key_id=",
    ] {
        assert!(
            traces.contains(expected),
            "traces lack {expected:?}:\n{traces}"
        );
    }
    if std::env::var_os("SHOW_TRACES").is_some() {
        eprintln!("{traces}");
    }
    assert_clean("the traces", &traces, &secrets);
}
