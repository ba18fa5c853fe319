//! The local key service: round trips, tampering, rotation, rekey.
#![allow(clippy::unwrap_used)]

use vault_api::{DataKeyPair, ErrorKind, KeyContext, KeyService};
use vault_format::__private::{LOCAL_HEADER_LEN, LOCAL_MAGIC, WORKOS_MAGIC};
use vault_format::KeyBlob;
use vault_local::LocalKeyService;

fn context() -> KeyContext {
    KeyContext::from_pairs([("organization_id", "org_123"), ("region", "eu-west-1")]).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn create(service: &LocalKeyService, context: &KeyContext) -> DataKeyPair {
    rt().block_on(service.create_data_key(context)).unwrap()
}

fn decrypt(service: &LocalKeyService, blob: &[u8]) -> Result<vault_api::DataKey, vault_api::Error> {
    rt().block_on(service.decrypt_data_key(blob))
}

#[tokio::test]
async fn create_then_decrypt_round_trips() {
    let service = LocalKeyService::ephemeral();
    let pair = service.create_data_key(&context()).await.unwrap();
    assert_eq!(pair.context, context());
    assert_eq!(pair.id(), pair.data_key.id());
    let again = service
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .unwrap();
    assert_eq!(again.secret_bytes(), pair.data_key.secret_bytes());
    assert_eq!(again.id(), pair.id());

    let other = service.create_data_key(&context()).await.unwrap();
    assert_ne!(other.id(), pair.id());
    assert_ne!(other.data_key.secret_bytes(), pair.data_key.secret_bytes());
}

#[tokio::test]
async fn blob_parses_as_local_with_id_and_version() {
    let service = LocalKeyService::ephemeral();
    let pair = service.create_data_key(&context()).await.unwrap();
    match KeyBlob::parse(&pair.encrypted_keys) {
        KeyBlob::Local {
            data_key_id,
            keyring_version,
            version,
            ..
        } => {
            assert_eq!(data_key_id, pair.id());
            assert_eq!(keyring_version, 1);
            assert_eq!(version, "v1");
        }
        other => panic!("not a local blob: {other:?}"),
    }
    // No key material in the clear.
    let key = pair.data_key.secret_bytes();
    assert!(!pair.encrypted_keys.windows(8).any(|w| w == &key[..8]));
    // The context names and values are in the blob (they select the KEKs).
    let text = String::from_utf8_lossy(&pair.encrypted_keys);
    assert!(text.contains("organization_id") && text.contains("org_123"));
}

#[tokio::test]
async fn rotation_keeps_old_blobs_and_wraps_with_the_new_version() {
    let service = LocalKeyService::ephemeral();
    let old = service.create_data_key(&context()).await.unwrap();
    assert_eq!(service.rotate().unwrap(), 2);
    assert_eq!(service.keyring_info().newest, 2);
    let new = service.create_data_key(&context()).await.unwrap();
    assert!(matches!(
        KeyBlob::parse(&new.encrypted_keys),
        KeyBlob::Local {
            keyring_version: 2,
            ..
        }
    ));
    assert_eq!(
        service.decrypt_data_key(&old.encrypted_keys).await.unwrap(),
        old.data_key
    );
    assert_eq!(
        service.decrypt_data_key(&new.encrypted_keys).await.unwrap(),
        new.data_key
    );
}

#[test]
fn every_flipped_byte_fails() {
    let service = LocalKeyService::ephemeral();
    for context in [
        KeyContext::from_pairs([("o", "")]).unwrap(),
        context(),
        KeyContext::from_pairs((0..10).map(|i| (format!("k{i}"), format!("v{i}")))).unwrap(),
    ] {
        let pair = create(&service, &context);
        let blob = &pair.encrypted_keys;
        assert!(decrypt(&service, blob).is_ok());
        for offset in 0..blob.len() {
            for mask in [0x01u8, 0x20, 0x80, 0xff] {
                let mut bad = blob.clone();
                bad[offset] ^= mask;
                let error = decrypt(&service, &bad).unwrap_err();
                assert_eq!(
                    error.kind(),
                    ErrorKind::InvalidKeys,
                    "offset {offset} mask {mask:#x}: {error}"
                );
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_fails() {
    let service = LocalKeyService::ephemeral();
    let pair = create(&service, &context());
    let blob = &pair.encrypted_keys;
    for len in 0..blob.len() {
        let error = decrypt(&service, &blob[..len]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKeys, "length {len}");
    }
    let mut longer = blob.clone();
    longer.push(0);
    let error = decrypt(&service, &longer).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    assert!(error.to_string().contains("trailing"), "{error}");
}

#[test]
fn entries_cannot_be_dropped_or_swapped() {
    // Build a blob with one entry less by hand: the header's count changes,
    // so the AAD of the remaining entry no longer matches.
    let service = LocalKeyService::ephemeral();
    let one = KeyContext::from_pairs([("a", "1")]).unwrap();
    let two = KeyContext::from_pairs([("a", "1"), ("b", "2")]).unwrap();
    let pair = create(&service, &two);
    let blob = &pair.encrypted_keys;
    let entry_a_len = 2 + 1 + 2 + 1 + 12 + 48;
    let mut dropped = blob[..LOCAL_HEADER_LEN].to_vec();
    dropped.push(1);
    dropped.extend_from_slice(&blob[LOCAL_HEADER_LEN + 1..LOCAL_HEADER_LEN + 1 + entry_a_len]);
    assert_eq!(
        decrypt(&service, &dropped).unwrap_err().kind(),
        ErrorKind::InvalidKeys
    );
    // Splicing in the entry of another blob with the same context and id
    // prefix fails too: the data keys differ and the ids are bound.
    let other = create(&service, &one);
    let mut spliced = blob[..LOCAL_HEADER_LEN].to_vec();
    spliced.push(1);
    spliced.extend_from_slice(&other.encrypted_keys[LOCAL_HEADER_LEN + 1..]);
    assert_eq!(
        decrypt(&service, &spliced).unwrap_err().kind(),
        ErrorKind::InvalidKeys
    );
}

#[tokio::test]
async fn rekey_keeps_the_data_key_and_changes_the_context() {
    let service = LocalKeyService::ephemeral();
    let pair = service.create_data_key(&context()).await.unwrap();
    service.rotate().unwrap();
    let new_context = KeyContext::from_pairs([("organization_id", "org_456")]).unwrap();
    let rekeyed = service
        .rekey(&pair.encrypted_keys, &new_context)
        .await
        .unwrap();
    assert_eq!(rekeyed.context, new_context);
    assert_eq!(rekeyed.id(), pair.id());
    assert_eq!(
        rekeyed.data_key.secret_bytes(),
        pair.data_key.secret_bytes()
    );
    assert_ne!(rekeyed.encrypted_keys, pair.encrypted_keys);
    assert!(matches!(
        KeyBlob::parse(&rekeyed.encrypted_keys),
        KeyBlob::Local { keyring_version: 2, data_key_id, .. } if data_key_id == pair.id()
    ));
    let again = service
        .decrypt_data_key(&rekeyed.encrypted_keys)
        .await
        .unwrap();
    assert_eq!(again, pair.data_key);
    // The old blob still works; rekey does not revoke it.
    assert!(service.decrypt_data_key(&pair.encrypted_keys).await.is_ok());

    let error = service
        .rekey(&pair.encrypted_keys, &KeyContext::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    let error = service.rekey(b"garbage", &new_context).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
}

#[tokio::test]
async fn invalid_context_is_rejected() {
    let service = LocalKeyService::ephemeral();
    let error = service
        .create_data_key(&KeyContext::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidContext);
    // An over-full context cannot reach the service: it is refused when
    // deserialized.
    let too_many = serde_json::from_str::<KeyContext>(
        &serde_json::to_string(
            &(0..11)
                .map(|i| (format!("k{i}"), "v".to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap(),
    );
    assert!(too_many.is_err());
}

#[tokio::test]
async fn foreign_blobs_are_invalid_keys() {
    let service = LocalKeyService::ephemeral();
    let workos = [
        WORKOS_MAGIC.as_slice(),
        b"0237abe8-fc0d-4456-831c-3a2d133e9f90",
        b"\x01\x01\x31",
    ]
    .concat();
    let error = service.decrypt_data_key(&workos).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    assert!(error.to_string().contains("WORKOS_API_KEY"), "{error}");
    let error = service.rekey(&workos, &context()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKeys);

    for blob in [&b""[..], b"hello", &LOCAL_MAGIC[..]] {
        let error = service.decrypt_data_key(blob).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    }
    // A blob from another keyring names its version and fails.
    let other = LocalKeyService::ephemeral();
    for version in [1, 2] {
        if version == 2 {
            other.rotate().unwrap();
        }
        let pair = other.create_data_key(&context()).await.unwrap();
        let error = service
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKeys);
        assert!(
            error.to_string().contains(&format!("version {version}")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn unicode_and_edge_contexts_round_trip() {
    let service = LocalKeyService::ephemeral();
    for context in [
        KeyContext::from_pairs([("ü".repeat(120), "é".repeat(500))]).unwrap(),
        KeyContext::from_pairs([("empty", "")]).unwrap(),
        KeyContext::from_pairs((0..10).map(|i| (format!("k{i}"), "x".repeat(500)))).unwrap(),
    ] {
        let pair = service.create_data_key(&context).await.unwrap();
        assert_eq!(
            service
                .decrypt_data_key(&pair.encrypted_keys)
                .await
                .unwrap(),
            pair.data_key
        );
    }
}
