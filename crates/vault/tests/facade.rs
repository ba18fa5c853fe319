//! The facade end to end over the embedded key service.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use vault::{Error, KeyContext, Layout, LocalKeyService, Vault};
use vault_crypto::test_hooks::{record_wipes, take_wipes, Wipe};
use vault_format::{b64, Envelope, KeyBlob};

fn context(org: &str) -> KeyContext {
    KeyContext::new().with("organization_id", org).unwrap()
}

#[tokio::test]
async fn round_trips_in_every_layout() {
    let service = std::sync::Arc::new(LocalKeyService::ephemeral());
    for layout in Layout::ALL {
        let vault = Vault::builder()
            .shared_key_service(service.clone())
            .layout(layout)
            .build()
            .unwrap();
        for plaintext in [
            &b""[..],
            b"x",
            "h\u{e9}llo \u{1f510}".as_bytes(),
            &[0u8; 70_000][..],
        ] {
            let ciphertext = vault
                .encrypt(plaintext, &context("org_1"), Some(b"row-7"))
                .await
                .unwrap();
            assert_eq!(Vault::inspect(&ciphertext).unwrap().layout, layout.name());
            let opened = vault.decrypt(&ciphertext, Some(b"row-7")).await.unwrap();
            assert_eq!(opened, plaintext, "{layout}");
        }
    }
}

#[tokio::test]
async fn absent_and_empty_aad_are_the_same_and_wrong_aad_fails() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault
        .encrypt_str("secret", &context("org_1"), None)
        .await
        .unwrap();
    assert_eq!(
        vault
            .decrypt_to_string(&ciphertext, Some(b""))
            .await
            .unwrap(),
        "secret"
    );
    assert!(matches!(
        vault.decrypt(&ciphertext, Some(b"other")).await,
        Err(Error::Decrypt)
    ));
    let with_aad = vault
        .encrypt_str("secret", &context("org_1"), Some("a"))
        .await
        .unwrap();
    assert!(matches!(
        vault.decrypt(&with_aad, None).await,
        Err(Error::Decrypt)
    ));
}

#[tokio::test]
async fn rekey_changes_only_the_keys_region() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let original = vault
        .encrypt("payload", &context("org_1"), Some(b"aad"))
        .await
        .unwrap();
    let rekeyed = vault.rekey(&original, &context("org_2")).await.unwrap();
    assert_ne!(original, rekeyed);

    let (before, after) = (
        b64::decode(&original).unwrap(),
        b64::decode(&rekeyed).unwrap(),
    );
    let (before, after) = (
        Envelope::parse(&before).unwrap(),
        Envelope::parse(&after).unwrap(),
    );
    assert_eq!(
        (before.iv(), before.tag(), before.ciphertext()),
        (after.iv(), after.tag(), after.ciphertext())
    );
    assert_ne!(before.keys(), after.keys());
    // Same data key, so the same id.
    assert_eq!(
        KeyBlob::parse(before.keys()).data_key_id(),
        KeyBlob::parse(after.keys()).data_key_id()
    );
    assert_eq!(
        vault
            .decrypt_to_string(&rekeyed, Some(b"aad"))
            .await
            .unwrap(),
        "payload"
    );
}

#[tokio::test]
async fn data_keys_round_trip() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let pair = vault.create_data_key(&context("org_1")).await.unwrap();
    let key = vault.decrypt_data_key(&pair.encrypted_keys).await.unwrap();
    assert_eq!(key, pair.data_key);
    assert_eq!(key.id(), pair.id());
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    assert!(matches!(
        vault.decrypt("not base64!", None).await,
        Err(Error::Format(_))
    ));
    assert!(matches!(
        vault.decrypt("", None).await,
        Err(Error::Format(vault_format::Error::Empty))
    ));
    let error = vault
        .encrypt("x", &KeyContext::new(), None)
        .await
        .unwrap_err();
    assert_eq!(
        error.key_service().map(|e| e.kind()),
        Some(vault::ErrorKind::InvalidContext)
    );
    let binary = vault
        .encrypt([0xff, 0xfe], &context("o"), None)
        .await
        .unwrap();
    assert!(matches!(
        vault.decrypt_to_string(&binary, None).await,
        Err(Error::NotUtf8)
    ));
}

#[tokio::test]
async fn inspect_reads_offline() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault
        .encrypt("12345", &context("org_1"), None)
        .await
        .unwrap();
    let info = Vault::inspect(&ciphertext).unwrap();
    assert_eq!(
        (info.layout, info.iv_len, info.ciphertext_len),
        ("A12", 12, 5)
    );
    assert_eq!(info.key_blob_kind, "local");
    assert_eq!(info.keyring_version, Some(1));
    assert_eq!(info.data_key_id.as_deref().map(str::len), Some(36));
}

#[tokio::test]
async fn decrypt_as_forces_the_layout_and_refuses_the_wrong_one() {
    let vault = Vault::new(LocalKeyService::ephemeral()).with_layout(Layout::B);
    let ciphertext = vault
        .encrypt(b"forced", &context("org_1"), None)
        .await
        .unwrap();
    let opened = vault
        .decrypt_as(&ciphertext, Layout::B, None)
        .await
        .unwrap();
    assert_eq!(opened, b"forced");
    let wrong = vault.decrypt_as(&ciphertext, Layout::A12, None).await;
    assert!(
        matches!(
            wrong,
            Err(Error::Format(_) | Error::Decrypt | Error::KeyService(_))
        ),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn decrypt_with_a_held_data_key_needs_no_key_service() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault
        .encrypt(b"offline", &context("org_1"), Some(b"row"))
        .await
        .unwrap();
    let keys = Vault::inspect(&ciphertext).unwrap().encrypted_keys;
    let key = vault.decrypt_data_key_base64(&keys).await.unwrap();
    drop(vault);
    for layout in [None, Some(Layout::A12)] {
        let opened = Vault::decrypt_with_data_key(&ciphertext, &key, layout, Some(b"row")).unwrap();
        assert_eq!(opened, b"offline");
    }
    assert!(matches!(
        Vault::decrypt_with_data_key(&ciphertext, &key, None, Some(b"other")),
        Err(Error::Decrypt)
    ));
    assert!(matches!(
        Vault::decrypt_with_data_key(&ciphertext, &key, Some(Layout::B), Some(b"row")),
        Err(Error::Format(_) | Error::Decrypt)
    ));
}

#[tokio::test]
async fn in_place_encryption_reads_like_any_other_ciphertext() {
    let service = std::sync::Arc::new(LocalKeyService::ephemeral());
    for layout in Layout::ALL {
        let vault = Vault::builder()
            .shared_key_service(service.clone())
            .layout(layout)
            .build()
            .unwrap();
        for room in [0, 17, vault::HEAD_ROOM] {
            let plaintext = vec![0xa5u8; 70_000];
            let mut buf = vec![0u8; room];
            buf.extend_from_slice(&plaintext);
            let start = vault
                .encrypt_in_place(&mut buf, room, &context("org_1"), Some(b"row"))
                .await
                .unwrap();
            let text = vault::b64::encode(&buf[start..]);
            assert_eq!(Vault::inspect(&text).unwrap().layout, layout.name());
            let opened = vault.decrypt(&text, Some(b"row")).await.unwrap();
            assert_eq!(opened, plaintext, "{layout} room {room}");

            let mut envelope = buf[start..].to_vec();
            let held = envelope.len();
            // A current-thread runtime: the open runs on this thread.
            record_wipes();
            let wrong = vault
                .decrypt_in_place(&mut envelope, None, Some(b"other"))
                .await;
            assert!(matches!(wrong, Err(Error::Decrypt)));
            assert!(envelope.is_empty(), "a failed open empties the buffer");
            assert_eq!(
                take_wipes(),
                [Wipe {
                    len: held,
                    all_zero: true
                }],
                "and zeroes all it held first"
            );
        }
    }
}
