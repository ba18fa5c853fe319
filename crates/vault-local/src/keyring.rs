//! The local key service's keyring: versioned 32-byte master keys.
//!
//! The newest master key wraps new data keys; every version unwraps. A
//! file-backed keyring lives in a small JSON file that only its owner may
//! read or write:
//!
//! ```json
//! {"format": "vault-rs-keyring", "version": 1,
//!  "keys": [{"version": 1, "created_at": 1700000000, "key": "<base64>",
//!            "check": "<base64>"}]}
//! ```
//!
//! `check` is HMAC-SHA256, under the key, of the label
//! `"vault-rs keyring key check v1\0"` and the version as a big-endian
//! `u32`. It is verified at load: a key changed by one character is refused
//! naming its version, and nothing is written while it fails. Files written
//! before checks existed have none; they open, and every key gains its check
//! at the next write (a rotation).
//!
//! Changes are written atomically (a temporary file in the same directory,
//! then a rename) while holding an exclusive lock on `<path>.lock`, so
//! several processes sharing one keyring never lose a rotation. A path
//! that is a symlink is followed: its target is locked and rewritten, and
//! the link stays. The file must belong to the current user, be readable by
//! it alone, and sit in a directory group and others cannot write.

mod file;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use vault_api::{Error, ErrorKind};

use file::{
    create_dirs, disappeared, io_error, load, lock, missing, write_atomically, Fingerprint,
};

/// Length of a master key: 32 bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Versioned 32-byte master keys, in memory or backed by a file.
///
/// Key material is zeroized on drop and never printed: `Debug` shows the
/// path and the versions only.
///
/// ```
/// use vault_local::Keyring;
/// let mut keyring = Keyring::ephemeral();
/// assert_eq!(keyring.newest_version(), 1);
/// assert_eq!(keyring.rotate()?, 2);
/// assert_eq!(format!("{keyring:?}"), "Keyring { path: None, versions: [1, 2] }");
/// # Ok::<(), vault_api::Error>(())
/// ```
pub struct Keyring {
    path: Option<PathBuf>,
    /// Ascending by version, never empty, versions unique.
    keys: Vec<MasterKey>,
    /// What the file looked like when last read or written.
    fingerprint: Option<Fingerprint>,
}

struct MasterKey {
    version: u32,
    created_at: u64,
    key: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

/// What `keyring show` prints: the versions and when they were made, never
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyringInfo {
    /// The keyring file, or `None` for an in-memory keyring.
    pub path: Option<PathBuf>,
    /// The version that wraps new data keys.
    pub newest: u32,
    /// Every master key, oldest first.
    pub keys: Vec<MasterKeyInfo>,
}

/// One master key of a [`KeyringInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MasterKeyInfo {
    /// The version, starting at 1.
    pub version: u32,
    /// When the key was made, in seconds since the Unix epoch.
    pub created_at: u64,
}

impl Keyring {
    /// A keyring held in memory only, with one fresh master key. Data keys
    /// it wraps are lost when it is dropped: for tests and throwaway use.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    pub fn ephemeral() -> Keyring {
        #[allow(clippy::expect_used)]
        let key = MasterKey::generate(1, &SystemRandom::new())
            .expect("the operating system's random number generator failed");
        Keyring {
            path: None,
            keys: vec![key],
            fingerprint: None,
        }
    }

    /// Opens the keyring file at `path`, creating it with one fresh master
    /// key if it does not exist. A new file gets mode 0600, and missing
    /// parent directories mode 0700.
    ///
    /// Only code that mints keys should create a keyring: one created by
    /// mistake (a typo in a path, a container without its volume) wraps
    /// data keys that die with it. Code that only unwraps uses
    /// [`Keyring::open`].
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Keyring, Error> {
        let path = path.as_ref();
        match load(path)? {
            Some(keyring) => Ok(keyring),
            None => Ok(Self::create_new(path)?.0),
        }
    }

    /// Creates a keyring file at `path` with one fresh master key (mode
    /// 0600, missing parent directories 0700). Fails if the file exists:
    /// an existing keyring is never replaced.
    pub fn create(path: impl AsRef<Path>) -> Result<Keyring, Error> {
        let path = path.as_ref();
        match Self::create_new(path)? {
            (keyring, true) => Ok(keyring),
            (_, false) => Err(Error::new(
                ErrorKind::Keyring,
                format!(
                    "keyring file {} already exists; open it with Keyring::open",
                    path.display()
                ),
            )),
        }
    }

    /// Creates the file unless it exists; returns the keyring and whether
    /// this call created it.
    fn create_new(path: &Path) -> Result<(Keyring, bool), Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dirs(parent).map_err(|e| {
                io_error(
                    format!("cannot create the keyring directory {}", parent.display()),
                    e,
                )
            })?;
        }
        let _lock = lock(path)?;
        // Another process may have created it while we waited for the lock.
        if let Some(keyring) = load(path)? {
            return Ok((keyring, false));
        }
        let key = MasterKey::generate(1, &SystemRandom::new())?;
        write_atomically(path, std::slice::from_ref(&key))?;
        tracing::info!(path = %path.display(), "created a new local keyring");
        Ok((load(path)?.ok_or_else(|| disappeared(path))?, true))
    }

    /// Opens an existing keyring file; never creates one.
    ///
    /// Refuses a file that group or others may read or write (the fix is
    /// `chmod 600 <path>`), a file another user owns, a file in a
    /// directory group or others may write, and a master key that fails
    /// its integrity check.
    pub fn open(path: impl AsRef<Path>) -> Result<Keyring, Error> {
        let path = path.as_ref();
        load(path)?.ok_or_else(|| missing(path))
    }

    /// Adds a fresh master key as the newest version and returns that
    /// version. Older versions stay, so existing data keys still unwrap.
    ///
    /// A file-backed keyring first takes in versions other processes added,
    /// then writes the file before the new key is used.
    pub fn rotate(&mut self) -> Result<u32, Error> {
        let rng = SystemRandom::new();
        let Some(path) = self.path.clone() else {
            let key = MasterKey::generate(self.next_version()?, &rng)?;
            let version = key.version;
            self.keys.push(key);
            return Ok(version);
        };
        let _lock = lock(&path)?;
        let current = load(&path)?.ok_or_else(|| disappeared(&path))?;
        self.merge(current)?;
        let key = MasterKey::generate(self.next_version()?, &rng)?;
        let version = key.version;
        let mut keys: Vec<&MasterKey> = self.keys.iter().collect();
        keys.push(&key);
        write_atomically(&path, keys)?;
        self.keys.push(key);
        self.fingerprint = Some(Fingerprint::of_path(&path)?);
        tracing::info!(path = %path.display(), version, "rotated the local keyring");
        Ok(version)
    }

    /// The versions, what they were made and where the file is. Never key
    /// material.
    pub fn info(&self) -> KeyringInfo {
        KeyringInfo {
            path: self.path.clone(),
            newest: self.newest_version(),
            keys: self
                .keys
                .iter()
                .map(|k| MasterKeyInfo {
                    version: k.version,
                    created_at: k.created_at,
                })
                .collect(),
        }
    }

    /// The keyring file, or `None` for an in-memory keyring.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The version that wraps new data keys.
    pub fn newest_version(&self) -> u32 {
        self.keys.last().map_or(0, |k| k.version)
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|k| k.version)
    }

    /// The newest master key and its version.
    pub(crate) fn newest(&self) -> Option<(u32, &[u8; MASTER_KEY_LEN])> {
        self.keys.last().map(|k| (k.version, &*k.key))
    }

    /// The master key of `version`.
    pub(crate) fn get(&self, version: u32) -> Option<&[u8; MASTER_KEY_LEN]> {
        self.keys
            .binary_search_by_key(&version, |k| k.version)
            .ok()
            .map(|i| &*self.keys[i].key)
    }

    /// Whether the file changed since this keyring last read or wrote it
    /// (another process rotated it, say). Always `false` in memory.
    pub(crate) fn changed_on_disk(&self) -> Result<bool, Error> {
        match &self.path {
            None => Ok(false),
            Some(path) => Ok(self.fingerprint != Some(Fingerprint::of_path(path)?)),
        }
    }

    /// Re-reads the file and takes in versions added since. Versions this
    /// keyring already has are kept.
    pub(crate) fn reload(&mut self) -> Result<(), Error> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let current = load(&path)?.ok_or_else(|| disappeared(&path))?;
        self.merge(current)?;
        tracing::debug!(path = %path.display(), newest = self.newest_version(), "reloaded the local keyring");
        Ok(())
    }

    /// Takes in the keys of `other`, the same keyring read again.
    fn merge(&mut self, other: Keyring) -> Result<(), Error> {
        for key in other.keys {
            match self.keys.binary_search_by_key(&key.version, |k| k.version) {
                Ok(i) => {
                    if !bool::from(self.keys[i].key.ct_eq(&*key.key)) {
                        return Err(Error::new(
                            ErrorKind::Keyring,
                            format!(
                                "keyring file {} now holds a different master key for version {}; \
                                 it was replaced by another keyring, which would make data keys \
                                 unrecoverable; restore the original file",
                                self.path_text(),
                                key.version
                            ),
                        ));
                    }
                }
                Err(i) => self.keys.insert(i, key),
            }
        }
        self.fingerprint = other.fingerprint;
        Ok(())
    }

    fn next_version(&self) -> Result<u32, Error> {
        self.newest_version().checked_add(1).ok_or_else(|| {
            Error::new(
                ErrorKind::Keyring,
                "the keyring has reached the last master key version",
            )
        })
    }

    fn path_text(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| "(in memory)".to_owned(), |p| p.display().to_string())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("versions", &self.versions().collect::<Vec<_>>())
            .finish()
    }
}

impl MasterKey {
    fn generate(version: u32, rng: &SystemRandom) -> Result<MasterKey, Error> {
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        rng.fill(&mut *key).map_err(|_| Error::random_failed())?;
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(MasterKey {
            version,
            created_at,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_rotation_and_lookup() {
        let mut keyring = Keyring::ephemeral();
        let first = *keyring.get(1).unwrap();
        assert_eq!(keyring.rotate().unwrap(), 2);
        assert_eq!(keyring.newest().unwrap().0, 2);
        assert_eq!(keyring.get(1).unwrap(), &first);
        assert_ne!(keyring.get(2).unwrap(), &first);
        assert!(keyring.get(3).is_none());
        assert!(!keyring.changed_on_disk().unwrap());
        let info = keyring.info();
        assert_eq!(info.newest, 2);
        assert_eq!(info.path, None);
        assert_eq!(
            info.keys.iter().map(|k| k.version).collect::<Vec<_>>(),
            [1, 2]
        );
    }
}
