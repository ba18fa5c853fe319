//! Damaged ciphertexts never open: truncation at every offset of every
//! layout, through detection and through a forced layout, and from base64
//! text. Framing damage is a `Format` error; damage the framing cannot see
//! (a shortened ciphertext) is the opaque `Decrypt`. No partial plaintext
//! ever reaches the caller. See docs/SECURITY.md.

use vault_crypto::test_hooks::{record_wipes, take_wipes, Wipe};
use vault_crypto::{open_base64, open_into, seal, DataKey, Envelope, Error, Layout};

const LAYOUTS: [Layout; 4] = [Layout::A12, Layout::A32, Layout::B, Layout::APrime];
const AAD: &[u8] = b"record_42";

#[test]
fn truncation_at_every_offset_never_opens() {
    let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [7; 32]);
    let mut blob = b"WOS.EKM.v1\x000237abe8-fc0d-4456-831c-3a2d133e9f90".to_vec();
    blob.resize(150, 0x5a);
    let plaintext = b"a plaintext long enough to cut in many places";
    for layout in LAYOUTS {
        let sealed = seal(&key, layout, &blob, plaintext, AAD).expect("seals");
        let mut formats = 0;
        let mut decrypts = 0;
        for len in 0..sealed.len() {
            let prefix = &sealed[..len];
            let what = format!("{layout} truncated to {len} of {}", sealed.len());
            let text = vault_format::b64::encode(prefix);
            match open_base64(&key, &text, AAD) {
                Err(Error::Format(_)) => formats += 1,
                Err(Error::Decrypt) => decrypts += 1,
                other => panic!("{what}: {other:?}"),
            }
            if let Ok(envelope) = Envelope::parse_as(prefix, layout) {
                let mut out = b"kept".to_vec();
                record_wipes();
                assert_eq!(
                    open_into(&mut out, &key, &envelope, AAD),
                    Err(Error::Decrypt),
                    "{what}"
                );
                assert_eq!(out, b"kept", "{what}: no partial plaintext");
                // What was decrypted past "kept" was zeroed before it was
                // cut off (a plain truncate would pass the check above).
                assert_eq!(
                    take_wipes(),
                    [Wipe {
                        len: envelope.ciphertext().len(),
                        all_zero: true
                    }],
                    "{what}"
                );
            }
        }
        // Both kinds of damage occur, in every layout.
        assert!(
            formats > 0 && decrypts > 0,
            "{layout}: {formats} {decrypts}"
        );
        let text = vault_format::b64::encode(&sealed);
        assert_eq!(open_base64(&key, &text, AAD).expect("opens"), plaintext);
    }
}
