//! The workspace's test data (`tests/data/` at the repository root), parsed
//! into types, so every test suite reads the vectors the same way.
//!
//! The files are compiled in (`include_str!`): tests need no working
//! directory and nothing outside the repository.
//!
//! ```
//! let vectors = vault_testdata::sdk_vectors();
//! assert!(vectors.vectors.iter().all(|v| v.expect == "ok"));
//! assert!(vectors.negative.iter().all(|v| v.expect == "error"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::Deserialize;

const SDK_VECTORS: &str = include_str!("../../../tests/data/sdk-vectors.json");
const API_REFERENCE: &str = include_str!("../../../tests/data/api-reference-examples.json");

/// `sdk-vectors.json`: ciphertexts written by the official SDKs, and
/// mutations of them that must be refused. See `tests/data/README.md`.
#[derive(Debug, Clone, Deserialize)]
pub struct SdkVectors {
    /// What the file holds and how it was made.
    pub description: String,
    /// Ciphertexts that must decrypt.
    pub vectors: Vec<Vector>,
    /// Ciphertexts that must be refused.
    pub negative: Vec<Negative>,
}

/// A ciphertext an official SDK wrote, with the key that opens it.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// `<producer>-<noaad|emptyaad|aad>-<plaintext kind>-<n>`.
    pub id: String,
    /// The SDK and version that wrote it.
    pub producer: String,
    /// The layout name (`A12`, `A32`, `B`, `A-prime`).
    pub layout: String,
    /// The plaintext.
    pub plaintext_utf8: String,
    /// The associated data; `None` when the SDK was given none.
    pub aad: Option<String>,
    /// The data key, base64.
    pub data_key_b64: String,
    /// The data key id inside the key blob.
    pub data_key_id: String,
    /// The key blob, base64.
    pub encrypted_keys_b64: String,
    /// The ciphertext, base64.
    pub ciphertext_b64: String,
    /// Always `ok`.
    pub expect: String,
}

/// A mutated ciphertext that every reader must refuse.
#[derive(Debug, Clone, Deserialize)]
pub struct Negative {
    /// A unique name.
    pub id: String,
    /// The [`Vector::id`] it was made from.
    pub based_on: String,
    /// What was changed, e.g. `flip-tag-bit`.
    pub mutation: String,
    /// The associated data to decrypt with.
    pub aad: Option<String>,
    /// The data key of the original vector, base64.
    pub data_key_b64: String,
    /// The mutated ciphertext, base64.
    pub ciphertext_b64: String,
    /// Always `error`.
    pub expect: String,
}

impl Vector {
    /// The associated data as bytes; absent is empty, as in GCM.
    pub fn aad_bytes(&self) -> &[u8] {
        self.aad.as_deref().unwrap_or_default().as_bytes()
    }
}

impl Negative {
    /// The associated data as bytes; absent is empty, as in GCM.
    pub fn aad_bytes(&self) -> &[u8] {
        self.aad.as_deref().unwrap_or_default().as_bytes()
    }
}

/// `api-reference-examples.json`: the ciphertext-bearing examples in
/// WorkOS's public API reference. Their data keys are not published.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiReference {
    /// Where the examples come from.
    pub description: String,
    /// The `keys` argument of the decryptDataKey example, base64.
    pub decrypt_data_key_keys_b64: String,
    /// What that blob holds.
    pub decrypt_data_key_expect: Expected,
    /// The ciphertext of the decrypt example, base64.
    pub decrypt_ciphertext_b64: String,
    /// What that ciphertext holds.
    pub decrypt_ciphertext_expect: Expected,
}

/// What an example is known to hold.
#[derive(Debug, Clone, Deserialize)]
pub struct Expected {
    /// The layout name, for ciphertexts.
    pub layout: Option<String>,
    /// The data key id in the key blob.
    pub data_key_id: String,
}

/// The SDK vectors.
///
/// # Panics
///
/// If the compiled-in file does not parse: the data is broken.
pub fn sdk_vectors() -> SdkVectors {
    serde_json::from_str(SDK_VECTORS).expect("tests/data/sdk-vectors.json parses")
}

/// The API reference's examples.
///
/// # Panics
///
/// If the compiled-in file does not parse: the data is broken.
pub fn api_reference() -> ApiReference {
    serde_json::from_str(API_REFERENCE).expect("tests/data/api-reference-examples.json parses")
}
