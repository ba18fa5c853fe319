//! Base64 as WorkOS ciphertexts use it.
//!
//! Writing is always the standard alphabet with padding. Reading also
//! accepts what peers produce in the wild: missing padding, and ASCII
//! whitespace (spaces, tabs, line breaks) anywhere, which the Node SDK
//! accepts too. URL-safe text (`-`, `_`) is **rejected** with an error that
//! says how to convert it: no official SDK writes it, and accepting two
//! alphabets would give one ciphertext several spellings.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{DecodeError, Engine};

use crate::Error;

/// Standard alphabet; writes padding, reads text with or without it.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes as standard, padded base64.
pub fn encode(bytes: &[u8]) -> String {
    #[cfg(feature = "simd")]
    {
        base64_simd::STANDARD.encode_to_string(bytes)
    }
    #[cfg(not(feature = "simd"))]
    {
        ENGINE.encode(bytes)
    }
}

/// Encodes `bytes` into `out`, exactly [`encoded_len`] long: with SIMD
/// under the `simd` feature, else with the portable engine.
fn fast_encode(bytes: &[u8], out: &mut [u8]) {
    #[cfg(feature = "simd")]
    let written = base64_simd::STANDARD
        .encode(bytes, base64_simd::Out::from_slice(out))
        .len();
    #[cfg(not(feature = "simd"))]
    let written = ENGINE.encode_slice(bytes, out).unwrap_or(0);
    debug_assert_eq!(written, encoded_len(bytes.len()));
}

/// Without the `simd` feature there is no fast path: the portable engine
/// decodes every text.
#[cfg(not(feature = "simd"))]
fn fast_decode(_text: &[u8], _out: &mut Vec<u8>) -> bool {
    false
}

/// Decodes text without whitespace with SIMD, appending to `out`: the
/// common case, about twice as fast as the portable engine. `false` when
/// it refuses the text (`out` is then as it was): the portable engine
/// decodes it again to say why, so both accept exactly the same texts (a
/// test compares them).
#[cfg(feature = "simd")]
fn fast_decode(text: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let engine = if text.len().is_multiple_of(4) {
        &base64_simd::STANDARD
    } else {
        &base64_simd::STANDARD_NO_PAD
    };
    if engine.decode_append(text, out).is_ok() {
        return true;
    }
    out.truncate(start);
    false
}

/// Encodes bytes as standard, padded base64 into `out`, which must be
/// exactly [`encoded_len`]`(bytes.len())` long.
///
/// # Panics
///
/// If `out` has another length: a bug in the caller.
pub fn encode_to_slice(bytes: &[u8], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        encoded_len(bytes.len()),
        "buffer must fit the base64 text exactly"
    );
    fast_encode(bytes, out);
}

/// Length of the padded base64 text of `raw_len` bytes.
pub const fn encoded_len(raw_len: usize) -> usize {
    raw_len.div_ceil(3) * 4
}

/// Decodes base64 text into a new buffer. See the module docs for what is
/// accepted.
///
/// ```
/// assert_eq!(vault_format::b64::decode("aGk=")?, b"hi");
/// assert_eq!(vault_format::b64::decode("aG\nk")?, b"hi");
/// assert!(vault_format::b64::decode("aG-k").is_err());
/// # Ok::<(), vault_format::Error>(())
/// ```
pub fn decode(text: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    decode_into(text, &mut out)?;
    Ok(out)
}

/// Decodes base64 text, appending to `out`, so callers can reuse a buffer.
/// On error `out` keeps its previous contents.
pub fn decode_into(text: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let start = out.len();
    // Text without whitespace, the common case, is decoded in one pass.
    // Whitespace is not in the alphabet, so text with it fails that pass
    // and is decoded again without it: no scan before the first pass,
    // which used to cost as much as the decoding itself.
    let mut result = decode_compact(bytes, out);
    if result.is_err() && bytes.iter().any(u8::is_ascii_whitespace) {
        out.truncate(start);
        let compact: Vec<u8> = bytes
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        result = decode_compact(&compact, out);
    }
    if result.is_err() {
        out.truncate(start);
    }
    result.map_err(|error| match error {
        Some(error) => diagnose(text, error),
        None => Error::Empty,
    })
}

/// Decodes text without whitespace; `None` for no text at all.
fn decode_compact(compact: &[u8], out: &mut Vec<u8>) -> Result<(), Option<DecodeError>> {
    if compact.is_empty() {
        return Err(None);
    }
    if fast_decode(compact, out) {
        return Ok(());
    }
    ENGINE.decode_vec(compact, out).map_err(Some)
}

/// Turns the engine's error into one that names the offending character in
/// the text the user gave us (offsets count whitespace).
fn diagnose(original: &str, error: DecodeError) -> Error {
    diagnose_bytes(original.as_bytes(), 0, malformed_reason(&error))
}

/// [`diagnose`] for `text` that starts `base` bytes into the whole text.
/// A character cut off at the end of `text` is reported as U+FFFD.
fn diagnose_bytes(text: &[u8], base: usize, reason: &'static str) -> Error {
    let stray = text.iter().position(|&b| {
        !(b.is_ascii_alphanumeric()
            || b == b'+'
            || b == b'/'
            || b == b'='
            || b.is_ascii_whitespace())
    });
    match stray {
        Some(at) => {
            let offset = base + at;
            let character = text[at..]
                .utf8_chunks()
                .next()
                .and_then(|chunk| chunk.valid().chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            match character {
                '-' | '_' => Error::UrlSafeBase64 { offset },
                character => Error::InvalidBase64Character { character, offset },
            }
        }
        None => Error::MalformedBase64 { reason },
    }
}

fn malformed_reason(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::InvalidLength(_) => {
            "its length leaves one dangling character (a character was lost or added)"
        }
        DecodeError::InvalidLastSymbol(..) => {
            "the last character has unused bits set, so it was not written by a base64 encoder"
        }
        DecodeError::InvalidPadding | DecodeError::InvalidByte(..) => MISPLACED_PADDING,
    }
}

const MISPLACED_PADDING: &str = "padding '=' appears before the end or in the wrong amount";

/// Decodes base64 text that arrives in pieces (a large file read in
/// chunks), appending to a buffer, by the same rules as [`decode`]: so the
/// text never has to be in memory whole. Pieces may split the text
/// anywhere, even inside a quad or a UTF-8 character.
///
/// ```
/// use vault_format::b64::Decoder;
/// let mut out = Vec::new();
/// let mut decoder = Decoder::new();
/// for piece in ["aGVs", "bG8", "gd2\n9y", "bGQ="] {
///     decoder.push(piece.as_bytes(), &mut out)?;
/// }
/// decoder.finish(&mut out)?;
/// assert_eq!(out, b"hello world");
/// # Ok::<(), vault_format::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    /// Characters of a quad not yet complete (whitespace dropped).
    carry: [u8; 4],
    carry_len: usize,
    /// Bytes of text seen so far, whitespace included: error offsets.
    consumed: usize,
    /// A quad with padding was decoded: nothing but whitespace may follow.
    padded: bool,
    /// Whether any non-whitespace character was seen.
    seen: bool,
    /// The whitespace-free copy of a piece that had whitespace.
    scratch: Vec<u8>,
}

impl Decoder {
    /// A decoder at the start of the text.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Decodes the next piece of text, appending whole quads to `out`. On
    /// error, `out` may hold part of the piece's bytes: the caller drops
    /// the whole result.
    pub fn push(&mut self, mut text: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut base = self.consumed;
        self.consumed += text.len();
        // The common case, a piece without whitespace after whole quads,
        // decodes straight from the caller's bytes.
        if self.carry_len == 0 && !self.padded && text.len() >= 4 {
            let whole = text.len() / 4 * 4;
            if fast_decode(&text[..whole], out) {
                self.seen = true;
                self.padded = text[whole - 1] == b'=';
                text = &text[whole..];
                base += whole;
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(text.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let result = self.take(&scratch, out).map_err(|error| match error {
            // Found in the compacted copy, whose offsets mean nothing to
            // the user; carried characters are checked when carried, so
            // the character is in this piece.
            Error::InvalidBase64Character { .. } | Error::UrlSafeBase64 { .. } => {
                diagnose_bytes(text, base, MISPLACED_PADDING)
            }
            other => other,
        });
        self.scratch = scratch;
        result
    }

    /// Ends the text: decodes the last, possibly unpadded, quad.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        if !self.seen && self.carry_len == 0 {
            return Err(Error::Empty);
        }
        if self.carry_len > 0 {
            ENGINE
                .decode_vec(&self.carry[..self.carry_len], out)
                .map_err(|error| Error::MalformedBase64 {
                    reason: malformed_reason(&error),
                })?;
        }
        Ok(())
    }

    /// Decodes `text`, free of whitespace, after the carried characters;
    /// carries what does not fill a quad. Offsets in its errors are
    /// meaningless: [`Decoder::push`] finds the character in the piece.
    fn take(&mut self, mut text: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        if self.padded {
            return Err(diagnose_bytes(text, 0, MISPLACED_PADDING));
        }
        self.seen = true;
        if self.carry_len > 0 {
            let n = (4 - self.carry_len).min(text.len());
            self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&text[..n]);
            self.carry_len += n;
            text = &text[n..];
            if self.carry_len < 4 {
                return check_carried(&self.carry[..self.carry_len]);
            }
            let quad = self.carry;
            self.carry_len = 0;
            self.decode_whole(&quad, out)?;
            if self.padded && !text.is_empty() {
                return Err(diagnose_bytes(text, 0, MISPLACED_PADDING));
            }
        }
        let whole = text.len() / 4 * 4;
        self.decode_whole(&text[..whole], out)?;
        let rest = &text[whole..];
        check_carried(rest)?;
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    fn decode_whole(&mut self, quads: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if quads.is_empty() {
            return Ok(());
        }
        if !fast_decode(quads, out) {
            ENGINE
                .decode_vec(quads, out)
                .map_err(|error| diagnose_bytes(quads, 0, malformed_reason(&error)))?;
        }
        self.padded = quads[quads.len() - 1] == b'=';
        Ok(())
    }
}

/// Characters carried to the next piece must be base64 already, so a stray
/// one is reported with the piece it came in.
fn check_carried(carried: &[u8]) -> Result<(), Error> {
    match diagnose_bytes(carried, 0, MISPLACED_PADDING) {
        Error::MalformedBase64 { .. } => Ok(()),
        stray => Err(stray),
    }
}

/// Base64-encodes, in place, raw bytes that sit at the tail of `buf`.
///
/// `buf` must be exactly [`encoded_len`]`(raw_len)` bytes long, with the raw
/// bytes in its last `raw_len` bytes. Afterwards it holds their padded
/// base64 text. This lets an encryptor build a ciphertext's text in one
/// allocation: it writes the envelope at the tail and encodes over it.
///
/// # Panics
///
/// If `buf.len() != encoded_len(raw_len)`: that is a bug in the caller,
/// never a property of untrusted input.
#[doc(hidden)]
pub fn encode_tail_in_place(buf: &mut [u8], raw_len: usize) {
    assert_eq!(
        buf.len(),
        encoded_len(raw_len),
        "buffer must fit the base64 text exactly"
    );
    // Encoding reads 3 bytes for every 4 it writes, and the raw bytes start
    // at least raw_len/3 bytes in, so the write position never overtakes
    // bytes not yet read (see the proof in the tests).
    const CHUNK: usize = 3 * 256;
    let offset = buf.len() - raw_len;
    let mut chunk = [0u8; CHUNK];
    let mut read = 0;
    while read < raw_len {
        let n = CHUNK.min(raw_len - read);
        chunk[..n].copy_from_slice(&buf[offset + read..offset + read + n]);
        let write = read / 3 * 4;
        fast_encode(&chunk[..n], &mut buf[write..write + encoded_len(n)]);
        read += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The SIMD path never accepts what the portable engine refuses,
        /// and decodes what it accepts to the same bytes. (It refuses a
        /// few texts the portable engine takes, such as a lone `=` after
        /// two characters; those fall back to the portable engine.)
        #[test]
        fn the_fast_path_agrees_with_the_portable_engine(text in "[A-Za-z0-9+/=]{0,70}") {
            let mut fast = b"kept".to_vec();
            let accepted = fast_decode(text.as_bytes(), &mut fast);
            match ENGINE.decode(text.as_bytes()) {
                Ok(bytes) if accepted => prop_assert_eq!(&fast[4..], &bytes[..]),
                Ok(_) => prop_assert_eq!(&fast[..], b"kept"),
                Err(_) => {
                    prop_assert!(!accepted, "{text:?} accepted by the fast path only");
                    prop_assert_eq!(&fast[..], b"kept");
                }
            }
        }

        /// What callers see is the portable engine's answer, fast path or
        /// not (empty text aside: that is [`Error::Empty`]).
        #[test]
        fn decoding_answers_as_the_portable_engine(text in "[A-Za-z0-9+/=]{1,70}") {
            match (decode(&text), ENGINE.decode(text.as_bytes())) {
                (Ok(ours), Ok(portable)) => prop_assert_eq!(ours, portable),
                (Err(_), Err(_)) => {}
                (ours, portable) => prop_assert!(false, "{text:?}: {ours:?} vs {portable:?}"),
            }
        }

        #[test]
        fn fast_encoding_matches_the_portable_engine(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(encode(&bytes), ENGINE.encode(&bytes));
        }
    }

    #[test]
    fn accepts_peer_variants() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode(" aGVs\r\nbG8=\n").unwrap(), b"hello");
        assert_eq!(decode("aGVs\tbG8").unwrap(), b"hello");
    }

    #[test]
    fn rejects_with_actionable_errors() {
        assert_eq!(decode(""), Err(Error::Empty));
        assert_eq!(decode(" \n"), Err(Error::Empty));
        assert_eq!(decode("ab-c"), Err(Error::UrlSafeBase64 { offset: 2 }));
        assert_eq!(decode("ab_c"), Err(Error::UrlSafeBase64 { offset: 2 }));
        assert_eq!(
            decode("a\nb!c"),
            Err(Error::InvalidBase64Character {
                character: '!',
                offset: 3
            })
        );
        assert_eq!(
            decode("abé"),
            Err(Error::InvalidBase64Character {
                character: 'é',
                offset: 2
            })
        );
        assert!(matches!(
            decode("abcde"),
            Err(Error::MalformedBase64 { .. })
        ));
        assert!(matches!(
            decode("ab=cd"),
            Err(Error::MalformedBase64 { .. })
        ));
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert!(matches!(decode("aGl="), Err(Error::MalformedBase64 { .. })));
    }

    #[test]
    fn decode_into_keeps_buffer_on_error() {
        let mut out = b"prefix".to_vec();
        assert!(decode_into("!!", &mut out).is_err());
        assert_eq!(out, b"prefix");
        decode_into("aGk=", &mut out).unwrap();
        assert_eq!(out, b"prefixhi");
        // Text with whitespace takes the second pass; what the first pass
        // wrote is dropped.
        decode_into("aGVs\nbG8=", &mut out).unwrap();
        assert_eq!(out, b"prefixhihello");
        assert!(decode_into("aGVs\nbG8!", &mut out).is_err());
        assert_eq!(out, b"prefixhihello");
    }

    #[test]
    fn in_place_encoding_matches_encode() {
        for len in [0, 1, 2, 3, 4, 767, 768, 769, 1535, 1536, 1537, 5000, 70_001] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut buf = vec![0u8; encoded_len(len)];
            let offset = buf.len() - len;
            buf[offset..].copy_from_slice(&raw);
            encode_tail_in_place(&mut buf, len);
            assert_eq!(String::from_utf8(buf).unwrap(), encode(&raw), "len {len}");
        }
    }
}
