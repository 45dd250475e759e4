//! The watcher's work, whoever drives it (its thread here, or a task: `task.rs`): takes events
//! (or polls), debounces, looks at the content, and triggers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::debounce::{Debouncer, SystemClock, Timing};
use super::files::{fingerprint, stamps, FileState};
use super::native::{is_limit_error, NativeBackend, Relevance};
use super::poll::PollBackend;
use super::{Backend, Msg, WatchStats};
use crate::event::ReloadEvent;
use crate::source::SourceError;
use crate::{Decision, HotReload, Reloader, Stage, Trigger};

/// How often an idle native watcher checks whether a reload it did not start (SIGHUP, a manual
/// reload) changed the set of files to watch.
const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// What the watcher needs from the engine (object-safe, so the thread is not generic).
pub(crate) trait Engine: Send + 'static {
    /// The files to watch now.
    fn watched_files(&self) -> Vec<PathBuf>;
    /// The live generation.
    fn generation(&self) -> u64;
    /// A dry run of the current content.
    fn look(&self) -> Look;
    /// Reloads because `file` changed, on this thread: the watcher's own, or (for the watcher's
    /// task) one of the runtime's blocking threads; never a runtime worker.
    fn trigger(&self, file: PathBuf) -> Triggered;
}

/// How a reload the watcher triggered went, as far as the watcher cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Triggered {
    /// Done: applied, unchanged, or failed for a reason only a new edit can fix.
    Done,
    /// The files could not be read for a passing reason (descriptors ran out): the content is
    /// still to be loaded.
    ReadFailedForNow,
}

/// What a dry run says about the current content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// Nothing would change.
    Unchanged,
    /// It cannot be read or parsed: maybe a write in progress.
    Incomplete(String),
    /// It cannot be read for now (out of file descriptors): a later look may read it.
    Unavailable(String),
    /// Worth a reload (changes, or an error a reload should report).
    Reload,
}

impl<C> Engine for Reloader<C>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    fn watched_files(&self) -> Vec<PathBuf> {
        Reloader::watched_files(self)
    }

    fn generation(&self) -> u64 {
        self.handle().generation()
    }

    fn look(&self) -> Look {
        let plan = self.plan();
        match &plan.decision {
            Decision::Invalid { error }
                if error.read_error().is_some_and(SourceError::is_temporary) =>
            {
                Look::Unavailable(error.to_string())
            }
            Decision::Invalid { error } if matches!(error.stage, Stage::Read | Stage::Parse) => {
                Look::Incomplete(error.to_string())
            }
            Decision::Unchanged => Look::Unchanged,
            _ => Look::Reload,
        }
    }

    fn trigger(&self, file: PathBuf) -> Triggered {
        // What `trigger_async` runs on the blocking pool. Not `Reloader::trigger`, which refuses
        // on a current-thread runtime with async handlers: it cannot tell a blocking thread (where
        // driving those handlers is fine) from the runtime's own.
        triggered(&Reloader::trigger_here(self, Trigger::File(file)))
    }
}

/// What the watcher makes of the event of a reload it triggered.
fn triggered(event: &ReloadEvent) -> Triggered {
    tracing::debug!(
        result = event.result.kind(),
        "watcher-triggered reload done"
    );
    if event
        .result
        .read_error()
        .is_some_and(SourceError::is_temporary)
    {
        Triggered::ReadFailedForNow
    } else {
        Triggered::Done
    }
}

/// A reload the watcher decided on: the file it is attributed to, and what the files held when
/// looked at.
struct Reload {
    file: PathBuf,
    current: BTreeMap<PathBuf, FileState>,
}

/// State shared with the [`ConfigWatcher`](super::ConfigWatcher).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub stats: Mutex<WatchStats>,
}

impl Shared {
    pub fn stats(&self) -> WatchStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub(crate) enum Active {
    Native(NativeBackend),
    Poll(PollBackend),
}

pub(crate) struct Worker {
    pub engine: Box<dyn Engine>,
    pub debouncer: Debouncer<SystemClock>,
    pub active: Active,
    pub files: Vec<PathBuf>,
    pub generation: u64,
    /// What each file held at the last trigger (a file missing here: not known yet).
    pub at_trigger: BTreeMap<PathBuf, FileState>,
    pub fallback_interval: Duration,
    /// The durations from the options (before any adjustment for polling).
    pub timing: Timing,
    pub shared: Arc<Shared>,
    pub stats: WatchStats,
    /// A reload failed because the files could not be read for now (descriptors ran out), and
    /// that was reported: look again with back-off, quietly, until they can be read.
    pub read_failed_for_now: bool,
}

impl Worker {
    /// The watcher thread: until [`Msg::Stop`], or until every sender is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        loop {
            self.publish();
            let wake = self.next_wake();
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(msg) => {
                    if !self.take_all(msg, || rx.try_recv().ok()) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.step() {
                self.look();
            }
        }
    }

    /// Takes `first` and everything queued behind it (`next`) before acting: one reconcile per
    /// batch. `false` when the watcher is to stop.
    pub fn take_all(&mut self, first: Msg, mut next: impl FnMut() -> Option<Msg>) -> bool {
        let mut msg = Some(first);
        while let Some(taken) = msg {
            match taken {
                Msg::Native(event) => self.on_native(event),
                Msg::Stop => return false,
            }
            msg = next();
        }
        true
    }

    pub fn publish(&mut self) {
        self.stats.pending = self.debouncer.is_pending();
        self.stats.backend = match self.active {
            Active::Native(_) => Backend::Native,
            Active::Poll(_) => Backend::Poll,
        };
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.stats.clone();
    }

    pub fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + REFRESH_EVERY;
        if let Some(deadline) = self.debouncer.deadline() {
            wake = wake.min(deadline);
        }
        if let Active::Poll(poll) = &self.active {
            wake = wake.min(poll.next());
        }
        wake
    }

    fn on_native(&mut self, event: notify::Result<notify::Event>) {
        let Active::Native(native) = &mut self.active else {
            // Left over from a native watcher we fell back from.
            return;
        };
        self.stats.fs_events += 1;
        match event {
            Ok(event) => match native.classify(&event) {
                Relevance::Irrelevant => {}
                relevance => {
                    tracing::trace!(?event, ?relevance, "relevant file event");
                    native.note(&event);
                    self.stats.changes += 1;
                    if relevance == Relevance::Completed {
                        self.stats.completions += 1;
                        self.debouncer.complete();
                    } else {
                        self.debouncer.change();
                    }
                }
            },
            Err(err) if is_limit_error(&err) => self.fall_back(&err),
            Err(err) => {
                tracing::warn!(error = %err, "file watcher error; looking at the files again");
                native.dirty = true;
                self.debouncer.change();
            }
        }
    }

    /// Everything but the look: re-arms, polls, refreshes the files. Whether a look is due.
    pub fn step(&mut self) -> bool {
        if matches!(&self.active, Active::Native(n) if n.dirty) {
            self.reconcile();
        }
        if let Active::Poll(poll) = &mut self.active {
            if let Some(changed) = poll.poll(&self.files, Instant::now()) {
                self.stats.polls += 1;
                if changed {
                    self.stats.changes += 1;
                    self.debouncer.change();
                }
            }
        }
        if self.engine.generation() != self.generation {
            // A reload this watcher did not start may name other files.
            self.refresh_files();
        }
        self.debouncer.due()
    }

    fn reconcile(&mut self) {
        let Active::Native(native) = &mut self.active else {
            return;
        };
        match native.reconcile(&self.files) {
            Ok(true) => {
                // Changes made while a directory was unwatched have no event: look at the content.
                self.stats.rearms += 1;
                self.debouncer.missed();
            }
            Ok(false) => {}
            Err(err) => self.fall_back(&err),
        }
    }

    /// Picks up the files the live configuration names now.
    fn refresh_files(&mut self) {
        self.generation = self.engine.generation();
        let files = self.engine.watched_files();
        if files == self.files {
            return;
        }
        tracing::debug!(?files, "watched files changed");
        self.at_trigger.retain(|file, _| files.contains(file));
        if files.iter().any(|f| !self.at_trigger.contains_key(f)) {
            // New files: their content is not known yet; a look settles it (without a reload when
            // the engine already has exactly that content).
            self.debouncer.change();
        }
        self.files = files;
        if let Active::Native(native) = &mut self.active {
            native.dirty = true;
        }
        self.reconcile();
    }

    /// The debounce is over: reload if the bytes changed and look complete. The reload follows
    /// the dry run at once, on this thread: the shorter the moment between them, the smaller the
    /// chance that a writer starts again in between.
    pub fn look(&mut self) {
        if let Some(reload) = self.consider() {
            let triggered = self.engine.trigger(reload.file.clone());
            self.reloaded(reload, triggered);
        }
    }

    /// The look without the reload: whether the bytes changed and look complete, so that
    /// [`reloaded`](Worker::reloaded) follows a reload triggered now.
    fn consider(&mut self) -> Option<Reload> {
        self.stats.checks += 1;
        let stamped = stamps(&self.files);
        let current = fingerprint(&self.files);
        let changed: Vec<&PathBuf> = self
            .files
            .iter()
            .filter(|f| self.at_trigger.get(*f) != current.get(*f))
            .collect();
        if changed.is_empty() {
            tracing::debug!("same bytes as at the last reload: nothing to do");
            self.stats.skipped += 1;
            self.settle();
            return None;
        }
        let only_new = changed.iter().all(|f| !self.at_trigger.contains_key(*f));
        // A reload is attributed to a file known to have changed (not merely newly watched).
        let file = changed
            .iter()
            .find(|f| self.at_trigger.contains_key(**f))
            .unwrap_or(&changed[0]);
        let file = (*file).clone();
        let look = self.engine.look();
        if look == Look::Unchanged && only_new {
            self.at_trigger = current;
            self.stats.skipped += 1;
            self.settle();
            return None;
        }
        // The engine reads the files again to reload: only go ahead when the bytes held still
        // during the dry run, or a writer still at work could hand it a torn file.
        let (why, for_now) = match look {
            Look::Incomplete(why) => (Some(why), false),
            Look::Unavailable(why) => (Some(why), true),
            _ if fingerprint(&self.files) != current || stamps(&self.files) != stamped => {
                let why = "the files changed while being looked at".to_string();
                (Some(why), false)
            }
            _ => (None, false),
        };
        if let Some(why) = why {
            if self.look_again(&why, for_now) {
                return None;
            }
        }
        Some(Reload { file, current })
    }

    /// Content that cannot be used yet: whether to look again later (`true`), rather than
    /// reload now to report it.
    fn look_again(&mut self, why: &str, for_now: bool) -> bool {
        if self.read_failed_for_now && for_now {
            // Already reported: wait for descriptors without a failed reload per look.
            tracing::debug!(%why, "the files still cannot be read; looking again later");
            self.stats.retries += 1;
            self.debouncer.back_off();
            return true;
        }
        if self.debouncer.retry() {
            tracing::debug!(%why, "content looks incomplete (a write in progress?); looking again");
            self.stats.retries += 1;
            return true;
        }
        tracing::debug!(%why, "content still incomplete after the retries; reloading to report it");
        false
    }

    /// After the reload `reload` asked for, which came to `triggered`.
    fn reloaded(&mut self, reload: Reload, triggered: Triggered) {
        self.stats.triggers += 1;
        if triggered == Triggered::ReadFailedForNow {
            if !self.read_failed_for_now {
                tracing::warn!(
                    "the configuration files cannot be read for now (out of file descriptors?); \
                     looking again with back-off until they can be"
                );
            }
            self.read_failed_for_now = true;
            // `at_trigger` keeps what was last loaded: the look that can read sees the change.
            self.debouncer.back_off();
            return;
        }
        self.at_trigger = reload.current;
        self.settle();
        self.refresh_files();
    }

    /// The content is dealt with: loaded, the same as loaded, or reported.
    fn settle(&mut self) {
        self.read_failed_for_now = false;
        self.debouncer.settled();
    }

    fn fall_back(&mut self, err: &notify::Error) {
        let interval = self.fallback_interval;
        if is_limit_error(err) {
            tracing::warn!(
                error = %err,
                poll_interval = ?interval,
                "the native file watcher hit an inotify limit (fs.inotify.max_user_watches or \
                 max_user_instances); falling back to polling"
            );
        } else {
            tracing::warn!(
                error = %err,
                poll_interval = ?interval,
                "the native file watcher failed; falling back to polling"
            );
        }
        self.active = Active::Poll(PollBackend::new(interval, &self.files));
        self.debouncer.set_timing(
            self.timing
                .for_polling(interval.max(Duration::from_millis(1))),
        );
        self.stats.fallbacks += 1;
        // A change may have gone unseen while the native watcher was failing.
        self.debouncer.change();
    }
}

#[cfg(test)]
mod tests;
