//! Sealing: plaintext in, envelope out, encrypted in place in the output.

use vault_format::{b64, Frame, Layout, TAG_LEN};
use zeroize::Zeroize;

use crate::cipher::{self, MAX_PLAINTEXT_LEN};
use crate::{DataKey, Error};

/// Encrypts `plaintext` under `key` and frames it as a `layout` envelope
/// that carries `encrypted_keys`. Returns the envelope bytes, in one
/// allocation.
///
/// - `layout`: [`Layout::A12`] (also [`Layout::default`]) is what current
///   SDKs read. Write [`Layout::B`] for Go >= 7 and the official Rust crate,
///   [`Layout::APrime`] for .NET, and [`Layout::A32`] only for old readers
///   that need it.
/// - `encrypted_keys`: the raw (decoded) `encrypted_keys` blob the key
///   service returned with `key`. It is stored as is (as base64 text for
///   A-prime) and is **not** authenticated; bind the ciphertext to its
///   record with `aad`.
/// - `aad`: associated data, authenticated but not stored. Empty means no
///   AAD; the reader must pass the same bytes.
///
/// The nonce is 12 (or for A32, 32) fresh random bytes from the operating
/// system. See the crate docs for the message limit per data key.
///
/// # Errors
///
/// [`Error::KeysTooLong`], [`Error::PlaintextTooLong`] or [`Error::Random`].
pub fn seal(
    key: &DataKey,
    layout: Layout,
    encrypted_keys: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, Error> {
    let frame = frame(layout, encrypted_keys, plaintext)?;
    let mut out = Vec::with_capacity(frame.len());
    seal_frame(&mut out, &frame, key, encrypted_keys, plaintext, aad, None)?;
    Ok(out)
}

/// Like [`seal`], but appends the envelope to `out`, so a caller can reuse
/// one buffer for many messages. On error `out` is left as it was.
pub fn seal_into(
    out: &mut Vec<u8>,
    key: &DataKey,
    layout: Layout,
    encrypted_keys: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(), Error> {
    let frame = frame(layout, encrypted_keys, plaintext)?;
    out.reserve(frame.len());
    seal_frame(out, &frame, key, encrypted_keys, plaintext, aad, None)
}

/// Like [`seal`], but returns the envelope as standard base64 text: the
/// ciphertext string WorkOS SDKs exchange. Makes one allocation: the
/// envelope is sealed at the tail of the text's buffer and encoded over
/// itself.
pub fn seal_to_base64(
    key: &DataKey,
    layout: Layout,
    encrypted_keys: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<String, Error> {
    let frame = frame(layout, encrypted_keys, plaintext)?;
    let raw_len = frame.len();
    let text_len = b64::encoded_len(raw_len);
    let mut buf = Vec::with_capacity(text_len);
    buf.resize(text_len - raw_len, 0);
    seal_frame(&mut buf, &frame, key, encrypted_keys, plaintext, aad, None)?;
    b64::encode_tail_in_place(&mut buf, raw_len);
    // Base64 text is ASCII, so this cannot fail; a failure is a bug in the
    // encoder and must not pass silently as an empty ciphertext.
    Ok(String::from_utf8(buf).expect("base64 text is ASCII"))
}

/// The framing of a sealed `plaintext` under `layout`.
fn frame(layout: Layout, encrypted_keys: &[u8], plaintext: &[u8]) -> Result<Frame, Error> {
    let keys_len = keys_region_len(layout, encrypted_keys);
    let plaintext_len = u64::try_from(plaintext.len()).unwrap_or(u64::MAX);
    if plaintext_len > MAX_PLAINTEXT_LEN {
        return Err(Error::PlaintextTooLong {
            len: plaintext_len,
            max: MAX_PLAINTEXT_LEN,
        });
    }
    Frame::new(layout, keys_len, plaintext.len()).map_err(|_| Error::KeysTooLong {
        len: u64::try_from(keys_len).unwrap_or(u64::MAX),
        max: u32::MAX.into(),
    })
}

/// Length of the keys region: the blob, or for A-prime its base64 text.
fn keys_region_len(layout: Layout, encrypted_keys: &[u8]) -> usize {
    match layout {
        Layout::APrime => b64::encoded_len(encrypted_keys.len()),
        _ => encrypted_keys.len(),
    }
}

/// Appends the sealed envelope described by `frame` to `out`, whose
/// capacity the caller reserved. Every byte is written once: the parts are
/// appended in wire order, the plaintext is copied into the ciphertext's
/// place and encrypted there, and the tag is written into its slot.
///
/// `iv` is `None` outside tests: a fresh random IV is drawn.
pub(crate) fn seal_frame(
    out: &mut Vec<u8>,
    frame: &Frame,
    key: &DataKey,
    encrypted_keys: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    iv: Option<&[u8]>,
) -> Result<(), Error> {
    let start = out.len();
    let layout = frame.layout();
    // IV and tag slots are filled in place below.
    let zeros = [0u8; 32];
    let iv_slot = &zeros[..layout.iv_len()];
    let tag_slot = &zeros[..TAG_LEN];
    match layout {
        Layout::B => {
            append_keys(out, frame, encrypted_keys);
            out.extend_from_slice(iv_slot);
            out.extend_from_slice(plaintext);
            out.extend_from_slice(tag_slot);
        }
        Layout::A12 | Layout::A32 | Layout::APrime => {
            out.extend_from_slice(iv_slot);
            out.extend_from_slice(tag_slot);
            append_keys(out, frame, encrypted_keys);
            out.extend_from_slice(plaintext);
        }
    }
    let envelope = &mut out[start..];
    debug_assert_eq!(envelope.len(), frame.len());
    let result = match iv {
        Some(iv) => {
            if iv.len() == layout.iv_len() {
                envelope[frame.iv()].copy_from_slice(iv);
                Ok(())
            } else {
                Err(Error::Format(vault_format::Error::InvalidPart {
                    layout,
                    part: "iv",
                    len: iv.len(),
                    expected: layout.iv_len(),
                }))
            }
        }
        None => cipher::random_iv(&mut envelope[frame.iv()]),
    }
    .and_then(|()| {
        let (iv, ciphertext) = split_iv_ciphertext(envelope, frame);
        cipher::seal_in_place(key, layout, iv, aad, ciphertext)
    });
    match result {
        Ok(tag) => {
            envelope[frame.tag()].copy_from_slice(&tag);
            Ok(())
        }
        Err(error) => {
            // The buffer holds a copy of the plaintext: wipe it.
            envelope.zeroize();
            out.truncate(start);
            Err(error)
        }
    }
}

/// Disjoint borrows of the IV and the ciphertext region of an envelope.
fn split_iv_ciphertext<'a>(envelope: &'a mut [u8], frame: &Frame) -> (&'a [u8], &'a mut [u8]) {
    let (iv, ciphertext) = (frame.iv(), frame.ciphertext());
    if iv.end <= ciphertext.start {
        let (head, tail) = envelope.split_at_mut(ciphertext.start);
        (&head[iv], &mut tail[..ciphertext.len()])
    } else {
        let (head, tail) = envelope.split_at_mut(iv.start);
        (&tail[..iv.len()], &mut head[ciphertext])
    }
}

/// Appends the keys region with its LEB128 length prefix.
fn append_keys(out: &mut Vec<u8>, frame: &Frame, encrypted_keys: &[u8]) {
    out.extend_from_slice(&frame.keys_prefix());
    match frame.layout() {
        Layout::APrime => {
            let at = out.len();
            out.resize(at + frame.keys().len(), 0);
            b64::encode_to_slice(encrypted_keys, &mut out[at..]);
        }
        _ => out.extend_from_slice(encrypted_keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sealing with a given IV reproduces every valid Wycheproof AES-256
    /// case of our IV sizes, through both back ends and every layout.
    #[test]
    fn wycheproof_seal() {
        use wycheproof::aead::{TestName, TestSet};
        let set = TestSet::load(TestName::AesGcm).unwrap();
        let mut checked = 0;
        for group in set.test_groups.iter().filter(|g| g.key_size == 256) {
            let layouts: &[Layout] = match group.nonce_size {
                96 => &[Layout::A12, Layout::B, Layout::APrime],
                256 => &[Layout::A32],
                _ => continue,
            };
            for test in &group.tests {
                if test.result != wycheproof::TestResult::Valid {
                    continue;
                }
                let key = DataKey::from_slice("w", &test.key).unwrap();
                for &layout in layouts {
                    let keys = b"WOS.EKM.v1\0";
                    let frame = frame(layout, keys, &test.pt).unwrap();
                    let mut out = b"prefix".to_vec();
                    seal_frame(
                        &mut out,
                        &frame,
                        &key,
                        keys,
                        &test.pt,
                        &test.aad,
                        Some(&test.nonce),
                    )
                    .unwrap();
                    let envelope = vault_format::Envelope::parse_as(&out[6..], layout).unwrap();
                    assert_eq!(envelope.ciphertext(), &test.ct[..], "tcId {}", test.tc_id);
                    assert_eq!(envelope.tag(), &test.tag[..], "tcId {}", test.tc_id);
                    assert_eq!(envelope.iv(), &test.nonce[..]);
                    assert_eq!(envelope.encrypted_keys().unwrap(), &keys[..]);
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn failed_seal_leaves_buffer_as_it_was() {
        let key = DataKey::new("k", [1; 32]);
        let frame = frame(Layout::A12, b"keys", b"secret").unwrap();
        let mut out = b"prefix".to_vec();
        let error = seal_frame(
            &mut out,
            &frame,
            &key,
            b"keys",
            b"secret",
            b"",
            Some(&[0; 5]),
        );
        assert!(matches!(error, Err(Error::Format(_))));
        assert_eq!(out, b"prefix");
    }

    #[test]
    fn a_prime_stores_base64_text() {
        assert_eq!(keys_region_len(Layout::APrime, &[0; 4]), 8);
        assert_eq!(keys_region_len(Layout::A12, &[0; 4]), 4);
    }
}
