//! Values in and out of their envelopes: A12, sealed with a data key for
//! the object's key context, AAD binding the object id and version id.

use ring::digest::{digest, SHA256};
use vault_api::{Error, ErrorKind, KeyContext, KeyService};
use vault_format::{Envelope, Layout};
use zeroize::{Zeroize, Zeroizing};

/// What the AAD of every value starts with; it then names the object id
/// and the version id, so an envelope copied to another row or another
/// version does not open.
const AAD_PREFIX: &str = "workos-vault-store:v1";

/// A sealed value, ready for its version row.
pub(crate) struct Sealed {
    pub(crate) envelope: Vec<u8>,
    pub(crate) key_id: String,
    pub(crate) etag: String,
    pub(crate) size: i64,
}

fn aad(object_id: &str, version_id: &str) -> String {
    format!("{AAD_PREFIX}\0{object_id}\0{version_id}")
}

/// Seals `value` for version `version_id` of object `object_id`.
pub(crate) async fn seal(
    keys: &dyn KeyService,
    context: &KeyContext,
    object_id: &str,
    version_id: &str,
    value: &str,
) -> Result<Sealed, Error> {
    let pair = keys
        .data_key_for_message(context, value.len() as u64)
        .await?;
    let envelope = vault_crypto::seal(
        &pair.data_key,
        Layout::A12,
        &pair.encrypted_keys,
        value.as_bytes(),
        aad(object_id, version_id).as_bytes(),
    )
    .map_err(|e| Error::new(ErrorKind::Encode, "the value could not be sealed").with_source(e))?;
    Ok(Sealed {
        etag: etag(&envelope),
        key_id: pair.id().to_owned(),
        size: i64::try_from(value.len()).unwrap_or(i64::MAX),
        envelope,
    })
}

/// The etag of a stored envelope: SHA-256, lowercase hex. It is a hash of
/// the ciphertext, not of the plaintext, so that it is no oracle for
/// guessing values: it changes with every write, even of the same value.
pub(crate) fn etag(envelope: &[u8]) -> String {
    digest(&SHA256, envelope)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Opens the envelope of version `version_id` of object `object_id`.
pub(crate) async fn open(
    keys: &dyn KeyService,
    object_id: &str,
    version_id: &str,
    envelope: &[u8],
) -> Result<Zeroizing<String>, Error> {
    let corrupt = || {
        Error::new(
            ErrorKind::Storage,
            "a stored value does not open: it was changed, or moved from another object or \
             version",
        )
    };
    let parsed = Envelope::parse_as(envelope, Layout::A12).map_err(|_| corrupt())?;
    let encrypted_keys = parsed.encrypted_keys().map_err(|_| corrupt())?;
    let data_key = keys.decrypt_data_key(&encrypted_keys).await?;
    let plaintext = vault_crypto::open(&data_key, &parsed, aad(object_id, version_id).as_bytes())
        .map_err(|_| corrupt())?;
    match String::from_utf8(plaintext) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(error) => {
            error.into_bytes().zeroize();
            Err(corrupt())
        }
    }
}
