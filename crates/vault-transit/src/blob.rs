//! The `encrypted_keys` blob of [`TransitKeyService`](crate::TransitKeyService)
//! and the derivation context it sends to Transit. Pure functions over
//! bytes; every parser takes untrusted input.
//!
//! ```text
//! "VRS.TKS.v1\0"                 11 bytes, vault_format::__private::TRANSIT_MAGIC
//! data key id                    36 ASCII bytes, a random UUID v4
//! Transit key version            u32, big-endian (as in the ciphertext)
//! key name length, key name      u8, ASCII
//! entry count                    u8, 1 to 10
//! per entry, names ascending:
//!     name length, name          u16 big-endian, UTF-8
//!     value length, value        u16 big-endian, UTF-8
//! Transit ciphertext             the rest: "vault:v<N>:<base64>"
//! ```
//!
//! Nothing here is secret: the data key is inside the Transit ciphertext.
//! The header and the context are not authenticated by the blob itself;
//! they are bound by the derivation context (see [`derivation_context`]),
//! so changing any of them makes Transit's decryption fail.

use vault_api::{Error, ErrorKind, KeyContext};
use vault_format::__private::{ID_LEN, TRANSIT_MAGIC};
use vault_format::KeyBlob;

/// The key context a Transit key service's `encrypted_keys` blob is bound
/// to, read from the blob (stored in the clear, bound by Transit's
/// derivation context). `None` for any other blob or a malformed one.
pub fn blob_context(encrypted_keys: &[u8]) -> Option<KeyContext> {
    TransitBlob::parse(encrypted_keys)
        .ok()
        .map(|blob| blob.context)
}

/// First bytes of the derivation context: names this scheme.
const CONTEXT_LABEL: &[u8] = b"VRS.TKS.v1 key context\0";

/// A parsed blob, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransitBlob {
    /// The data key id.
    pub(crate) id: String,
    /// The Transit key version that wrapped the data key.
    pub(crate) key_version: u32,
    /// The Transit key's name.
    pub(crate) key_name: String,
    /// The key context the data key is bound to.
    pub(crate) context: KeyContext,
    /// Transit's ciphertext text.
    pub(crate) ciphertext: String,
}

impl TransitBlob {
    /// A blob for `ciphertext`, which Transit returned for `id` under
    /// `key_name` and `context`.
    pub(crate) fn new(
        id: &str,
        key_name: &str,
        context: &KeyContext,
        ciphertext: String,
    ) -> Result<Self, Error> {
        let key_version = ciphertext_version(&ciphertext).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                "Transit returned a ciphertext without a `vault:v<N>:` version prefix",
            )
        })?;
        Ok(TransitBlob {
            id: id.to_owned(),
            key_version,
            key_name: key_name.to_owned(),
            context: context.clone(),
            ciphertext,
        })
    }

    /// The blob's bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(128 + self.ciphertext.len());
        out.extend_from_slice(TRANSIT_MAGIC);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.key_version.to_be_bytes());
        let name_len = u8::try_from(self.key_name.len())
            .map_err(|_| Error::new(ErrorKind::Config, "the Transit key name is too long"))?;
        out.push(name_len);
        out.extend_from_slice(self.key_name.as_bytes());
        push_entries(&mut out, &self.context)?;
        out.extend_from_slice(self.ciphertext.as_bytes());
        Ok(out)
    }

    /// Parses a blob; anything malformed is [`ErrorKind::InvalidKeys`].
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let (id, key_version, rest) = match KeyBlob::parse(bytes) {
            KeyBlob::Transit {
                data_key_id,
                key_version,
                rest,
                ..
            } => (data_key_id, key_version, rest),
            KeyBlob::WorkOs { .. } => {
                return Err(invalid(
                    "these encrypted keys were written by WorkOS Vault, not by Transit; \
                     decrypt them with WORKOS_API_KEY set",
                ))
            }
            KeyBlob::Local { .. } => {
                return Err(invalid(
                    "these encrypted keys were written by the local key service, not by \
                     Transit; decrypt them with the keyring that wrote them",
                ))
            }
            _ => return Err(invalid("these encrypted keys are not a Transit blob")),
        };
        let mut reader = Reader(rest);
        let key_name = reader.text_u8()?.to_owned();
        let count = reader.byte()?;
        let mut pairs = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            pairs.push((reader.text_u16()?, reader.text_u16()?));
        }
        let context = KeyContext::from_pairs(pairs.iter().copied())
            .map_err(|_| invalid("the Transit blob's key context is malformed"))?;
        // Canonical form only: sorted, unique names, so one context has one blob.
        if context.len() != pairs.len() || !context.iter().eq(pairs.iter().copied()) {
            return Err(invalid(
                "the Transit blob's key context is not in canonical order",
            ));
        }
        let ciphertext = std::str::from_utf8(reader.0)
            .map_err(|_| invalid("the Transit blob's ciphertext is not text"))?;
        if ciphertext_version(ciphertext) != Some(key_version) || !valid_key_name(&key_name) {
            return Err(invalid(
                "the Transit blob's header does not match its ciphertext",
            ));
        }
        Ok(TransitBlob {
            id: id.to_owned(),
            key_version,
            key_name,
            context,
            ciphertext: ciphertext.to_owned(),
        })
    }

    /// The derivation context sent to Transit with this blob's ciphertext.
    pub(crate) fn derivation_context(&self) -> Result<Vec<u8>, Error> {
        derivation_context(&self.id, &self.context)
    }
}

/// The context a derived Transit key is derived from, for data key `id`
/// under `context`: a label, the id, then the entries as in the blob. So
/// a ciphertext opens only with the same id and the same context: changing
/// either derives another key, and Transit's AES-GCM fails.
pub(crate) fn derivation_context(id: &str, context: &KeyContext) -> Result<Vec<u8>, Error> {
    if id.len() != ID_LEN || !vault_format::__private::id::is_uuid(id) {
        return Err(Error::new(
            ErrorKind::InvalidKeys,
            "the data key id is not a UUID, so the Transit key service cannot wrap it",
        ));
    }
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(CONTEXT_LABEL);
    out.extend_from_slice(id.as_bytes());
    push_entries(&mut out, context)?;
    Ok(out)
}

/// The entry count and the length-prefixed entries.
fn push_entries(out: &mut Vec<u8>, context: &KeyContext) -> Result<(), Error> {
    context.validate()?;
    let count = u8::try_from(context.len())
        .map_err(|_| Error::new(ErrorKind::InvalidContext, "too many key context entries"))?;
    out.push(count);
    for (name, value) in context.iter() {
        for field in [name, value] {
            let len = u16::try_from(field.len()).map_err(|_| {
                Error::new(ErrorKind::InvalidContext, "a key context entry is too long")
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
    }
    Ok(())
}

/// The key version of a Transit ciphertext, `vault:v<N>:<base64>`.
pub(crate) fn ciphertext_version(ciphertext: &str) -> Option<u32> {
    let mut parts = ciphertext.splitn(3, ':');
    let (prefix, version, body) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = version.strip_prefix('v')?;
    let well_formed = prefix == "vault"
        && !body.is_empty()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten()
}

/// Whether `name` is a Transit key name this crate sends in a URL path:
/// 1 to 128 ASCII letters, digits, `-`, `_` or `.`, not only dots.
pub(crate) fn valid_key_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.bytes().all(|b| b == b'.')
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidKeys, message)
}

/// A cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(invalid("the Transit blob is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn text(&mut self, n: usize) -> Result<&'a str, Error> {
        std::str::from_utf8(self.take(n)?).map_err(|_| invalid("the Transit blob is not UTF-8"))
    }

    fn text_u8(&mut self) -> Result<&'a str, Error> {
        let n = self.byte()?;
        self.text(usize::from(n))
    }

    fn text_u16(&mut self) -> Result<&'a str, Error> {
        let len = self.take(2)?;
        self.text(usize::from(u16::from_be_bytes([len[0], len[1]])))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "0237abe8-fc0d-4456-831c-3a2d133e9f90";

    fn sample() -> TransitBlob {
        let context = KeyContext::new()
            .with("org", "o1")
            .unwrap()
            .with("env", "prod")
            .unwrap();
        TransitBlob::new(ID, "dek", &context, "vault:v2:QUJD".to_owned()).unwrap()
    }

    #[test]
    fn round_trip_and_inspectable() {
        let blob = sample();
        let bytes = blob.encode().unwrap();
        assert_eq!(TransitBlob::parse(&bytes).unwrap(), blob);
        let seen = KeyBlob::parse(&bytes);
        assert_eq!(seen.kind().name(), "transit");
        assert_eq!(seen.data_key_id(), Some(ID));
        assert!(matches!(seen, KeyBlob::Transit { key_version: 2, .. }));
    }

    #[test]
    fn every_truncation_and_header_change_is_refused() {
        let bytes = sample().encode().unwrap();
        // Up to the ciphertext's body; Transit's AES-GCM guards the body.
        for len in 0..bytes.len() - "QUJD".len() {
            let error = TransitBlob::parse(&bytes[..len]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidKeys, "truncated to {len}");
        }
        // The header's version must agree with the ciphertext's.
        let mut wrong_version = bytes.clone();
        wrong_version[ID_LEN + 14] = 3;
        assert!(TransitBlob::parse(&wrong_version).is_err());
        // Entries out of order are not canonical.
        let context = KeyContext::new()
            .with("a", "1")
            .unwrap()
            .with("b", "2")
            .unwrap();
        let mut swapped = TransitBlob::new(ID, "k", &context, "vault:v1:QQ==".into())
            .unwrap()
            .encode()
            .unwrap();
        let a = swapped.windows(3).position(|w| w == b"\x01a\x00").unwrap();
        let b = swapped.windows(3).position(|w| w == b"\x01b\x00").unwrap();
        (swapped[a + 1], swapped[b + 1]) = (b'b', b'a');
        assert!(TransitBlob::parse(&swapped).is_err());
    }

    #[test]
    fn ciphertext_versions_and_key_names() {
        assert_eq!(ciphertext_version("vault:v1:abc"), Some(1));
        assert_eq!(ciphertext_version("vault:v42:a:b"), Some(42));
        for bad in [
            "",
            "vault:v1:",
            "vault:1:abc",
            "vault:v:abc",
            "bao:v1:x",
            "vault:v1x:a",
        ] {
            assert_eq!(ciphertext_version(bad), None, "{bad}");
        }
        assert!(valid_key_name("vault-dek_1.a"));
        for bad in ["", "..", "a/b", "a b", "ü", &"k".repeat(129)] {
            assert!(!valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn derivation_binds_id_and_context() {
        let blob = sample();
        let base = blob.derivation_context().unwrap();
        let other_id = derivation_context("1237abe8-fc0d-4456-831c-3a2d133e9f90", &blob.context);
        assert_ne!(base, other_id.unwrap());
        let other_context = KeyContext::new().with("org", "o2").unwrap();
        assert_ne!(base, derivation_context(ID, &other_context).unwrap());
        assert!(derivation_context("not-a-uuid", &blob.context).is_err());
    }
}
