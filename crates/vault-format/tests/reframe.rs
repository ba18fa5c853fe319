//! Re-framing among the 12-byte-nonce layouts is lossless, and A32 is
//! refused with an error that names the fix.

use proptest::prelude::*;
use vault_format::__private::WORKOS_MAGIC;
use vault_format::{b64, reframe_base64, Envelope, Error, Layout};

fn twelve() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::A12), Just(Layout::B), Just(Layout::APrime)]
}

/// A WorkOS-looking blob, so detection finds the layout after re-framing.
fn workos_blob(filler: &[u8]) -> Vec<u8> {
    [
        WORKOS_MAGIC.as_slice(),
        b"d4ecdb90-30fc-560a-80c4-a1ad67b2b53c",
        filler,
    ]
    .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reframing_to_any_twelve_byte_layout_and_back_is_the_identity(
        from in twelve(),
        to in twelve(),
        iv in any::<[u8; 12]>(),
        tag in any::<[u8; 16]>(),
        keys in proptest::collection::vec(any::<u8>(), 1..400), // no blob is empty
        ciphertext in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let region = if from == Layout::APrime { b64::encode(&keys).into_bytes() } else { keys.clone() };
        let original = Envelope::new(from, &iv, &tag, &region, &ciphertext).unwrap().to_bytes();
        let envelope = Envelope::parse_as(&original, from).unwrap();

        let moved = envelope.reframe(to).unwrap();
        let parsed = Envelope::parse_as(&moved, to).unwrap();
        prop_assert_eq!(parsed.iv(), &iv[..]);
        prop_assert_eq!(parsed.tag(), &tag[..]);
        prop_assert_eq!(parsed.ciphertext(), &ciphertext[..]);
        let blob = parsed.encrypted_keys().unwrap();
        prop_assert_eq!(blob.as_ref(), &keys[..]);

        prop_assert_eq!(parsed.reframe(from).unwrap(), original);
    }

    #[test]
    fn reframed_text_is_detected_as_its_new_layout(
        from in twelve(),
        to in twelve(),
        iv in any::<[u8; 12]>(),
        filler in proptest::collection::vec(any::<u8>(), 0..200),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let blob = workos_blob(&filler);
        let region = if from == Layout::APrime { b64::encode(&blob).into_bytes() } else { blob.clone() };
        let text = Envelope::new(from, &iv, &[7; 16], &region, &ciphertext).unwrap().to_base64();
        let moved = reframe_base64(&text, to).unwrap();
        let mut buf = Vec::new();
        prop_assert_eq!(Envelope::parse_base64(&moved, &mut buf).unwrap().layout(), to);
        prop_assert_eq!(reframe_base64(&moved, from).unwrap(), text);
    }

    #[test]
    fn a32_needs_the_data_key(
        to in twelve(),
        iv in any::<[u8; 32]>(),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let blob = workos_blob(b"");
        let a32 = Envelope::new(Layout::A32, &iv, &[1; 16], &blob, &ciphertext).unwrap();
        prop_assert_eq!(a32.reframe(to), Err(Error::NeedsDataKey { from: Layout::A32, to }));
        prop_assert_eq!(a32.reframe(Layout::A32).unwrap(), a32.to_bytes());
        let a12 = Envelope::new(Layout::A12, &iv[..12], &[1; 16], &blob, &ciphertext).unwrap();
        prop_assert_eq!(a12.reframe(Layout::A32), Err(Error::NeedsDataKey { from: Layout::A12, to: Layout::A32 }));
    }
}

#[test]
fn every_sdk_vector_reframes_among_the_twelve_byte_layouts() {
    for vector in vault_testdata::sdk_vectors().vectors {
        let mut buf = Vec::new();
        let envelope = Envelope::parse_base64(&vector.ciphertext_b64, &mut buf).unwrap();
        for to in [Layout::A12, Layout::B, Layout::APrime] {
            let result = reframe_base64(&vector.ciphertext_b64, to);
            if envelope.layout() == Layout::A32 {
                assert!(
                    matches!(result, Err(Error::NeedsDataKey { .. })),
                    "{}",
                    vector.id
                );
                continue;
            }
            let moved = result.unwrap();
            let back = reframe_base64(&moved, envelope.layout()).unwrap();
            assert_eq!(back, vector.ciphertext_b64, "{} via {to}", vector.id);
        }
    }
}

#[test]
fn the_refusal_names_the_fix() {
    let message = Error::NeedsDataKey {
        from: Layout::A32,
        to: Layout::B,
    }
    .to_string();
    assert!(message.contains("data key"), "{message}");
    assert!(message.contains("workos-vault migrate"), "{message}");
}
