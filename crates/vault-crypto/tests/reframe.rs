//! Re-framing (vault-format, offline) keeps a ciphertext openable: the
//! re-framed envelope opens to the original plaintext with the same AAD,
//! and is refused with another, for every pair of 12-byte-nonce layouts.

use proptest::prelude::*;
use vault_crypto::{open, seal, DataKey, Envelope, Error, Layout};

fn twelve() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::A12), Just(Layout::B), Just(Layout::APrime)]
}

/// A blob that looks like WorkOS's, so detection finds the layout.
fn workos_blob(filler: &[u8]) -> Vec<u8> {
    [
        b"WOS.EKM.v1\0".as_slice(),
        b"d4ecdb90-30fc-560a-80c4-a1ad67b2b53c",
        filler,
    ]
    .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reframed_envelopes_open_with_the_same_aad_only(
        from in twelve(),
        to in twelve(),
        key in any::<[u8; 32]>(),
        filler in proptest::collection::vec(any::<u8>(), 0..100),
        plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
        other in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        prop_assume!(aad != other);
        let key = DataKey::new("d4ecdb90-30fc-560a-80c4-a1ad67b2b53c", key);
        let sealed = seal(&key, from, &workos_blob(&filler), &plaintext, &aad).unwrap();
        let moved = Envelope::parse(&sealed).unwrap().reframe(to).unwrap();
        let envelope = Envelope::parse(&moved).unwrap();
        prop_assert_eq!(envelope.layout(), to);
        prop_assert_eq!(open(&key, &envelope, &aad).unwrap(), plaintext);
        prop_assert_eq!(open(&key, &envelope, &other), Err(Error::Decrypt));
    }
}

#[test]
fn sdk_vectors_reframed_still_open() {
    for vector in vault_testdata::sdk_vectors().vectors {
        if vector.layout == "A32" {
            continue;
        }
        let key = DataKey::from_base64(&vector.data_key_id, &vector.data_key_b64).unwrap();
        let bytes = vault_format::b64::decode(&vector.ciphertext_b64).unwrap();
        for to in [Layout::A12, Layout::B, Layout::APrime] {
            let moved = Envelope::parse(&bytes).unwrap().reframe(to).unwrap();
            let envelope = Envelope::parse_as(&moved, to).unwrap();
            let plaintext = open(&key, &envelope, vector.aad_bytes()).unwrap();
            assert_eq!(
                plaintext,
                vector.plaintext_utf8.as_bytes(),
                "{} as {to}",
                vector.id
            );
            assert_eq!(
                open(&key, &envelope, b"another record"),
                Err(Error::Decrypt),
                "{} as {to}",
                vector.id
            );
        }
    }
}
