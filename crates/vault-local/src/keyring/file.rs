//! The keyring file: reading and checking it, writing it atomically under
//! a lock, and telling whether another process changed it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use vault_api::wire::SecretString;
use vault_api::{Error, ErrorKind};

use super::{Keyring, MasterKey, MASTER_KEY_LEN};

/// The `format` field of a keyring file.
const FORMAT: &str = "vault-rs-keyring";
/// The `version` field of a keyring file this build writes and reads.
const FORMAT_VERSION: u32 = 1;
/// A keyring file larger than this is refused (about 10,000 keys).
const MAX_FILE_LEN: u64 = 1 << 20;

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
    /// The key's check value ([`key_check`]), base64. Files written before
    /// checks existed have none: they are accepted, and the check is added
    /// at the next write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

/// The HMAC label of a key check value.
const CHECK_LABEL: &[u8] = b"vault-rs keyring key check v1\0";

/// The check value of master key `version`: HMAC-SHA256 under the key of a
/// fixed label and the version. It tells whether the stored key is the one
/// that was written (a changed character, a truncated copy) and reveals
/// nothing about the key.
fn key_check(version: u32, key: &[u8; MASTER_KEY_LEN]) -> String {
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&hmac_key);
    context.update(CHECK_LABEL);
    context.update(&version.to_be_bytes());
    vault_format::b64::encode(context.sign().as_ref())
}

/// Reads and checks the keyring at `path`; `None` if there is no file.
pub(super) fn load(path: &Path) -> Result<Option<Keyring>, Error> {
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
    check_directory(path)?;
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
        if let Some(check) = &entry.check {
            let expected = key_check(entry.version, &key);
            if !bool::from(check.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(Error::new(
                    ErrorKind::Keyring,
                    format!(
                        "keyring file {} is damaged: master key version {} does not match its \
                         check value, so it is not the key that was written; restore the file \
                         from a backup (nothing was written)",
                        path.display(),
                        entry.version
                    ),
                ));
            }
        }
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
pub(super) fn write_atomically<'a>(
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
                check: Some(key_check(k.version, &k.key)),
            })
            .collect(),
    };
    // Reserve enough up front so the buffer never reallocates and leaves
    // copies of the keys behind.
    let mut json = Zeroizing::new(Vec::with_capacity(256 + 256 * file.keys.len()));
    serde_json::to_writer_pretty(&mut *json, &file)
        .map_err(|e| Error::new(ErrorKind::Keyring, "cannot encode the keyring").with_source(e))?;
    json.push(b'\n');
    drop(file);

    // A keyring path that is a symlink is rotated at its target: renaming
    // over the link would leave the target (what other paths and backups
    // point to) without the new key.
    let path = &resolve(path)
        .map_err(|e| io_error(format!("cannot resolve keyring path {}", path.display()), e))?;
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
pub(super) fn lock(path: &Path) -> Result<File, Error> {
    // Through a symlink, lock the target, as writers by its own path do.
    let target = resolve(path).unwrap_or_else(|_| path.to_owned());
    let lock_path = sibling(&target, ".lock");
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

/// The file a keyring path names: the target when `path` is a symlink
/// (followed to the end), else `path` itself (also when it does not exist).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => fs::canonicalize(path),
        Ok(_) => Ok(path.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_owned()),
        Err(e) => Err(e),
    }
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
pub(super) fn create_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(super) fn create_dirs(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_permissions(metadata: &fs::Metadata, path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(Error::new(
            ErrorKind::Keyring,
            format!(
                "keyring file {path} belongs to user id {owner}, not to this user (id {me}); \
                 a keyring must belong to the user who runs vault: run \
                 `chown {me} {path}` if it is yours, or use your own keyring",
                path = path.display(),
                owner = metadata.uid()
            ),
        ));
    }
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

/// Refuses a keyring whose directory group or others may write: they could
/// swap the file for one with keys of their own.
#[cfg(unix)]
fn check_directory(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let file = resolve(path)
        .map_err(|e| io_error(format!("cannot resolve keyring path {}", path.display()), e))?;
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let metadata = fs::metadata(&parent).map_err(|e| {
        io_error(
            format!("cannot read the keyring directory {}", parent.display()),
            e,
        )
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::new(
            ErrorKind::Keyring,
            format!(
                "keyring directory {dir} has mode {mode:04o}, so group or others may replace \
                 the keyring file in it; run `chmod go-w {dir}` or move the keyring to a \
                 directory only you can write",
                dir = parent.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_directory(_path: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_metadata: &fs::Metadata, _path: &Path) -> Result<(), Error> {
    Ok(())
}

/// Identifies one version of the file: every write is a rename of a new
/// file, so the inode changes, and the times and size usually do too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
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

    pub(super) fn of_path(path: &Path) -> Result<Fingerprint, Error> {
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

pub(super) fn disappeared(path: &Path) -> Error {
    Error::new(
        ErrorKind::Keyring,
        format!(
            "keyring file {} has disappeared; restore it from a backup, or data keys it \
             wrapped cannot be recovered",
            path.display()
        ),
    )
}

/// The error of opening a keyring file that does not exist.
pub(super) fn missing(path: &Path) -> Error {
    Error::new(
        ErrorKind::Keyring,
        format!(
            "keyring file {} does not exist; create one with `workos-vault keyring init` (or \
             Keyring::create), or point WORKOS_VAULT_KEYRING at the keyring that wrapped your data",
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

/// `message` says what failed; the I/O error is its source (printed once
/// by whoever prints the chain).
pub(super) fn io_error(message: String, error: io::Error) -> Error {
    Error::new(ErrorKind::Keyring, message).with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let error_of = |text: &str| match parse(text.as_bytes(), path) {
            Ok(_) => panic!("{text} parsed"),
            Err(error) => error.to_string(),
        };
        let short = r#"{"format":"vault-rs-keyring","version":1,"keys":[{"version":1,"created_at":0,"key":"AAAA"}]}"#;
        assert!(error_of(short).contains("key version 1 is not 32 bytes"));
        let key = vault_format::b64::encode(&[1; 32]);
        let twice = format!(
            r#"{{"format":"vault-rs-keyring","version":1,"keys":[{{"version":1,"created_at":0,"key":"{key}"}},{{"version":1,"created_at":0,"key":"{key}"}}]}}"#
        );
        assert!(error_of(&twice).contains("appears twice"));
        let future = r#"{"format":"vault-rs-keyring","version":2,"keys":[]}"#;
        assert!(error_of(future).contains("format version 2"));
        let empty = r#"{"format":"vault-rs-keyring","version":1,"keys":[]}"#;
        assert!(error_of(empty).contains("no keys"));
    }
}
