//! The local key service's keyring: versioned 32-byte master keys.
//!
//! The newest master key wraps new data keys; every version unwraps. A
//! file-backed keyring lives in a small JSON file that only its owner may
//! read or write:
//!
//! ```json
//! {"format": "vault-rs-keyring", "version": 1,
//!  "keys": [{"version": 1, "created_at": 1700000000, "key": "<base64>"}]}
//! ```
//!
//! Changes are written atomically (a temporary file in the same directory,
//! then a rename) while holding an exclusive lock on `<path>.lock`, so
//! several processes sharing one keyring never lose a rotation.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use vault_api::wire::SecretString;
use vault_api::{Error, ErrorKind};

/// Length of a master key: 32 bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// The `format` field of a keyring file.
const FORMAT: &str = "vault-rs-keyring";
/// The `version` field of a keyring file this build writes and reads.
const FORMAT_VERSION: u32 = 1;
/// A keyring file larger than this is refused (about 10,000 keys).
const MAX_FILE_LEN: u64 = 1 << 20;

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
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Keyring, Error> {
        let path = path.as_ref();
        if let Some(keyring) = load(path)? {
            return Ok(keyring);
        }
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
            return Ok(keyring);
        }
        let key = MasterKey::generate(1, &SystemRandom::new())?;
        write_atomically(path, std::slice::from_ref(&key))?;
        tracing::info!(path = %path.display(), "created a new local keyring");
        load(path)?.ok_or_else(|| disappeared(path))
    }

    /// Opens an existing keyring file.
    ///
    /// Refuses a file that group or others may read or write: the fix is
    /// `chmod 600 <path>`.
    pub fn open(path: impl AsRef<Path>) -> Result<Keyring, Error> {
        let path = path.as_ref();
        load(path)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Keyring,
                format!(
                    "keyring file {} does not exist; the local key service creates one on \
                     first use (Keyring::open_or_create)",
                    path.display()
                ),
            )
        })
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
                    if !same_bytes(&*self.keys[i].key, &*key.key) {
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

/// Compares two keys without an early exit.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- The file ----

#[derive(Serialize, Deserialize)]
struct KeyringFile {
    format: String,
    version: u32,
    keys: Vec<KeyFileEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileEntry {
    version: u32,
    created_at: u64,
    key: SecretString,
}

/// Reads and checks the keyring at `path`; `None` if there is no file.
fn load(path: &Path) -> Result<Option<Keyring>, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(io_error(
                format!("cannot open keyring file {}", path.display()),
                e,
            ))
        }
    };
    let metadata = file
        .metadata()
        .map_err(|e| io_error(format!("cannot read keyring file {}", path.display()), e))?;
    if !metadata.is_file() {
        return Err(Error::new(
            ErrorKind::Keyring,
            format!("keyring path {} is not a regular file", path.display()),
        ));
    }
    check_permissions(&metadata, path)?;
    if metadata.len() > MAX_FILE_LEN {
        return Err(too_large(path));
    }
    let mut text = Zeroizing::new(Vec::with_capacity(metadata.len() as usize + 1));
    (&mut file)
        .take(MAX_FILE_LEN + 1)
        .read_to_end(&mut text)
        .map_err(|e| io_error(format!("cannot read keyring file {}", path.display()), e))?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(too_large(path));
    }
    let keys = parse(&text, path)?;
    Ok(Some(Keyring {
        path: Some(path.to_owned()),
        keys,
        fingerprint: Some(Fingerprint::of_metadata(&metadata)),
    }))
}

fn parse(text: &[u8], path: &Path) -> Result<Vec<MasterKey>, Error> {
    let invalid = |what: String| {
        Error::new(
            ErrorKind::Keyring,
            format!(
                "keyring file {} is not valid: {what}; restore it from a backup",
                path.display()
            ),
        )
    };
    // serde_json's messages can quote the text they choke on, which may be
    // key material: report the position only.
    let file: KeyringFile = serde_json::from_slice(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "unexpected structure",
            serde_json::error::Category::Eof => "unexpected end of file",
            _ => "malformed JSON",
        };
        invalid(format!(
            "{what} at line {}, column {}",
            e.line(),
            e.column()
        ))
    })?;
    if file.format != FORMAT {
        return Err(invalid(format!("its \"format\" is not {FORMAT:?}")));
    }
    if file.version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::Keyring,
            format!(
                "keyring file {} has format version {}; this build reads version {FORMAT_VERSION} \
                 only (upgrade vault)",
                path.display(),
                file.version
            ),
        ));
    }
    if file.keys.is_empty() {
        return Err(invalid("it holds no keys".to_owned()));
    }
    let mut keys = Vec::with_capacity(file.keys.len());
    for entry in file.keys {
        if entry.version == 0 {
            return Err(invalid(
                "a key has version 0; versions start at 1".to_owned(),
            ));
        }
        let mut decoded = Zeroizing::new(Vec::with_capacity(MASTER_KEY_LEN + 3));
        let decoded_ok =
            vault_format::b64::decode_into(entry.key.expose_secret(), &mut decoded).is_ok();
        if !decoded_ok || decoded.len() != MASTER_KEY_LEN {
            return Err(invalid(format!(
                "key version {} is not 32 bytes of standard base64",
                entry.version
            )));
        }
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        key.copy_from_slice(&decoded);
        keys.push(MasterKey {
            version: entry.version,
            created_at: entry.created_at,
            key,
        });
    }
    keys.sort_by_key(|k| k.version);
    if let Some(pair) = keys.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(invalid(format!(
            "key version {} appears twice",
            pair[0].version
        )));
    }
    Ok(keys)
}

/// Writes `keys` to `path` through a temporary file and a rename.
fn write_atomically<'a>(
    path: &Path,
    keys: impl IntoIterator<Item = &'a MasterKey>,
) -> Result<(), Error> {
    let file = KeyringFile {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        keys: keys
            .into_iter()
            .map(|k| KeyFileEntry {
                version: k.version,
                created_at: k.created_at,
                key: SecretString::from(Zeroizing::new(vault_format::b64::encode(&*k.key))),
            })
            .collect(),
    };
    // Reserve enough up front so the buffer never reallocates and leaves
    // copies of the keys behind.
    let mut json = Zeroizing::new(Vec::with_capacity(256 + 160 * file.keys.len()));
    serde_json::to_writer_pretty(&mut *json, &file)
        .map_err(|e| Error::new(ErrorKind::Keyring, "cannot encode the keyring").with_source(e))?;
    json.push(b'\n');
    drop(file);

    let temp = sibling(path, ".tmp");
    let write_error =
        |e: io::Error| io_error(format!("cannot write keyring file {}", path.display()), e);
    // We hold the lock, so a leftover temporary file is from a crash.
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_error(e)),
    }
    let result = (|| {
        let mut out = create_private(&temp)?;
        out.write_all(&json)?;
        out.sync_all()?;
        drop(out);
        fs::rename(&temp, path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; not every platform can open a
            // directory, so this is best effort.
            if let Ok(dir) = File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(write_error)
}

/// Takes an exclusive lock on `<path>.lock`, released when the returned
/// file is dropped (or the process dies).
fn lock(path: &Path) -> Result<File, Error> {
    let lock_path = sibling(path, ".lock");
    let lock_error = |e: io::Error| {
        io_error(
            format!("cannot lock keyring file {}", lock_path.display()),
            e,
        )
    };
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    set_private_mode(&mut options);
    let file = options.open(&lock_path).map_err(lock_error)?;
    file.lock().map_err(lock_error)?;
    Ok(file)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_private_mode(&mut options);
    options.open(path)
}

#[cfg(unix)]
fn set_private_mode(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600);
}

#[cfg(not(unix))]
fn set_private_mode(_options: &mut OpenOptions) {}

#[cfg(unix)]
fn create_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dirs(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_permissions(metadata: &fs::Metadata, path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::Keyring,
            format!(
                "keyring file {path} has mode {mode:04o}, so group or others may read or write \
                 its master keys; run `chmod 600 {path}` (and consider rotating the keyring)",
                path = path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_metadata: &fs::Metadata, _path: &Path) -> Result<(), Error> {
    Ok(())
}

/// Identifies one version of the file: every write is a rename of a new
/// file, so the inode changes, and the times and size usually do too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    ctime: (i64, i64),
    modified: Option<SystemTime>,
    len: u64,
}

impl Fingerprint {
    fn of_metadata(metadata: &fs::Metadata) -> Fingerprint {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            #[cfg(unix)]
            inode: (metadata.dev(), metadata.ino()),
            #[cfg(unix)]
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
            modified: metadata.modified().ok(),
            len: metadata.len(),
        }
    }

    fn of_path(path: &Path) -> Result<Fingerprint, Error> {
        match fs::metadata(path) {
            Ok(metadata) => Ok(Fingerprint::of_metadata(&metadata)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(disappeared(path)),
            Err(e) => Err(io_error(
                format!("cannot read keyring file {}", path.display()),
                e,
            )),
        }
    }
}

fn disappeared(path: &Path) -> Error {
    Error::new(
        ErrorKind::Keyring,
        format!(
            "keyring file {} has disappeared; restore it from a backup, or data keys it \
             wrapped cannot be recovered",
            path.display()
        ),
    )
}

fn too_large(path: &Path) -> Error {
    Error::new(
        ErrorKind::Keyring,
        format!(
            "keyring file {} is larger than {MAX_FILE_LEN} bytes; it is not a keyring",
            path.display()
        ),
    )
}

fn io_error(message: String, error: io::Error) -> Error {
    let message = format!("{message}: {error}");
    Error::new(ErrorKind::Keyring, message).with_source(error)
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

    #[test]
    fn parse_errors_do_not_quote_the_file() {
        let path = Path::new("/k.json");
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";
        let text = format!(
            r#"{{"format":"vault-rs-keyring","version":1,"keys":[{{"version":"{secret}"}}]}}"#
        );
        let error = parse(text.as_bytes(), path).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::Keyring);
        assert!(!error.to_string().contains(secret), "{error}");
        assert!(error.to_string().contains("/k.json"), "{error}");
    }

    #[test]
    fn parse_checks_keys() {
        let path = Path::new("/k.json");
        let short = r#"{"format":"vault-rs-keyring","version":1,"keys":[{"version":1,"created_at":0,"key":"AAAA"}]}"#;
        assert!(parse(short.as_bytes(), path)
            .err()
            .unwrap()
            .to_string()
            .contains("key version 1 is not 32 bytes"));
        let key = vault_format::b64::encode(&[1; 32]);
        let twice = format!(
            r#"{{"format":"vault-rs-keyring","version":1,"keys":[{{"version":1,"created_at":0,"key":"{key}"}},{{"version":1,"created_at":0,"key":"{key}"}}]}}"#
        );
        assert!(parse(twice.as_bytes(), path)
            .err()
            .unwrap()
            .to_string()
            .contains("appears twice"));
        let future = r#"{"format":"vault-rs-keyring","version":2,"keys":[]}"#;
        assert!(parse(future.as_bytes(), path)
            .err()
            .unwrap()
            .to_string()
            .contains("format version 2"));
        let empty = r#"{"format":"vault-rs-keyring","version":1,"keys":[]}"#;
        assert!(parse(empty.as_bytes(), path)
            .err()
            .unwrap()
            .to_string()
            .contains("no keys"));
    }
}
