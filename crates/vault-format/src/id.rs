//! Data key ids and other identifiers as text: UUIDs and lowercase hex.
//!
//! A WorkOS key blob names its data key with a 36-character UUID, and the
//! key services here mint their ids (and idempotency keys) the same way.
//! The randomness comes from the caller; this module only writes and checks
//! the text.

use crate::blob::ID_LEN;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as a UUID v4: the version (4) and variant bits set, lowercase
/// hyphenated text.
///
/// ```
/// let id = vault_format::__private::id::uuid_v4([0xff; 16]);
/// assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
/// assert!(vault_format::__private::id::is_uuid(&id));
/// ```
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(ID_LEN);
    for (group, range) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if group > 0 {
            text.push('-');
        }
        push_hex(&mut text, &bytes[range]);
    }
    text
}

/// Appends `bytes` to `out` as lowercase hex digits.
///
/// ```
/// let mut text = String::from("req_");
/// vault_format::__private::id::push_hex(&mut text, &[0x01, 0xab]);
/// assert_eq!(text, "req_01ab");
/// ```
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(2 * bytes.len());
    for byte in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Whether `text` has the 8-4-4-4-12 hexadecimal shape of a UUID (any
/// version, either case).
pub fn is_uuid(text: impl AsRef<[u8]>) -> bool {
    let text = text.as_ref();
    text.len() == ID_LEN
        && text.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_text_sets_version_and_variant() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            uuid_v4(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef"),
            "01234567-89ab-4def-8123-456789abcdef"
        );
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("0237abe8-fc0d-4456-831c-3a2d133e9f90"));
        assert!(is_uuid("0237ABE8-FC0D-4456-831C-3A2D133E9F90"));
        assert!(!is_uuid("0237abe8-fc0d-4456-831c-3a2d133e9f9"));
        assert!(!is_uuid("0237abe8xfc0d-4456-831c-3a2d133e9f90"));
        assert!(!is_uuid("0237abe8-fc0d-4456-831c-3a2d133e9fg0"));
        assert!(!is_uuid(""));
    }
}
