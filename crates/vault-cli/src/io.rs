//! Reading input from a file or stdin, writing output to stdout.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use crate::failure::Failure;

/// Inputs above this size show a progress bar when stderr is a terminal.
const PROGRESS_THRESHOLD: u64 = 4 << 20;

/// Reads all of FILE, or stdin when FILE is absent or `-`.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            let file = File::open(path)
                .map_err(|e| Failure::input(format!("cannot open {}: {e}", path.display())))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            read_all(file, Some(len))
                .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))
        }
        None => read_all(std::io::stdin().lock(), None)
            .map_err(|e| Failure::input(format!("cannot read stdin: {e}"))),
    }
}

fn read_all(reader: impl Read, len: Option<u64>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.unwrap_or(0) as usize);
    match len.filter(|&n| n > PROGRESS_THRESHOLD && std::io::stderr().is_terminal()) {
        Some(n) => {
            let bar = indicatif::ProgressBar::new(n);
            bar.wrap_read(reader).read_to_end(&mut out)?;
            bar.finish_and_clear();
        }
        None => {
            let mut reader = reader;
            reader.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// Reads text input (a ciphertext or base64 keys), trimming whitespace.
pub fn read_text(path: Option<&Path>) -> Result<String, Failure> {
    let bytes = read_input(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::input("input is not text; expected base64".to_owned()))?;
    Ok(text.trim().to_owned())
}

/// Writes `bytes` to stdout in one go.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::system(format!("cannot write to stdout: {e}")))
}

/// Writes a line of text to stdout.
pub fn write_line(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::system(format!("cannot write to stdout: {e}")))
}

/// Writes pretty JSON and a newline to stdout. The text is wiped after
/// writing: it may hold a data key.
pub fn write_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = zeroize::Zeroizing::new(
        serde_json::to_string_pretty(value)
            .map_err(|e| Failure::system(format!("cannot format JSON: {e}")))?,
    );
    write_line(&text)
}
