use serde::{Serialize, Serializer};
use vault_format::{b64, Envelope, KeyBlob, KeyBlobKind, Layout};

use crate::Error;

/// What a ciphertext says about itself, read offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// The layout; in JSON its name: `A12`, `A32`, `B` or `A-prime`.
    #[serde(serialize_with = "by_name")]
    pub layout: Layout,
    /// Length of the IV (nonce) in bytes.
    pub iv_len: usize,
    /// Length of the `encrypted_keys` blob in bytes.
    pub keys_len: usize,
    /// The `encrypted_keys` blob, base64: what
    /// [`Vault::decrypt_data_key_base64`](crate::Vault::decrypt_data_key_base64)
    /// and `workos-vault data-key decrypt` take. Not secret.
    pub encrypted_keys: String,
    /// Length of the AES-GCM ciphertext in bytes, without the tag (equal to
    /// the plaintext's length).
    pub ciphertext_len: usize,
    /// Who wrote the blob; in JSON its name: `workos`, `local`, `transit`
    /// or `unknown`.
    #[serde(serialize_with = "by_name")]
    pub key_blob_kind: KeyBlobKind,
    /// The blob's format version, when known.
    pub key_blob_version: Option<String>,
    /// The data key id, when the blob is of a known kind.
    pub data_key_id: Option<String>,
    /// The local keyring version that wrapped the key, for local blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring_version: Option<u32>,
}

impl Inspection {
    pub(crate) fn of(ciphertext: &str) -> Result<Self, Error> {
        let bytes = b64::decode(ciphertext)?;
        let envelope = Envelope::parse(&bytes)?;
        let keys = envelope.encrypted_keys()?;
        let blob = KeyBlob::parse(&keys);
        Ok(Inspection {
            layout: envelope.layout(),
            iv_len: envelope.iv().len(),
            keys_len: keys.len(),
            encrypted_keys: b64::encode(&keys),
            ciphertext_len: envelope.ciphertext().len(),
            key_blob_kind: blob.kind(),
            key_blob_version: blob.version().map(str::to_owned),
            data_key_id: blob.data_key_id().map(str::to_owned),
            keyring_version: match blob {
                KeyBlob::Local {
                    keyring_version, ..
                } => Some(keyring_version),
                _ => None,
            },
        })
    }
}

/// A layout or blob kind as its name (its `Display`), as the JSON of
/// `workos-vault inspect` always spelled it.
fn by_name<S: Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}
