use std::fmt;

/// What can go wrong sealing or opening an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A data key was not 32 bytes.
    InvalidKeyLength {
        /// The length that was given.
        len: usize,
    },
    /// A data key's base64 text did not decode.
    InvalidKeyEncoding,
    /// Authentication failed. Deliberately one opaque case: the ciphertext,
    /// its tag, the AAD or the data key is wrong, and which one is not
    /// revealed.
    Decrypt,
    /// The envelope's framing is invalid; the cause is its
    /// [`source`](std::error::Error::source).
    Format(vault_format::Error),
    /// The keys region to seal is longer than an envelope's length prefix
    /// can declare.
    KeysTooLong {
        /// The length of the keys region (for A-prime, of the base64 text).
        len: u64,
        /// The largest length an envelope holds, `u32::MAX`.
        max: u64,
    },
    /// The plaintext is longer than AES-GCM can encrypt under one nonce.
    PlaintextTooLong {
        /// The length that was given.
        len: u64,
        /// The largest length AES-GCM allows, [`crate::MAX_PLAINTEXT_LEN`].
        max: u64,
    },
    /// The operating system's random number generator failed, so no nonce
    /// could be drawn. Nothing was encrypted.
    Random,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidKeyLength { len } => {
                write!(f, "data key is {len} bytes; AES-256 needs exactly 32")
            }
            Error::InvalidKeyEncoding => f.write_str("data key is not valid standard base64"),
            Error::Decrypt => {
                f.write_str("ciphertext or associated data does not match the data key")
            }
            Error::Format(_) => f.write_str("ciphertext envelope is malformed"),
            Error::KeysTooLong { len, max } => write!(
                f,
                "encrypted keys region is {len} bytes; an envelope holds at most {max}"
            ),
            Error::PlaintextTooLong { len, max } => write!(
                f,
                "plaintext is {len} bytes; AES-GCM encrypts at most {max} bytes per message"
            ),
            Error::Random => f.write_str(
                "the operating system's random number generator failed; no nonce could be drawn",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Format(error) => Some(error),
            _ => None,
        }
    }
}

impl From<vault_format::Error> for Error {
    fn from(error: vault_format::Error) -> Self {
        Error::Format(error)
    }
}
