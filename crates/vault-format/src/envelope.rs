//! The envelope: reading ([`Envelope::parse`]) and writing ([`Frame`],
//! [`Envelope::to_bytes`]).

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine;

use crate::blob::{KeyBlob, LOCAL_MAGIC, TRANSIT_MAGIC, WORKOS_MAGIC};
use crate::layout::TAG_LEN;
use crate::leb128::{self, ReadError};
use crate::{b64, Error, Layout};

/// A parsed ciphertext. It borrows every part from the decoded bytes.
///
/// The parts are public facts, not secrets: the IV, the tag, the keys
/// region (an `encrypted_keys` blob, or for A-prime its base64 text) and
/// the AES-GCM ciphertext without its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    layout: Layout,
    iv: &'a [u8],
    tag: &'a [u8],
    keys: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Parses decoded ciphertext bytes, detecting the layout.
    ///
    /// Detection tries [`Layout::ALL`] in order (A12, A-prime, B, A32) and
    /// takes the first layout whose lengths fit and whose keys region opens
    /// with a recognised blob header: `WOS.EKM.v1\0` or the local key
    /// service's magic, then a 36-character UUID (for A-prime, the base64
    /// text of that header). When none does, a recognised magic found at a
    /// layout's keys offset names the layout whose error is reported (a
    /// corrupt length prefix, say). Otherwise the bytes are read as A12,
    /// the layout every current SDK writes, which is what a custom key
    /// service's blob needs. Use [`Envelope::parse_as`] to force a layout.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        for layout in Layout::ALL {
            if let Ok(envelope) = Self::parse_as(bytes, layout) {
                if envelope.has_known_blob() {
                    return Ok(envelope);
                }
            }
        }
        Self::parse_as(bytes, magic_hint(bytes).unwrap_or(Layout::A12))
    }

    /// Parses decoded ciphertext bytes as the given layout, skipping
    /// detection.
    pub fn parse_as(bytes: &'a [u8], layout: Layout) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        if bytes.len() < layout.min_len() {
            return Err(Error::TooShort {
                layout,
                len: bytes.len(),
                min: layout.min_len(),
            });
        }
        let iv_len = layout.iv_len();
        let (iv, tag, keys, ciphertext) = if layout.keys_first() {
            let (keys_len, prefix) = read_length(bytes, 0, layout)?;
            let trailer = iv_len + TAG_LEN;
            let min = prefix + trailer;
            if bytes.len() < min {
                return Err(Error::TooShort {
                    layout,
                    len: bytes.len(),
                    min,
                });
            }
            let keys = take_keys(bytes, prefix, keys_len, trailer, layout)?;
            let rest = &bytes[prefix + keys.len()..];
            let (iv, rest) = rest.split_at(iv_len);
            let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
            (iv, tag, keys, ciphertext)
        } else {
            let (iv, rest) = bytes.split_at(iv_len);
            let (tag, _) = rest.split_at(TAG_LEN);
            let head = iv_len + TAG_LEN;
            let (keys_len, prefix) = read_length(bytes, head, layout)?;
            let keys = take_keys(bytes, head + prefix, keys_len, 0, layout)?;
            (iv, tag, keys, &bytes[head + prefix + keys.len()..])
        };
        // The slicing above gave every part its length; `new` cannot fail.
        Envelope::new(layout, iv, tag, keys, ciphertext)
    }

    /// Decodes base64 text (see [`b64`] for what is accepted) into `buf`
    /// and parses it with detection. `buf` is cleared first, so a caller
    /// can reuse one buffer for many ciphertexts.
    ///
    /// ```
    /// # let text = vault_format::Envelope::new(vault_format::Layout::A12, &[0; 12], &[0; 16], b"", b"")?.to_base64();
    /// let mut buf = Vec::new();
    /// let envelope = vault_format::Envelope::parse_base64(&text, &mut buf)?;
    /// assert_eq!(envelope.layout(), vault_format::Layout::A12);
    /// # Ok::<(), vault_format::Error>(())
    /// ```
    pub fn parse_base64(text: &str, buf: &'a mut Vec<u8>) -> Result<Self, Error> {
        buf.clear();
        b64::decode_into(text, buf)?;
        Self::parse(buf)
    }

    /// Builds an envelope from its parts, for encoding. `keys` is the keys
    /// *region*: for [`Layout::APrime`] that is the base64 text of the blob.
    pub fn new(
        layout: Layout,
        iv: &'a [u8],
        tag: &'a [u8],
        keys: &'a [u8],
        ciphertext: &'a [u8],
    ) -> Result<Self, Error> {
        check_part(layout, "iv", iv.len(), layout.iv_len())?;
        check_part(layout, "tag", tag.len(), TAG_LEN)?;
        Frame::new(layout, keys.len(), ciphertext.len())?;
        Ok(Envelope {
            layout,
            iv,
            tag,
            keys,
            ciphertext,
        })
    }

    /// The layout the bytes were read as.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The IV (the nonce, for layout B): 12 bytes, or 32 for A32.
    pub fn iv(&self) -> &'a [u8] {
        self.iv
    }

    /// The 16-byte GCM tag.
    pub fn tag(&self) -> &'a [u8] {
        self.tag
    }

    /// The keys region exactly as stored. For A-prime this is base64 text;
    /// use [`Envelope::encrypted_keys`] for the blob itself.
    pub fn keys(&self) -> &'a [u8] {
        self.keys
    }

    /// The AES-GCM ciphertext, without the tag.
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// The `encrypted_keys` blob: the keys region, decoded from base64
    /// text for A-prime.
    pub fn encrypted_keys(&self) -> Result<Cow<'a, [u8]>, Error> {
        match self.layout {
            Layout::APrime => {
                let text = std::str::from_utf8(self.keys).map_err(|_| Error::InvalidKeysText)?;
                b64::decode(text)
                    .map(Cow::Owned)
                    .map_err(|_| Error::InvalidKeysText)
            }
            _ => Ok(Cow::Borrowed(self.keys)),
        }
    }

    /// The `encrypted_keys` blob as the API's base64 text.
    pub fn encrypted_keys_base64(&self) -> Result<String, Error> {
        match self.layout {
            Layout::APrime => {
                // Validate and normalise: the text may lack padding.
                Ok(b64::encode(&self.encrypted_keys()?))
            }
            _ => Ok(b64::encode(self.keys)),
        }
    }

    /// Whether the keys region opens with a recognised blob header.
    fn has_known_blob(&self) -> bool {
        match self.layout {
            Layout::APrime => {
                // The text of magic + id + keyring version is 68 characters;
                // decoding only that much keeps detection allocation-free.
                let mut header = [0u8; 51];
                let n = self.keys.len().min(68) / 4 * 4;
                let engine = base64::engine::general_purpose::STANDARD;
                match engine.decode_slice(&self.keys[..n], &mut header) {
                    Ok(len) => KeyBlob::parse(&header[..len]).is_known(),
                    Err(_) => false,
                }
            }
            _ => KeyBlob::parse(self.keys).is_known(),
        }
    }

    /// The framing of this envelope: where each part goes when encoded.
    /// Plumbing for the crates of this workspace, not a stable interface.
    #[doc(hidden)]
    pub fn frame(&self) -> Frame {
        Frame {
            layout: self.layout,
            keys_len: self.keys.len(),
            ciphertext_len: self.ciphertext.len(),
        }
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.frame().len()
    }

    /// Appends the encoded envelope to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let frame = self.frame();
        let start = out.len();
        out.resize(start + frame.len(), 0);
        self.write_frame(&frame, &mut out[start..]);
    }

    /// The encoded envelope, in one allocation of the exact size.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        out
    }

    /// The encoded envelope as standard base64 text, in one allocation.
    pub fn to_base64(&self) -> String {
        let frame = self.frame();
        let raw_len = frame.len();
        let mut buf = vec![0u8; b64::encoded_len(raw_len)];
        let offset = buf.len() - raw_len;
        self.write_frame(&frame, &mut buf[offset..]);
        b64::encode_tail_in_place(&mut buf, raw_len);
        String::from_utf8(buf).expect("base64 text is ASCII")
    }

    fn write_frame(&self, frame: &Frame, out: &mut [u8]) {
        out[frame.iv()].copy_from_slice(self.iv);
        out[frame.tag()].copy_from_slice(self.tag);
        let keys = frame.keys();
        let prefix = frame.keys_prefix();
        out[keys.start - prefix.len()..keys.start].copy_from_slice(&prefix);
        out[keys].copy_from_slice(self.keys);
        out[frame.ciphertext()].copy_from_slice(self.ciphertext);
    }
}

/// Where each part of an envelope sits, for writers that fill a buffer in
/// place (an AEAD sealing directly into the output, say).
///
/// ```
/// use vault_format::__private::Frame;
/// use vault_format::Layout;
/// let frame = Frame::new(Layout::B, 5, 3)?;
/// let mut buf = vec![0u8; frame.len()];
/// let prefix = frame.keys_prefix();
/// buf[frame.keys().start - prefix.len()..frame.keys().start].copy_from_slice(&prefix);
/// buf[frame.keys()].copy_from_slice(b"keys!");
/// buf[frame.ciphertext()].copy_from_slice(b"abc");
/// assert_eq!(frame.len(), 1 + 5 + 12 + 3 + 16);
/// assert_eq!(frame.tag(), 21..37);
/// # Ok::<(), vault_format::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    layout: Layout,
    keys_len: usize,
    ciphertext_len: usize,
}

impl Frame {
    /// The framing of a `layout` envelope with a keys region of `keys_len`
    /// bytes and `ciphertext_len` bytes of ciphertext (tag excluded).
    pub fn new(layout: Layout, keys_len: usize, ciphertext_len: usize) -> Result<Self, Error> {
        if u32::try_from(keys_len).is_err() {
            return Err(Error::InvalidPart {
                layout,
                part: "keys",
                len: keys_len,
                expected: u32::MAX as usize,
            });
        }
        Ok(Frame {
            layout,
            keys_len,
            ciphertext_len,
        })
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn prefix_len(&self) -> usize {
        // `new` checked that the length fits in a u32.
        leb128::encoded_len(self.keys_len as u32)
    }

    /// Total encoded length.
    pub fn len(&self) -> usize {
        self.layout.iv_len() + TAG_LEN + self.prefix_len() + self.keys_len + self.ciphertext_len
    }

    /// Always false: every envelope has an IV and a tag.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Where the length prefix and keys region start.
    fn keys_start(&self) -> usize {
        if self.layout.keys_first() {
            0
        } else {
            self.layout.iv_len() + TAG_LEN
        }
    }

    /// Byte range of the IV (nonce).
    pub fn iv(&self) -> Range<usize> {
        let start = if self.layout.keys_first() {
            self.prefix_len() + self.keys_len
        } else {
            0
        };
        start..start + self.layout.iv_len()
    }

    /// Byte range of the tag.
    pub fn tag(&self) -> Range<usize> {
        let start = if self.layout.keys_first() {
            self.len() - TAG_LEN
        } else {
            self.layout.iv_len()
        };
        start..start + TAG_LEN
    }

    /// Byte range of the keys region (after its length prefix).
    pub fn keys(&self) -> Range<usize> {
        let start = self.keys_start() + self.prefix_len();
        start..start + self.keys_len
    }

    /// Byte range of the ciphertext.
    pub fn ciphertext(&self) -> Range<usize> {
        let start = if self.layout.keys_first() {
            self.iv().end
        } else {
            self.keys().end
        };
        start..start + self.ciphertext_len
    }

    /// The LEB128 length prefix that precedes the keys region on the wire.
    pub fn keys_prefix(&self) -> KeysPrefix {
        let mut bytes = [0u8; leb128::MAX_LEN];
        // `new` checked that the length fits in a u32.
        let len = leb128::write_u32(self.keys_len as u32, &mut bytes);
        KeysPrefix { bytes, len }
    }
}

/// The encoded length prefix of a keys region: 1 to 5 bytes of unsigned
/// LEB128. Dereferences to those bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysPrefix {
    bytes: [u8; leb128::MAX_LEN],
    len: usize,
}

impl std::ops::Deref for KeysPrefix {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn check_part(
    layout: Layout,
    part: &'static str,
    len: usize,
    expected: usize,
) -> Result<(), Error> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::InvalidPart {
            layout,
            part,
            len,
            expected,
        })
    }
}

fn read_length(bytes: &[u8], offset: usize, layout: Layout) -> Result<(u32, usize), Error> {
    leb128::read_u32(&bytes[offset..]).map_err(|error| match error {
        ReadError::Truncated => Error::TruncatedLength { layout, offset },
        ReadError::Overflow => Error::LengthOverflow { layout, offset },
        ReadError::Overlong => Error::OverlongLength { layout, offset },
    })
}

/// The `declared` bytes at `start`, if they fit and leave `trailer` bytes.
fn take_keys(
    bytes: &[u8],
    start: usize,
    declared: u32,
    trailer: usize,
    layout: Layout,
) -> Result<&[u8], Error> {
    let available = bytes.len().saturating_sub(start + trailer);
    let declared_len = declared as usize;
    if declared_len > available {
        return Err(Error::KeysLengthExceedsInput {
            layout,
            declared: declared.into(),
            available,
        });
    }
    Ok(&bytes[start..start + declared_len])
}

/// The layout whose keys offset holds a recognised magic, if any: it tells
/// which layout a damaged envelope was written in.
fn magic_hint(bytes: &[u8]) -> Option<Layout> {
    let window = &bytes[..bytes.len().min(64)];
    let find = |needle: &[u8]| window.windows(needle.len()).position(|w| w == needle);
    let raw = find(WORKOS_MAGIC)
        .or_else(|| find(LOCAL_MAGIC))
        .or_else(|| find(TRANSIT_MAGIC));
    if let Some(position) = raw {
        return match position {
            1..=28 => Some(Layout::B),
            29..=48 => Some(Layout::A12),
            49.. => Some(Layout::A32),
            0 => None,
        };
    }
    // Base64 text of the first 9 bytes of each magic.
    let text = find(b"V09TLkVLT")
        .or_else(|| find(b"VlJTLkxLU"))
        .or_else(|| find(b"VlJTLlRLU"));
    text.filter(|p| (29..=48).contains(p))
        .map(|_| Layout::APrime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_prefix_is_leb128_and_fills_the_gap_before_the_keys() {
        for len in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            1 << 28,
            u32::MAX as usize,
        ] {
            let frame = Frame::new(Layout::A12, len, 0).expect("fits a u32");
            let prefix = frame.keys_prefix();
            assert_eq!(frame.keys().start, 12 + 16 + prefix.len(), "len {len}");
            assert_eq!(leb128::read_u32(&prefix), Ok((len as u32, prefix.len())));
        }
        let frame = |len| Frame::new(Layout::B, len, 0).expect("fits a u32");
        assert_eq!(&*frame(300).keys_prefix(), &[0xac, 0x02]);
        assert_eq!(
            &*frame(u32::MAX as usize).keys_prefix(),
            &[0xff, 0xff, 0xff, 0xff, 0x0f]
        );
    }
}
