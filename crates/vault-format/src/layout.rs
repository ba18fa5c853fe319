use std::fmt;
use std::str::FromStr;

/// Size of the AES-GCM authentication tag in every layout.
pub const TAG_LEN: usize = 16;

/// The byte layouts WorkOS SDKs have written. See the crate docs for who
/// writes which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `iv[12] tag[16] L keys ct`: Node >= 7.50.1, Python, Ruby, PHP,
    /// Kotlin/Java, Go 4.42-6.x. The default for writing.
    #[default]
    A12,
    /// `iv[32] tag[16] L keys ct`: Node 7.42.0-7.50.0 and Go 4.35-4.41, and
    /// the public API reference's decrypt example. No current release reads
    /// it (Go 4.42-6.x only with a 32-byte nonce option).
    A32,
    /// `L keys nonce[12] ct tag[16]`: Go >= 7, the official Rust crate,
    /// Swift (workos-ios).
    B,
    /// A12 framing whose keys region holds the base64 *text* of the
    /// encrypted keys: the .NET SDK.
    APrime,
}

impl Layout {
    /// Every layout, in the order detection tries them.
    pub const ALL: [Layout; 4] = [Layout::A12, Layout::APrime, Layout::B, Layout::A32];

    /// Length of the IV (or nonce) this layout stores.
    pub const fn iv_len(self) -> usize {
        match self {
            Layout::A32 => 32,
            Layout::A12 | Layout::B | Layout::APrime => 12,
        }
    }

    /// Smallest possible envelope: IV, tag, a one-byte length, no keys and
    /// an empty ciphertext.
    pub const fn min_len(self) -> usize {
        self.iv_len() + TAG_LEN + 1
    }

    /// The layout's name as written in docs and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Layout::A12 => "A12",
            Layout::A32 => "A32",
            Layout::B => "B",
            Layout::APrime => "A-prime",
        }
    }

    /// Whether the keys region comes first (layout B) instead of after
    /// the IV and tag.
    pub(crate) const fn keys_first(self) -> bool {
        matches!(self, Layout::B)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A layout name that [`Layout::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLayout(pub String);

impl fmt::Display for UnknownLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown layout {:?}; expected one of A12, A32, B, A-prime",
            self.0
        )
    }
}

impl std::error::Error for UnknownLayout {}

impl FromStr for Layout {
    type Err = UnknownLayout;

    /// Parses `A12`, `A32`, `B` or `A-prime` (case-insensitive; `aprime`
    /// and `a'` are accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "a12" => Ok(Layout::A12),
            "a32" => Ok(Layout::A32),
            "b" => Ok(Layout::B),
            "a-prime" | "aprime" | "a'" => Ok(Layout::APrime),
            _ => Err(UnknownLayout(s.to_owned())),
        }
    }
}
