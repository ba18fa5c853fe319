//! What a phase runs: its parameters, shared by the phase that runs them
//! and the report that prints them.

use std::time::Duration;

use vault_server::FaultRates;

/// How the client retries.
#[derive(Debug, Clone, Copy)]
pub enum ClientSettings {
    /// `HttpKeyService`'s defaults: what users get.
    Defaults,
    /// A 1-10 ms backoff, for quick tests (`Retry-After` still applies).
    Quick,
}

/// How the client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Plain `http://`, HTTP/1.1 (the client's choice for plain HTTP).
    Http1,
    /// `https://` with a CA made for the phase; ALPN picks HTTP/2, as it
    /// does against WorkOS. Every request must arrive over HTTP/2.
    H2,
}

impl Protocol {
    /// `h1` or `h2`.
    pub fn parse(text: &str) -> Result<Protocol, String> {
        match text {
            "h1" => Ok(Protocol::Http1),
            "h2" => Ok(Protocol::H2),
            other => Err(format!("protocol {other:?}: h1 or h2")),
        }
    }

    /// `h1` or `h2`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "h1",
            Protocol::H2 => "h2",
        }
    }
}

/// What a phase runs.
#[derive(Debug, Clone)]
pub struct Params {
    /// The phase's name, in the report and the output files' names.
    pub name: String,
    /// Round trips (one encrypt and one decrypt each).
    pub ops: u64,
    /// Round trips in flight at once.
    pub concurrency: usize,
    /// Random server-side faults, if any.
    pub faults: Option<FaultRates>,
    /// Derives every operation's inputs.
    pub seed: u64,
    /// How the client retries.
    pub client: ClientSettings,
    /// HTTP/1.1 or HTTP/2 over TLS.
    pub protocol: Protocol,
    /// Report progress on stderr every few seconds.
    pub progress: bool,
    /// The load must finish within this, or the phase counts as hung.
    pub time_limit: Duration,
    /// When set, the load is time-bound: no operation starts once this
    /// file exists (`ops` is then only an upper bound). Checked every
    /// 50 ms, off the operations' path.
    pub stop_file: Option<std::path::PathBuf>,
}
