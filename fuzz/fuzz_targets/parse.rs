//! Envelope detection and every forced layout over arbitrary bytes, the
//! base64 front door over arbitrary text, and opening whatever parses with
//! a fixed data key (which must fail, and never panic).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vault_crypto::DataKey;
use vault_format::{b64, Envelope, KeyBlob, Layout};

static KEY: LazyLock<DataKey> =
    LazyLock::new(|| DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [7; 32]));

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        assert_eq!(envelope.to_bytes(), data);
        assert_eq!(
            b64::decode(&envelope.to_base64()).expect("our own base64"),
            data
        );
        if let Ok(keys) = envelope.encrypted_keys() {
            let _ = KeyBlob::parse(&keys);
        }
        // No tag can be forged by a fuzzer: opening must fail.
        assert!(vault_crypto::open(&KEY, &envelope, b"").is_err());
    }
    for layout in Layout::ALL {
        if let Ok(envelope) = Envelope::parse_as(data, layout) {
            assert_eq!(envelope.encoded_len(), data.len());
            assert_eq!(envelope.layout(), layout);
            let rebuilt = Envelope::new(
                layout,
                envelope.iv(),
                envelope.tag(),
                envelope.keys(),
                envelope.ciphertext(),
            )
            .expect("parts of a parsed envelope");
            assert_eq!(rebuilt.to_bytes(), data);
            let _ = envelope.encrypted_keys_base64();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(decoded) = b64::decode(text) {
            // Lenient reading, canonical writing: re-encoding round-trips.
            assert_eq!(b64::decode(&b64::encode(&decoded)).ok(), Some(decoded));
        }
        let mut buf = Vec::new();
        let _ = Envelope::parse_base64(text, &mut buf);
        let _ = vault_crypto::open_base64(&KEY, text, b"aad");
    }
});
