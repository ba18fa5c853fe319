use std::fmt;

/// What can go wrong in the facade.
///
/// `Display` says what failed, quoting the cause it wraps (the format,
/// crypto or key service error); [`source`](std::error::Error::source)
/// then skips that quoted cause and points at the next one, so printing
/// the chain shows each cause once. Branch on [`Error::kind`].
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
    /// The key context breaks the rules (empty, too many entries, a name
    /// or value too long), found before any call or by the key service
    /// (HTTP 422). The error inside says which rule.
    InvalidContext(vault_api::Error),
    /// The key service failed or refused.
    KeyService(vault_api::Error),
    /// The plaintext is not UTF-8 (from `decrypt_to_string`).
    NotUtf8,
    /// The environment or builder is misconfigured.
    Config(String),
}

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Format`]: the ciphertext is malformed.
    InvalidCiphertext,
    /// [`Error::Decrypt`]: the ciphertext, its AAD or its key do not match.
    Decrypt,
    /// [`Error::Crypto`]: sealing failed.
    Encrypt,
    /// [`Error::InvalidContext`]: a validation error of the key context.
    InvalidContext,
    /// [`Error::KeyService`]: see [`Error::key_service`] for its own kind,
    /// status and request id.
    KeyService,
    /// [`Error::NotUtf8`].
    NotUtf8,
    /// [`Error::Config`]: the environment or builder is misconfigured.
    Config,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Format(_) => ErrorKind::InvalidCiphertext,
            Error::Decrypt => ErrorKind::Decrypt,
            Error::Crypto(_) => ErrorKind::Encrypt,
            Error::InvalidContext(_) => ErrorKind::InvalidContext,
            Error::KeyService(_) => ErrorKind::KeyService,
            Error::NotUtf8 => ErrorKind::NotUtf8,
            Error::Config(_) => ErrorKind::Config,
        }
    }

    /// The key service error, if this is one (a refused key context
    /// included): its status, request id and whether a retry may help.
    pub fn key_service(&self) -> Option<&vault_api::Error> {
        match self {
            Error::KeyService(error) | Error::InvalidContext(error) => Some(error),
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
            Error::InvalidContext(error) => write!(f, "invalid key context: {error}"),
            Error::KeyService(error) => write!(f, "{error}"),
            Error::NotUtf8 => f.write_str("plaintext is not valid UTF-8; use decrypt for bytes"),
            Error::Config(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    /// The cause after the one `Display` quotes.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Format(error) => error.source(),
            Error::Crypto(error) => error.source(),
            Error::InvalidContext(error) | Error::KeyService(error) => error.source(),
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
        match error.kind() {
            vault_api::ErrorKind::InvalidContext => Error::InvalidContext(error),
            _ => Error::KeyService(error),
        }
    }
}

impl From<vault_api::ContextError> for Error {
    fn from(error: vault_api::ContextError) -> Self {
        Error::InvalidContext(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_bad_context_is_a_validation_error_said_once() {
        let error = Error::from(vault_api::ContextError::Empty);
        assert_eq!(error.kind(), ErrorKind::InvalidContext);
        let text = error.to_string();
        assert!(
            text.starts_with("invalid key context: key context is empty"),
            "{text}"
        );
        assert!(!text.contains("key service"), "{text}");
        assert!(error.source().is_none(), "the message says the cause");
    }

    #[test]
    fn each_cause_is_printed_once() {
        let cause = std::io::Error::other("connection reset by peer");
        let inner = vault_api::Error::new(vault_api::ErrorKind::Connect, "could not connect")
            .with_source(cause);
        let error = Error::from(inner);
        assert_eq!(error.kind(), ErrorKind::KeyService);
        assert_eq!(error.to_string(), "could not connect");
        let source = error.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset by peer"));
        assert_eq!(Error::Decrypt.kind(), ErrorKind::Decrypt);
    }
}
