//! The examples in WorkOS's public API reference
//! (`tests/data/workos-api-reference.json`).

use vault_format::{b64, Envelope, Error, KeyBlob, Layout};

use vault_testdata::api_reference as reference;

#[test]
fn decrypt_data_key_example_is_a_workos_blob() {
    let reference = reference();
    let blob = b64::decode(&reference.decrypt_data_key_keys).unwrap();
    let parsed = KeyBlob::parse(&blob);
    assert_eq!(parsed.kind(), "workos");
    assert_eq!(parsed.version(), Some("v1"));
    assert_eq!(
        parsed.data_key_id(),
        Some(reference.decrypt_data_key_keys_data_key_id.as_str())
    );
    // The observed structure after the id: 01 01 '1', 01 24 <KEK uuid>, 01 74 ...
    let KeyBlob::WorkOs { rest, .. } = parsed else {
        unreachable!()
    };
    assert_eq!(&rest[..5], b"\x01\x011\x01\x24");
}

#[test]
fn decrypt_example_is_a32() {
    let reference = reference();
    match reference.decrypt_ciphertext {
        Some(text) => {
            let bytes = b64::decode(&text).unwrap();
            let envelope = Envelope::parse(&bytes).unwrap();
            assert_eq!(envelope.layout(), Layout::A32);
            let keys = envelope.encrypted_keys().unwrap();
            assert_eq!(
                KeyBlob::parse(&keys).data_key_id(),
                Some("d4ecdb90-30fc-560a-80c4-a1ad67b2b53c")
            );
        }
        None => {
            // Only the example's first characters survive in our copy: a
            // cut-off A32 envelope must be refused, never misread.
            let prefix = &reference.decrypt_ciphertext_prefix;
            assert!(matches!(
                b64::decode(prefix),
                Err(Error::MalformedBase64 { .. })
            ));
            let bytes = b64::decode(&prefix[..prefix.len() / 4 * 4]).unwrap();
            assert_eq!(
                Envelope::parse_as(&bytes, Layout::A32),
                Err(Error::TooShort {
                    layout: Layout::A32,
                    len: bytes.len(),
                    min: 49
                })
            );
        }
    }
}

#[test]
fn a_bare_blob_is_not_mistaken_for_an_envelope_with_a_known_blob() {
    let blob = b64::decode(&reference().decrypt_data_key_keys).unwrap();
    if let Ok(envelope) = Envelope::parse(&blob) {
        assert_eq!(envelope.layout(), Layout::A12);
        assert!(!KeyBlob::parse(envelope.keys()).is_known());
    }
}
