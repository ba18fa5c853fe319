//! Random UUID v4 text, for data key ids and idempotency keys.

use ring::rand::{SecureRandom, SystemRandom};

/// A random UUID v4 from `rng`, as lowercase hyphenated text; `None` if the
/// generator fails.
pub(crate) fn random_v4(rng: &SystemRandom) -> Option<String> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).ok()?;
    Some(v4_text(bytes))
}

/// `bytes` with the version (4) and variant bits set, as hyphenated text.
/// Written digit by digit: formatting each byte with `format!` cost 17
/// allocations per id.
fn v4_text(mut bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_a_v4_uuid() {
        assert_eq!(v4_text([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(
            v4_text(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef"),
            "01234567-89ab-4def-8123-456789abcdef"
        );
        let rng = SystemRandom::new();
        let a = random_v4(&rng).unwrap();
        assert_ne!(Some(&a), random_v4(&rng).as_ref());
        assert_eq!(a.len(), 36);
    }
}
