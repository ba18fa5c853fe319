//! [`LogBuffer`]: an access log the test can read back.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A `Write` that keeps everything written, shared by its clones: give
/// one to `ServerConfig::access_log`, read the lines through another.
#[derive(Clone, Default)]
pub struct LogBuffer {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl LogBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        LogBuffer::default()
    }

    /// Every complete line written so far, parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each access log line is JSON"))
            .collect()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
