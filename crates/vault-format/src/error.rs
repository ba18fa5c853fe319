use std::fmt;

use crate::Layout;

/// Everything that can be wrong with a ciphertext's framing or encoding.
///
/// Messages say what was found and what was expected, so a user can act on
/// them. No variant carries secret material: only lengths, offsets and
/// layout names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty.
    Empty,
    /// The input holds a character outside the standard base64 alphabet.
    InvalidBase64Character {
        /// The offending character.
        character: char,
        /// Its byte offset in the input text.
        offset: usize,
    },
    /// The input uses the URL-safe base64 alphabet (`-` or `_`).
    UrlSafeBase64 {
        /// Byte offset of the first URL-safe character.
        offset: usize,
    },
    /// The base64 text has a length or padding that no encoder produces.
    MalformedBase64 {
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// The decoded bytes are too short for the layout.
    TooShort {
        /// The layout being parsed.
        layout: Layout,
        /// Bytes available.
        len: usize,
        /// Bytes the layout needs at least.
        min: usize,
    },
    /// The LEB128 length prefix runs past the end of the input.
    TruncatedLength {
        /// The layout being parsed.
        layout: Layout,
        /// Offset of the length prefix.
        offset: usize,
    },
    /// The LEB128 length prefix is longer than 5 bytes or exceeds `u32::MAX`.
    LengthOverflow {
        /// The layout being parsed.
        layout: Layout,
        /// Offset of the length prefix.
        offset: usize,
    },
    /// The LEB128 length prefix uses more bytes than its value needs.
    OverlongLength {
        /// The layout being parsed.
        layout: Layout,
        /// Offset of the length prefix.
        offset: usize,
    },
    /// The declared keys length is larger than the bytes that follow it.
    KeysLengthExceedsInput {
        /// The layout being parsed.
        layout: Layout,
        /// Keys length the prefix declares.
        declared: u64,
        /// Bytes left after the prefix, less the layout's fixed trailer.
        available: usize,
    },
    /// An A-prime keys region is not valid base64 text.
    InvalidKeysText,
    /// A part handed to the encoder has the wrong size.
    InvalidPart {
        /// The layout being encoded.
        layout: Layout,
        /// Which part: `"iv"`, `"tag"` or `"keys"`.
        part: &'static str,
        /// The size that was given.
        len: usize,
        /// The size the layout needs.
        expected: usize,
    },
    /// The input is no layout we know, and no fallback fits.
    Unrecognized,
    /// Re-framing to or from A32 needs the data key: a 32-byte IV has no
    /// 12-byte equivalent.
    NeedsDataKey {
        /// The envelope's layout.
        from: Layout,
        /// The layout asked for.
        to: Layout,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("ciphertext is empty"),
            Error::InvalidBase64Character { character, offset } => write!(
                f,
                "ciphertext is not base64: {character:?} at offset {offset} is outside the standard alphabet (A-Z a-z 0-9 + / =)"
            ),
            Error::UrlSafeBase64 { offset } => write!(
                f,
                "ciphertext uses URL-safe base64 ('-' or '_' at offset {offset}); WorkOS ciphertexts use the standard alphabet, so replace '-' with '+' and '_' with '/'"
            ),
            Error::MalformedBase64 { reason } => write!(f, "ciphertext is not valid base64: {reason}"),
            Error::TooShort { layout, len, min } => write!(
                f,
                "ciphertext is {len} bytes; an {layout} envelope needs at least {min}"
            ),
            Error::TruncatedLength { layout, offset } => write!(
                f,
                "{layout} envelope ends inside the keys length prefix at offset {offset}"
            ),
            Error::LengthOverflow { layout, offset } => write!(
                f,
                "{layout} envelope has a keys length prefix at offset {offset} that exceeds 5 bytes or the u32 range"
            ),
            Error::OverlongLength { layout, offset } => write!(
                f,
                "{layout} envelope has a keys length prefix at offset {offset} with redundant trailing bytes (overlong LEB128)"
            ),
            Error::KeysLengthExceedsInput { layout, declared, available } => write!(
                f,
                "{layout} envelope declares {declared} bytes of encrypted keys but only {available} are available"
            ),
            Error::InvalidKeysText => f.write_str(
                "A-prime envelope's keys region is not base64 text of an encrypted_keys blob",
            ),
            Error::InvalidPart { layout, part, len, expected } => write!(
                f,
                "cannot encode an {layout} envelope: {part} is {len} bytes, expected {expected}"
            ),
            Error::Unrecognized => f.write_str(
                "ciphertext matches no known envelope layout (A12, A32, B, A-prime)",
            ),
            Error::NeedsDataKey { from, to } => write!(
                f,
                "an {from} envelope cannot be re-framed as {to} offline: A32's 32-byte IV has no 12-byte equivalent, so the data key is needed to re-encrypt (use a key service: workos-vault migrate, or vault::Migration)"
            ),
        }
    }
}

impl std::error::Error for Error {}
