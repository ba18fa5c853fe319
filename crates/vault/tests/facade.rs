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
                .encrypt_with(
                    plaintext,
                    &context("org_1"),
                    &vault::EncryptOptions::new().aad(b"row-7"),
                )
                .await
                .unwrap();
            assert_eq!(vault::inspect(&ciphertext).unwrap().layout, layout);
            let opened = vault
                .decrypt_with(&ciphertext, &vault::DecryptOptions::new().aad(b"row-7"))
                .await
                .unwrap();
            assert_eq!(opened, plaintext, "{layout}");
        }
    }
}

#[tokio::test]
async fn absent_and_empty_aad_are_the_same_and_wrong_aad_fails() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault.encrypt("secret", &context("org_1")).await.unwrap();
    assert_eq!(
        vault
            .decrypt_to_string(&ciphertext, &vault::DecryptOptions::new().aad(b""))
            .await
            .unwrap(),
        "secret"
    );
    assert!(matches!(
        vault
            .decrypt_with(&ciphertext, &vault::DecryptOptions::new().aad(b"other"))
            .await,
        Err(Error::Decrypt)
    ));
    let with_aad = vault
        .encrypt_with(
            "secret",
            &context("org_1"),
            &vault::EncryptOptions::new().aad(b"a"),
        )
        .await
        .unwrap();
    assert!(matches!(
        vault.decrypt(&with_aad).await,
        Err(Error::Decrypt)
    ));
}

#[tokio::test]
async fn rekey_changes_only_the_keys_region() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let original = vault
        .encrypt_with(
            "payload",
            &context("org_1"),
            &vault::EncryptOptions::new().aad(b"aad"),
        )
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
            .decrypt_to_string(&rekeyed, &vault::DecryptOptions::new().aad(b"aad"))
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
        vault.decrypt("not base64!").await,
        Err(Error::Format(_))
    ));
    assert!(matches!(
        vault.decrypt("").await,
        Err(Error::Format(vault_format::Error::Empty))
    ));
    let error = vault.encrypt("x", &KeyContext::new()).await.unwrap_err();
    assert_eq!(
        error.key_service().map(|e| e.kind()),
        Some(vault::KeyServiceErrorKind::InvalidContext)
    );
    assert_eq!(error.kind(), vault::ErrorKind::InvalidContext);
    assert!(!error.to_string().contains("key service"), "{error}");
    let binary = vault.encrypt([0xff, 0xfe], &context("o")).await.unwrap();
    assert!(matches!(
        vault
            .decrypt_to_string(&binary, &vault::DecryptOptions::new())
            .await,
        Err(Error::NotUtf8)
    ));
}

#[tokio::test]
async fn inspect_reads_offline() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault.encrypt("12345", &context("org_1")).await.unwrap();
    let info = vault::inspect(&ciphertext).unwrap();
    assert_eq!(
        (info.layout, info.iv_len, info.ciphertext_len),
        (Layout::A12, 12, 5)
    );
    assert_eq!(info.key_blob_kind.name(), "local");
    assert_eq!(info.keyring_version, Some(1));
    assert_eq!(info.data_key_id.as_deref().map(str::len), Some(36));
}

#[tokio::test]
async fn decrypt_as_forces_the_layout_and_refuses_the_wrong_one() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let as_b = vault::EncryptOptions::new().layout(Layout::B);
    let ciphertext = vault
        .encrypt_with(b"forced", &context("org_1"), &as_b)
        .await
        .unwrap();
    let read_as = |layout| vault::DecryptOptions::new().layout(layout);
    let opened = vault
        .decrypt_with(&ciphertext, &read_as(Layout::B))
        .await
        .unwrap();
    assert_eq!(opened, b"forced");
    let wrong = vault.decrypt_with(&ciphertext, &read_as(Layout::A12)).await;
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
        .encrypt_with(
            b"offline",
            &context("org_1"),
            &vault::EncryptOptions::new().aad(b"row"),
        )
        .await
        .unwrap();
    let keys = vault::inspect(&ciphertext).unwrap().encrypted_keys;
    let key = vault.decrypt_data_key_base64(&keys).await.unwrap();
    drop(vault);
    let row = vault::DecryptOptions::new().aad(b"row");
    for options in [row, row.layout(Layout::A12)] {
        let opened = vault::decrypt_with_data_key(&ciphertext, &key, &options).unwrap();
        assert_eq!(opened, b"offline");
    }
    assert!(matches!(
        vault::decrypt_with_data_key(
            &ciphertext,
            &key,
            &vault::DecryptOptions::new().aad(b"other")
        ),
        Err(Error::Decrypt)
    ));
    assert!(matches!(
        vault::decrypt_with_data_key(&ciphertext, &key, &row.layout(Layout::B)),
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
                .encrypt_in_place(
                    &mut buf,
                    room,
                    &context("org_1"),
                    &vault::EncryptOptions::new().aad(b"row"),
                )
                .await
                .unwrap();
            let text = vault::b64::encode(&buf[start..]);
            assert_eq!(vault::inspect(&text).unwrap().layout, layout);
            let opened = vault
                .decrypt_with(&text, &vault::DecryptOptions::new().aad(b"row"))
                .await
                .unwrap();
            assert_eq!(opened, plaintext, "{layout} room {room}");

            let mut envelope = buf[start..].to_vec();
            let held = envelope.len();
            // A current-thread runtime: the open runs on this thread.
            record_wipes();
            let wrong = vault
                .decrypt_in_place(&mut envelope, &vault::DecryptOptions::new().aad(b"other"))
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
