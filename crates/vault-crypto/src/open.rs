//! Opening: envelope in, plaintext out, or one opaque error.

use crate::wipe::{wipe, wipe_from};
use vault_format::{b64, Envelope, Layout, TAG_LEN};

use crate::cipher;
use crate::{DataKey, Error};

/// Decrypts an envelope of any layout with its data key. Returns the
/// plaintext, in one allocation.
///
/// `aad` must be the bytes the writer passed; empty means none (GCM makes
/// no difference between absent and empty AAD).
///
/// # Errors
///
/// [`Error::Decrypt`] when the tag does not verify: the ciphertext, tag,
/// IV, AAD or key is wrong, and which one is deliberately not said. No
/// plaintext is ever returned from an envelope that fails.
pub fn open(key: &DataKey, envelope: &Envelope<'_>, aad: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(envelope.ciphertext().len());
    open_into(&mut out, key, envelope, aad)?;
    Ok(out)
}

/// Like [`open`], but appends the plaintext to `out`, so a caller can reuse
/// one buffer for many messages. On error `out` is left as it was, and the
/// bytes this call wrote are wiped first.
pub fn open_into(
    out: &mut Vec<u8>,
    key: &DataKey,
    envelope: &Envelope<'_>,
    aad: &[u8],
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(envelope.ciphertext());
    let result = cipher::open_within(
        key,
        envelope.layout(),
        envelope.iv(),
        envelope.tag(),
        aad,
        &mut out[start..],
        0..envelope.ciphertext().len(),
    );
    if result.is_err() {
        wipe_from(out, start);
    }
    result.map(|_| ())
}

/// Decodes a base64 ciphertext, detects its layout (see
/// [`Envelope::parse`]) and opens it. The plaintext is decrypted inside
/// the decoded buffer (see [`open_in_place`]), so this makes one
/// allocation for text without whitespace.
///
/// To force a layout, decode with [`vault_format::b64::decode`] and call
/// [`open_in_place`] with `Some(layout)`.
///
/// # Errors
///
/// [`Error::Format`] when the text is not base64 or not an envelope,
/// otherwise as [`open`].
pub fn open_base64(key: &DataKey, text: &str, aad: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    b64::decode_into(text, &mut buf)?;
    open_in_place(key, &mut buf, None, aad)?;
    Ok(buf)
}

/// Opens the envelope held in `buf` (decoded bytes, not base64) and leaves
/// the plaintext in `buf`, in place of the envelope: no allocation.
///
/// `layout` forces a layout ([`Envelope::parse_as`]); `None` detects it
/// ([`Envelope::parse`]). This suits a caller that parsed the envelope
/// once already to find its data key, and must let go of that borrow of
/// `buf` before opening: pass the layout it found.
///
/// ```
/// use vault_crypto::{open_in_place, seal, DataKey, Envelope, Layout};
///
/// # fn main() -> Result<(), vault_crypto::Error> {
/// let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [7; 32]);
/// let blob = b"WOS.EKM.v1\x000237abe8-fc0d-4456-831c-3a2d133e9f90";
/// let mut buf = seal(&key, Layout::A12, blob, b"hello", b"user_42")?;
///
/// // Find the data key from the parsed envelope, then open in place.
/// let layout = Envelope::parse(&buf)?.layout();
/// open_in_place(&key, &mut buf, Some(layout), b"user_42")?;
/// assert_eq!(buf, b"hello");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Format`] when `buf` is not an envelope (of `layout`, if
/// given); `buf` is then left as it was. [`Error::Decrypt`] as [`open`];
/// `buf` is then wiped and emptied, so no partial plaintext survives.
pub fn open_in_place(
    key: &DataKey,
    buf: &mut Vec<u8>,
    layout: Option<Layout>,
    aad: &[u8],
) -> Result<(), Error> {
    let (layout, iv, iv_len, tag, ciphertext) = {
        let envelope = match layout {
            Some(layout) => Envelope::parse_as(buf, layout)?,
            None => Envelope::parse(buf)?,
        };
        let frame = envelope.frame();
        if frame.len() != buf.len() {
            // Not the canonical framing of these bytes (cannot happen with
            // vault-format's parser); fall back to a copying open.
            let plaintext = open(key, &envelope, aad);
            wipe(buf);
            *buf = plaintext?;
            return Ok(());
        }
        let mut iv = [0u8; 32];
        iv[..envelope.iv().len()].copy_from_slice(envelope.iv());
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(envelope.tag());
        (
            envelope.layout(),
            iv,
            envelope.iv().len(),
            tag,
            frame.ciphertext(),
        )
    };
    debug_assert!(iv_len == Layout::A32.iv_len() || iv_len == Layout::A12.iv_len());
    match cipher::open_within(key, layout, &iv[..iv_len], &tag, aad, buf, ciphertext) {
        Ok(len) => {
            // The tail past the plaintext may hold plaintext left over from
            // moving it to the front: wipe it before it becomes spare
            // capacity.
            wipe_from(buf, len);
            Ok(())
        }
        Err(error) => {
            wipe(buf);
            Err(error)
        }
    }
}
