//! The embedded local key service: WorkOS-style envelope keys from a local
//! keyring, for development, CI, air-gapped use and behind `vault-server`.
//!
//! # How a data key is wrapped
//!
//! For each context entry, a key-encrypting key (KEK) is derived with
//! HKDF-SHA256 from the newest master key of the [`Keyring`]:
//!
//! - salt: `"VRS.LKS.v1 key-encrypting key"`;
//! - info: `"VRS.LKS.v1 context entry"`, then the entry's name and value,
//!   each preceded by its length as a big-endian `u32`.
//!
//! The data key is sealed under every KEK with AES-256-GCM and a random
//! 96-bit nonce. The blob (`encrypted_keys`) is laid out as:
//!
//! ```text
//! "VRS.LKS.v1\0"                      11 bytes, vault_format::__private::LOCAL_MAGIC
//! data key id                         36 ASCII bytes, a random UUID v4
//! keyring version                     u32, big-endian
//! entry count                         u8, 1 to 10
//! per entry, names in ascending byte order:
//!     name length, name               u16 big-endian, UTF-8
//!     value length, value             u16 big-endian, UTF-8
//!     nonce                           12 bytes
//!     sealed data key                 32 bytes of ciphertext, 16-byte tag
//! ```
//!
//! The GCM associated data of entry `i` is the header (magic, id, version),
//! the entry count, every entry's length-prefixed name and value, and then
//! the byte `i`. So nothing in the header or the context can change without
//! every entry failing to open. Unwrapping opens **every** entry and
//! requires them all to succeed and to agree, so any changed byte of a blob
//! makes it fail.
//!
//! Each KEK is reused for every data key wrapped under the same master key
//! version and context entry, with random nonces: rotate the keyring well
//! before one context entry has wrapped 2^32 data keys.

use std::fmt;
use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use ring::aead::{self, Aad, LessSafeKey, Nonce, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use vault_crypto::{DataKey, DATA_KEY_LEN};
use vault_format::__private::{ID_LEN, LOCAL_HEADER_LEN, LOCAL_MAGIC, WORKOS_MAGIC};
use vault_format::KeyBlob;
use zeroize::Zeroizing;

use crate::keyring::{Keyring, KeyringInfo};
use vault_api::{DataKeyPair, Error, ErrorKind, KeyContext, KeyService, MAX_ENTRIES};

/// HKDF salt: names this scheme.
const KEK_SALT: &[u8] = b"VRS.LKS.v1 key-encrypting key";
/// First part of the HKDF info, before the entry.
const KEK_INFO_LABEL: &[u8] = b"VRS.LKS.v1 context entry";
/// AES-256-GCM tag length.
const TAG_LEN: usize = 16;
/// A sealed data key: ciphertext and tag.
const SEALED_LEN: usize = DATA_KEY_LEN + TAG_LEN;

/// The embedded key service: data keys wrapped under a local [`Keyring`].
///
/// Stateless apart from the keyring, so every service (or `vault-server`
/// replica) sharing one keyring file reads every other's blobs. When a blob
/// names a master key version this service has not seen, it re-reads the
/// file once (another process may have rotated); before wrapping, it
/// re-reads the file if it changed on disk, so a rotation anywhere is
/// picked up by every process.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vault_api::Error> {
/// use vault_api::{KeyContext, KeyService};
/// use vault_local::LocalKeyService;
///
/// let service = LocalKeyService::ephemeral();
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let pair = service.create_data_key(&context).await?;
/// let again = service.decrypt_data_key(&pair.encrypted_keys).await?;
/// assert_eq!(again, pair.data_key);
/// # Ok(())
/// # }
/// ```
pub struct LocalKeyService {
    keyring: RwLock<Keyring>,
    rng: SystemRandom,
}

impl LocalKeyService {
    /// A service over the existing keyring file at `path`; never creates
    /// one. See [`Keyring::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Self::new(Keyring::open(path)?))
    }

    /// A service over the keyring file at `path`, created (mode 0600) if
    /// it does not exist. For code that mints keys; see
    /// [`Keyring::open_or_create`].
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Self::new(Keyring::open_or_create(path)?))
    }

    /// A service over a new keyring file at `path`; fails if it exists.
    /// See [`Keyring::create`].
    pub fn create(path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Self::new(Keyring::create(path)?))
    }

    /// A service over an in-memory keyring: data keys it wraps cannot be
    /// unwrapped once it is dropped. For tests.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    pub fn ephemeral() -> Self {
        Self::new(Keyring::ephemeral())
    }

    /// A service over `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        LocalKeyService {
            keyring: RwLock::new(keyring),
            rng: SystemRandom::new(),
        }
    }

    /// Adds a fresh master key to the keyring (and its file) and returns its
    /// version. New data keys are wrapped under it; old blobs still unwrap.
    pub fn rotate(&self) -> Result<u32, Error> {
        self.write().rotate()
    }

    /// The keyring's versions and path, never key material.
    pub fn keyring_info(&self) -> KeyringInfo {
        self.read().info()
    }

    fn read(&self) -> RwLockReadGuard<'_, Keyring> {
        self.keyring.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keyring> {
        self.keyring.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads the keyring file if it changed on disk.
    fn refresh(&self) -> Result<(), Error> {
        if self.read().changed_on_disk()? {
            let mut keyring = self.write();
            if keyring.changed_on_disk()? {
                keyring.reload()?;
            }
        }
        Ok(())
    }

    /// The HKDF pseudo-random key of master key `version`; re-reads the
    /// file once if the version is unknown and the file changed.
    fn prk_for_version(&self, version: u32) -> Result<hkdf::Prk, Error> {
        if let Some(prk) = self.read().get(version).map(|key| prk(key)) {
            return Ok(prk);
        }
        let mut keyring = self.write();
        if keyring.get(version).is_none() && keyring.changed_on_disk()? {
            keyring.reload()?;
        }
        if let Some(key) = keyring.get(version) {
            return Ok(prk(key));
        }
        let where_ = keyring.path().map_or_else(
            || "the in-memory keyring".to_owned(),
            |p| p.display().to_string(),
        );
        let versions: Vec<String> = keyring.versions().map(|v| v.to_string()).collect();
        Err(Error::new(
            ErrorKind::InvalidKeys,
            format!(
                "these encrypted keys were wrapped under master key version {version}, which \
                 {where_} does not have (it has versions {}); use the keyring that wrote them",
                versions.join(", ")
            ),
        ))
    }

    /// Wraps `data_key` under `context` with the newest master key.
    fn wrap(&self, data_key: &DataKey, context: &KeyContext) -> Result<Vec<u8>, Error> {
        let (version, prk) = {
            let keyring = self.read();
            let (version, key) = keyring
                .newest()
                .ok_or_else(|| Error::new(ErrorKind::Keyring, "the keyring holds no keys"))?;
            (version, prk(key))
        };
        let id = data_key.id();
        if id.len() != ID_LEN
            || !matches!(KeyBlob::parse(&header(id, version)), KeyBlob::Local { .. })
        {
            return Err(Error::new(
                ErrorKind::InvalidKeys,
                "the data key id is not a UUID, so the local key service cannot wrap it",
            ));
        }
        let entries: Vec<(&[u8], &[u8])> = context
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_bytes()))
            .collect();
        let count = u8::try_from(entries.len())
            .ok()
            .filter(|n| (1..=MAX_ENTRIES).contains(&usize::from(*n)))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidContext,
                    "key context must have 1 to 10 entries",
                )
            })?;

        let mut aad = header(id, version);
        aad.push(count);
        for (name, value) in &entries {
            push_field(&mut aad, name)?;
            push_field(&mut aad, value)?;
        }

        let mut blob = Vec::with_capacity(aad.len() + entries.len() * (NONCE_LEN + SEALED_LEN));
        blob.extend_from_slice(&aad[..LOCAL_HEADER_LEN + 1]);
        for (index, (name, value)) in entries.iter().enumerate() {
            push_field(&mut blob, name)?;
            push_field(&mut blob, value)?;
            let mut nonce = [0u8; NONCE_LEN];
            self.rng
                .fill(&mut nonce)
                .map_err(|_| Error::random_failed())?;
            // Capacity for the tag up front: no reallocation leaves a copy
            // of the data key behind.
            let mut sealed = Zeroizing::new(Vec::with_capacity(SEALED_LEN));
            sealed.extend_from_slice(data_key.secret_bytes());
            aad.push(index as u8);
            kek(&prk, name, value)?
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    &mut *sealed,
                )
                .map_err(|_| Error::new(ErrorKind::Keyring, "AES-256-GCM sealing failed"))?;
            aad.pop();
            blob.extend_from_slice(&nonce);
            blob.extend_from_slice(&sealed);
        }
        Ok(blob)
    }

    /// Unwraps a blob of this service.
    fn unwrap(&self, blob: &[u8]) -> Result<DataKey, Error> {
        let parsed = ParsedBlob::parse(blob)?;
        let prk = self.prk_for_version(parsed.keyring_version)?;
        let mut aad = blob[..LOCAL_HEADER_LEN].to_vec();
        aad.push(parsed.entries.len() as u8);
        for entry in &parsed.entries {
            push_field(&mut aad, entry.name)?;
            push_field(&mut aad, entry.value)?;
        }
        let mut found: Option<DataKey> = None;
        let mut all_agree = true;
        for (index, entry) in parsed.entries.iter().enumerate() {
            aad.push(index as u8);
            let mut buffer = Zeroizing::new(entry.sealed.to_vec());
            let opened = kek(&prk, entry.name, entry.value)?.open_in_place(
                Nonce::assume_unique_for_key(entry.nonce),
                Aad::from(&aad[..]),
                &mut buffer[..],
            );
            aad.pop();
            let Ok(plain) = opened else {
                return Err(not_this_keyring(parsed.keyring_version));
            };
            let key = DataKey::from_slice(parsed.id, plain)
                .map_err(|_| not_this_keyring(parsed.keyring_version))?;
            match &found {
                None => found = Some(key),
                // Constant-time comparison (DataKey's PartialEq).
                Some(first) => all_agree &= *first == key,
            }
        }
        match found {
            Some(key) if all_agree => Ok(key),
            _ => Err(not_this_keyring(parsed.keyring_version)),
        }
    }

    /// Wraps `data_key` under `context` with the newest master key (after
    /// taking in any rotation by another process). The one place this
    /// service checks a context: only an empty one can be invalid.
    fn wrap_pair(
        &self,
        data_key: DataKey,
        context: &KeyContext,
        action: &str,
    ) -> Result<DataKeyPair, Error> {
        context.validate()?;
        self.refresh()?;
        let encrypted_keys = self.wrap(&data_key, context)?;
        tracing::debug!(
            data_key_id = data_key.id(),
            context_names = ?context.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            "local key service {action} a data key"
        );
        Ok(DataKeyPair::new(context.clone(), data_key, encrypted_keys))
    }
}

impl fmt::Debug for LocalKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyService")
            .field("keyring", &*self.read())
            .finish()
    }
}

#[async_trait]
impl KeyService for LocalKeyService {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        self.wrap_pair(vault_api::random_data_key()?, context, "created")
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        let data_key = self.unwrap(encrypted_keys)?;
        tracing::debug!(
            data_key_id = data_key.id(),
            "local key service unwrapped a data key"
        );
        Ok(data_key)
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        let data_key = self.unwrap(encrypted_keys)?;
        self.wrap_pair(data_key, context, "rewrapped")
    }
}

/// A blob of this service, split along its lengths. Nothing is trusted yet.
/// The key context a local key service's `encrypted_keys` blob is wrapped
/// under, read from the blob (the context is stored in the clear and bound
/// by every entry's tag). `None` for any other blob or a malformed one.
/// No key is needed; nothing is verified.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vault_api::Error> {
/// use vault_api::{KeyContext, KeyService};
/// use vault_local::{blob_context, LocalKeyService};
///
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let pair = LocalKeyService::ephemeral().create_data_key(&context).await?;
/// assert_eq!(blob_context(&pair.encrypted_keys), Some(context));
/// # Ok(())
/// # }
/// ```
pub fn blob_context(encrypted_keys: &[u8]) -> Option<KeyContext> {
    let parsed = ParsedBlob::parse(encrypted_keys).ok()?;
    let entries = parsed
        .entries
        .iter()
        .map(|entry| {
            Some((
                std::str::from_utf8(entry.name).ok()?,
                std::str::from_utf8(entry.value).ok()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    KeyContext::from_pairs(entries).ok()
}

struct ParsedBlob<'a> {
    id: &'a str,
    keyring_version: u32,
    entries: Vec<Entry<'a>>,
}

struct Entry<'a> {
    name: &'a [u8],
    value: &'a [u8],
    nonce: [u8; NONCE_LEN],
    sealed: &'a [u8],
}

impl<'a> ParsedBlob<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        let (id, keyring_version, rest) = match KeyBlob::parse(blob) {
            KeyBlob::Local {
                data_key_id,
                keyring_version,
                rest,
                ..
            } => (data_key_id, keyring_version, rest),
            KeyBlob::WorkOs { .. } => {
                return Err(Error::new(
                    ErrorKind::InvalidKeys,
                    "these encrypted keys were written by WorkOS Vault; the local key service \
                     cannot unwrap them — set WORKOS_API_KEY to use WorkOS Vault",
                ))
            }
            _ if blob.starts_with(LOCAL_MAGIC) => {
                return Err(malformed(
                    "the header is truncated or its data key id is not a UUID",
                ))
            }
            _ if blob.starts_with(&WORKOS_MAGIC[..4]) => {
                return Err(Error::new(
                    ErrorKind::InvalidKeys,
                    "these encrypted keys look like WorkOS Vault's but are malformed",
                ))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidKeys,
                    "these encrypted keys were not written by the local key service (they do \
                     not start with \"VRS.LKS.v1\"); use the key service that wrote them",
                ))
            }
        };
        let mut reader = Reader(rest);
        let count = usize::from(reader.byte()?);
        if !(1..=MAX_ENTRIES).contains(&count) {
            return Err(malformed("the entry count is not between 1 and 10"));
        }
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(count);
        for _ in 0..count {
            let name = reader.field()?;
            let value = reader.field()?;
            let nonce = *reader.array::<NONCE_LEN>()?;
            let sealed = reader.take(SEALED_LEN)?;
            if name.is_empty()
                || std::str::from_utf8(name).is_err()
                || std::str::from_utf8(value).is_err()
            {
                return Err(malformed("a context entry is not UTF-8 text"));
            }
            if entries.last().is_some_and(|last| last.name >= name) {
                return Err(malformed("the context entries are not in order"));
            }
            entries.push(Entry {
                name,
                value,
                nonce,
                sealed,
            });
        }
        if !reader.0.is_empty() {
            return Err(malformed("there are trailing bytes after the last entry"));
        }
        Ok(ParsedBlob {
            id,
            keyring_version,
            entries,
        })
    }
}

/// Bounds-checked reads from untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| malformed("it is truncated"))?;
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], Error> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| malformed("it is truncated"))?;
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    /// A `u16`-length-prefixed field.
    fn field(&mut self) -> Result<&'a [u8], Error> {
        let len = u16::from_be_bytes(*self.array::<2>()?);
        self.take(usize::from(len))
    }
}

/// Magic, id and keyring version.
fn header(id: &str, version: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(LOCAL_HEADER_LEN + 1 + 64);
    header.extend_from_slice(LOCAL_MAGIC);
    header.extend_from_slice(id.as_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header
}

/// Appends a `u16`-length-prefixed field.
fn push_field(out: &mut Vec<u8>, field: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(field.len()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidContext,
            "a key context entry is longer than 65535 bytes",
        )
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

fn prk(master_key: &[u8]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, KEK_SALT).extract(master_key)
}

/// The KEK of one context entry.
fn kek(prk: &hkdf::Prk, name: &[u8], value: &[u8]) -> Result<LessSafeKey, Error> {
    let too_long = || Error::new(ErrorKind::InvalidContext, "a key context entry is too long");
    let name_len = u32::try_from(name.len())
        .map_err(|_| too_long())?
        .to_be_bytes();
    let value_len = u32::try_from(value.len())
        .map_err(|_| too_long())?
        .to_be_bytes();
    let info: [&[u8]; 5] = [KEK_INFO_LABEL, &name_len, name, &value_len, value];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| Error::new(ErrorKind::Keyring, "HKDF key derivation failed"))?;
    Ok(LessSafeKey::new(aead::UnboundKey::from(okm)))
}

fn malformed(why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidKeys,
        format!("these local encrypted keys are malformed: {why}"),
    )
}

/// The one opaque failure of unwrapping: no oracle for which part failed.
fn not_this_keyring(version: u32) -> Error {
    Error::new(
        ErrorKind::InvalidKeys,
        format!(
            "these encrypted keys do not open with master key version {version} of this keyring: \
             they were altered, or written with another keyring"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4() {
        let key = vault_api::random_data_key().unwrap();
        let id = key.id();
        assert_eq!(id.len(), ID_LEN);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert!(matches!(
            KeyBlob::parse(&header(id, 1)),
            KeyBlob::Local { .. }
        ));
        let other = vault_api::random_data_key().unwrap();
        assert_ne!(id, other.id());
        assert_ne!(key, other);
    }

    #[test]
    fn kek_binds_name_and_value_unambiguously() {
        let prk = prk(&[7; 32]);
        let seal = |name: &[u8], value: &[u8]| {
            let mut buf = vec![0u8; 32];
            kek(&prk, name, value)
                .unwrap()
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap();
            buf
        };
        assert_ne!(seal(b"ab", b"c"), seal(b"a", b"bc"));
        assert_eq!(seal(b"ab", b"c"), seal(b"ab", b"c"));
    }
}
