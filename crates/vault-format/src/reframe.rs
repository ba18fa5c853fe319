//! Re-framing: an envelope written back in another layout, offline.
//!
//! A12, B and A-prime seal with the same AES-256-GCM, a 12-byte nonce and
//! the caller's AAD; they differ only in where the parts sit (and A-prime
//! stores the keys blob as base64 text). Moving a ciphertext among them
//! moves bytes: no key service, no data key, no plaintext. A32's 32-byte
//! IV is hashed into GCM's counter block, so it has no 12-byte equivalent:
//! converting to or from A32 needs the data key
//! ([`Error::NeedsDataKey`]; the `vault` crate's migration does it).

use crate::envelope::Frame;
use crate::{b64, Envelope, Error, Layout};

impl Envelope<'_> {
    /// Whether [`Envelope::reframe`] can write this envelope as `target`
    /// without a key: the same layout, or any two of A12, B and A-prime.
    ///
    /// ```
    /// # use vault_format::{Envelope, Layout};
    /// let envelope = Envelope::new(Layout::A12, &[0; 12], &[0; 16], b"keys", b"ct")?;
    /// assert!(envelope.can_reframe(Layout::B));
    /// assert!(!envelope.can_reframe(Layout::A32));
    /// # Ok::<(), vault_format::Error>(())
    /// ```
    pub fn can_reframe(&self, target: Layout) -> bool {
        self.layout() == target || (self.layout() != Layout::A32 && target != Layout::A32)
    }

    /// This envelope written in `target` layout, offline: the IV, tag,
    /// keys blob and ciphertext are moved, nothing is decrypted. The
    /// result decrypts to the same plaintext with the same AAD.
    ///
    /// An A-prime source's keys text is decoded to the blob (and written
    /// back as padded base64 text for an A-prime target).
    ///
    /// ```
    /// use vault_format::{Envelope, Layout};
    ///
    /// let a12 = Envelope::new(Layout::A12, &[1; 12], &[2; 16], b"keys", b"ct")?;
    /// let bytes = a12.reframe(Layout::B)?;
    /// let b = Envelope::parse_as(&bytes, Layout::B)?;
    /// assert_eq!((b.iv(), b.tag(), b.keys(), b.ciphertext()), (a12.iv(), a12.tag(), a12.keys(), a12.ciphertext()));
    /// // And back: re-framing is lossless.
    /// assert_eq!(b.reframe(Layout::A12)?, a12.to_bytes());
    /// # Ok::<(), vault_format::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NeedsDataKey`] to or from A32 (see [`Envelope::can_reframe`]);
    /// [`Error::InvalidKeysText`] for an A-prime envelope whose keys text is
    /// not base64.
    pub fn reframe(&self, target: Layout) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.reframe_into(target, &mut out)?;
        Ok(out)
    }

    /// [`Envelope::reframe`], appending to `out` so a caller can reuse one
    /// buffer for many envelopes. On error `out` is left as it was.
    pub fn reframe_into(&self, target: Layout, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.layout() == target {
            self.write_to(out);
            return Ok(());
        }
        if !self.can_reframe(target) {
            return Err(Error::NeedsDataKey {
                from: self.layout(),
                to: target,
            });
        }
        let blob = self.encrypted_keys()?;
        let keys_len = match target {
            Layout::APrime => b64::encoded_len(blob.len()),
            _ => blob.len(),
        };
        let frame = Frame::new(target, keys_len, self.ciphertext().len())?;
        let start = out.len();
        out.resize(start + frame.len(), 0);
        let buf = &mut out[start..];
        buf[frame.iv()].copy_from_slice(self.iv());
        buf[frame.tag()].copy_from_slice(self.tag());
        let keys = frame.keys();
        let prefix = frame.keys_prefix();
        buf[keys.start - prefix.len()..keys.start].copy_from_slice(&prefix);
        match target {
            Layout::APrime => b64::encode_to_slice(&blob, &mut buf[keys]),
            _ => buf[keys].copy_from_slice(&blob),
        }
        buf[frame.ciphertext()].copy_from_slice(self.ciphertext());
        Ok(())
    }
}

/// Re-frames base64 ciphertext `text` (any layout, detected) as `target`
/// and returns the new base64 text, offline. Text already in `target` comes
/// back re-encoded (whitespace and missing padding normalised).
///
/// ```
/// use vault_format::{reframe_base64, Envelope, Layout};
///
/// // Written by @workos-inc/node 11 (A12); Go >= 7 and the Rust crate read B.
/// let a12 = "mu5sL20AhVmG1vJzOZVKsIxGEMFdRUCyUtfdMS9XT1MuRUtNLnYxADAyMzdhYmU4LWZj\
///            MGQtNDQ1Ni04MzFjLTNhMmQxMzNlOWY5MDM=";
/// let b = reframe_base64(a12, Layout::B)?;
/// let mut buf = Vec::new();
/// assert_eq!(Envelope::parse_base64(&b, &mut buf)?.layout(), Layout::B);
/// assert_eq!(reframe_base64(&b, Layout::A12)?, a12);
/// # Ok::<(), vault_format::Error>(())
/// ```
pub fn reframe_base64(text: &str, target: Layout) -> Result<String, Error> {
    let mut buf = Vec::new();
    let envelope = Envelope::parse_base64(text, &mut buf)?;
    let bytes = envelope.reframe(target)?;
    Ok(b64::encode(&bytes))
}
