//! How much of everything `cargo xtask bench` runs.

/// How much of everything to run.
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Repeats of each end-to-end and load measurement; the median is
    /// reported.
    pub(crate) repeats: usize,
    /// Encrypt+decrypt pairs per end-to-end run.
    pub(crate) pairs: usize,
    /// Requests per server load run.
    pub(crate) requests: usize,
}

impl Plan {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                repeats: 1,
                pairs: 500,
                requests: 10_000,
            }
        } else {
            Plan {
                quick,
                repeats: 3,
                pairs: 10_000,
                requests: 100_000,
            }
        }
    }

    pub(crate) fn flag(&self) -> &'static [&'static str] {
        if self.quick {
            &["--quick"]
        } else {
            &[]
        }
    }
}
