//! Damaged framing in every layout gets the typed error that names the
//! damage: truncation at every offset, overlong and oversized length
//! prefixes, keys lengths past the end. See docs/SECURITY.md.

use vault_format::__private::WORKOS_MAGIC;
use vault_format::{Envelope, Error, Layout, TAG_LEN};

const LAYOUTS: [Layout; 4] = [Layout::A12, Layout::A32, Layout::B, Layout::APrime];

/// A 200-byte WorkOS-shaped blob: its length needs a 2-byte LEB128 prefix
/// (and so does its 268-character A-prime text).
fn blob() -> Vec<u8> {
    let mut blob = [
        WORKOS_MAGIC.as_slice(),
        b"0237abe8-fc0d-4456-831c-3a2d133e9f90",
    ]
    .concat();
    blob.resize(200, 0x5a);
    blob
}

/// An envelope of `layout` with that blob and a 40-byte ciphertext, and
/// where its keys length prefix starts.
fn envelope(layout: Layout) -> (Vec<u8>, usize) {
    let blob = blob();
    let text = vault_format::b64::encode(&blob);
    let keys = if layout == Layout::APrime {
        text.as_bytes()
    } else {
        &blob[..]
    };
    let iv = vec![1u8; layout.iv_len()];
    let bytes = Envelope::new(layout, &iv, &[2; TAG_LEN], keys, &[3; 40])
        .expect("valid parts")
        .to_bytes();
    let prefix_at = if layout == Layout::B {
        0
    } else {
        layout.iv_len() + TAG_LEN
    };
    (bytes, prefix_at)
}

#[test]
fn truncation_at_every_offset_of_every_layout() {
    for layout in LAYOUTS {
        let (bytes, prefix_at) = envelope(layout);
        let keys_len = Envelope::parse_as(&bytes, layout)
            .expect("the whole envelope parses")
            .keys()
            .len();
        // Where the keys region ends, and so where truncation stops being
        // visible in the framing (from there on it only shortens the
        // ciphertext, and the tag check refuses it: see vault-crypto's
        // bad_input tests).
        let keys_end = prefix_at + 2 + keys_len;
        let complete = if layout == Layout::B {
            keys_end + layout.iv_len() + TAG_LEN
        } else {
            keys_end
        };
        for len in 0..bytes.len() {
            let prefix = &bytes[..len];
            let forced = Envelope::parse_as(prefix, layout);
            let what = format!("{layout} truncated to {len} of {} bytes", bytes.len());
            match forced {
                Err(Error::Empty) => assert_eq!(len, 0, "{what}"),
                Err(Error::TooShort {
                    layout: l,
                    len: n,
                    min,
                }) => {
                    assert_eq!((l, n), (layout, len), "{what}");
                    assert!(len < min, "{what}");
                    assert!(len < complete, "{what}");
                }
                Err(Error::TruncatedLength { layout: l, offset }) => {
                    assert_eq!((l, offset), (layout, prefix_at), "{what}");
                    assert_eq!(len, prefix_at + 1, "{what}: inside the 2-byte prefix");
                }
                Err(Error::KeysLengthExceedsInput {
                    layout: l,
                    declared,
                    available,
                }) => {
                    assert_eq!(l, layout, "{what}");
                    assert_eq!(declared, keys_len as u64, "{what}");
                    assert!(available < keys_len, "{what}");
                    assert!(len < complete, "{what}");
                }
                Ok(envelope) => {
                    assert!(len >= complete, "{what} parsed as {envelope:?}");
                    assert_eq!(envelope.encoded_len(), len, "{what}");
                    assert_eq!(envelope.keys().len(), keys_len, "{what}");
                }
                Err(other) => panic!("{what}: unexpected {other:?}"),
            }
            // Detection never panics, and whatever it accepts is exact.
            if let Ok(envelope) = Envelope::parse(prefix) {
                assert_eq!(envelope.to_bytes(), prefix, "{what}");
            }
        }
    }
}

#[test]
fn overlong_length_prefixes_are_refused_in_every_layout() {
    for layout in LAYOUTS {
        let iv = vec![1u8; layout.iv_len()];
        let good = Envelope::new(layout, &iv, &[2; TAG_LEN], b"abcd", b"ct")
            .expect("valid parts")
            .to_bytes();
        let prefix_at = if layout == Layout::B {
            0
        } else {
            layout.iv_len() + TAG_LEN
        };
        assert_eq!(good[prefix_at], 4);
        // 4 as two bytes (0x84 0x00) and as five (0x84 0x80 0x80 0x80 0x00).
        for overlong in [&[0x84u8, 0x00][..], &[0x84, 0x80, 0x80, 0x80, 0x00]] {
            let bytes = [&good[..prefix_at], overlong, &good[prefix_at + 1..]].concat();
            assert_eq!(
                Envelope::parse_as(&bytes, layout),
                Err(Error::OverlongLength {
                    layout,
                    offset: prefix_at
                }),
                "{layout} {overlong:02x?}"
            );
        }
        // Six bytes, or a five-byte value above u32::MAX.
        for oversized in [
            &[0x84u8, 0x80, 0x80, 0x80, 0x80, 0x00][..],
            &[0xff, 0xff, 0xff, 0xff, 0x1f],
        ] {
            let mut bytes = [&good[..prefix_at], oversized, &good[prefix_at + 1..]].concat();
            bytes.resize(bytes.len() + 64, 0);
            assert_eq!(
                Envelope::parse_as(&bytes, layout),
                Err(Error::LengthOverflow {
                    layout,
                    offset: prefix_at
                }),
                "{layout} {oversized:02x?}"
            );
        }
    }
}

#[test]
fn keys_length_larger_than_the_buffer_in_every_layout() {
    for layout in LAYOUTS {
        let (bytes, prefix_at) = envelope(layout);
        // u32::MAX, the largest length a prefix can declare.
        let huge = [0xffu8, 0xff, 0xff, 0xff, 0x0f];
        let patched = [&bytes[..prefix_at], &huge[..], &bytes[prefix_at + 2..]].concat();
        match Envelope::parse_as(&patched, layout) {
            Err(Error::KeysLengthExceedsInput {
                layout: l,
                declared,
                available,
            }) => {
                assert_eq!(l, layout);
                assert_eq!(declared, u64::from(u32::MAX));
                assert!(available < patched.len());
            }
            other => panic!("{layout}: {other:?}"),
        }
        // One byte more than what is there.
        let keys_len = Envelope::parse_as(&bytes, layout)
            .expect("parses")
            .keys()
            .len();
        let rest = if layout == Layout::B {
            bytes.len() - 2 - layout.iv_len() - TAG_LEN
        } else {
            bytes.len() - prefix_at - 2
        };
        let one_more = u16::try_from(rest + 1).expect("small");
        assert!(usize::from(one_more) > keys_len);
        let prefix = [(one_more & 0x7f) as u8 | 0x80, (one_more >> 7) as u8];
        let patched = [&bytes[..prefix_at], &prefix[..], &bytes[prefix_at + 2..]].concat();
        assert!(
            matches!(
                Envelope::parse_as(&patched, layout),
                Err(Error::KeysLengthExceedsInput { declared, available, .. })
                    if declared == u64::from(one_more) && available == rest
            ),
            "{layout}: {:?}",
            Envelope::parse_as(&patched, layout)
        );
    }
}

#[test]
fn a_prime_keys_that_are_not_base64_text() {
    let iv = [1u8; 12];
    for keys in [&b"V09TLkVLTS52MQ!!"[..], b"\xff\xfe", b"V09TLkVLTS52MQ-_"] {
        let bytes = Envelope::new(Layout::APrime, &iv, &[2; TAG_LEN], keys, b"ct")
            .expect("valid parts")
            .to_bytes();
        let envelope = Envelope::parse_as(&bytes, Layout::APrime).expect("framing is fine");
        assert_eq!(envelope.encrypted_keys(), Err(Error::InvalidKeysText));
    }
}
