//! Ciphertexts written by the official SDKs (see `tests/data/README.md` at
//! the workspace root): every positive opens, every negative is refused.

use vault_crypto::{open, open_base64, DataKey, Envelope, Layout};

use vault_testdata::sdk_vectors as file;

#[test]
fn positives_open_with_detection() {
    let file = file();
    let mut per_layout = std::collections::BTreeMap::<String, usize>::new();
    for v in &file.vectors {
        assert_eq!(v.expect, "ok", "{}", v.id);
        let expected_layout: Layout = v.layout.parse().expect("known layout name");
        let key = DataKey::from_base64(&v.data_key_id, &v.data_key_b64).unwrap();
        let bytes = vault_format::b64::decode(&v.ciphertext_b64).unwrap();
        let envelope = Envelope::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(envelope.layout(), expected_layout, "{}", v.id);
        assert_eq!(
            envelope.encrypted_keys_base64().unwrap(),
            v.encrypted_keys_b64,
            "{}",
            v.id
        );
        let plaintext =
            open(&key, &envelope, v.aad_bytes()).unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(plaintext, v.plaintext_utf8.as_bytes(), "{}", v.id);
        let again = open_base64(&key, &v.ciphertext_b64, v.aad_bytes()).unwrap();
        assert_eq!(
            again,
            v.plaintext_utf8.as_bytes(),
            "{} via open_base64",
            v.id
        );
        *per_layout.entry(v.layout.clone()).or_default() += 1;
    }
    println!(
        "sdk vectors: {}/{} positives opened {per_layout:?}",
        file.vectors.len(),
        file.vectors.len()
    );
    for layout in ["A12", "A32", "B", "A-prime"] {
        assert!(per_layout.get(layout).copied().unwrap_or(0) > 0, "{layout}");
    }
}

#[test]
fn negatives_fail() {
    let file = file();
    assert!(!file.negative.is_empty());
    for n in &file.negative {
        assert_eq!(n.expect, "error", "{}", n.id);
        let key = DataKey::from_base64("negative", &n.data_key_b64).unwrap();
        let result = open_base64(&key, &n.ciphertext_b64, n.aad_bytes());
        assert!(result.is_err(), "{} ({}) opened", n.id, n.mutation);
        // Tampering with authenticated parts gives the one opaque error.
        if n.mutation.starts_with("flip-") || n.mutation.contains("aad") {
            assert_eq!(result, Err(vault_crypto::Error::Decrypt), "{}", n.id);
        }
        // Nor does any forced layout open it.
        if let Ok(bytes) = vault_format::b64::decode(&n.ciphertext_b64) {
            for layout in Layout::ALL {
                if let Ok(envelope) = Envelope::parse_as(&bytes, layout) {
                    assert!(
                        open(&key, &envelope, n.aad_bytes()).is_err(),
                        "{} opened as {layout}",
                        n.id
                    );
                }
            }
        }
    }
    println!(
        "sdk vectors: {}/{} negatives refused",
        file.negative.len(),
        file.negative.len()
    );
}
