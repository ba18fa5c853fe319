use std::fmt;
use std::sync::OnceLock;

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use crate::Error;

/// Length of a data key: AES-256.
pub const DATA_KEY_LEN: usize = 32;

/// A 32-byte AES-256 data key and its id.
///
/// The key bytes live in a zeroizing buffer, are wiped on drop, never
/// appear in `Debug`, and are reached only through
/// [`DataKey::secret_bytes`]. There is no `Display` and no `Clone`: use
/// [`DataKey::duplicate`] where a second copy is truly needed (a cache).
///
/// The first seal or open through `ring` (every layout but A32) expands
/// the key into ring's AES-GCM key schedule and keeps it in the `DataKey`,
/// so reusing one `DataKey` for many messages pays that cost once. Like
/// every ring key, that schedule is not wiped on drop (ring offers no
/// way to); without the cache each call would leave an unwiped copy on
/// the stack instead.
pub struct DataKey {
    id: String,
    bytes: Zeroizing<[u8; DATA_KEY_LEN]>,
    /// ring's expanded key, built on first use.
    ring: OnceLock<LessSafeKey>,
}

impl DataKey {
    /// A data key from its raw bytes.
    pub fn new(id: impl Into<String>, bytes: [u8; DATA_KEY_LEN]) -> Self {
        let key = DataKey {
            id: id.into(),
            bytes: Zeroizing::new(bytes),
            ring: OnceLock::new(),
        };
        let mut bytes = bytes;
        zeroize::Zeroize::zeroize(&mut bytes);
        key
    }

    /// A data key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(id: impl Into<String>, bytes: &[u8]) -> Result<Self, Error> {
        let mut key = DataKey {
            id: id.into(),
            bytes: Zeroizing::new([0; DATA_KEY_LEN]),
            ring: OnceLock::new(),
        };
        if bytes.len() != DATA_KEY_LEN {
            return Err(Error::InvalidKeyLength { len: bytes.len() });
        }
        key.bytes.copy_from_slice(bytes);
        Ok(key)
    }

    /// A data key from standard base64 (as the API's `data_key` field),
    /// read as [`vault_format::b64`] reads every field: padding optional,
    /// whitespace ignored, URL-safe text refused.
    pub fn from_base64(id: impl Into<String>, text: &str) -> Result<Self, Error> {
        // Sized up front so decoding never reallocates (and leaves no
        // unwiped copy behind); wiped on drop, error or not.
        let mut decoded = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        vault_format::b64::decode_into(text, &mut decoded)
            .map_err(|_| Error::InvalidKeyEncoding)?;
        Self::from_slice(id, &decoded)
    }

    /// The data key id (a UUID for WorkOS keys).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret key bytes. Keep them out of logs.
    pub fn secret_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.bytes
    }

    /// The secret key as standard base64, in a zeroizing string (for wire
    /// formats such as the API's `data_key` field).
    pub fn secret_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(vault_format::b64::encode(&*self.bytes))
    }

    /// A second copy of this key, for caches. Deliberately not `Clone`, so
    /// copies are never made by accident.
    ///
    /// ring's expanded key is built first (if it was not yet) and copied
    /// too, so a cache that hands out copies of one key expands it once,
    /// not once per copy.
    pub fn duplicate(&self) -> Self {
        // Cannot fail for a 32-byte key; without it, copies expand lazily.
        let _ = self.ring_key();
        DataKey {
            id: self.id.clone(),
            bytes: self.bytes.clone(),
            ring: self.ring.clone(),
        }
    }

    /// ring's AES-256-GCM key for these bytes, expanded on first use.
    pub(crate) fn ring_key(&self) -> Result<&LessSafeKey, Error> {
        if let Some(key) = self.ring.get() {
            return Ok(key);
        }
        let key = UnboundKey::new(&AES_256_GCM, &*self.bytes)
            .map(LessSafeKey::new)
            .map_err(|_| Error::InvalidKeyLength {
                len: self.bytes.len(),
            })?;
        // Another thread may have won the race; both keys are the same.
        Ok(self.ring.get_or_init(|| key))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("key", &format_args!("[secret key elided]"))
            .finish()
    }
}

impl PartialEq for DataKey {
    /// Constant-time comparison of the key bytes; ids compared normally.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &self.bytes[..],
                &other.bytes[..],
            ))
    }
}

impl Eq for DataKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = DataKey::new("id-1", [0xab; 32]);
        let debug = format!("{key:?}");
        assert_eq!(debug, r#"DataKey { id: "id-1", key: [secret key elided] }"#);
        assert!(!debug.contains("abab"));
        assert!(!debug.contains(&*key.secret_base64()));
    }

    #[test]
    fn rejects_wrong_lengths() {
        assert_eq!(
            DataKey::from_slice("x", &[0; 31]).unwrap_err(),
            Error::InvalidKeyLength { len: 31 }
        );
        assert_eq!(
            DataKey::from_slice("x", &[0; 33]).unwrap_err(),
            Error::InvalidKeyLength { len: 33 }
        );
        assert_eq!(
            DataKey::from_base64("x", "AAAA").unwrap_err(),
            Error::InvalidKeyLength { len: 3 }
        );
        assert_eq!(
            DataKey::from_base64("x", "not base64!").unwrap_err(),
            Error::InvalidKeyEncoding
        );
    }

    #[test]
    fn from_base64_follows_the_format_crates_policy() {
        let key = DataKey::new("x", [7; 32]);
        let text = key.secret_base64();
        let unpadded = text.trim_end_matches('=');
        let wrapped = format!("{}\n{}", &text[..20], &text[20..]);
        for variant in [&text[..], unpadded, &wrapped] {
            assert_eq!(
                DataKey::from_base64("x", variant).unwrap(),
                key,
                "{variant:?}"
            );
        }
        let url_safe = vault_format::b64::encode(&[0xfb; 32]).replace('+', "-");
        assert_eq!(
            DataKey::from_base64("x", &url_safe).unwrap_err(),
            Error::InvalidKeyEncoding
        );
    }

    #[test]
    fn is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DataKey>();
    }

    #[test]
    fn duplicate_shares_the_expanded_key() {
        let key = DataKey::new("id", [5; 32]);
        assert!(key.ring.get().is_none());
        let copy = key.duplicate();
        assert!(key.ring.get().is_some());
        assert!(copy.ring.get().is_some());
        assert_eq!(key, copy);
    }

    #[test]
    fn duplicate_keeps_key_and_cache_is_per_bytes() {
        let key = DataKey::new("id", [9; 32]);
        assert!(key.ring_key().is_ok());
        let copy = key.duplicate();
        assert_eq!(key, copy);
        assert!(copy.ring.get().is_some());
    }

    #[test]
    fn base64_round_trip() {
        let key = DataKey::new("id", [7; 32]);
        let again = DataKey::from_base64("id", &key.secret_base64()).unwrap();
        assert_eq!(key, again);
        assert_eq!(again.secret_bytes(), &[7; 32]);
    }
}
