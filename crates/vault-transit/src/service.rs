//! [`TransitKeyService`]: data keys wrapped by a Transit key.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use vault_api::wire::SecretString;
use vault_api::{DataKey, DataKeyPair, Error, ErrorKind, KeyContext, KeyService};
use vault_format::{b64, Envelope, Layout};
use zeroize::Zeroizing;

use crate::blob::{derivation_context, TransitBlob};
use crate::client::{Client, Op, SecretBody};
use crate::TransitKeyServiceBuilder;

/// A [`KeyService`] over the Transit secrets engine of OpenBao or
/// HashiCorp Vault.
///
/// - **Create**: a fresh data key is drawn here (the system CSPRNG) and
///   sent to Transit's `encrypt` endpoint, once, to be wrapped.
/// - **Decrypt**: the blob's Transit ciphertext goes to `decrypt`.
/// - **Rekey**: `decrypt`, then `encrypt` under the new context; the data
///   key is unchanged.
/// - [`rewrap`](Self::rewrap): after a rotation of the Transit key, moves
///   a blob to the newest key version with Transit's `rewrap`, without the
///   data key leaving Transit.
///
/// The key must be a **derived** key (`derived=true`): each wrap is bound
/// to the data key id and the whole key context through the derivation
/// context, so a blob opens only with the context it was made for. The
/// service checks this once before its first wrap and refuses a key that
/// is not derived (Transit would silently ignore the context).
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct TransitKeyService {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    key: String,
    derived: OnceCell<()>,
}

#[derive(Serialize)]
struct EncryptRequest<'a> {
    plaintext: &'a str,
    context: &'a str,
}

#[derive(Serialize)]
struct CiphertextRequest<'a> {
    ciphertext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
}

#[derive(Deserialize)]
struct CiphertextAnswer {
    ciphertext: String,
}

#[derive(Deserialize)]
struct PlaintextAnswer {
    plaintext: SecretString,
}

impl TransitKeyService {
    /// A builder; the address, a token and the key name are required.
    pub fn builder() -> TransitKeyServiceBuilder {
        TransitKeyServiceBuilder::new()
    }

    pub(crate) fn from_parts(client: Client, key: String) -> Self {
        TransitKeyService {
            inner: Arc::new(Inner {
                client,
                key,
                derived: OnceCell::new(),
            }),
        }
    }

    /// The Transit key that wraps new data keys.
    pub fn key_name(&self) -> &str {
        &self.inner.key
    }

    /// The engine's address, such as `https://127.0.0.1:8200`.
    pub fn address(&self) -> &str {
        &self.inner.client.address
    }

    /// The mount path of the Transit engine, such as `transit`.
    pub fn mount(&self) -> &str {
        &self.inner.client.mount
    }

    /// Creates the Transit key as this service needs it (`aes256-gcm96`,
    /// `derived=true`). Needs `update` on `<mount>/keys/<key>`; an existing
    /// key is left as it is. Operators usually run
    /// `bao write -f transit/keys/<key> derived=true` instead.
    pub async fn create_key(&self) -> Result<(), Error> {
        let body = json(&serde_json::json!({"type": "aes256-gcm96", "derived": true}))?;
        let path = format!("keys/{}", self.inner.key);
        self.post::<Option<IgnoredAny>>(Op::Manage, &path, body)
            .await?;
        Ok(())
    }

    /// Rotates the Transit key: new data keys are wrapped under a new key
    /// version; blobs of older versions still unwrap (down to the key's
    /// `min_decryption_version`). Needs `update` on
    /// `<mount>/keys/<key>/rotate`.
    pub async fn rotate(&self) -> Result<(), Error> {
        let path = format!("keys/{}/rotate", self.inner.key);
        self.post::<Option<IgnoredAny>>(Op::Manage, &path, json(&serde_json::json!({}))?)
            .await?;
        Ok(())
    }

    /// Checks that the token may use the key and that it is a derived key,
    /// so a misconfiguration fails at start-up rather than on the first
    /// request. Done once; later calls return at once.
    pub async fn check(&self) -> Result<(), Error> {
        self.inner
            .derived
            .get_or_try_init(|| self.probe_derived())
            .await
            .map(|_| ())
    }

    /// Asks Transit to decrypt a dummy ciphertext without a context: a
    /// derived key refuses for the missing context before anything else,
    /// any other key tries to decrypt. Needs only the `decrypt` capability
    /// and never creates a key (`encrypt` would, on some policies).
    async fn probe_derived(&self) -> Result<(), Error> {
        let dummy = format!("vault:v1:{}", b64::encode(&[0u8; 32]));
        let body = json(&CiphertextRequest {
            ciphertext: &dummy,
            context: None,
        })?;
        let path = format!("decrypt/{}", self.inner.key);
        let key = &self.inner.key;
        let error = match self.post::<IgnoredAny>(Op::Decrypt, &path, body).await {
            Err(error) if error.status() != Some(400) => return Err(error),
            // Transit's own texts, quoted after this crate's message.
            Err(error) if error.message().contains("missing 'context'") => return Ok(()),
            Err(error) if error.message().contains("key not found") => format!(
                "the Transit key {key:?} does not exist in {}/; create it with \
                 `bao write -f {}/keys/{key} derived=true`",
                self.mount(),
                self.mount()
            ),
            _ => format!(
                "the Transit key {key:?} is not a derived key, so it would ignore the key \
                 context; create a new key with derived=true"
            ),
        };
        Err(Error::new(ErrorKind::Config, error))
    }

    /// Moves `encrypted_keys` to the newest version of its Transit key
    /// with Transit's `rewrap`: the data key never leaves Transit, and the
    /// id and context stay the same. Returns the new blob.
    pub async fn rewrap(&self, encrypted_keys: &[u8]) -> Result<Vec<u8>, Error> {
        let blob = TransitBlob::parse(encrypted_keys)?;
        let answer: CiphertextAnswer = self.post_blob(Op::Rewrap, "rewrap", &blob).await?;
        let rewrapped =
            TransitBlob::new(&blob.id, &blob.key_name, &blob.context, answer.ciphertext)?;
        tracing::debug!(
            data_key_id = %blob.id,
            from = blob.key_version,
            to = rewrapped.key_version,
            "Transit rewrapped a data key"
        );
        rewrapped.encode()
    }

    /// [`rewrap`](Self::rewrap) for a whole ciphertext (base64, any
    /// layout): only its keys region changes; IV, tag and payload are
    /// untouched, so the payload is never decrypted.
    pub async fn rewrap_ciphertext(&self, ciphertext: &str) -> Result<String, Error> {
        let invalid = |e: vault_format::Error| {
            Error::new(ErrorKind::InvalidKeys, "the ciphertext is malformed").with_source(e)
        };
        let bytes = b64::decode(ciphertext).map_err(invalid)?;
        let envelope = Envelope::parse(&bytes).map_err(invalid)?;
        let keys = envelope.encrypted_keys().map_err(invalid)?;
        let rewrapped = self.rewrap(&keys).await?;
        let text;
        let region: &[u8] = if envelope.layout() == Layout::APrime {
            text = b64::encode(&rewrapped);
            text.as_bytes()
        } else {
            &rewrapped
        };
        let layout = envelope.layout();
        Envelope::new(
            layout,
            envelope.iv(),
            envelope.tag(),
            region,
            envelope.ciphertext(),
        )
        .map(|e| e.to_base64())
        .map_err(invalid)
    }

    /// Wraps `data_key` under `context` with the configured key.
    async fn wrap(&self, data_key: DataKey, context: &KeyContext) -> Result<DataKeyPair, Error> {
        context.validate()?;
        self.check().await?;
        let derivation = b64::encode(&derivation_context(data_key.id(), context)?);
        let plaintext = Zeroizing::new(b64::encode(data_key.secret_bytes()));
        let body = json(&EncryptRequest {
            plaintext: &plaintext,
            context: &derivation,
        })?;
        let path = format!("encrypt/{}", self.inner.key);
        let answer: CiphertextAnswer = self.post(Op::Encrypt, &path, body).await?;
        let blob = TransitBlob::new(data_key.id(), &self.inner.key, context, answer.ciphertext)?;
        tracing::debug!(
            data_key_id = data_key.id(),
            key_version = blob.key_version,
            context_names = ?context.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            "Transit wrapped a data key"
        );
        Ok(DataKeyPair::new(context.clone(), data_key, blob.encode()?))
    }

    /// Sends `blob`'s Transit ciphertext, with its derivation context, to
    /// `verb/<its key>` (`decrypt` or `rewrap`).
    async fn post_blob<T: serde::de::DeserializeOwned>(
        &self,
        op: Op,
        verb: &str,
        blob: &TransitBlob,
    ) -> Result<T, Error> {
        let context = b64::encode(&blob.derivation_context()?);
        let body = json(&CiphertextRequest {
            ciphertext: &blob.ciphertext,
            context: Some(&context),
        })?;
        self.post(op, &format!("{verb}/{}", blob.key_name), body)
            .await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        op: Op,
        path: &str,
        body: SecretBody,
    ) -> Result<T, Error> {
        self.inner.client.post(op, path, body).await
    }
}

/// A JSON body in a buffer that is zeroized when dropped. The capacity
/// leaves room, so serialising does not reallocate and leave copies.
fn json(value: &impl Serialize) -> Result<SecretBody, Error> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer(&mut *buffer, value).map_err(|e| {
        Error::new(
            ErrorKind::Encode,
            "the Transit request could not be encoded",
        )
        .with_source(e)
    })?;
    Ok(SecretBody(buffer))
}

impl fmt::Debug for TransitKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitKeyService")
            .field("key", &self.inner.key)
            .field("client", &self.inner.client)
            .finish()
    }
}

#[async_trait]
impl KeyService for TransitKeyService {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        self.wrap(vault_api::random_data_key()?, context).await
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        let blob = TransitBlob::parse(encrypted_keys)?;
        let answer: PlaintextAnswer = self.post_blob(Op::Decrypt, "decrypt", &blob).await?;
        let data_key =
            DataKey::from_base64(&blob.id, answer.plaintext.expose_secret()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    "Transit's plaintext is not a 32-byte data key in base64",
                )
            })?;
        tracing::debug!(
            data_key_id = %blob.id,
            key_version = blob.key_version,
            "Transit unwrapped a data key"
        );
        Ok(data_key)
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        context.validate()?;
        let data_key = self.decrypt_data_key(encrypted_keys).await?;
        self.wrap(data_key, context).await
    }
}
