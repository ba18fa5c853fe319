//! The facade over our HTTP client over our server, and the blocking API.

use vault::{HttpKeyService, KeyContext, Layout, Vault};
use vault_tests::{backing_service, start_server, API_KEY};

fn context() -> KeyContext {
    KeyContext::new()
        .with("organization_id", "org_http")
        .expect("valid context")
}

#[tokio::test]
async fn encrypt_decrypt_rekey_through_the_server() {
    let server = start_server().await;
    let client = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(server.url())
        .build()
        .expect("client");
    let vault = Vault::new(client);
    let ciphertext = vault
        .encrypt_with(
            "over the wire",
            &context(),
            &vault::EncryptOptions::new().aad(b"aad"),
        )
        .await
        .expect("encrypt");
    assert_eq!(
        vault
            .decrypt_to_string(&ciphertext, &vault::DecryptOptions::new().aad(b"aad"))
            .await
            .expect("decrypt"),
        "over the wire"
    );
    let other = KeyContext::new()
        .with("organization_id", "org_other")
        .expect("valid context");
    let rekeyed = vault.rekey(&ciphertext, &other).await.expect("rekey");
    assert_eq!(
        vault
            .decrypt_with(&rekeyed, &vault::DecryptOptions::new().aad(b"aad"))
            .await
            .expect("decrypt rekeyed"),
        b"over the wire"
    );
    assert_eq!(server.faults().requests(vault_api::wire::DATA_KEY_PATH), 1);
    assert_eq!(server.faults().requests(vault_api::wire::DECRYPT_PATH), 2);
    assert_eq!(server.faults().requests(vault_api::wire::REKEY_PATH), 1);
}

#[test]
fn blocking_api_round_trips() {
    let vault = vault::blocking::Vault::from_async(
        Vault::builder()
            .shared_key_service(backing_service())
            .layout(Layout::B)
            .build()
            .expect("vault"),
    )
    .expect("runtime");
    let ciphertext = vault.encrypt(b"not async", &context()).expect("encrypt");
    assert_eq!(
        vault::inspect(&ciphertext).expect("inspect").layout,
        vault::Layout::B
    );
    assert_eq!(vault.decrypt(&ciphertext).expect("decrypt"), b"not async");
    let pair = vault.create_data_key(&context()).expect("data key");
    assert_eq!(
        vault
            .decrypt_data_key(&pair.encrypted_keys)
            .expect("unwrap"),
        pair.data_key
    );
}

#[tokio::test]
async fn a_custom_key_service_plugs_into_the_facade() {
    // MemoryKeyService is a key service of "our own": WorkOS-shaped blobs
    // kept in a map. The facade needs nothing else from it.
    let vault = Vault::new(vault_tests::MemoryKeyService::new());
    let ciphertext = vault.encrypt("custom", &context()).await.expect("encrypt");
    let info = vault::inspect(&ciphertext).expect("inspect");
    assert_eq!(info.key_blob_kind.name(), "workos");
    assert_eq!(
        vault
            .decrypt_to_string(&ciphertext, &vault::DecryptOptions::new())
            .await
            .expect("decrypt"),
        "custom"
    );
    let rekeyed = vault.rekey(&ciphertext, &context()).await.expect("rekey");
    assert_eq!(
        vault
            .decrypt_to_string(&rekeyed, &vault::DecryptOptions::new())
            .await
            .expect("decrypt rekeyed"),
        "custom"
    );
}
