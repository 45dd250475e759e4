//! What the watcher (its thread or its task) receives ([`Msg`]) through an [`Outbox`], and the
//! native watcher that feeds it: the [`NativeEvents`] handler, the default `notify` watcher or a
//! [`NativeFactory`]'s.

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc;

use super::native::NativeBackend;
use super::options::WatchOptions;
#[cfg(doc)]
use super::{ConfigWatcher, NativeFactory};

pub(super) enum Msg {
    Native(notify::Result<notify::Event>),
    Stop,
}

/// Where messages for the watcher go: its thread's channel, or its task's.
#[derive(Clone)]
pub(super) enum Outbox {
    Thread(mpsc::Sender<Msg>),
    Task(tokio::sync::mpsc::UnboundedSender<Msg>),
}

impl Outbox {
    /// Sends `msg`; after the watcher stopped nobody listens, and dropping it is right.
    pub fn send(&self, msg: Msg) {
        match self {
            Outbox::Thread(tx) => drop(tx.send(msg)),
            Outbox::Task(tx) => drop(tx.send(msg)),
        }
    }
}

/// The handler a native watcher calls with its events; it forwards them to the
/// [`ConfigWatcher`]. Given to a [`NativeFactory`].
#[derive(Clone)]
pub struct NativeEvents {
    pub(super) tx: Outbox,
}

impl fmt::Debug for NativeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeEvents").finish_non_exhaustive()
    }
}

impl notify::EventHandler for NativeEvents {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        self.tx.send(Msg::Native(event));
    }
}

fn recommended(events: NativeEvents) -> notify::Result<Box<dyn notify::Watcher + Send>> {
    use notify::Watcher;
    Ok(Box::new(notify::RecommendedWatcher::new(
        events,
        notify::Config::default(),
    )?))
}

pub(super) fn start_native(
    options: &WatchOptions,
    events: NativeEvents,
    files: &[PathBuf],
) -> notify::Result<NativeBackend> {
    let watcher = match &options.native {
        Some(factory) => factory(events)?,
        None => recommended(events)?,
    };
    let mut native = NativeBackend::new(watcher);
    native.reconcile(files)?;
    Ok(native)
}
