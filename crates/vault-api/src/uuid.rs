//! Random UUIDs (version 4) for data key ids and idempotency keys.

use ring::rand::{SecureRandom, SystemRandom};

/// A random UUID v4 in its 36-character text form, or `None` when the
/// system's random number generator fails.
pub(crate) fn new_v4(rng: &SystemRandom) -> Option<String> {
    let mut b = [0u8; 16];
    rng.fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
