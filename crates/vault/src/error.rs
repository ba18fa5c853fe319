use std::fmt;

/// What can go wrong in the facade. `Display` names the step that failed;
/// the cause is the [`std::error::Error::source`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The ciphertext is not base64 or not an envelope of a known layout.
    Format(vault_format::Error),
    /// Opening failed: the ciphertext, its AAD or its data key do not match.
    /// Deliberately opaque.
    Decrypt,
    /// Sealing failed (a plaintext over the AES-GCM limit, say).
    Crypto(vault_crypto::Error),
    /// The key service failed or refused.
    KeyService(vault_api::Error),
    /// The plaintext is not UTF-8 (from `decrypt_to_string`).
    NotUtf8,
    /// The environment or builder is misconfigured.
    Config(String),
}

impl Error {
    /// The key service error, if this is one: its status, request id and
    /// whether a retry may help.
    pub fn key_service(&self) -> Option<&vault_api::Error> {
        match self {
            Error::KeyService(error) => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(error) => write!(f, "invalid ciphertext: {error}"),
            Error::Decrypt => {
                f.write_str("ciphertext or associated data does not match the data key")
            }
            Error::Crypto(error) => write!(f, "encryption failed: {error}"),
            Error::KeyService(error) => write!(f, "key service: {error}"),
            Error::NotUtf8 => f.write_str("plaintext is not valid UTF-8; use decrypt for bytes"),
            Error::Config(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Format(error) => Some(error),
            Error::Crypto(error) => Some(error),
            Error::KeyService(error) => Some(error),
            _ => None,
        }
    }
}

impl From<vault_format::Error> for Error {
    fn from(error: vault_format::Error) -> Self {
        Error::Format(error)
    }
}

impl From<vault_crypto::Error> for Error {
    fn from(error: vault_crypto::Error) -> Self {
        match error {
            vault_crypto::Error::Decrypt => Error::Decrypt,
            vault_crypto::Error::Format(error) => Error::Format(error),
            other => Error::Crypto(other),
        }
    }
}

impl From<vault_api::Error> for Error {
    fn from(error: vault_api::Error) -> Self {
        Error::KeyService(error)
    }
}

impl From<vault_api::ContextError> for Error {
    fn from(error: vault_api::ContextError) -> Self {
        Error::KeyService(error.into())
    }
}
