//! The examples in WorkOS's public API reference.

use vault_format::{b64, Envelope, KeyBlob, Layout};

/// The `keys` of the reference's `decryptDataKey` example.
const DECRYPT_DATA_KEY_KEYS: &str = "V09TLkVLTS52MQBiZjUxY2NlYy03OGI0LTUyMDAtYjM4My0zNTczMGU3MWVmNjEBATEBJDU2OWYyNDdjLTFkY2QtNDQzMC04MjRmLWQ3N2MxZDNhZmU1NgF0NTY5ZjI0N2MtMWRjZC00NDMwLTgyNGYtZDc3YzFkM2FmZTU2pWvKMbiudRtpyjYexZCX/K9ggOEioUw2c0B62kEh+oj68uuAJQWNfPKTC+mapgJPxdnMKniKxzI7a6zmHgXTK7dSOmAzJBDhDgtEiaqyKTM=";

#[test]
fn decrypt_data_key_example_is_a_workos_blob() {
    let blob = b64::decode(DECRYPT_DATA_KEY_KEYS).unwrap();
    let parsed = KeyBlob::parse(&blob);
    assert_eq!(parsed.kind(), "workos");
    assert_eq!(parsed.version(), Some("v1"));
    assert_eq!(
        parsed.data_key_id(),
        Some("bf51ccec-78b4-5200-b383-35730e71ef61")
    );
    // The observed structure after the id: 01 01 '1', 01 24 <KEK uuid>, 01 74 ...
    let KeyBlob::WorkOs { rest, .. } = parsed else {
        unreachable!()
    };
    assert_eq!(&rest[..5], b"\x01\x011\x01\x24");
}

#[test]
fn a_blob_alone_is_not_an_envelope_of_a_known_layout() {
    let blob = b64::decode(DECRYPT_DATA_KEY_KEYS).unwrap();
    // Whatever the fallback reads, it must not claim to have found a known blob.
    if let Ok(envelope) = Envelope::parse(&blob) {
        assert_eq!(envelope.layout(), Layout::A12);
        assert!(!KeyBlob::parse(envelope.keys()).is_known());
    }
}
