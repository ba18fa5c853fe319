//! The JSON bodies of WorkOS Vault's key endpoints, field for field.
//!
//! Unknown fields are ignored, so newer API versions keep working. Secret
//! fields are [`SecretString`]: zeroized on drop and redacted in `Debug`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::{DataKey, DataKeyPair, KeyContext};

/// `POST /vault/v1/keys/data-key`.
pub const DATA_KEY_PATH: &str = "/vault/v1/keys/data-key";
/// `POST /vault/v1/keys/decrypt`.
pub const DECRYPT_PATH: &str = "/vault/v1/keys/decrypt";
/// `POST /vault/v1/keys/rekey`.
pub const REKEY_PATH: &str = "/vault/v1/keys/rekey";

/// Request body of `POST /vault/v1/keys/data-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDataKeyRequest {
    /// The key context.
    pub context: KeyContext,
}

/// Request body of `POST /vault/v1/keys/decrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecryptDataKeyRequest {
    /// The `encrypted_keys` blob, base64.
    pub keys: String,
}

/// Request body of `POST /vault/v1/keys/rekey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyRequest {
    /// The new key context.
    pub context: KeyContext,
    /// The `encrypted_keys` blob to rewrap, base64.
    pub encrypted_keys: String,
}

/// Response body of `data-key` and `rekey`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DataKeyResponse {
    /// The key context the data key is wrapped under.
    pub context: KeyContext,
    /// The data key, base64.
    pub data_key: SecretString,
    /// The wrapped data key, base64. Store it: it cannot be fetched again.
    pub encrypted_keys: String,
    /// The data key id.
    pub id: String,
}

/// Response body of `decrypt`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DecryptDataKeyResponse {
    /// The data key, base64.
    pub data_key: SecretString,
    /// The data key id.
    pub id: String,
}

impl From<DataKeyPair> for DataKeyResponse {
    /// The response a key service gives for `pair`: the data key as
    /// zeroizing base64.
    fn from(pair: DataKeyPair) -> Self {
        DataKeyResponse {
            data_key: SecretString::from(pair.data_key.secret_base64()),
            encrypted_keys: pair.encrypted_keys_base64(),
            id: pair.id().to_owned(),
            context: pair.context,
        }
    }
}

impl From<&DataKey> for DecryptDataKeyResponse {
    /// The response a key service gives for `data_key`.
    fn from(data_key: &DataKey) -> Self {
        DecryptDataKeyResponse {
            data_key: SecretString::from(data_key.secret_base64()),
            id: data_key.id().to_owned(),
        }
    }
}

/// An error body: `{"error": "..."}`, sometimes with `code`, `errors` or
/// `message` (which some WorkOS endpoints use instead of `error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// An alternative message field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-field details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<serde_json::Value>,
}

impl ErrorResponse {
    /// `{"error": message, "message": message}`: every SDK finds the text
    /// (Node reads `message` for 404, 409, 422 and 429, and `error` for
    /// other statuses; Python either).
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        ErrorResponse {
            error: Some(message.clone()),
            message: Some(message),
            ..Default::default()
        }
    }

    /// The entries of `errors[]`, each as `field: code` or the parts it
    /// has (WorkOS lists one per broken request parameter).
    pub fn details(&self) -> Vec<String> {
        let Some(serde_json::Value::Array(items)) = &self.errors else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let field = |name: &str| item.get(name).and_then(serde_json::Value::as_str);
                let what = field("code").or(field("message"));
                match (field("field"), what) {
                    (Some(name), Some(what)) => Some(format!("{name}: {what}")),
                    (None, Some(what)) | (Some(what), None) => Some(what.to_owned()),
                    (None, None) => item.as_str().map(str::to_owned),
                }
            })
            .collect()
    }

    /// The most specific message the body holds.
    pub fn text(&self) -> Option<&str> {
        self.error.as_deref().or(self.message.as_deref())
    }
}

/// A string that holds a secret: zeroized on drop, `[redacted]` in `Debug`.
#[derive(Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(Zeroizing::new(secret.into()))
    }

    /// The secret text. Keep it out of logs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<Zeroizing<String>> for SecretString {
    fn from(secret: Zeroizing<String>) -> Self {
        SecretString(secret)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_ignore_unknown_fields_and_redact() {
        let body = r#"{"context":{"org":"o"},"data_key":"c2VjcmV0","encrypted_keys":"a2V5cw==","id":"k1","extra":1}"#;
        let response: DataKeyResponse = serde_json::from_str(body).unwrap();
        assert_eq!(response.data_key.expose_secret(), "c2VjcmV0");
        let debug = format!("{response:?}");
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn error_body_variants() {
        let a: ErrorResponse = serde_json::from_str(r#"{"error":"bad keys"}"#).unwrap();
        assert_eq!(a.text(), Some("bad keys"));
        let b: ErrorResponse =
            serde_json::from_str(r#"{"message":"Unauthorized","code":"x"}"#).unwrap();
        assert_eq!(b.text(), Some("Unauthorized"));
        assert_eq!(
            serde_json::to_string(&ErrorResponse::new("no")).unwrap(),
            r#"{"error":"no","message":"no"}"#
        );
        let workos: ErrorResponse = serde_json::from_str(
            r#"{"message":"Validation failed","code":"invalid_request_parameters",
                "errors":[{"field":"context","code":"too_many_entries"},{"code":"x"},"plain"]}"#,
        )
        .unwrap();
        assert_eq!(
            workos.details(),
            ["context: too_many_entries", "x", "plain"]
        );
    }
}
