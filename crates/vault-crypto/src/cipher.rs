//! The two AES-256-GCM back ends, behind one pair of in-place functions.
//!
//! ring serves every 12-byte nonce (A12, B, A-prime). ring has no GCM with
//! longer nonces, so the legacy A32 layout goes through RustCrypto's
//! `aes-gcm` with a 32-byte nonce.

use std::ops::Range;
use std::sync::LazyLock;

use aes_gcm::aead::consts::U32;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use ring::aead::{Aad, Nonce, Tag};
use ring::rand::{SecureRandom, SystemRandom};
use vault_format::{Layout, TAG_LEN};

use crate::{DataKey, Error};

/// Largest plaintext AES-GCM encrypts under one nonce: 2^36 - 32 bytes
/// (2^32 - 2 blocks of 16 bytes, NIST SP 800-38D).
pub const MAX_PLAINTEXT_LEN: u64 = (1 << 36) - 32;

/// AES-256-GCM with a 32-byte nonce, for layout A32.
type Aes256Gcm32 = AesGcm<Aes256, U32>;

/// One generator for the process. `SystemRandom` holds no state; sharing it
/// only saves building it per call.
static RNG: LazyLock<SystemRandom> = LazyLock::new(SystemRandom::new);

/// Fills `iv` with fresh random bytes.
pub(crate) fn random_iv(iv: &mut [u8]) -> Result<(), Error> {
    RNG.fill(iv).map_err(|_| Error::Random)
}

fn a32_cipher(key: &DataKey) -> Aes256Gcm32 {
    Aes256Gcm32::new(key.secret_bytes().into())
}

/// Encrypts `in_out` in place under `iv` and returns the tag.
pub(crate) fn seal_in_place(
    key: &DataKey,
    layout: Layout,
    iv: &[u8],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let len = in_out_len(in_out.len());
    let too_long = || Error::PlaintextTooLong {
        len,
        max: MAX_PLAINTEXT_LEN,
    };
    if len > MAX_PLAINTEXT_LEN {
        return Err(too_long());
    }
    match layout {
        Layout::A32 => {
            if iv.len() != layout.iv_len() {
                return Err(bad_iv(layout, iv));
            }
            let nonce = aes_gcm::Nonce::<U32>::from_slice(iv);
            let tag = a32_cipher(key)
                .encrypt_in_place_detached(nonce, aad, in_out)
                .map_err(|_| too_long())?;
            Ok(tag.into())
        }
        Layout::A12 | Layout::B | Layout::APrime => {
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| bad_iv(layout, iv))?;
            let tag = key
                .ring_key()?
                .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
                .map_err(|_| too_long())?;
            let mut out = [0; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            Ok(out)
        }
    }
}

/// Decrypts `buf[ciphertext]` and moves the plaintext to the front of
/// `buf`, returning its length. On failure the contents of `buf` are
/// unspecified: callers wipe them.
pub(crate) fn open_within(
    key: &DataKey,
    layout: Layout,
    iv: &[u8],
    tag: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    ciphertext: Range<usize>,
) -> Result<usize, Error> {
    let len = ciphertext.len();
    match layout {
        Layout::A32 => {
            if iv.len() != 32 || tag.len() != TAG_LEN {
                return Err(Error::Decrypt);
            }
            let nonce = aes_gcm::Nonce::<U32>::from_slice(iv);
            let tag = aes_gcm::Tag::from_slice(tag);
            a32_cipher(key)
                .decrypt_in_place_detached(nonce, aad, &mut buf[ciphertext.clone()], tag)
                .map_err(|_| Error::Decrypt)?;
            buf.copy_within(ciphertext, 0);
            Ok(len)
        }
        Layout::A12 | Layout::B | Layout::APrime => {
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::Decrypt)?;
            let tag = Tag::try_from(tag).map_err(|_| Error::Decrypt)?;
            let plaintext = key
                .ring_key()?
                .open_in_place_separate_tag(
                    nonce,
                    Aad::from(aad),
                    tag,
                    &mut buf[..ciphertext.end],
                    ciphertext.start..,
                )
                .map_err(|_| Error::Decrypt)?;
            Ok(plaintext.len())
        }
    }
}

/// An IV of the wrong size for its layout: a caller bug, reported as the
/// encoder's error rather than a panic.
fn bad_iv(layout: Layout, iv: &[u8]) -> Error {
    Error::Format(vault_format::Error::InvalidPart {
        layout,
        part: "iv",
        len: iv.len(),
        expected: layout.iv_len(),
    })
}

fn in_out_len(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}
