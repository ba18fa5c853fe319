use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most entries a key context may have.
pub const MAX_ENTRIES: usize = 10;
/// Longest entry name, in characters.
pub const MAX_NAME_CHARS: usize = 120;
/// Longest entry value, in characters.
pub const MAX_VALUE_CHARS: usize = 500;

/// A key context: the names and values that select the key-encrypting keys
/// of a data key, such as `organization_id = org_123`.
///
/// Entries are kept sorted by name, so equal contexts compare and serialise
/// equally. The rules of WorkOS Vault are checked on every insert: at least
/// one and at most 10 entries, names of 1 to 120 characters, values of at
/// most 500 characters. A context deserialized from JSON is checked the
/// same way, so every non-empty `KeyContext` keeps the rules; only one
/// built with [`KeyContext::new`] can be empty, and key services refuse it
/// with [`KeyContext::validate`].
///
/// ```
/// use vault_api::KeyContext;
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// assert_eq!(context.get("organization_id"), Some("org_123"));
/// assert!(KeyContext::new().with("", "x").is_err());
/// # Ok::<(), vault_api::ContextError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyContext(BTreeMap<String, String>);

/// A JSON object of strings, checked like [`KeyContext::insert`], and a
/// name given twice is refused ([`ContextError::DuplicateName`]): taking the
/// last would wrap under a context the sender may not have meant.
impl<'de> Deserialize<'de> for KeyContext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;

        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = KeyContext;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key context: an object of string values")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyContext, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if entries.contains_key(&name) {
                        return Err(serde::de::Error::custom(ContextError::DuplicateName {
                            name,
                        }));
                    }
                    entries.insert(name, value);
                }
                KeyContext::try_from(entries).map_err(serde::de::Error::custom)
            }
        }

        deserializer.deserialize_map(Entries)
    }
}

impl TryFrom<BTreeMap<String, String>> for KeyContext {
    type Error = ContextError;

    fn try_from(entries: BTreeMap<String, String>) -> Result<Self, ContextError> {
        let context = KeyContext(entries);
        context.validate()?;
        Ok(context)
    }
}

impl Serialize for KeyContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl KeyContext {
    /// An empty context. It must get at least one entry before use.
    pub fn new() -> Self {
        KeyContext(BTreeMap::new())
    }

    /// Builds a context from name/value pairs, checking every rule.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ContextError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut context = KeyContext::new();
        for (name, value) in pairs {
            context.insert(name, value)?;
        }
        context.validate()?;
        Ok(context)
    }

    /// Adds or replaces an entry, checking the rules for it.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<&mut Self, ContextError> {
        let (name, value) = (name.into(), value.into());
        check_entry(&name, &value)?;
        if !self.0.contains_key(&name) && self.0.len() == MAX_ENTRIES {
            return Err(ContextError::TooManyEntries {
                count: MAX_ENTRIES + 1,
            });
        }
        self.0.insert(name, value);
        Ok(self)
    }

    /// [`KeyContext::insert`], by value, for chaining.
    pub fn with(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ContextError> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// Checks every rule. Only emptiness can fail on a context built with
    /// [`KeyContext::insert`] or deserialized; key services call this
    /// before they use a context.
    pub fn validate(&self) -> Result<(), ContextError> {
        if self.0.is_empty() {
            return Err(ContextError::Empty);
        }
        if self.0.len() > MAX_ENTRIES {
            return Err(ContextError::TooManyEntries {
                count: self.0.len(),
            });
        }
        self.0
            .iter()
            .try_for_each(|(name, value)| check_entry(name, value))
    }

    /// The value of an entry.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The entries, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the context has no entries (and so is not yet usable).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn check_entry(name: &str, value: &str) -> Result<(), ContextError> {
    let name_chars = name.chars().count();
    if name_chars == 0 {
        return Err(ContextError::EmptyName);
    }
    if name_chars > MAX_NAME_CHARS {
        return Err(ContextError::NameTooLong {
            name: name.to_owned(),
            chars: name_chars,
        });
    }
    let value_chars = value.chars().count();
    if value_chars > MAX_VALUE_CHARS {
        return Err(ContextError::ValueTooLong {
            name: name.to_owned(),
            chars: value_chars,
        });
    }
    Ok(())
}

/// A key context that breaks WorkOS Vault's rules. Messages name the
/// offending entry but never print values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The context has no entries.
    Empty,
    /// More than 10 entries.
    TooManyEntries {
        /// How many there were (or would have been).
        count: usize,
    },
    /// An entry with an empty name.
    EmptyName,
    /// A name over 120 characters.
    NameTooLong {
        /// The name, cut to 40 characters in messages.
        name: String,
        /// Its length in characters.
        chars: usize,
    },
    /// A value over 500 characters.
    ValueTooLong {
        /// The entry's name.
        name: String,
        /// The value's length in characters.
        chars: usize,
    },
    /// A name given twice (in JSON, or twice on a command line).
    DuplicateName {
        /// The name.
        name: String,
    },
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::Empty => f.write_str(
                "key context is empty; give at least one entry, such as organization_id=org_123",
            ),
            ContextError::TooManyEntries { count } => write!(
                f,
                "key context has {count} entries; at most {MAX_ENTRIES} are allowed"
            ),
            ContextError::EmptyName => f.write_str("key context has an entry with an empty name"),
            ContextError::NameTooLong { name, chars } => {
                let short: String = name.chars().take(40).collect();
                write!(
                    f,
                    "key context name {short:?}... is {chars} characters; at most {MAX_NAME_CHARS} are allowed"
                )
            }
            ContextError::ValueTooLong { name, chars } => write!(
                f,
                "key context value of {name:?} is {chars} characters; at most {MAX_VALUE_CHARS} are allowed"
            ),
            ContextError::DuplicateName { name } => {
                let short: String = name.chars().take(40).collect();
                write!(
                    f,
                    "key context names {short:?} twice; give each name once"
                )
            }
        }
    }
}

impl std::error::Error for ContextError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_given_twice_in_json_is_refused() {
        let error = serde_json::from_str::<KeyContext>(r#"{"a":"b","a":"c"}"#).unwrap_err();
        assert!(error.is_data(), "{error}");
        assert!(
            error.to_string().contains("key context names \"a\" twice"),
            "{error}"
        );
        let same = serde_json::from_str::<KeyContext>(r#"{"a":"b","a":"b"}"#);
        assert!(same.is_err(), "even with the same value");
        let fine: KeyContext = serde_json::from_str(r#"{"b":"1","a":"2"}"#).unwrap();
        assert_eq!(fine.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "1")]);
    }

    #[test]
    fn rules_name_the_entry() {
        let long_name = "n".repeat(121);
        let err = KeyContext::new().with(long_name, "v").unwrap_err();
        assert!(matches!(err, ContextError::NameTooLong { chars: 121, .. }));
        let err = KeyContext::new().with("org", "v".repeat(501)).unwrap_err();
        assert_eq!(
            err,
            ContextError::ValueTooLong {
                name: "org".into(),
                chars: 501
            }
        );
        assert!(err.to_string().contains("\"org\""));
        assert!(!err.to_string().contains("vvvv"));
        assert!(KeyContext::new()
            .with("n".repeat(120), "v".repeat(500))
            .is_ok());
        assert!(KeyContext::new()
            .with("ü".repeat(120), "é".repeat(500))
            .is_ok());
        assert_eq!(KeyContext::new().validate(), Err(ContextError::Empty));
    }

    #[test]
    fn at_most_ten_entries() {
        let mut context = KeyContext::from_pairs((0..10).map(|i| (format!("k{i}"), "v"))).unwrap();
        assert_eq!(
            context.insert("k10", "v").unwrap_err(),
            ContextError::TooManyEntries { count: 11 }
        );
        // Replacing an existing entry is fine.
        assert!(context.insert("k3", "w").is_ok());
        let json = serde_json::to_string(
            &(0..11)
                .map(|i| (format!("k{i}"), "v"))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap();
        let refused = serde_json::from_str::<KeyContext>(&json).unwrap_err();
        assert!(refused.to_string().contains("11 entries"), "{refused}");
        assert!(serde_json::from_str::<KeyContext>("{}")
            .unwrap_err()
            .to_string()
            .contains("key context is empty"));
        assert!(serde_json::from_str::<KeyContext>(r#"{"":"v"}"#).is_err());
    }

    #[test]
    fn json_is_a_plain_object_of_strings() {
        let context = KeyContext::new()
            .with("b", "2")
            .unwrap()
            .with("a", "1")
            .unwrap();
        assert_eq!(
            serde_json::to_string(&context).unwrap(),
            r#"{"a":"1","b":"2"}"#
        );
        assert!(serde_json::from_str::<KeyContext>(r#"{"a":1}"#).is_err());
    }
}
