//! What the facade answers to ciphertexts that were tampered with. The
//! keys region is not covered by the GCM tag (see docs/SECURITY.md), so
//! these tests show what binds it after all: a swapped keys region fetches
//! another data key, and the tag check then fails with the one opaque error.

use vault::{Error, KeyContext, Layout, LocalKeyService, Vault};
use vault_format::{b64, Envelope};

const LAYOUTS: [Layout; 4] = [Layout::A12, Layout::A32, Layout::B, Layout::APrime];

fn context(org: &str) -> KeyContext {
    KeyContext::new()
        .with("organization_id", org)
        .expect("a valid context")
}

/// `ciphertext` with its keys region replaced by `donor`'s.
fn with_keys_of(ciphertext: &str, donor: &str) -> String {
    let bytes = b64::decode(ciphertext).expect("base64");
    let donor_bytes = b64::decode(donor).expect("base64");
    let envelope = Envelope::parse(&bytes).expect("an envelope");
    let donor = Envelope::parse(&donor_bytes).expect("an envelope");
    Envelope::new(
        envelope.layout(),
        envelope.iv(),
        envelope.tag(),
        donor.keys(),
        envelope.ciphertext(),
    )
    .expect("valid parts")
    .to_base64()
}

#[tokio::test]
async fn swapped_keys_regions_fail_with_the_opaque_error() {
    let service = std::sync::Arc::new(LocalKeyService::ephemeral());
    for layout in LAYOUTS {
        let vault = Vault::builder()
            .shared_key_service(service.clone())
            .layout(layout)
            .build()
            .expect("a vault");
        // Same context, same AAD, same plaintext: only the data keys differ.
        let first = vault
            .encrypt_with(
                "same plaintext",
                &context("org_1"),
                &vault::EncryptOptions::new().aad(b"row_1"),
            )
            .await
            .expect("encrypt");
        let second = vault
            .encrypt_with(
                "same plaintext",
                &context("org_1"),
                &vault::EncryptOptions::new().aad(b"row_1"),
            )
            .await
            .expect("encrypt");
        for (ciphertext, donor) in [(&first, &second), (&second, &first)] {
            let swapped = with_keys_of(ciphertext, donor);
            // Both blobs are genuine: the key service unwraps the donor's
            // data key, and the tag check refuses it.
            let error = vault
                .decrypt_with(&swapped, &vault::DecryptOptions::new().aad(b"row_1"))
                .await
                .expect_err("a swapped keys region");
            assert!(matches!(error, Error::Decrypt), "{layout}: {error:?}");
            assert_eq!(
                error.to_string(),
                "ciphertext or associated data does not match the data key"
            );
        }
        // Unswapped, both still open.
        assert_eq!(
            vault
                .decrypt_with(&first, &vault::DecryptOptions::new().aad(b"row_1"))
                .await
                .expect("opens"),
            b"same plaintext"
        );
    }
}

#[tokio::test]
async fn tampered_tags_fail_with_the_opaque_error() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault
        .encrypt_with(
            "tag me",
            &context("org_1"),
            &vault::EncryptOptions::new().aad(b"row_1"),
        )
        .await
        .expect("encrypt");
    let bytes = b64::decode(&ciphertext).expect("base64");
    let tag = Envelope::parse(&bytes).expect("an envelope").frame().tag();
    for i in tag {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        let error = vault
            .decrypt_with(
                &b64::encode(&tampered),
                &vault::DecryptOptions::new().aad(b"row_1"),
            )
            .await
            .expect_err("a tampered tag");
        assert!(matches!(error, Error::Decrypt), "byte {i}: {error:?}");
    }
}

#[tokio::test]
async fn wrong_aad_fails_with_the_opaque_error() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    for layout in LAYOUTS {
        let vault = Vault::builder()
            .shared_key_service(vault.key_service().clone())
            .layout(layout)
            .build()
            .expect("a vault");
        let ciphertext = vault
            .encrypt_with(
                "bound to row 1",
                &context("org_1"),
                &vault::EncryptOptions::new().aad(b"row_1"),
            )
            .await
            .expect("encrypt");
        for aad in [Some(&b"row_2"[..]), None, Some(b"row_1\0")] {
            let error = vault
                .decrypt_with(
                    &ciphertext,
                    &vault::DecryptOptions::new().aad(aad.unwrap_or_default()),
                )
                .await
                .expect_err("a wrong AAD");
            assert!(
                matches!(error, Error::Decrypt),
                "{layout} {aad:?}: {error:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_tampered_keys_region_is_refused_by_the_key_service() {
    let vault = Vault::new(LocalKeyService::ephemeral());
    let ciphertext = vault
        .encrypt("x", &context("org_1"))
        .await
        .expect("encrypt");
    let bytes = b64::decode(&ciphertext).expect("base64");
    let keys = Envelope::parse(&bytes).expect("an envelope").frame().keys();
    let mut tampered = bytes.clone();
    tampered[keys.end - 1] ^= 0x01;
    let error = vault
        .decrypt(&b64::encode(&tampered))
        .await
        .expect_err("a tampered blob");
    assert_eq!(
        error.key_service().map(|e| e.kind()),
        Some(vault::KeyServiceErrorKind::InvalidKeys),
        "{error:?}"
    );
}
