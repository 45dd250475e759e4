//! What hotcfg's unit tests share: a capture of the warnings a test's thread logs, and a call
//! bounded in time.

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long [`bounded`] waits.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// Runs `f` on a thread of its own and returns its result, failing if it takes longer than
/// [`BOUND`] (a call that should return at once, or when an event it waits for came).
pub(crate) fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"))
}

/// The messages of the `warn` events given on this thread while the guard lives.
pub(crate) fn warnings() -> (Arc<Mutex<Vec<String>>>, WarningsGuard) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ours = tracing::Dispatch::new(Warnings(Arc::clone(&seen)));
    // While one subscriber is registered, tracing-core decides whether a callsite is enabled
    // with the default subscriber of the thread that reaches it first: another test's thread
    // (none) would disable it for this one. With two registered, it asks every one of them.
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let guard = WarningsGuard {
        _default: tracing::dispatcher::set_default(&ours),
        _second: second,
    };
    (seen, guard)
}

pub(crate) struct WarningsGuard {
    _default: tracing::dispatcher::DefaultGuard,
    _second: tracing::Dispatch,
}

struct Warnings(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Warnings {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Asked at every event: other test threads have no subscriber, and a cached "never"
        // would hide this thread's events.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() == tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message::default();
        event.record(&mut message);
        self.0.lock().unwrap().push(message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
