//! Which layout each official WorkOS SDK reads, so a writer can pick the
//! one its neighbour understands.
//!
//! No official SDK reads more than one layout. Checked against each SDK's
//! sources at its release tags (see the README's table for citations):
//!
//! | SDK | versions with vault encrypt | writes and reads |
//! |---|---|---|
//! | Node `@workos-inc/node` | 7.42.0-7.50.0 | A32 (AAD from 7.50.0) |
//! | Node | >= 7.50.1 | A12 |
//! | Go `workos-go` | 4.35-4.41 | A32 (AAD from 4.38) |
//! | Go | 4.42-6.x | A12 (reads A32 with `NonceSize: 32`) |
//! | Go | >= 7.0 | B |
//! | Python `workos` | >= 5.24 | A12 |
//! | Ruby `workos` | >= 7.0 | A12 |
//! | PHP `workos/workos-php` | >= 5.0 | A12 |
//! | Kotlin/Java `com.workos` | >= 5.0 | A12 |
//! | .NET `WorkOS.net` | >= 3.0 | A-prime |
//! | Rust `workos` (crates.io) | >= 1.0 | B |
//! | Swift (`workos-ios`) | >= 0.1 | B |

use std::fmt;
use std::str::FromStr;

use crate::Layout;

/// A version as `major.minor.patch`.
type Version = (u32, u32, u32);

/// One row: from `since` (inclusive) until the next row of the same SDK.
struct Release {
    sdk: &'static str,
    since: Version,
    layout: Layout,
}

const RELEASES: &[Release] = &[
    Release {
        sdk: "node",
        since: (7, 42, 0),
        layout: Layout::A32,
    },
    Release {
        sdk: "node",
        since: (7, 50, 1),
        layout: Layout::A12,
    },
    Release {
        sdk: "go",
        since: (4, 35, 0),
        layout: Layout::A32,
    },
    Release {
        sdk: "go",
        since: (4, 42, 0),
        layout: Layout::A12,
    },
    Release {
        sdk: "go",
        since: (7, 0, 0),
        layout: Layout::B,
    },
    Release {
        sdk: "python",
        since: (5, 24, 0),
        layout: Layout::A12,
    },
    Release {
        sdk: "ruby",
        since: (7, 0, 0),
        layout: Layout::A12,
    },
    Release {
        sdk: "php",
        since: (5, 0, 0),
        layout: Layout::A12,
    },
    Release {
        sdk: "kotlin",
        since: (5, 0, 0),
        layout: Layout::A12,
    },
    Release {
        sdk: "dotnet",
        since: (3, 0, 0),
        layout: Layout::APrime,
    },
    Release {
        sdk: "rust",
        since: (1, 0, 0),
        layout: Layout::B,
    },
    Release {
        sdk: "swift",
        since: (0, 1, 0),
        layout: Layout::B,
    },
];

/// Other spellings of the SDK names.
const ALIASES: &[(&str, &str)] = &[
    ("js", "node"),
    ("javascript", "node"),
    ("typescript", "node"),
    ("golang", "go"),
    ("java", "kotlin"),
    (".net", "dotnet"),
    ("csharp", "dotnet"),
    ("c#", "dotnet"),
    ("ios", "swift"),
];

/// An official WorkOS SDK, optionally at a version, that will read what you
/// write: `go`, `go@6`, `node@7.45.0`, `dotnet`. Without a version, the
/// current releases.
///
/// ```
/// use vault_format::{Layout, Sdk};
/// assert_eq!("go".parse::<Sdk>()?.layout(), Layout::B);
/// assert_eq!("go@6.5".parse::<Sdk>()?.layout(), Layout::A12);
/// assert_eq!("node@7.47.0".parse::<Sdk>()?.layout(), Layout::A32);
/// assert_eq!("python".parse::<Sdk>()?.layout(), Layout::A12);
/// assert!("node@7.10".parse::<Sdk>().is_err()); // before vault existed
/// # Ok::<(), vault_format::UnknownSdk>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdk {
    name: &'static str,
    version: Option<Version>,
    layout: Layout,
}

impl Sdk {
    /// The layout this SDK (at this version) writes and reads.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The SDK's name, normalised (`node`, `go`, `dotnet`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Every SDK name [`Sdk::from_str`] knows.
    pub fn names() -> impl Iterator<Item = &'static str> {
        // The table lists each SDK's releases together.
        RELEASES
            .iter()
            .enumerate()
            .filter(|&(i, r)| i == 0 || RELEASES[i - 1].sdk != r.sdk)
            .map(|(_, r)| r.sdk)
    }
}

impl fmt::Display for Sdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some((major, minor, patch)) => write!(f, "{}@{major}.{minor}.{patch}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Why a name did not give an [`Sdk`]: the message says what is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSdk(String);

impl fmt::Display for UnknownSdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownSdk {}

impl FromStr for Sdk {
    type Err = UnknownSdk;

    /// Parses `NAME` or `NAME@VERSION` (VERSION is `major[.minor[.patch]]`,
    /// missing parts are 0), case-insensitively.
    fn from_str(text: &str) -> Result<Self, UnknownSdk> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, version) = match lower.split_once('@') {
            Some((name, version)) => (name, Some(parse_version(version, text)?)),
            None => (lower.as_str(), None),
        };
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, canonical)| canonical);
        let releases: Vec<&Release> = RELEASES.iter().filter(|r| r.sdk == name).collect();
        let Some(first) = releases.first() else {
            let known: Vec<&str> = Sdk::names().collect();
            return Err(UnknownSdk(format!(
                "unknown SDK {text:?}; expected one of {}, optionally with @VERSION (go@6)",
                known.join(", ")
            )));
        };
        let release = match version {
            None => releases.last().copied(),
            Some(version) => releases.iter().rev().find(|r| r.since <= version).copied(),
        };
        let release = release.ok_or_else(|| {
            let (major, minor, patch) = first.since;
            UnknownSdk(format!(
                "{text}: that version has no workos-vault encrypt; it came in {name} {major}.{minor}.{patch}"
            ))
        })?;
        Ok(Sdk {
            name: release.sdk,
            version,
            layout: release.layout,
        })
    }
}

fn parse_version(version: &str, text: &str) -> Result<Version, UnknownSdk> {
    let invalid = || {
        UnknownSdk(format!(
            "{text:?}: the version must be MAJOR[.MINOR[.PATCH]], such as go@6 or node@7.50.1"
        ))
    };
    let mut parts = [0u32; 3];
    let mut count = 0;
    for (i, part) in version.split('.').enumerate() {
        let slot = parts.get_mut(i).ok_or_else(invalid)?;
        *slot = part.parse().map_err(|_| invalid())?;
        count += 1;
    }
    if count == 0 {
        return Err(invalid());
    }
    Ok((parts[0], parts[1], parts[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> Layout {
        text.parse::<Sdk>().expect(text).layout()
    }

    #[test]
    fn boundaries_follow_the_releases() {
        assert_eq!(layout("node"), Layout::A12);
        assert_eq!(layout("node@7.42.0"), Layout::A32);
        assert_eq!(layout("node@7.50.0"), Layout::A32);
        assert_eq!(layout("node@7.50.1"), Layout::A12);
        assert_eq!(layout("Node@12"), Layout::A12);
        assert_eq!(layout("go@4.35"), Layout::A32);
        assert_eq!(layout("go@4.41.9"), Layout::A32);
        assert_eq!(layout("go@4.42"), Layout::A12);
        assert_eq!(layout("go@6.5.0"), Layout::A12);
        assert_eq!(layout("go@7"), Layout::B);
        assert_eq!(layout("golang"), Layout::B);
        assert_eq!(layout("dotnet"), Layout::APrime);
        assert_eq!(layout(".NET"), Layout::APrime);
        assert_eq!(layout("rust"), Layout::B);
        assert_eq!(layout("ios"), Layout::B);
        for sdk in ["python", "ruby", "php", "kotlin", "java"] {
            assert_eq!(layout(sdk), Layout::A12, "{sdk}");
        }
    }

    #[test]
    fn bad_names_and_versions_say_what_is_known() {
        let error = "cobol".parse::<Sdk>().unwrap_err().to_string();
        assert!(error.contains("node, go, python"), "{error}");
        let error = "node@7.41".parse::<Sdk>().unwrap_err().to_string();
        assert!(error.contains("came in node 7.42.0"), "{error}");
        for bad in ["go@", "go@x", "go@1.2.3.4", "go@-1"] {
            assert!(bad.parse::<Sdk>().is_err(), "{bad}");
        }
        assert_eq!("go@6".parse::<Sdk>().unwrap().to_string(), "go@6.0.0");
    }
}
