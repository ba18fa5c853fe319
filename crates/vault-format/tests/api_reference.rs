//! The examples in WorkOS's public API reference
//! (`tests/data/api-reference-examples.json`).

use vault_format::{b64, Envelope, Error, KeyBlob, Layout};
use vault_testdata::api_reference as reference;

#[test]
fn decrypt_data_key_example_is_a_workos_blob() {
    let reference = reference();
    let blob = b64::decode(&reference.decrypt_data_key_keys_b64).unwrap();
    let parsed = KeyBlob::parse(&blob);
    assert_eq!(parsed.kind().name(), "workos");
    assert_eq!(parsed.version(), Some("v1"));
    assert_eq!(
        parsed.data_key_id(),
        Some(reference.decrypt_data_key_expect.data_key_id.as_str())
    );
    // The observed structure after the id: 01 01 '1', 01 24 <KEK uuid>, 01 74 ...
    assert_eq!(blob.len(), 206);
    let KeyBlob::WorkOs { rest, .. } = parsed else {
        unreachable!()
    };
    assert_eq!(&rest[..5], b"\x01\x011\x01\x24");
}

#[test]
fn decrypt_example_is_detected_as_a32_with_its_data_key_id() {
    let reference = reference();
    let expect = &reference.decrypt_ciphertext_expect;
    let bytes = b64::decode(&reference.decrypt_ciphertext_b64).unwrap();
    let envelope = Envelope::parse(&bytes).unwrap();
    let layout: Layout = expect.layout.as_deref().unwrap().parse().unwrap();
    assert_eq!(layout, Layout::A32);
    assert_eq!(envelope.layout(), layout);
    assert_eq!(envelope.iv().len(), 32);
    let keys = envelope.encrypted_keys().unwrap();
    assert_eq!(
        KeyBlob::parse(&keys).data_key_id(),
        Some(expect.data_key_id.as_str())
    );
}

#[test]
fn a_cut_off_decrypt_example_is_refused_not_misread() {
    let text = reference().decrypt_ciphertext_b64;
    let prefix = &text[..45];
    assert!(matches!(
        b64::decode(prefix),
        Err(Error::MalformedBase64 { .. })
    ));
    let bytes = b64::decode(&prefix[..44]).unwrap();
    assert_eq!(
        Envelope::parse_as(&bytes, Layout::A32),
        Err(Error::TooShort {
            layout: Layout::A32,
            len: bytes.len(),
            min: 49
        })
    );
}

#[test]
fn a_bare_blob_is_not_mistaken_for_an_envelope_with_a_known_blob() {
    let blob = b64::decode(&reference().decrypt_data_key_keys_b64).unwrap();
    if let Ok(envelope) = Envelope::parse(&blob) {
        assert_eq!(envelope.layout(), Layout::A12);
        assert!(!KeyBlob::parse(envelope.keys()).is_known());
    }
}
