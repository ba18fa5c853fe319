//! Sealing: plaintext in, envelope out, encrypted in place in the output.

use crate::wipe::{wipe, wipe_from};
use vault_format::__private::Frame;
use vault_format::{b64, Layout};

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
    let frame = frame(layout, encrypted_keys, plaintext.len())?;
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
    let frame = frame(layout, encrypted_keys, plaintext.len())?;
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
    let frame = frame(layout, encrypted_keys, plaintext.len())?;
    let raw_len = frame.len();
    let text_len = b64::encoded_len(raw_len);
    let mut buf = Vec::with_capacity(text_len);
    buf.resize(text_len - raw_len, 0);
    seal_frame(&mut buf, &frame, key, encrypted_keys, plaintext, aad, None)?;
    vault_format::__private::encode_tail_in_place(&mut buf, raw_len);
    // Base64 text is ASCII, so this cannot fail; a failure is a bug in the
    // encoder and must not pass silently as an empty ciphertext.
    Ok(String::from_utf8(buf).expect("base64 text is ASCII"))
}

/// The framing of a sealed plaintext of `plaintext_len` bytes under
/// `layout`.
fn frame(layout: Layout, encrypted_keys: &[u8], plaintext_len: usize) -> Result<Frame, Error> {
    let keys_len = keys_region_len(layout, encrypted_keys);
    let len = u64::try_from(plaintext_len).unwrap_or(u64::MAX);
    if len > MAX_PLAINTEXT_LEN {
        return Err(Error::PlaintextTooLong {
            len,
            max: MAX_PLAINTEXT_LEN,
        });
    }
    Frame::new(layout, keys_len, plaintext_len).map_err(|_| Error::KeysTooLong {
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

/// Seals, in place, the plaintext at `buf[offset..]` into a `layout`
/// envelope that carries `encrypted_keys`, and returns where the envelope
/// starts: afterwards `buf[start..]` is the envelope and `buf[..start]` is
/// untouched.
///
/// This is for large messages: memory stays at the plaintext's size plus
/// the envelope's head. Read the plaintext into a buffer after at least
/// [`head_len`] bytes of room (any value; they are not read), with
/// [`TAG_LEN`](crate::TAG_LEN) bytes of spare capacity for layout B's trailing tag, and
/// nothing is copied or reallocated. With less room the plaintext is moved
/// once.
///
/// ```
/// use vault_crypto::{head_len, open_in_place, seal_in_place, DataKey, Layout};
///
/// # fn main() -> Result<(), vault_crypto::Error> {
/// let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [7; 32]);
/// let blob = b"WOS.EKM.v1\x000237abe8-fc0d-4456-831c-3a2d133e9f90";
/// let room = head_len(Layout::A12, blob.len());
/// let mut buf = vec![0u8; room];
/// buf.extend_from_slice(b"a large plaintext");
/// let start = seal_in_place(&key, Layout::A12, blob, &mut buf, room, b"")?;
/// assert_eq!(start, 0);
///
/// open_in_place(&key, &mut buf, None, b"")?;
/// assert_eq!(buf, b"a large plaintext");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`seal`]. `buf` is then wiped and emptied: it held plaintext.
///
/// # Panics
///
/// If `offset > buf.len()`: a bug in the caller.
pub fn seal_in_place(
    key: &DataKey,
    layout: Layout,
    encrypted_keys: &[u8],
    buf: &mut Vec<u8>,
    offset: usize,
    aad: &[u8],
) -> Result<usize, Error> {
    assert!(
        offset <= buf.len(),
        "the plaintext offset is past the buffer"
    );
    let plaintext_len = buf.len() - offset;
    let frame = match frame(layout, encrypted_keys, plaintext_len) {
        Ok(frame) => frame,
        Err(error) => {
            wipe(buf);
            return Err(error);
        }
    };
    let head = frame.ciphertext().start;
    let start = match offset.checked_sub(head) {
        Some(start) => start,
        None => {
            buf.resize(head + plaintext_len, 0);
            buf.copy_within(offset..offset + plaintext_len, head);
            0
        }
    };
    buf.resize(start + frame.len(), 0);
    match fill_and_seal(&mut buf[start..], &frame, key, encrypted_keys, aad, None) {
        Ok(()) => Ok(start),
        Err(error) => {
            wipe(buf);
            Err(error)
        }
    }
}

/// How many bytes a `layout` envelope with an `encrypted_keys` blob of
/// `encrypted_keys_len` bytes puts before its ciphertext: the room
/// [`seal_in_place`] wants before the plaintext. WorkOS's and the local
/// key service's blobs are a few hundred bytes, so 4 KiB is ample.
pub fn head_len(layout: Layout, encrypted_keys_len: usize) -> usize {
    let keys_len = match layout {
        Layout::APrime => b64::encoded_len(encrypted_keys_len),
        _ => encrypted_keys_len,
    };
    Frame::new(layout, keys_len, 0).map_or(usize::MAX, |frame| frame.ciphertext().start)
}

/// Appends the sealed envelope described by `frame` to `out`, whose
/// capacity the caller reserved: the plaintext is copied into the
/// ciphertext's place and encrypted there.
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
    out.resize(start + frame.ciphertext().start, 0);
    out.extend_from_slice(plaintext);
    out.resize(start + frame.len(), 0);
    let result = fill_and_seal(&mut out[start..], frame, key, encrypted_keys, aad, iv);
    if result.is_err() {
        // The buffer holds a copy of the plaintext: wipe it.
        wipe_from(out, start);
    }
    result
}

/// Writes the keys region and the IV of `envelope`, a buffer of
/// [`Frame::len`] bytes with the plaintext already in its ciphertext range,
/// then encrypts that range in place and writes the tag.
fn fill_and_seal(
    envelope: &mut [u8],
    frame: &Frame,
    key: &DataKey,
    encrypted_keys: &[u8],
    aad: &[u8],
    iv: Option<&[u8]>,
) -> Result<(), Error> {
    let layout = frame.layout();
    write_keys(envelope, frame, encrypted_keys);
    match iv {
        Some(iv) if iv.len() != layout.iv_len() => {
            return Err(Error::Format(vault_format::Error::InvalidPart {
                layout,
                part: "iv",
                len: iv.len(),
                expected: layout.iv_len(),
            }))
        }
        Some(iv) => envelope[frame.iv()].copy_from_slice(iv),
        None => cipher::random_iv(&mut envelope[frame.iv()])?,
    }
    let (iv, ciphertext) = split_iv_ciphertext(envelope, frame);
    let tag = cipher::seal_in_place(key, layout, iv, aad, ciphertext)?;
    envelope[frame.tag()].copy_from_slice(&tag);
    Ok(())
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

/// Writes the keys region, after its LEB128 length prefix.
fn write_keys(envelope: &mut [u8], frame: &Frame, encrypted_keys: &[u8]) {
    let keys = frame.keys();
    let prefix = frame.keys_prefix();
    envelope[keys.start - prefix.len()..keys.start].copy_from_slice(&prefix);
    match frame.layout() {
        Layout::APrime => b64::encode_to_slice(encrypted_keys, &mut envelope[keys]),
        _ => envelope[keys].copy_from_slice(encrypted_keys),
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
                    let frame = frame(layout, keys, test.pt.len()).unwrap();
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
        let frame = frame(Layout::A12, b"keys", 6).unwrap();
        let mut out = b"prefix".to_vec();
        crate::test_hooks::record_wipes();
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
        // The copy of the plaintext was zeroed, not just cut off.
        let wiped = crate::test_hooks::Wipe {
            len: frame.len(),
            all_zero: true,
        };
        assert_eq!(crate::test_hooks::take_wipes(), [wiped]);
    }

    #[test]
    fn a_prime_stores_base64_text() {
        assert_eq!(keys_region_len(Layout::APrime, &[0; 4]), 8);
        assert_eq!(keys_region_len(Layout::A12, &[0; 4]), 4);
    }
}
