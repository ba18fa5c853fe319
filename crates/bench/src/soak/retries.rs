//! Counting retries per operation, from `HttpKeyService`'s trace events.

use std::cell::RefCell;
use std::sync::Once;

/// The retries one operation's key service calls made, and why.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    pub(crate) count: u32,
    /// "503", "429", "Connect", ...: the status, or else the error kind.
    pub(crate) causes: Vec<String>,
    /// When the last retry was decided, in milliseconds since the Unix
    /// epoch (so another process's clock readings compare with it).
    pub(crate) last_ms: Option<u64>,
}

/// Now, in milliseconds since the Unix epoch.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

tokio::task_local! {
    pub(crate) static RETRIES: RefCell<Retries>;
}

/// A `tracing` subscriber that sees only the `RetryPolicy`'s "retrying the
/// call of ..." events (the only ones with a `wait_ms` field) and
/// charges each to the operation whose task emitted it.
struct RetryCounter;

fn is_retry_event(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_event()
        && metadata.target().starts_with("vault_api")
        && metadata.fields().field("wait_ms").is_some()
}

#[derive(Default)]
struct Cause {
    status: Option<u64>,
    kind: Option<String>,
}

impl tracing::field::Visit for Cause {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kind" {
            self.kind = Some(format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for RetryCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if is_retry_event(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        is_retry_event(metadata)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut cause = Cause::default();
        event.record(&mut cause);
        let cause = match (cause.status, cause.kind) {
            (Some(status), _) => status.to_string(),
            (None, Some(kind)) => kind,
            (None, None) => "unknown".to_owned(),
        };
        // Outside an operation (no task-local), there is nobody to charge.
        let _ = RETRIES.try_with(|retries| {
            let mut retries = retries.borrow_mut();
            retries.count += 1;
            retries.causes.push(cause);
            retries.last_ms = Some(epoch_ms());
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Makes [`RetryCounter`] the process's tracing subscriber (once).
pub(crate) fn install_retry_counter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(RetryCounter)
            .expect("no other global tracing subscriber in a soak process");
    });
}
