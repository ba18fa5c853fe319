//! Reading input from a file or stdin, writing output to stdout.
//!
//! Plaintexts and ciphertexts may be gigabytes, so `encrypt` and `decrypt`
//! never hold more than one copy: the plaintext is read into the buffer it
//! is sealed in, base64 is written and read in pieces, and the envelope is
//! opened in the buffer it was decoded into.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use vault::{b64, HEAD_ROOM, MAX_PLAINTEXT_LEN, TAG_LEN};
use zeroize::Zeroizing;

use crate::failure::Failure;

/// Inputs above this size show a progress bar when stderr is a terminal.
const PROGRESS_THRESHOLD: u64 = 4 << 20;
/// Bytes of envelope encoded per write: 1 MiB of base64 text.
const ENCODE_CHUNK: usize = 3 << 18;
/// Bytes of base64 text read per piece when decoding.
const DECODE_CHUNK: usize = 1 << 20;

/// The default of `--max-input-bytes`: 1 GiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 30;

/// The most bytes read from an input of unknown size (a pipe, a FIFO, a
/// character device such as `/dev/zero`): without one, such an input is
/// read until memory runs out.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    bytes: u64,
    /// Whether the memory available, not `--max-input-bytes`, set `bytes`.
    by_memory: bool,
}

impl Limit {
    /// `--max-input-bytes`, capped at what one AES-GCM message holds and
    /// at the memory available now.
    pub fn new(bytes: u64) -> Self {
        let bytes = bytes.min(MAX_PLAINTEXT_LEN);
        match available_memory().map(|m| m.saturating_sub(MEMORY_SLACK)) {
            Some(usable) if usable < bytes => Limit {
                bytes: usable,
                by_memory: true,
            },
            _ => Limit {
                bytes,
                by_memory: false,
            },
        }
    }

    fn exceeded(self, name: &str) -> Failure {
        if self.by_memory {
            return Failure::input(format!(
                "{name} holds more than {} MiB, about all the memory available; pass a regular \
                 file (it is sized first) or free memory",
                self.bytes >> 20
            ));
        }
        Failure::input(format!(
            "{name} holds more than {} bytes, the limit for input of unknown size (a pipe, FIFO \
             or device); raise it with --max-input-bytes, or pass a regular file",
            self.bytes
        ))
    }
}

/// Memory kept back for the runtime and I/O buffers.
const MEMORY_SLACK: u64 = 16 << 20;

/// An input: a file, or stdin when FILE is absent or `-`.
struct Input {
    reader: Box<dyn Read>,
    /// The length of a regular file; `None` for a pipe, FIFO, socket or
    /// device (their length is not their content's).
    len: Option<u64>,
    name: String,
}

/// The length of a regular file, `None` for anything else.
fn regular_len(metadata: std::io::Result<std::fs::Metadata>) -> Option<u64> {
    metadata.ok().filter(|m| m.is_file()).map(|m| m.len())
}

impl Input {
    fn open(path: Option<&Path>) -> Result<Input, Failure> {
        match path.filter(|p| p.as_os_str() != "-") {
            Some(path) => {
                let name = path.display().to_string();
                let file = File::open(path)
                    .map_err(|e| Failure::input(format!("cannot open {name}: {e}")))?;
                let len = regular_len(file.metadata());
                Ok(Input {
                    reader: Box::new(file),
                    len,
                    name,
                })
            }
            None => Ok(Input {
                len: stdin_len(),
                reader: Box::new(std::io::stdin().lock()),
                name: "stdin".to_owned(),
            }),
        }
    }

    /// The reader, stopped one byte past `limit` when the size is unknown.
    fn limited(self, limit: Limit) -> Input {
        match self.len {
            Some(_) => self,
            None => Input {
                reader: Box::new(self.reader.take(limit.bytes.saturating_add(1))),
                ..self
            },
        }
    }

    /// The reader, behind a progress bar for large files on a terminal.
    fn reader(self) -> (Box<dyn Read>, Option<indicatif::ProgressBar>, String) {
        match self.len {
            Some(n) if n > PROGRESS_THRESHOLD && std::io::stderr().is_terminal() => {
                let bar = indicatif::ProgressBar::new(n);
                (Box::new(bar.wrap_read(self.reader)), Some(bar), self.name)
            }
            _ => (self.reader, None, self.name),
        }
    }

    fn read_error(name: &str, error: std::io::Error) -> Failure {
        Failure::input(format!("cannot read {name}: {error}"))
    }

    /// Reads the rest of the input, appending to `buf`; at most `limit`
    /// bytes when the size is unknown.
    fn read_to_end(self, buf: &mut Vec<u8>, limit: Limit) -> Result<(), Failure> {
        let sized = self.len.is_some();
        let start = buf.len();
        let (mut reader, bar, name) = self.limited(limit).reader();
        reader
            .read_to_end(buf)
            .map_err(|e| Input::read_error(&name, e))?;
        if !sized && (buf.len() - start) as u64 > limit.bytes {
            return Err(limit.exceeded(&name));
        }
        bar.inspect(indicatif::ProgressBar::finish_and_clear);
        Ok(())
    }
}

/// The length of stdin when it is a regular file (`< file`), else `None`.
#[cfg(unix)]
fn stdin_len() -> Option<u64> {
    let stat = rustix::fs::fstat(std::io::stdin()).ok()?;
    (rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile)
        .then(|| u64::try_from(stat.st_size).ok())
        .flatten()
}

#[cfg(not(unix))]
fn stdin_len() -> Option<u64> {
    None
}

/// Reads all of FILE, or stdin when FILE is absent or `-`.
pub fn read_input(path: Option<&Path>, limit: Limit) -> Result<Vec<u8>, Failure> {
    let input = Input::open(path)?;
    let mut out = Vec::with_capacity(input.len.unwrap_or(0) as usize);
    input.read_to_end(&mut out, limit)?;
    Ok(out)
}

/// Reads a plaintext to encrypt in place: the returned buffer holds
/// [`HEAD_ROOM`] bytes, then the plaintext, with room for a trailing tag.
/// Too large a file is refused before anything is read.
pub fn read_plaintext(path: Option<&Path>, limit: Limit) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let input = Input::open(path)?;
    if let Some(len) = input.len {
        if len > MAX_PLAINTEXT_LEN {
            return Err(Failure::input(format!(
                "{} is {len} bytes; one AES-GCM message holds at most {MAX_PLAINTEXT_LEN} bytes \
                 (64 GiB): split it",
                input.name
            )));
        }
        check_memory(&input.name, len)?;
    }
    let len = input.len.unwrap_or(0) as usize;
    let mut buf = Zeroizing::new(Vec::with_capacity(HEAD_ROOM + len + TAG_LEN));
    buf.resize(HEAD_ROOM, 0);
    input.read_to_end(&mut buf, limit)?;
    Ok(buf)
}

/// Reads base64 ciphertext text and decodes it in pieces, so the text is
/// never in memory whole. Returns the envelope's bytes.
pub fn read_envelope(path: Option<&Path>, limit: Limit) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let input = Input::open(path)?;
    let sized = input.len.is_some();
    let mut total: u64 = 0;
    let decoded_len = input.len.map_or(0, |len| len / 4 * 3 + 3);
    if input.len.is_some() {
        check_memory(&input.name, decoded_len)?;
    }
    // The buffer will hold the plaintext once opened: wipe it on drop.
    let mut out = Zeroizing::new(Vec::with_capacity(decoded_len as usize));
    let mut piece = vec![0u8; DECODE_CHUNK];
    let mut decoder = b64::Decoder::new();
    let (mut reader, bar, name) = input.limited(limit).reader();
    loop {
        let n = match reader.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Input::read_error(&name, e)),
        };
        total = total.saturating_add(n as u64);
        if !sized && total > limit.bytes {
            return Err(limit.exceeded(&name));
        }
        decoder
            .push(&piece[..n], &mut out)
            .map_err(|e| Failure::from(vault::Error::from(e)))?;
    }
    decoder
        .finish(&mut out)
        .map_err(|e| Failure::from(vault::Error::from(e)))?;
    bar.inspect(indicatif::ProgressBar::finish_and_clear);
    Ok(out)
}

/// Refuses an input whose processing would need more memory than the
/// machine has available, before reading it.
fn check_memory(name: &str, bytes: u64) -> Result<(), Failure> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    // The buffer, plus slack for the runtime and I/O buffers.
    let needed = bytes.saturating_add(MEMORY_SLACK);
    if needed > available {
        return Err(Failure::input(format!(
            "{name} needs about {} MiB of memory to process and only {} MiB is available",
            needed >> 20,
            available >> 20
        )));
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in bytes; `None` where there is none.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Reads text input (a ciphertext or base64 keys), trimming whitespace.
pub fn read_text(path: Option<&Path>, limit: Limit) -> Result<String, Failure> {
    let bytes = read_input(path, limit)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::input("input is not text; expected base64".to_owned()))?;
    Ok(text.trim().to_owned())
}

fn write_error(error: std::io::Error) -> Failure {
    Failure::system(format!("cannot write to stdout: {error}"))
}

/// Writes `bytes` to stdout in one go.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(write_error)
}

/// Writes `bytes` as one line of base64 text, encoded in pieces.
pub fn write_base64_line(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    let mut text = vec![0u8; b64::encoded_len(ENCODE_CHUNK.min(bytes.len()))];
    for chunk in bytes.chunks(ENCODE_CHUNK) {
        let text = &mut text[..b64::encoded_len(chunk.len())];
        b64::encode_to_slice(chunk, text);
        stdout.write_all(text).map_err(write_error)?;
    }
    stdout
        .write_all(b"\n")
        .and_then(|()| stdout.flush())
        .map_err(write_error)
}

/// Writes a line of text to stdout.
pub fn write_line(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(write_error)
}

/// Writes pretty JSON and a newline to stdout. The text is wiped after
/// writing: it may hold a data key.
pub fn write_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = Zeroizing::new(
        serde_json::to_string_pretty(value)
            .map_err(|e| Failure::system(format!("cannot format JSON: {e}")))?,
    );
    write_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsized_limit_never_exceeds_aes_gcm_or_the_memory_available() {
        let default = Limit::new(DEFAULT_MAX_INPUT_BYTES);
        assert!(default.bytes <= DEFAULT_MAX_INPUT_BYTES);
        let huge = Limit::new(u64::MAX);
        assert!(huge.bytes <= MAX_PLAINTEXT_LEN);
        if let Some(available) = available_memory() {
            assert!(huge.bytes <= available, "{huge:?}");
            if available < MAX_PLAINTEXT_LEN {
                assert!(huge.by_memory, "{huge:?}");
                let message = huge.exceeded("stdin").message;
                assert!(message.contains("memory available"), "{message}");
            }
        }
    }
}
