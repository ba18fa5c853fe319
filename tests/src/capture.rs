//! [`LogBuffer`]: an access log the test can read back; [`traces`]:
//! every tracing span and event, as text.

use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Far longer than a line takes to reach the log: only a broken server
/// hits it.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// A `Write` that keeps everything written, shared by its clones: give
/// one to `ServerConfig::access_log`, read the lines through another.
///
/// The server writes its access log from a thread of its own, so a line
/// may land a moment after the answer: [`wait_for_lines`](Self::wait_for_lines)
/// waits for it (on a condition variable, not a sleep).
#[derive(Clone, Default)]
pub struct LogBuffer {
    shared: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl LogBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        LogBuffer::default()
    }

    /// Every complete line written so far, parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.shared.0.lock().unwrap_or_else(PoisonError::into_inner);
        parse(&bytes)
    }

    /// Waits until at least `count` lines were written, then returns every
    /// line. Panics if they do not come (a safety net of 30 s).
    pub fn wait_for_lines(&self, count: usize) -> Vec<serde_json::Value> {
        let (bytes, written) = &*self.shared;
        let guard = bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = written
            .wait_timeout_while(guard, SAFETY_NET, |bytes| {
                bytes.iter().filter(|b| **b == b'\n').count() < count
            })
            .unwrap_or_else(PoisonError::into_inner);
        let lines = parse(&guard);
        assert!(lines.len() >= count, "{count} lines expected: {lines:?}");
        lines
    }
}

fn parse(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each access log line is JSON"))
        .collect()
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        self.shared.1.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Write` that blocks every write until [`open`](Self::open) is called,
/// like a stderr whose reader stopped reading.
#[derive(Clone, Default)]
pub struct BlockedWriter {
    shared: Arc<(Mutex<bool>, Condvar)>,
}

impl BlockedWriter {
    /// A closed gate.
    pub fn new() -> Self {
        BlockedWriter::default()
    }

    /// Lets every write through from now on.
    pub fn open(&self) {
        *self.shared.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.1.notify_all();
    }
}

impl Write for BlockedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (open, opened) = &*self.shared;
        let guard = open.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = opened
            .wait_while(guard, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records every span (its fields, and values recorded later) and every
/// event, at every level, from every crate, as text.
struct Capture {
    log: Arc<Mutex<String>>,
    next_id: AtomicU64,
}

/// Writes `name=value` pairs; text as is, so no escaping hides a secret.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Capture {
    fn write(&self, head: fmt::Arguments<'_>, fields: impl FnOnce(&mut Fields<'_>)) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = log.write_fmt(head);
        fields(&mut Fields(&mut log));
        log.push('\n');
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = span.metadata();
        self.write(
            format_args!(
                "span {id} {} {} {}:",
                meta.level(),
                meta.target(),
                meta.name()
            ),
            |fields| span.record(fields),
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.write(format_args!("record {}:", span.into_u64()), |fields| {
            values.record(fields)
        });
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        self.write(
            format_args!("event {} {}:", meta.level(), meta.target()),
            |fields| event.record(fields),
        );
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// The process-wide capture, installed on first use.
fn captured() -> &'static Arc<Mutex<String>> {
    static LOG: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(String::new()));
        let capture = Capture {
            log: log.clone(),
            next_id: AtomicU64::new(1),
        };
        tracing::subscriber::set_global_default(capture).expect("the only subscriber");
        log
    })
}

/// Every tracing span and event of this process so far, at every level,
/// as text (`event WARN target: name=value ...`). The first call installs
/// the process-wide subscriber that records them, so call it before the
/// code under test runs; nothing else may install one.
pub fn traces() -> String {
    captured()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
