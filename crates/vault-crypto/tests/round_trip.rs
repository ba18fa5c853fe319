//! Seal then open, for every writable layout, and tampering that must fail.

use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use proptest::prelude::*;
use vault_crypto::test_hooks::{record_wipes, take_wipes, Wipe};
use vault_crypto::{
    head_len, open, open_base64, open_in_place, open_into, seal, seal_in_place, seal_into,
    seal_to_base64, DataKey, Envelope, Error, Layout, TAG_LEN,
};
use vault_format::__private::Frame;

const LAYOUTS: [Layout; 4] = [Layout::A12, Layout::A32, Layout::B, Layout::APrime];

/// A blob that looks like WorkOS's, so detection finds the layout.
fn workos_blob() -> impl Strategy<Value = Vec<u8>> {
    (
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(id, filler)| {
            let mut blob = b"WOS.EKM.v1\0".to_vec();
            blob.extend_from_slice(id.as_bytes());
            blob.extend_from_slice(&filler);
            blob
        })
}

fn layout() -> impl Strategy<Value = Layout> {
    prop::sample::select(LAYOUTS.to_vec())
}

fn key(bytes: [u8; 32]) -> DataKey {
    DataKey::new("00000000-0000-0000-0000-000000000000", bytes)
}

/// Opens a 12-byte-nonce envelope with RustCrypto's AES-GCM, an
/// implementation independent of the ring path that sealed it.
fn open_independently(key: &DataKey, envelope: &Envelope<'_>, aad: &[u8]) -> Option<Vec<u8>> {
    let cipher = AesGcm::<Aes256, U12>::new(key.secret_bytes().into());
    let mut buf = envelope.ciphertext().to_vec();
    cipher
        .decrypt_in_place_detached(envelope.iv().into(), aad, &mut buf, envelope.tag().into())
        .ok()
        .map(|()| buf)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn detected_round_trip(
        layout in layout(),
        key_bytes in any::<[u8; 32]>(),
        blob in workos_blob(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let key = key(key_bytes);
        let sealed = seal(&key, layout, &blob, &plaintext, &aad).unwrap();
        let envelope = Envelope::parse(&sealed).unwrap();
        prop_assert_eq!(envelope.layout(), layout);
        prop_assert_eq!(envelope.encrypted_keys().unwrap(), &blob[..]);
        prop_assert_eq!(envelope.ciphertext().len(), plaintext.len());
        prop_assert_eq!(sealed.len(), envelope.frame().len());
        prop_assert_eq!(open(&key, &envelope, &aad).unwrap(), &plaintext[..]);
        if layout != Layout::A32 {
            prop_assert_eq!(open_independently(&key, &envelope, &aad).unwrap(), &plaintext[..]);
        }

        // The text form: decodes and opens, after detection too.
        let text = seal_to_base64(&key, layout, &blob, &plaintext, &aad).unwrap();
        let bytes = vault_format::b64::decode(&text).unwrap();
        prop_assert_eq!(bytes.len(), sealed.len());
        let from_text = Envelope::parse(&bytes).unwrap();
        prop_assert_eq!(from_text.layout(), layout);
        prop_assert_eq!(from_text.keys(), envelope.keys());
        prop_assert_eq!(open(&key, &from_text, &aad).unwrap(), &plaintext[..]);
        prop_assert_eq!(open_base64(&key, &text, &aad).unwrap(), &plaintext[..]);
        // Fresh nonces: sealing twice never gives the same envelope.
        prop_assert_ne!(from_text.iv(), envelope.iv());
    }

    #[test]
    fn forced_layout_round_trip(
        layout in layout(),
        key_bytes in any::<[u8; 32]>(),
        // Non-empty: vault-format reads an empty A-prime keys region as
        // invalid text (the envelope still opens).
        blob in proptest::collection::vec(any::<u8>(), 1..300),
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let key = key(key_bytes);
        let mut out = b"earlier".to_vec();
        seal_into(&mut out, &key, layout, &blob, &plaintext, &aad).unwrap();
        prop_assert_eq!(&out[..7], b"earlier");
        let envelope = Envelope::parse_as(&out[7..], layout).unwrap();
        prop_assert_eq!(envelope.encrypted_keys().unwrap(), &blob[..]);
        let mut plain = b"kept".to_vec();
        open_into(&mut plain, &key, &envelope, &aad).unwrap();
        prop_assert_eq!(&plain[..4], b"kept");
        prop_assert_eq!(&plain[4..], &plaintext[..]);

        let text = seal_to_base64(&key, layout, &blob, &plaintext, &aad).unwrap();
        let bytes = vault_format::b64::decode(&text).unwrap();
        let envelope = Envelope::parse_as(&bytes, layout).unwrap();
        prop_assert_eq!(open(&key, &envelope, &aad).unwrap(), &plaintext[..]);

        // In place, the layout forced: the buffer ends up holding the
        // plaintext, in the allocation that held the envelope.
        let mut buf = bytes.clone();
        let before = buf.as_ptr();
        open_in_place(&key, &mut buf, Some(layout), &aad).unwrap();
        prop_assert_eq!(&buf[..], &plaintext[..]);
        prop_assert_eq!(buf.as_ptr(), before);
    }

    #[test]
    fn sealing_in_place_round_trips_with_any_room(
        layout in layout(),
        key_bytes in any::<[u8; 32]>(),
        blob in workos_blob(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        extra_room in 0..64usize,
        short_by in 0..400usize,
        ample in any::<bool>(),
    ) {
        let key = key(key_bytes);
        let head = head_len(layout, blob.len());
        let room = if ample { head + extra_room } else { head.saturating_sub(short_by) };
        let mut buf = Vec::with_capacity(room + plaintext.len() + TAG_LEN);
        buf.resize(room, 0x5a);
        buf.extend_from_slice(&plaintext);
        let before = buf.as_ptr();
        let start = seal_in_place(&key, layout, &blob, &mut buf, room, &aad).unwrap();
        if ample {
            // Room enough: no copy, no reallocation, the room before kept.
            prop_assert_eq!(start, extra_room);
            prop_assert_eq!(buf.as_ptr(), before);
            prop_assert!(buf[..start].iter().all(|&b| b == 0x5a));
        } else {
            prop_assert_eq!(start, 0);
        }
        let mut envelope = buf[start..].to_vec();
        let parsed = Envelope::parse(&envelope).unwrap();
        prop_assert_eq!(parsed.layout(), layout);
        prop_assert_eq!(parsed.encrypted_keys().unwrap(), &blob[..]);
        open_in_place(&key, &mut envelope, None, &aad).unwrap();
        prop_assert_eq!(envelope, plaintext);
    }

    #[test]
    fn any_flipped_byte_fails(
        layout in layout(),
        key_bytes in any::<[u8; 32]>(),
        blob in workos_blob(),
        plaintext in proptest::collection::vec(any::<u8>(), 1..256),
        aad in proptest::collection::vec(any::<u8>(), 0..16),
        part in 0..3usize,
        index in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let key = key(key_bytes);
        let mut sealed = seal(&key, layout, &blob, &plaintext, &aad).unwrap();
        let frame = Envelope::parse_as(&sealed, layout).unwrap().frame();
        let range = [frame.iv(), frame.tag(), frame.ciphertext()][part].clone();
        sealed[range.start + index.index(range.len())] ^= flip;
        let envelope = Envelope::parse_as(&sealed, layout).unwrap();
        prop_assert_eq!(open(&key, &envelope, &aad), Err(Error::Decrypt));
        let mut buf = sealed.clone();
        record_wipes();
        prop_assert_eq!(open_in_place(&key, &mut buf, Some(layout), &aad), Err(Error::Decrypt));
        prop_assert!(buf.is_empty(), "no partial plaintext");
        // Zeroed, not just emptied: the whole envelope, while it was held.
        prop_assert_eq!(take_wipes(), [Wipe { len: sealed.len(), all_zero: true }]);
    }
}

fn sealed_message(layout: Layout, key: &DataKey) -> (Vec<u8>, Frame) {
    let blob = b"WOS.EKM.v1\x00b3f0c7d2-1a2b-4c3d-8e9f-0123456789ab filler";
    let sealed = seal(key, layout, blob, b"attack at dawn, bring snacks", b"org_1").expect("seals");
    let frame = Envelope::parse(&sealed).expect("parses").frame();
    (sealed, frame)
}

#[test]
fn every_single_byte_flip_of_iv_tag_and_ciphertext_fails() {
    let key = key([9; 32]);
    for layout in LAYOUTS {
        let (sealed, frame) = sealed_message(layout, &key);
        let mut checked = 0;
        for range in [frame.iv(), frame.tag(), frame.ciphertext()] {
            for i in range {
                for bit in 0..8 {
                    let mut bytes = sealed.clone();
                    bytes[i] ^= 1 << bit;
                    let envelope = Envelope::parse_as(&bytes, layout).unwrap();
                    let mut out = b"kept".to_vec();
                    record_wipes();
                    assert_eq!(
                        open_into(&mut out, &key, &envelope, b"org_1"),
                        Err(Error::Decrypt),
                        "{layout}: byte {i} bit {bit}"
                    );
                    assert_eq!(out, b"kept", "no partial plaintext");
                    let wiped = Wipe {
                        len: envelope.ciphertext().len(),
                        all_zero: true,
                    };
                    assert_eq!(take_wipes(), [wiped], "{layout}: byte {i} bit {bit}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 8 * (12 + 16));
    }
}

#[test]
fn wrong_aad_or_key_fails() {
    let key_a = key([1; 32]);
    let key_b = key([2; 32]);
    for layout in LAYOUTS {
        let (sealed, _) = sealed_message(layout, &key_a);
        let envelope = Envelope::parse(&sealed).unwrap();
        assert!(open(&key_a, &envelope, b"org_1").is_ok());
        for aad in [&b""[..], b"org_2", b"org_1\0", b"org_"] {
            assert_eq!(
                open(&key_a, &envelope, aad),
                Err(Error::Decrypt),
                "{layout}"
            );
        }
        assert_eq!(
            open(&key_b, &envelope, b"org_1"),
            Err(Error::Decrypt),
            "{layout}"
        );
        let text = vault_format::b64::encode(&sealed);
        assert_eq!(open_base64(&key_b, &text, b"org_1"), Err(Error::Decrypt));
    }
}

#[test]
fn empty_keys_blob_seals_and_opens() {
    let key = key([8; 32]);
    for layout in LAYOUTS {
        let sealed = seal(&key, layout, b"", b"data", b"").unwrap();
        let envelope = Envelope::parse_as(&sealed, layout).unwrap();
        assert_eq!(envelope.keys(), b"");
        assert_eq!(open(&key, &envelope, b"").unwrap(), b"data");
    }
}

#[test]
fn absent_and_empty_aad_are_the_same() {
    let key = key([3; 32]);
    for layout in LAYOUTS {
        let sealed = seal(&key, layout, b"keys", b"data", &[]).unwrap();
        let envelope = Envelope::parse_as(&sealed, layout).unwrap();
        assert_eq!(open(&key, &envelope, b"").unwrap(), b"data");
    }
}

/// The keys region is not authenticated (see the crate docs): changing it
/// does not stop a holder of the data key from opening the ciphertext.
#[test]
fn keys_region_is_not_authenticated() {
    let key = key([4; 32]);
    let sealed = seal(&key, Layout::A12, b"keys", b"data", b"aad").unwrap();
    let mut bytes = sealed.clone();
    let keys = Envelope::parse_as(&sealed, Layout::A12)
        .unwrap()
        .frame()
        .keys();
    bytes[keys.start] ^= 0xff;
    let envelope = Envelope::parse_as(&bytes, Layout::A12).unwrap();
    assert_eq!(open(&key, &envelope, b"aad").unwrap(), b"data");
}

#[test]
fn malformed_text_is_a_format_error() {
    let key = key([5; 32]);
    assert!(matches!(
        open_base64(&key, "", b""),
        Err(Error::Format(vault_format::Error::Empty))
    ));
    assert!(matches!(
        open_base64(&key, "not-base64", b""),
        Err(Error::Format(_))
    ));
    assert!(matches!(
        open_base64(&key, "AAAA", b""),
        Err(Error::Format(vault_format::Error::TooShort { .. }))
    ));
}

#[test]
fn large_plaintext_round_trips() {
    let key = key([6; 32]);
    let plaintext: Vec<u8> = (0..(1 << 20) + 3).map(|i| (i * 31) as u8).collect();
    for layout in LAYOUTS {
        let text = seal_to_base64(&key, layout, b"WOS.EKM.v1\x00", &plaintext, b"big").unwrap();
        assert_eq!(
            open_base64(&key, &text, b"big").unwrap(),
            plaintext,
            "{layout}"
        );
    }
}

#[test]
fn open_in_place_detects_or_forces_the_layout() {
    let key = key([7; 32]);
    for layout in LAYOUTS {
        let (sealed, _) = sealed_message(layout, &key);
        let mut detected = sealed.clone();
        open_in_place(&key, &mut detected, None, b"org_1").unwrap();
        assert_eq!(detected, b"attack at dawn, bring snacks", "{layout}");
        let mut forced = sealed.clone();
        open_in_place(&key, &mut forced, Some(layout), b"org_1").unwrap();
        assert_eq!(forced, detected, "{layout}");
    }
}

#[test]
fn open_in_place_leaves_malformed_input_and_wipes_failures() {
    let key = key([7; 32]);
    // Not an envelope: a format error, and the buffer is untouched.
    let mut short = b"too short".to_vec();
    assert!(matches!(
        open_in_place(&key, &mut short, None, b""),
        Err(Error::Format(vault_format::Error::TooShort { .. }))
    ));
    assert_eq!(short, b"too short");
    let mut empty = Vec::new();
    assert!(matches!(
        open_in_place(&key, &mut empty, Some(Layout::B), b""),
        Err(Error::Format(vault_format::Error::Empty))
    ));

    // The wrong AAD or key: opaque, and nothing is left in the buffer.
    for layout in LAYOUTS {
        let (sealed, _) = sealed_message(layout, &key);
        let mut buf = sealed.clone();
        record_wipes();
        assert_eq!(
            open_in_place(&key, &mut buf, Some(layout), b"org_2"),
            Err(Error::Decrypt)
        );
        assert!(buf.is_empty(), "{layout}");
        let wiped = Wipe {
            len: sealed.len(),
            all_zero: true,
        };
        assert_eq!(take_wipes(), [wiped], "{layout}: zeroed, not just emptied");
        let mut buf = sealed;
        record_wipes();
        assert_eq!(
            open_in_place(&self::key([8; 32]), &mut buf, None, b"org_1"),
            Err(Error::Decrypt)
        );
        assert!(buf.is_empty(), "{layout}");
        assert_eq!(take_wipes(), [wiped], "{layout}: zeroed, not just emptied");
    }
}
