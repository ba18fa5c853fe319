//! Every vector the official SDKs wrote parses with the layout its producer
//! uses, and the framing-breaking negatives are refused with the right error.

use vault_format::{b64, Envelope, Error, KeyBlob, Layout};

use vault_testdata::sdk_vectors as file;

#[test]
fn every_positive_vector_parses_with_its_layout() {
    let file = file();
    let mut counts = std::collections::BTreeMap::new();
    for vector in &file.vectors {
        let expected: Layout = vector.layout.parse().expect("known layout name");
        let bytes = b64::decode(&vector.ciphertext_b64).expect(&vector.id);
        let envelope = Envelope::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", vector.id));
        assert_eq!(envelope.layout(), expected, "{}", vector.id);
        assert_eq!(envelope.iv().len(), expected.iv_len(), "{}", vector.id);
        assert_eq!(envelope.tag().len(), 16, "{}", vector.id);

        let blob = b64::decode(&vector.encrypted_keys_b64).expect(&vector.id);
        if expected == Layout::APrime {
            assert_eq!(
                envelope.keys(),
                vector.encrypted_keys_b64.as_bytes(),
                "{}",
                vector.id
            );
        } else {
            assert_eq!(envelope.keys(), blob.as_slice(), "{}", vector.id);
        }
        assert_eq!(
            envelope.encrypted_keys().expect(&vector.id).as_ref(),
            blob.as_slice()
        );
        assert_eq!(
            envelope.encrypted_keys_base64().expect(&vector.id),
            vector.encrypted_keys_b64
        );

        let keys = envelope.encrypted_keys().expect(&vector.id);
        let parsed = KeyBlob::parse(&keys);
        assert_eq!(parsed.kind().name(), "workos", "{}", vector.id);
        assert_eq!(
            parsed.data_key_id(),
            Some(vector.data_key_id.as_str()),
            "{}",
            vector.id
        );

        // Forcing the layout gives the same parse; re-encoding gives the same text.
        assert_eq!(
            Envelope::parse_as(&bytes, expected).expect(&vector.id),
            envelope
        );
        assert_eq!(envelope.to_bytes(), bytes, "{}", vector.id);
        assert_eq!(envelope.to_base64(), vector.ciphertext_b64, "{}", vector.id);
        *counts.entry(expected.name()).or_insert(0) += 1;
    }
    println!("parsed positives per layout: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), file.vectors.len());
    assert_eq!(counts.len(), 4, "all four layouts are covered");
}

#[test]
fn framing_negatives_are_refused_with_the_right_error() {
    let mut checked = 0;
    for vector in file().negative {
        let result = b64::decode(&vector.ciphertext_b64)
            .and_then(|bytes| Envelope::parse(&bytes).map(|_| ()));
        let mutation = vector.mutation.as_str();
        match mutation {
            "bad-base64" => assert!(
                matches!(result, Err(Error::InvalidBase64Character { .. })),
                "{}: {result:?}",
                vector.id
            ),
            "leb128-overflow" => {
                assert!(
                    matches!(result, Err(Error::LengthOverflow { .. })),
                    "{}: {result:?}",
                    vector.id
                )
            }
            "keys-length-exceeds-buffer" => assert!(
                matches!(result, Err(Error::KeysLengthExceedsInput { .. })),
                "{}: {result:?}",
                vector.id
            ),
            "empty" => assert_eq!(result, Err(Error::Empty), "{}", vector.id),
            "truncate-to-20" => assert_eq!(
                result,
                Err(Error::TooShort {
                    layout: Layout::A12,
                    len: 20,
                    min: 29
                }),
                "{}",
                vector.id
            ),
            // Other mutations keep the framing intact; the AEAD refuses them.
            _ => continue,
        }
        checked += 1;
    }
    println!("framing negatives refused: {checked}");
    assert_eq!(checked, 8);
}

#[test]
fn error_messages_say_what_was_expected() {
    let short = Envelope::parse(&[0u8; 20]).unwrap_err();
    assert_eq!(
        short.to_string(),
        "ciphertext is 20 bytes; an A12 envelope needs at least 29"
    );
    let url_safe = b64::decode("ab-_").unwrap_err();
    assert!(
        url_safe.to_string().contains("replace '-' with '+'"),
        "{url_safe}"
    );
}
