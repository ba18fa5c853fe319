//! The JSON bodies of WorkOS Vault's objects endpoints, field for field.
//!
//! Request bodies refuse unknown fields (a misspelt `version_check` must
//! not turn an optimistic update into a blind one) and check WorkOS's
//! published rules while they are parsed: names of 1 to 200 characters
//! without control characters, key contexts as for data keys. Responses
//! ignore unknown fields, so newer API versions keep working. Object values
//! are [`SecretString`]: zeroized on drop and redacted in `Debug`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::wire::SecretString;
use crate::KeyContext;

/// `POST` (create) and `GET` (list) `/vault/v1/kv`; the other endpoints
/// are below it.
pub const OBJECTS_PATH: &str = "/vault/v1/kv";
/// `GET /vault/v1/kv/name/{name}` starts with this.
pub const OBJECT_BY_NAME_PATH: &str = "/vault/v1/kv/name/";

/// Longest object name, in characters.
pub const MAX_OBJECT_NAME_CHARS: usize = 200;

/// An object name that keeps WorkOS's published rules: 1 to 200
/// characters, none of them a control character.
///
/// ```
/// use vault_api::object::ObjectName;
///
/// let name = ObjectName::new("customers/acme/api-token")?;
/// assert_eq!(name.as_str(), "customers/acme/api-token");
/// assert!(ObjectName::new("x".repeat(201)).is_err());
/// assert!(ObjectName::new("tab\there").is_err());
/// # Ok::<(), vault_api::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ObjectName(String);

impl ObjectName {
    /// Checks `name` against the rules.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest), with
    /// a message that names the rule (never the whole name).
    pub fn new(name: impl Into<String>) -> Result<Self, crate::Error> {
        let name = name.into();
        check_name(&name).map_err(|message| {
            crate::Error::new(crate::ErrorKind::InvalidRequest, message).with_status(400)
        })?;
        Ok(ObjectName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ObjectName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        check_name(&name).map_err(serde::de::Error::custom)?;
        Ok(ObjectName(name))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("object name is empty".to_owned());
    }
    if chars > MAX_OBJECT_NAME_CHARS {
        return Err(format!(
            "object name is {chars} characters; at most {MAX_OBJECT_NAME_CHARS} are allowed"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("object name contains a control character".to_owned());
    }
    Ok(())
}

/// Request body of `POST /vault/v1/kv`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateObjectRequest {
    /// The object's name, unique.
    pub name: ObjectName,
    /// The value, plaintext. Secret.
    pub value: SecretString,
    /// The key context the value is encrypted under.
    pub key_context: KeyContext,
}

impl CreateObjectRequest {
    /// A request to store `value` as `name` under `key_context`.
    pub fn new(name: ObjectName, value: impl Into<String>, key_context: KeyContext) -> Self {
        CreateObjectRequest {
            name,
            value: SecretString::new(value),
            key_context,
        }
    }
}

/// Request body of `PUT /vault/v1/kv/{id}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateObjectRequest {
    /// The new value, plaintext. Secret.
    pub value: SecretString,
    /// When set, the update happens only if this is still the object's
    /// current version id (compare-and-set); otherwise it fails with
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_check: Option<String>,
}

impl UpdateObjectRequest {
    /// A blind update to `value`.
    pub fn new(value: impl Into<String>) -> Self {
        UpdateObjectRequest {
            value: SecretString::new(value),
            version_check: None,
        }
    }

    /// This update, only if `version_id` is still the current version.
    pub fn with_version_check(mut self, version_id: impl Into<String>) -> Self {
        self.version_check = Some(version_id.into());
        self
    }
}

/// Who last changed an object: the API key that acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The API key's id.
    pub id: String,
    /// The API key's name.
    pub name: String,
}

/// An object's metadata (`ObjectMetadata`): the answer to create, and part
/// of every other object answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMetadata {
    /// The object id.
    pub id: String,
    /// The environment the object lives in.
    pub environment_id: String,
    /// The id of the data key that encrypts the current value.
    pub key_id: String,
    /// Who last changed the object.
    pub updated_by: Actor,
    /// When the object last changed, RFC 3339.
    pub updated_at: String,
    /// The key context the value is encrypted under.
    pub context: KeyContext,
    /// The current version's id.
    #[serde(default)]
    pub version_id: Option<String>,
}

/// An object with its value (`Object`): the answer to a read.
#[derive(Debug, Serialize, Deserialize)]
pub struct Object {
    /// The object id.
    pub id: String,
    /// The object's name.
    pub name: String,
    /// The current value, plaintext. Secret.
    pub value: SecretString,
    /// The metadata.
    pub metadata: ObjectMetadata,
}

/// An object without its value (`ObjectWithoutValue`): the answer to
/// update and describe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectWithoutValue {
    /// The object id.
    pub id: String,
    /// The object's name.
    pub name: String,
    /// The metadata.
    pub metadata: ObjectMetadata,
}

/// One entry of a list (`ObjectSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSummary {
    /// The object id.
    pub id: String,
    /// The object's name.
    pub name: String,
    /// When the object last changed, RFC 3339.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// One version of an object (`ObjectVersion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// The version id: what `version_check` names.
    pub id: String,
    /// When the version was written, RFC 3339.
    pub created_at: String,
    /// Whether this is the object's current version.
    pub current_version: bool,
    /// The bytes stored for this version.
    pub size: u64,
    /// A hash of the value.
    pub etag: String,
}

/// The cursors of a page (`ListMetadata`): pass `after` (or `before`) back
/// to get the next (or previous) page; `None` when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMetadata {
    /// The cursor of the page before this one.
    #[serde(default)]
    pub before: Option<String>,
    /// The cursor of the page after this one.
    #[serde(default)]
    pub after: Option<String>,
}

/// A page of objects: the answer to `GET /vault/v1/kv`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectList {
    /// The objects of this page.
    pub data: Vec<ObjectSummary>,
    /// The cursors around it.
    #[serde(default)]
    pub list_metadata: ListMetadata,
}

/// An object's versions, newest first: the answer to
/// `GET /vault/v1/kv/{id}/versions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    /// The versions, newest first.
    pub data: Vec<ObjectVersion>,
    /// The cursors (none: every version is on one page).
    #[serde(default)]
    pub list_metadata: ListMetadata,
}

/// The answer to `DELETE /vault/v1/kv/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteObjectResponse {
    /// The deleted object's name.
    pub name: String,
    /// Whether it was deleted.
    pub success: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_published_rules() {
        assert!(ObjectName::new("a").is_ok());
        assert!(ObjectName::new("é".repeat(200)).is_ok());
        let long = ObjectName::new("n".repeat(201)).unwrap_err();
        assert!(long.message().contains("201 characters"), "{long}");
        assert!(ObjectName::new("").is_err());
        assert!(ObjectName::new("a\u{7f}").is_err());
        assert!(ObjectName::new("line\nbreak").is_err());
        let parsed: Result<ObjectName, _> = serde_json::from_str(r#""a\u0000b""#);
        assert!(parsed.is_err());
    }

    #[test]
    fn requests_refuse_unknown_fields_and_wrong_types() {
        let ok = r#"{"name":"n","value":"v","key_context":{"org":"o"}}"#;
        let request: CreateObjectRequest = serde_json::from_str(ok).unwrap();
        assert_eq!(request.value.expose_secret(), "v");
        assert!(!format!("{request:?}").contains("\"v\""));
        for bad in [
            r#"{"name":"n","value":"v","key_context":{"org":"o"},"extra":1}"#,
            r#"{"name":"n","value":1,"key_context":{"org":"o"}}"#,
            r#"{"name":"n","value":"v","key_context":{}}"#,
            r#"{"name":"n","value":"v"}"#,
            r#"{"name":"","value":"v","key_context":{"org":"o"}}"#,
        ] {
            assert!(
                serde_json::from_str::<CreateObjectRequest>(bad).is_err(),
                "{bad}"
            );
        }
        let update: UpdateObjectRequest =
            serde_json::from_str(r#"{"value":"v","version_check":null}"#).unwrap();
        assert_eq!(update.version_check, None);
        assert!(
            serde_json::from_str::<UpdateObjectRequest>(r#"{"value":"v","versionCheck":"x"}"#)
                .is_err()
        );
        assert_eq!(
            serde_json::to_string(&UpdateObjectRequest::new("v").with_version_check("ver_1"))
                .unwrap(),
            r#"{"value":"v","version_check":"ver_1"}"#
        );
    }

    #[test]
    fn responses_ignore_unknown_fields() {
        let body = r#"{"id":"o","name":"n","value":"secret","metadata":{"id":"o",
            "environment_id":"e","key_id":"k","updated_by":{"id":"a","name":"b"},
            "updated_at":"2026-01-01T00:00:00Z","context":{"org":"o"},"version_id":null,"x":1}}"#;
        let object: Object = serde_json::from_str(body).unwrap();
        assert_eq!(object.value.expose_secret(), "secret");
        assert!(!format!("{object:?}").contains("secret"));
        let list: ObjectList =
            serde_json::from_str(r#"{"data":[{"id":"o","name":"n","updated_at":null}]}"#).unwrap();
        assert_eq!(list.list_metadata, ListMetadata::default());
    }
}
