//! [`EncryptOptions`] and [`DecryptOptions`]: what the obvious
//! `encrypt`/`decrypt` pair leaves at its default.

use vault_format::Layout;

/// The rarer choices of an encryption: associated data and the layout.
///
/// [`Vault::encrypt`](crate::Vault::encrypt) uses the defaults (no AAD, the
/// vault's layout); [`Vault::encrypt_with`](crate::Vault::encrypt_with)
/// and [`Vault::encrypt_in_place`](crate::Vault::encrypt_in_place) take
/// these.
///
/// ```
/// use vault::{DecryptOptions, EncryptOptions, KeyContext, Layout, LocalKeyService, Vault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vault = Vault::new(LocalKeyService::ephemeral());
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let options = EncryptOptions::new().aad(b"user_42").layout(Layout::B);
/// let ciphertext = vault.encrypt_with("hi", &context, &options).await?;
/// let plaintext = vault
///     .decrypt_with(&ciphertext, &DecryptOptions::new().aad(b"user_42"))
///     .await?;
/// assert_eq!(plaintext, b"hi");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct EncryptOptions<'a> {
    pub(crate) aad: &'a [u8],
    pub(crate) layout: Option<Layout>,
}

impl<'a> EncryptOptions<'a> {
    /// No associated data, the vault's layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `aad` (a record id, say) to the ciphertext: decrypting needs
    /// the same bytes. Empty is the same as none.
    pub fn aad(mut self, aad: &'a [u8]) -> Self {
        self.aad = aad;
        self
    }

    /// Writes `layout` instead of the vault's
    /// ([`VaultBuilder::layout`](crate::VaultBuilder::layout)).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }
}

/// The rarer choices of a decryption: associated data and a forced layout.
///
/// [`Vault::decrypt`](crate::Vault::decrypt) uses the defaults (no AAD,
/// the layout detected); [`Vault::decrypt_with`](crate::Vault::decrypt_with),
/// the in-place and string variants, and [`decrypt_with_data_key`](crate::decrypt_with_data_key)
/// take these. See [`EncryptOptions`] for an example.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct DecryptOptions<'a> {
    pub(crate) aad: &'a [u8],
    pub(crate) layout: Option<Layout>,
}

impl<'a> DecryptOptions<'a> {
    /// No associated data, the layout detected.
    pub fn new() -> Self {
        Self::default()
    }

    /// The associated data given at encryption. Empty is the same as none.
    pub fn aad(mut self, aad: &'a [u8]) -> Self {
        self.aad = aad;
        self
    }

    /// Reads the ciphertext as `layout` instead of detecting it: for the
    /// rare ciphertext whose bytes fit two layouts, when you know which
    /// SDK wrote it.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }
}
