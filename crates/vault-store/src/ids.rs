//! Object and version ids, names the store accepts, and list cursors.

use ring::rand::{SecureRandom, SystemRandom};
use vault_api::{Error, ErrorKind};

/// What object ids start with.
pub const OBJECT_ID_PREFIX: &str = "obj_";
/// What version ids start with.
pub const VERSION_ID_PREFIX: &str = "ver_";
/// Hex digits after the prefix (128 random bits).
const ID_HEX_DIGITS: usize = 32;

/// A fresh id: `prefix` and 32 lowercase hex digits of 128 random bits.
pub(crate) fn new_id(rng: &SystemRandom, prefix: &str) -> Result<String, Error> {
    let mut bytes = [0u8; ID_HEX_DIGITS / 2];
    rng.fill(&mut bytes).map_err(|_| Error::random_failed())?;
    let mut id = String::with_capacity(prefix.len() + ID_HEX_DIGITS);
    id.push_str(prefix);
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    Ok(id)
}

fn is_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == ID_HEX_DIGITS
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn bad_request(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message).with_status(400)
}

/// Refuses anything that is not an object id of this store.
pub(crate) fn check_object_id(id: &str) -> Result<(), Error> {
    if is_id(id, OBJECT_ID_PREFIX) {
        Ok(())
    } else {
        Err(bad_request(
            "not an object id: object ids are obj_ and 32 lowercase hex digits",
        ))
    }
}

/// Refuses a `version_check` that is not a version id of this store.
pub(crate) fn check_version_id(id: &str) -> Result<(), Error> {
    if is_id(id, VERSION_ID_PREFIX) {
        Ok(())
    } else {
        Err(bad_request(
            "version_check is not a version id: version ids are ver_ and 32 lowercase hex digits",
        ))
    }
}

/// The store's rules for names, on top of WorkOS's published ones (1 to
/// 200 characters, no control characters), so that every name is one
/// safe path segment: no `/`, `\` or `%`, and no `..`.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    vault_api::object::ObjectName::new(name)?;
    if name.contains(['/', '\\', '%']) {
        return Err(bad_request(
            "object name contains /, \\ or %; use other separators, such as : or .",
        ));
    }
    if name.contains("..") {
        return Err(bad_request("object name contains .."));
    }
    Ok(())
}

/// A position in a list: the creation time and id of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) created_at: i64,
    pub(crate) id: String,
}

impl Cursor {
    /// Opaque text: unpadded URL-safe base64 of `created_at.id`.
    pub(crate) fn encode(&self) -> String {
        use base64_url as b;
        b::encode(format!("{}.{}", self.created_at, self.id).as_bytes())
    }

    /// The cursor `text` names, or a 400.
    pub(crate) fn decode(text: &str) -> Result<Cursor, Error> {
        let invalid = || bad_request("invalid cursor: pass back a list_metadata cursor unchanged");
        let bytes = base64_url::decode(text).ok_or_else(invalid)?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (created_at, id) = text.split_once('.').ok_or_else(invalid)?;
        let created_at = created_at.parse::<i64>().map_err(|_| invalid())?;
        if !is_id(id, OBJECT_ID_PREFIX) {
            return Err(invalid());
        }
        Ok(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// Unpadded URL-safe base64, for cursors (short, and safe in a query).
mod base64_url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        if text.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        for chunk in text.as_bytes().chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                let v = ALPHABET.iter().position(|a| a == c)?;
                n |= (v as u32) << (18 - 6 * i);
            }
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
            // Bits past the last whole byte must be zero (one encoding per
            // cursor).
            let used = 8 * (chunk.len() - 1);
            if chunk.len() < 4 && n << used & 0x00ff_ffff != 0 {
                return None;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_shape() {
        let rng = SystemRandom::new();
        let id = new_id(&rng, OBJECT_ID_PREFIX).unwrap();
        check_object_id(&id).unwrap();
        assert_ne!(id, new_id(&rng, OBJECT_ID_PREFIX).unwrap());
        check_version_id(&new_id(&rng, VERSION_ID_PREFIX).unwrap()).unwrap();
        for bad in [
            "",
            "obj_",
            "obj_123",
            "../etc/passwd",
            "OBJ_0123456789abcdef0123456789abcdef",
            "obj_0123456789ABCDEF0123456789abcdef",
            "obj_0123456789abcdef0123456789abcdef0",
            "ver_0123456789abcdef0123456789abcdef",
        ] {
            let error = check_object_id(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn names_are_safe_path_segments() {
        check_name("customers:acme.api-token v2").unwrap();
        for bad in ["a/b", "..", "a..b", "a%2Fb", "a\\b", "a\u{0}b", ""] {
            assert_eq!(
                check_name(bad).unwrap_err().kind(),
                ErrorKind::InvalidRequest,
                "{bad:?}"
            );
        }
        check_name(&"n".repeat(200)).unwrap();
        assert!(check_name(&"n".repeat(201)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let rng = SystemRandom::new();
        for created_at in [0, 1, -5, i64::MAX, 1_796_425_099_123_456] {
            let cursor = Cursor {
                created_at,
                id: new_id(&rng, OBJECT_ID_PREFIX).unwrap(),
            };
            assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }
        for bad in ["", "x", "abc$", "MTIz", "MTIzLm9ial8x"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"abcd"] {
            assert_eq!(
                base64_url::decode(&base64_url::encode(bytes)).as_deref(),
                Some(bytes)
            );
        }
        assert_eq!(base64_url::decode("QR"), None, "non-zero trailing bits");
    }
}
