//! `Vault::migration`: every keyed path against the real local key
//! service, with key service calls counted.

#![allow(clippy::unwrap_used)] // Tests panic on purpose.

use std::sync::Arc;

use vault::{Change, KeyContext, KeyService, Layout, LocalKeyService, Vault};

fn context(org: &str) -> KeyContext {
    KeyContext::new().with("organization_id", org).unwrap()
}

#[tokio::test]
async fn a32_is_resealed_with_one_call_per_distinct_blob() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let a32 = Vault::builder()
        .shared_key_service(vault.key_service().clone())
        .layout(Layout::A32)
        .build()
        .unwrap();
    let one = a32
        .encrypt_with(
            "one",
            &context("o"),
            &vault::EncryptOptions::new().aad(b"r1"),
        )
        .await
        .unwrap();
    let two = a32
        .encrypt_with(
            "two",
            &context("o"),
            &vault::EncryptOptions::new().aad(b"r2"),
        )
        .await
        .unwrap();
    for to in [Layout::A12, Layout::B, Layout::APrime] {
        let migration = vault.migration(to);
        for (text, aad) in [(&one, b"r1"), (&two, b"r2"), (&one, b"r1")] {
            let migrated = migration.migrate(text, aad).await.unwrap();
            assert_eq!(
                (migrated.from, migrated.change),
                (Layout::A32, Change::Resealed)
            );
            assert_eq!(vault::inspect(&migrated.ciphertext).unwrap().layout, to);
            // The keys blob is kept.
            assert_eq!(
                vault::inspect(&migrated.ciphertext).unwrap().encrypted_keys,
                vault::inspect(text).unwrap().encrypted_keys
            );
            assert!(migration
                .verify(text, &migrated.ciphertext, aad)
                .await
                .unwrap());
        }
        assert_eq!(migration.key_service_calls(), 2, "{to}");
        // Resealing needs the AAD: a wrong one is refused, nothing written.
        assert!(matches!(
            migration.migrate(&one, b"r2").await,
            Err(vault::Error::Decrypt)
        ));
    }
    // And back to A32, from a 12-byte layout.
    let b = vault
        .migration(Layout::B)
        .migrate(&one, b"r1")
        .await
        .unwrap();
    let back = vault
        .migration(Layout::A32)
        .migrate(&b.ciphertext, b"r1")
        .await
        .unwrap();
    assert_eq!(back.change, Change::Resealed);
    assert_eq!(
        vault
            .decrypt_with(&back.ciphertext, &vault::DecryptOptions::new().aad(b"r1"))
            .await
            .unwrap(),
        b"one"
    );
}

#[tokio::test]
async fn a_new_context_rekeys_the_blob_and_a_rerun_changes_nothing() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let a12 = vault
        .encrypt_with(
            "hi",
            &context("old"),
            &vault::EncryptOptions::new().aad(b"r"),
        )
        .await
        .unwrap();
    let migration = vault.migration(Layout::B).with_context(context("new"));
    let moved = migration.migrate(&a12, b"").await.unwrap();
    assert_eq!(moved.change, Change::Rekeyed);
    let before = vault::inspect(&a12).unwrap();
    let after = vault::inspect(&moved.ciphertext).unwrap();
    assert_eq!(after.layout, Layout::B);
    // IV, tag and payload are kept: the keys region is outside the tag.
    let (old_bytes, new_bytes) = (
        vault::b64::decode(&a12).unwrap(),
        vault::b64::decode(&moved.ciphertext).unwrap(),
    );
    let (old_env, new_env) = (
        vault_format::Envelope::parse(&old_bytes).unwrap(),
        vault_format::Envelope::parse(&new_bytes).unwrap(),
    );
    assert_eq!(
        (old_env.iv(), old_env.tag(), old_env.ciphertext()),
        (new_env.iv(), new_env.tag(), new_env.ciphertext())
    );
    assert_ne!(after.encrypted_keys, before.encrypted_keys);
    let blob = vault::b64::decode(&after.encrypted_keys).unwrap();
    assert_eq!(vault_local_context(&blob), Some(context("new")));
    assert_eq!(
        vault
            .decrypt_with(&moved.ciphertext, &vault::DecryptOptions::new().aad(b"r"))
            .await
            .unwrap(),
        b"hi"
    );
    // The old context's key no longer opens it: the same blob claiming
    // the old context is refused.
    let mut forged = blob.clone();
    let at = blob.windows(3).position(|w| w == b"new").unwrap();
    forged[at..at + 3].copy_from_slice(b"old");
    assert_eq!(vault_local_context(&forged), Some(context("old")));
    assert!(vault.decrypt_data_key(&forged).await.is_err());
    assert!(migration
        .verify(&a12, &moved.ciphertext, b"r")
        .await
        .unwrap());
    // Idempotent: already B under the new context.
    let again = migration.migrate(&moved.ciphertext, b"").await.unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(again.ciphertext, moved.ciphertext);
}

fn vault_local_context(blob: &[u8]) -> Option<KeyContext> {
    vault_local::blob_context(blob)
}

#[tokio::test]
async fn moving_to_another_service_reencrypts_and_a_rerun_changes_nothing() {
    let old = Vault::new(LocalKeyService::ephemeral());
    let new: Arc<dyn KeyService> = Arc::new(LocalKeyService::ephemeral());
    let new_vault = Vault::builder()
        .shared_key_service(Arc::clone(&new))
        .build()
        .unwrap();
    let text = old
        .encrypt_with("hi", &context("o"), &vault::EncryptOptions::new().aad(b"r"))
        .await
        .unwrap();

    let without_context = old.migration(Layout::A12).to_service(Arc::clone(&new));
    let error = without_context.migrate(&text, b"r").await.unwrap_err();
    assert!(error.to_string().contains("--context"), "{error}");

    let migration = old
        .migration(Layout::B)
        .with_context(context("o"))
        .to_service(Arc::clone(&new));
    let moved = migration.migrate(&text, b"r").await.unwrap();
    assert_eq!(moved.change, Change::Reencrypted);
    assert_eq!(
        new_vault
            .decrypt_with(&moved.ciphertext, &vault::DecryptOptions::new().aad(b"r"))
            .await
            .unwrap(),
        b"hi"
    );
    assert!(old
        .decrypt_with(&moved.ciphertext, &vault::DecryptOptions::new().aad(b"r"))
        .await
        .is_err());
    assert!(migration
        .verify(&text, &moved.ciphertext, b"r")
        .await
        .unwrap());

    let again = migration.migrate(&moved.ciphertext, b"r").await.unwrap();
    assert_eq!(again.change, Change::Unchanged);
}

#[tokio::test]
async fn not_a_ciphertext_is_a_format_error() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let migration = vault.migration(Layout::B);
    for bad in ["", "hello world", "AAAA"] {
        assert!(matches!(
            migration.migrate(bad, b"").await,
            Err(vault::Error::Format(_))
        ));
    }
}
