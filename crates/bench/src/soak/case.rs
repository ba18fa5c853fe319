//! What each operation encrypts: a pure function of the run's seed and the
//! operation's index.

use vault::{KeyContext, Layout};

/// SplitMix64: a small, fast, well-mixed generator for test data.
struct Mix(u64);

impl Mix {
    fn new(seed: u64, index: u64) -> Mix {
        let mut mix = Mix(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        mix.next();
        mix
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> usize {
        usize::try_from(low + self.next() % (high - low + 1)).expect("fits in usize")
    }
}

/// Operation `index`'s inputs, a pure function of the run's seed and the
/// index, so the expected plaintext can be rebuilt at any time.
pub(crate) struct Case {
    pub(crate) plaintext: Vec<u8>,
    pub(crate) aad: Option<Vec<u8>>,
    pub(crate) context: KeyContext,
    pub(crate) layout: Layout,
}

impl Case {
    pub(crate) fn new(seed: u64, index: u64) -> Case {
        let mut mix = Mix::new(seed, index);
        // Drawn in this order from one generator: changing it changes
        // every case of a seed.
        let plaintext = plaintext(&mut mix, index);
        let aad = aad(&mut mix, index);
        let context = context(&mut mix, index);
        Case {
            plaintext,
            aad,
            context,
            layout: layout(index),
        }
    }
}

/// Mostly small, some kilobytes, a few up to 256 KiB; 5% empty. Random
/// bytes, Unicode text with NUL, zeros or one repeated byte.
fn plaintext(mix: &mut Mix, index: u64) -> Vec<u8> {
    let len = match mix.next() % 100 {
        0..5 => 0,
        5..60 => mix.between(1, 256),
        60..90 => mix.between(257, 4096),
        90..99 => mix.between(4097, 64 << 10),
        _ => mix.between((64 << 10) + 1, 256 << 10),
    };
    let mut plaintext = match mix.next() % 4 {
        0 => {
            let mut bytes = Vec::with_capacity(len + 8);
            while bytes.len() < len {
                bytes.extend_from_slice(&mix.next().to_le_bytes());
            }
            bytes
        }
        1 => format!("op {index}: ünïcödé 🔐 \0 ")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(len)
            .collect(),
        2 => vec![0; len],
        _ => vec![(mix.next() & 0xff) as u8; len],
    };
    plaintext.truncate(len);
    // Stamp the index so two operations never share a plaintext of 8
    // bytes or more.
    if len >= 8 {
        plaintext[..8].copy_from_slice(&index.to_le_bytes());
    }
    plaintext
}

/// Absent, empty, Unicode or ASCII, naming the index.
fn aad(mix: &mut Mix, index: u64) -> Option<Vec<u8>> {
    match mix.next() % 6 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(format!("record/{index}/ü🔑").into_bytes()),
        _ => Some(format!("record:{index}:{}", "x".repeat(mix.between(0, 64))).into_bytes()),
    }
}

/// One to three entries.
fn context(mix: &mut Mix, index: u64) -> KeyContext {
    let mut context = KeyContext::new()
        .with("organization_id", format!("org_{}", index % 997))
        .expect("valid context");
    if mix.next().is_multiple_of(3) {
        context = context
            .with("tenant", format!("tenant-{}", index % 13))
            .expect("valid context");
    }
    if mix.next().is_multiple_of(5) {
        context = context.with("purpose", "soak ✓").expect("valid context");
    }
    context
}

/// Every layout: A12 for five operations in eight, then B, A32, A-prime.
fn layout(index: u64) -> Layout {
    match index % 8 {
        5 => Layout::B,
        6 => Layout::A32,
        7 => Layout::APrime,
        _ => Layout::A12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases are a pure function of seed and index, vary, and stamp the index.
    #[test]
    fn cases_are_reproducible_and_distinct() {
        let a = Case::new(1, 10_000);
        let b = Case::new(1, 10_000);
        assert_eq!(a.plaintext, b.plaintext);
        assert_eq!(a.aad, b.aad);
        assert_eq!(a.context, b.context);
        let sizes: std::collections::BTreeSet<usize> =
            (0..2000).map(|i| Case::new(1, i).plaintext.len()).collect();
        assert!(sizes.contains(&0));
        assert!(sizes.iter().any(|&s| s > 4096));
        assert!(sizes.len() > 500);
        for i in 0..2000 {
            let case = Case::new(1, i);
            if case.plaintext.len() >= 8 {
                assert_eq!(case.plaintext[..8], i.to_le_bytes());
            }
        }
    }
}
