//! Wiping plaintext out of a buffer. Every wipe in this crate goes through
//! here, so a test can watch it happen (feature `test-hooks`): checking
//! that a buffer is empty afterwards would pass with a plain `clear()`.

use zeroize::Zeroize;

/// Zeroes `buf[from..]`, then truncates `buf` there.
pub(crate) fn wipe_from(buf: &mut Vec<u8>, from: usize) {
    buf[from..].zeroize();
    #[cfg(feature = "test-hooks")]
    test_hooks::record(&buf[from..]);
    buf.truncate(from);
}

/// Zeroes all of `buf` and empties it; the spare capacity is zeroed too
/// (`zeroize`'s guarantee for `Vec`), since it may hold plaintext moved
/// there by an earlier truncation.
pub(crate) fn wipe(buf: &mut Vec<u8>) {
    wipe_from(buf, 0);
    buf.zeroize();
}

/// Watching wipes from tests. Not part of the stable interface.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks {
    use std::cell::RefCell;

    /// One wipe seen on this thread.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Wipe {
        /// How many bytes were wiped.
        pub len: usize,
        /// Whether every one of them read zero after the wipe, while the
        /// buffer still held them.
        pub all_zero: bool,
    }

    thread_local! {
        static WIPES: RefCell<Option<Vec<Wipe>>> = const { RefCell::new(None) };
    }

    /// Starts recording the wipes of this thread (and forgets earlier ones).
    pub fn record_wipes() {
        WIPES.with(|w| *w.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns the wipes seen since [`record_wipes`].
    pub fn take_wipes() -> Vec<Wipe> {
        WIPES.with(|w| w.borrow_mut().take().unwrap_or_default())
    }

    pub(crate) fn record(bytes: &[u8]) {
        WIPES.with(|w| {
            if let Some(wipes) = w.borrow_mut().as_mut() {
                wipes.push(Wipe {
                    len: bytes.len(),
                    all_zero: bytes.iter().all(|&b| b == 0),
                });
            }
        });
    }
}
