//! Inspection of `encrypted_keys` blobs.
//!
//! A blob is opaque to everyone but the key service that wrote it. We read
//! only what helps a user tell blobs apart offline: the magic, the version
//! and the data key id.

/// Magic that opens every WorkOS key blob, version included.
pub const WORKOS_MAGIC: &[u8; 11] = b"WOS.EKM.v1\0";

/// Magic that opens every blob of this project's local key service.
///
/// It deliberately differs from [`WORKOS_MAGIC`], so a blob never passes
/// for the other service's. After it come the data key id (36 ASCII
/// characters), the keyring version (`u32`, big-endian) and the wrapped
/// keys, which only the local key service reads.
pub const LOCAL_MAGIC: &[u8; 11] = b"VRS.LKS.v1\0";

/// Magic that opens every blob of this project's Transit key service
/// (`vault-transit`, over OpenBao or HashiCorp Vault).
///
/// After it come the data key id (36 ASCII characters), the Transit key
/// version (`u32`, big-endian) and the rest, which only the Transit key
/// service reads: the same header shape as [`LOCAL_MAGIC`]'s.
pub const TRANSIT_MAGIC: &[u8; 11] = b"VRS.TKS.v1\0";

/// Length of a data key id: a UUID in its 36-character text form.
pub const ID_LEN: usize = 36;

/// A blob's magic, id and (for local blobs) the keyring version.
pub const LOCAL_HEADER_LEN: usize = LOCAL_MAGIC.len() + ID_LEN + 4;

/// What an `encrypted_keys` blob says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyBlob<'a> {
    /// A blob written by WorkOS Vault.
    WorkOs {
        /// Format version from the magic, `"v1"` today.
        version: &'a str,
        /// The data key id, equal to the `id` the API returns.
        data_key_id: &'a str,
        /// Everything after the id, opaque.
        rest: &'a [u8],
    },
    /// A blob written by this project's local key service.
    Local {
        /// Format version from the magic, `"v1"` today.
        version: &'a str,
        /// The data key id.
        data_key_id: &'a str,
        /// Which master key of the keyring wrapped the data key.
        keyring_version: u32,
        /// The wrapped keys, opaque.
        rest: &'a [u8],
    },
    /// A blob written by this project's Transit key service.
    Transit {
        /// Format version from the magic, `"v1"` today.
        version: &'a str,
        /// The data key id.
        data_key_id: &'a str,
        /// Which version of the Transit key wrapped the data key.
        key_version: u32,
        /// The key name, context and Transit ciphertext, opaque.
        rest: &'a [u8],
    },
    /// A blob of any other key service.
    Unknown(&'a [u8]),
}

/// Who wrote an `encrypted_keys` blob: the kind of a [`KeyBlob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyBlobKind {
    /// WorkOS Vault.
    WorkOs,
    /// This project's local key service.
    Local,
    /// This project's Transit key service.
    Transit,
    /// None of the above.
    Unknown,
}

impl KeyBlobKind {
    /// `"workos"`, `"local"`, `"transit"` or `"unknown"`.
    pub fn name(self) -> &'static str {
        match self {
            KeyBlobKind::WorkOs => "workos",
            KeyBlobKind::Local => "local",
            KeyBlobKind::Transit => "transit",
            KeyBlobKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for KeyBlobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'a> KeyBlob<'a> {
    /// Recognises a blob by its magic. Never fails: anything that is not a
    /// well-formed WorkOS or local blob is [`KeyBlob::Unknown`].
    pub fn parse(bytes: &'a [u8]) -> KeyBlob<'a> {
        if let Some((data_key_id, rest)) = header(bytes, WORKOS_MAGIC) {
            return KeyBlob::WorkOs {
                version: "v1",
                data_key_id,
                rest,
            };
        }
        if let Some((data_key_id, rest)) = header(bytes, LOCAL_MAGIC) {
            if let Some((version, rest)) = rest.split_first_chunk::<4>() {
                return KeyBlob::Local {
                    version: "v1",
                    data_key_id,
                    keyring_version: u32::from_be_bytes(*version),
                    rest,
                };
            }
        }
        if let Some((data_key_id, rest)) = header(bytes, TRANSIT_MAGIC) {
            if let Some((version, rest)) = rest.split_first_chunk::<4>() {
                return KeyBlob::Transit {
                    version: "v1",
                    data_key_id,
                    key_version: u32::from_be_bytes(*version),
                    rest,
                };
            }
        }
        KeyBlob::Unknown(bytes)
    }

    /// Who wrote the blob.
    pub fn kind(&self) -> KeyBlobKind {
        match self {
            KeyBlob::WorkOs { .. } => KeyBlobKind::WorkOs,
            KeyBlob::Local { .. } => KeyBlobKind::Local,
            KeyBlob::Transit { .. } => KeyBlobKind::Transit,
            KeyBlob::Unknown(_) => KeyBlobKind::Unknown,
        }
    }

    /// The blob's format version, when it is a known kind.
    pub fn version(&self) -> Option<&'a str> {
        match *self {
            KeyBlob::WorkOs { version, .. }
            | KeyBlob::Local { version, .. }
            | KeyBlob::Transit { version, .. } => Some(version),
            KeyBlob::Unknown(_) => None,
        }
    }

    /// The data key id, when the blob is of a known kind.
    pub fn data_key_id(&self) -> Option<&'a str> {
        match *self {
            KeyBlob::WorkOs { data_key_id, .. }
            | KeyBlob::Local { data_key_id, .. }
            | KeyBlob::Transit { data_key_id, .. } => Some(data_key_id),
            KeyBlob::Unknown(_) => None,
        }
    }

    /// Whether the blob is of a kind this crate recognises.
    pub fn is_known(&self) -> bool {
        !matches!(self, KeyBlob::Unknown(_))
    }
}

/// Splits `magic || id || rest` when the id is a well-formed UUID.
fn header<'a>(bytes: &'a [u8], magic: &[u8; 11]) -> Option<(&'a str, &'a [u8])> {
    let rest = bytes.strip_prefix(magic.as_slice())?;
    let (id, rest) = rest.split_first_chunk::<ID_LEN>()?;
    if !crate::id::is_uuid(id) {
        return None;
    }
    let id = std::str::from_utf8(id).ok()?;
    Some((id, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0237abe8-fc0d-4456-831c-3a2d133e9f90";

    #[test]
    fn workos_blob() {
        let blob = [WORKOS_MAGIC.as_slice(), ID.as_bytes(), b"\x01\x01rest"].concat();
        let parsed = KeyBlob::parse(&blob);
        assert_eq!(parsed.kind().name(), "workos");
        assert_eq!(parsed.data_key_id(), Some(ID));
        assert_eq!(parsed.version(), Some("v1"));
        assert!(matches!(
            parsed,
            KeyBlob::WorkOs {
                rest: b"\x01\x01rest",
                ..
            }
        ));
    }

    #[test]
    fn local_blob() {
        let blob = [
            LOCAL_MAGIC.as_slice(),
            ID.as_bytes(),
            &7u32.to_be_bytes(),
            b"xyz",
        ]
        .concat();
        let parsed = KeyBlob::parse(&blob);
        assert_eq!(parsed.kind().name(), "local");
        assert_eq!(parsed.data_key_id(), Some(ID));
        assert!(matches!(
            parsed,
            KeyBlob::Local {
                keyring_version: 7,
                rest: b"xyz",
                ..
            }
        ));
    }

    #[test]
    fn transit_blob() {
        let blob = [
            TRANSIT_MAGIC.as_slice(),
            ID.as_bytes(),
            &3u32.to_be_bytes(),
            b"vault:v3:x",
        ]
        .concat();
        let parsed = KeyBlob::parse(&blob);
        assert_eq!(parsed.kind().name(), "transit");
        assert_eq!(parsed.data_key_id(), Some(ID));
        assert_eq!(parsed.version(), Some("v1"));
        assert!(matches!(
            parsed,
            KeyBlob::Transit {
                key_version: 3,
                rest: b"vault:v3:x",
                ..
            }
        ));
        let no_version = [TRANSIT_MAGIC.as_slice(), ID.as_bytes(), b"\0"].concat();
        assert_eq!(KeyBlob::parse(&no_version).kind().name(), "unknown");
    }

    #[test]
    fn malformed_blobs_are_unknown() {
        let bad_id = [
            WORKOS_MAGIC.as_slice(),
            b"not-a-uuid-not-a-uuid-not-a-uuid-xxx",
        ]
        .concat();
        assert_eq!(KeyBlob::parse(&bad_id).kind().name(), "unknown");
        let short = [WORKOS_MAGIC.as_slice(), &ID.as_bytes()[..20]].concat();
        assert_eq!(KeyBlob::parse(&short).kind().name(), "unknown");
        let local_no_version = [LOCAL_MAGIC.as_slice(), ID.as_bytes(), b"\0\0"].concat();
        assert_eq!(KeyBlob::parse(&local_no_version).kind().name(), "unknown");
        assert_eq!(KeyBlob::parse(b"").kind().name(), "unknown");
        assert_eq!(KeyBlob::parse(b"").data_key_id(), None);
    }
}
