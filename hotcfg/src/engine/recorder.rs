//! The last stage: every attempt's event is kept in the bounded history, published for readers
//! that must not wait for a running reload, appended to the audit log, counted in metrics,
//! broadcast, and handed to subscribers on their own thread. The startup event goes the same way.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use crate::audit::{AuditTrail, SnapshotError, Snapshots, Unwritten};
use crate::diff::Change;
use crate::event::{ReloadError, ReloadEvent, ReloadResult, ReloadSubscriber};
use crate::source::SourceContent;

/// What readers of the engine's state see: copied at the end of each attempt, so asking for the
/// history or the pending restarts never waits for a running reload's handlers.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) history: VecDeque<Arc<ReloadEvent>>,
    pub(crate) pending: Vec<Change>,
    pub(crate) last_event: Arc<ReloadEvent>,
    /// Hashes of the files `#[reload(watch)]` fields of the live configuration name.
    pub(crate) referenced: BTreeMap<PathBuf, Option<String>>,
}

/// Records events; see the module docs.
pub(crate) struct Recorder {
    history_len: usize,
    published: Mutex<Published>,
    audit: Mutex<AuditTrail>,
    events: broadcast::Sender<Arc<ReloadEvent>>,
    dispatcher: Option<mpsc::Sender<Arc<ReloadEvent>>>,
}

impl Recorder {
    /// Records `startup` as the first event, its audit record written first: an error when that
    /// fails and the engine fails closed.
    pub(crate) fn start(
        startup: ReloadEvent,
        content: &SourceContent,
        referenced: BTreeMap<PathBuf, Option<String>>,
        history_len: usize,
        audit: AuditTrail,
        subscribers: Vec<Box<dyn ReloadSubscriber>>,
    ) -> std::io::Result<(Self, Arc<ReloadEvent>)> {
        let mut audit = audit;
        let mut startup = startup;
        startup.result = audit_first(&mut audit, &startup, Some(content))?;
        let startup = Arc::new(startup);
        let recorder = Recorder {
            history_len,
            published: Mutex::new(Published {
                history: VecDeque::with_capacity(history_len.min(1024)),
                pending: Vec::new(),
                last_event: Arc::clone(&startup),
                referenced: BTreeMap::new(),
            }),
            audit: Mutex::new(audit),
            events: broadcast::channel(256).0,
            dispatcher: spawn_dispatcher(subscribers),
        };
        recorder.record(&startup, &[], &referenced, true);
        Ok((recorder, startup))
    }

    /// Writes the audit record of an attempt about to change the live state, before the change:
    /// its result (with a warning if the write failed under `AuditFailure::Continue`), or the
    /// error that fails the attempt under `AuditFailure::FailClosed`.
    pub(crate) fn audit_first(&self, record: &ReloadEvent) -> Result<ReloadResult, ReloadError> {
        self.audit_commit(record, None)
    }

    /// [`audit_first`](Recorder::audit_first) for a commit making `content` live: its snapshot
    /// is kept (written before the record, which names it) when snapshots are.
    pub(crate) fn audit_commit(
        &self,
        record: &ReloadEvent,
        content: Option<&SourceContent>,
    ) -> Result<ReloadResult, ReloadError> {
        audit_first(&mut lock(&self.audit), record, content).map_err(|error| {
            ReloadError::AuditUnwritable {
                message: error.to_string(),
            }
        })
    }

    /// The audit log's path and its snapshots, or why there are none.
    pub(crate) fn snapshots(&self) -> Result<(PathBuf, Snapshots), SnapshotError> {
        let audit = lock(&self.audit);
        let (path, snapshots) = audit.snapshots()?;
        Ok((path.to_path_buf(), snapshots.clone()))
    }

    /// Publishes the restarts a commit leaves pending, just before its store (`record` publishes
    /// the same list again with the event).
    pub(crate) fn publish_pending(&self, pending: &[Change]) {
        self.published().pending = pending.to_vec();
    }

    /// Records `event`; `pending` and `referenced` are the engine's state after it. `audited`:
    /// its audit record was written before the commit ([`audit_first`](Recorder::audit_first)).
    pub(crate) fn record(
        &self,
        event: &Arc<ReloadEvent>,
        pending: &[Change],
        referenced: &BTreeMap<PathBuf, Option<String>>,
        audited: bool,
    ) {
        {
            let mut published = self.published();
            if self.history_len > 0 {
                while published.history.len() >= self.history_len {
                    published.history.pop_front();
                }
                published.history.push_back(Arc::clone(event));
            }
            published.pending = pending.to_vec();
            published.last_event = Arc::clone(event);
            published.referenced.clone_from(referenced);
        }
        if !audited {
            lock(&self.audit).after(event);
        }
        crate::metrics::record(event, pending.len());
        let _ = self.events.send(Arc::clone(event));
        if let Some(tx) = &self.dispatcher {
            let _ = tx.send(Arc::clone(event));
        }
    }

    pub(crate) fn published(&self) -> MutexGuard<'_, Published> {
        lock(&self.published)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ReloadEvent>> {
        self.events.subscribe()
    }
}

/// Writes `record`'s audit record: its result, with a warning if the write failed and the trail
/// goes on; the write error if it fails closed.
fn audit_first(
    audit: &mut AuditTrail,
    record: &ReloadEvent,
    content: Option<&SourceContent>,
) -> std::io::Result<ReloadResult> {
    let mut result = record.result.clone();
    match audit.before_commit(record, content) {
        Ok(()) => Ok(result),
        Err(Unwritten::Warn(warning)) => {
            if let ReloadResult::Applied { warnings, .. } = &mut result {
                warnings.push(warning);
            }
            Ok(result)
        }
        Err(Unwritten::Refuse(error)) => Err(error),
    }
}

/// Handler and subscriber panics are caught, so poisoning means a bug here; the data is still
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that calls subscribers, so none of them can delay a reload.
fn spawn_dispatcher(
    subscribers: Vec<Box<dyn ReloadSubscriber>>,
) -> Option<mpsc::Sender<Arc<ReloadEvent>>> {
    if subscribers.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel::<Arc<ReloadEvent>>();
    let spawned = std::thread::Builder::new()
        .name("hotcfg-subscribers".into())
        .spawn(move || {
            for event in rx {
                for subscriber in &subscribers {
                    let call = std::panic::AssertUnwindSafe(|| subscriber.on_reload(&event));
                    if let Err(panic) = std::panic::catch_unwind(call) {
                        tracing::error!(
                            panic = %crate::handlers::panic_message(panic.as_ref()),
                            "a reload subscriber panicked"
                        );
                    }
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(err) => {
            tracing::error!(%err, "cannot start the subscriber thread; subscribers will not be called");
            None
        }
    }
}
