//! Watching configuration files: reload when the bytes change, survive every way they change.
//!
//! [`ConfigWatcher::start`] follows the files of a [`Reloader`]'s source (a base file and its
//! overlays) and the files its live configuration names in `#[reload(watch)]` fields (a TLS
//! certificate, templates), and calls [`Reloader::trigger`] with [`Trigger::File`] when one of
//! them holds new bytes. Every trigger (files, [SIGHUP](crate::reload_on_sighup), the API) goes
//! through the engine's one coalescing queue.
//!
//! The watcher runs on a thread of its own ([`ConfigWatcher::start`]), or as a task on a tokio
//! runtime ([`ConfigWatcher::spawn_on`]) for services that want everything there: the same code
//! and behaviour, its file reads, dry runs and reloads on the runtime's blocking pool (where
//! [`Reloader::trigger_async`] runs a reload too).
//!
//! ```
//! use std::time::Duration;
//! use hotcfg::watcher::{ConfigWatcher, WatchOptions};
//! use hotcfg::{FileSource, HotReload, Reloader};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
//! struct Config {
//!     #[reload(scope = "limits")]
//!     workers: usize,
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.toml");
//! std::fs::write(&path, "workers = 2")?;
//! let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build()?;
//! let handle = reloader.handle();
//! let mut updates = handle.subscribe();
//!
//! let _watcher = ConfigWatcher::start(reloader, WatchOptions::default())?;
//!
//! // An editor's atomic save: write a temporary file, rename it over the configuration.
//! std::fs::write(dir.path().join(".app.toml.tmp"), "workers = 8")?;
//! std::fs::rename(dir.path().join(".app.toml.tmp"), &path)?;
//!
//! // The rename completes the save: the new value is live within milliseconds.
//! # let deadline = std::time::Instant::now() + Duration::from_secs(10);
//! while handle.load().workers != 8 {
//!     # assert!(std::time::Instant::now() < deadline, "no reload within 10 s");
//!     std::thread::sleep(Duration::from_millis(5));
//! }
//! assert!(updates.has_changed()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! - **Directories, not inodes.** Editors and orchestrators replace files (a new inode under the
//!   old name), so a watch on the file itself goes silent after the first save. hotcfg watches
//!   the directory holding each path, and for a symlink every directory along the chain
//!   (`config.toml -> ..data/config.toml`, `..data -> ..2026_11_26_x`), and resolves the chain
//!   again after every relevant event. Events about other files in those directories, and reads
//!   (its own included), are ignored.
//! - **Completed saves at once, writes in progress debounced.** Most saves announce their own
//!   end: an atomic save's rename into place, a ConfigMap's rename of its `..data` link, a new
//!   symlink (`ln -sfn`), a close after writing (`IN_CLOSE_WRITE`). Such a save is looked at at
//!   once, when the files were quiet for a debounce window before it. Any other event (a write,
//!   a truncation, a removal, a rename away) may be a writer still at work: it opens a window
//!   ([`WatchOptions::debounce`], 75 ms by default); every further event pushes it out; a steady
//!   stream is still looked at after [`WatchOptions::max_delay`]. A burst of writes (completed or
//!   not) gives a look at its first completed save and one after its last write: saves closer
//!   together than a window are a burst. The polling backend cannot see a save complete: every
//!   change it finds waits for quiet.
//! - **Content, not events.** After the debounce the watcher hashes the bytes of every watched
//!   file. The same bytes as at its last reload: nothing happens (no reload, no handler call,
//!   no event). A `touch`, a `chmod` and a save that writes identical bytes cost one read.
//! - **Only complete content.** New bytes are checked with a dry run ([`Reloader::plan`]); when
//!   they cannot be read or parsed this may be a write in progress, so the watcher looks again
//!   one debounce window later, up to [`WatchOptions::torn_read_retries`] times. Only then is the
//!   reload triggered, which records the error as a failed [`ReloadEvent`](crate::ReloadEvent):
//!   the live configuration stays, and the next good write is applied.
//! - **Descriptors running out.** A read that fails because the process or the system is out of
//!   file descriptors (EMFILE, ENFILE) or with EAGAIN is retried like a torn write, then reported
//!   as a failed reload once; then the watcher keeps looking, with a back-off from one debounce
//!   window doubling up to 2 s, and applies the edit as soon as the files can be read, with no
//!   new edit or SIGHUP needed.
//! - **Backends.** The native backend uses the operating system's notifications (inotify on
//!   Linux) through [`notify`]. The polling backend reads and hashes the files every interval: for
//!   filesystems without notifications (NFS, some container mounts). [`WatchMode::Auto`] uses the
//!   native backend and falls back to polling, with a `warn` log, when it cannot be created or
//!   fails at run time (inotify's `max_user_watches` gives ENOSPC, `max_user_instances` EMFILE).
//!   [`WatchMode::Native`] makes that a [`WatchError`] at start instead.
//!
//! # Hazards, and what hotcfg does for each
//!
//! Each is an automated test (`tests/integration/watcher_scenarios/`), run with the native and
//! the polling backend.
//!
//! | # | What happens to the file | What hotcfg does |
//! |---|---|---|
//! | 1 | Written in place; or truncated, then written in a second step after a pause | A write closed at once is a completed save, looked at on its close. A writer still writing is debounced. An empty or half-written file fails to parse, so the watcher looks again (a few debounce windows) before reporting anything; the finished content is applied with no failed reload in between. |
//! | 2 | Atomic save: a temporary file in the same directory renamed over the config | The rename into place shows up as an event in the watched directory and completes the save; the new inode is read by name at once. |
//! | 3 | vim-style save: the config renamed to a backup, a new file created and written | The moment without a file falls inside the debounce window; the new file is read by name. The backup is not watched. |
//! | 4 | Deleted; recreated after a pause longer than the debounce | The missing file is retried, then reported as a failed reload (`file not found`); the live config stays. The recreated file is applied. |
//! | 5 | The path is a symlink, re-pointed (`ln -sfn`) | The link's directory and the target's are watched; after the re-point the chain is resolved again and the new target's directory watched. Edits to the new target are followed; the old target no longer matters. |
//! | 6 | Kubernetes ConfigMap: `config.toml -> ..data/config.toml`, `..data -> ..<timestamp>`; an update renames a new `..data` link into place and removes the old directory | The rename of `..data` is an event in the volume directory; the chain is resolved again and the new timestamped directory watched. Repeated updates keep working. |
//! | 7 | A burst: hundreds of writes as fast as possible | A trailing debounce: one look after the last write (more only if the burst outlasts [`WatchOptions::max_delay`]); the last content wins. |
//! | 8 | Unreadable (permissions), invalid UTF-8, above the size limit ([`FileSource::max_bytes`](crate::FileSource::max_bytes), 4 MiB by default), a directory in its place | Retried like a torn write, then a failed reload whose error says which file and what is wrong; the live config stays; the next good write is applied. A FIFO or device is refused, never read. |
//! | 9 | The directory holding the config removed and recreated (or renamed away and replaced) | The watch on the old directory dies with it; the nearest existing ancestor is watched until the directory comes back; a watch whose directory was replaced is re-armed (watches are kept per inode and checked on every event), and the content is looked at since events before the new watch were not seen. |
//! | 10 | A file named by a `#[reload(watch)]` field edited | Such files are watched too (the set is refreshed after every reload); the reload is triggered with [`Trigger::File`] naming that file, and the engine reports the change at the field's path in the field's scope. |
//! | - | Filesystems without inotify; inotify limits reached | Polling, chosen or automatic, with a clear warning; never a silent dead watcher. |
//!
//! Polling reads every watched file each interval (cheap for configuration files; files above
//! 4 MiB are compared by size, time and inode instead of bytes), and counts new bytes or new
//! metadata as activity. Since only a poll can see that the activity stopped, its debounce window
//! lasts at least one interval: a change becomes live one to two intervals after it is made.
//!
//! # Limits
//!
//! - The engine reads the files itself when triggered, a moment after the watcher's dry run found
//!   them complete and still. A writer that never pauses (rewriting the file in place for longer
//!   than [`WatchOptions::max_delay`]) can still be caught mid-write at that moment: that reload
//!   fails (an error event, the live configuration stays) and the next look applies the final
//!   content. Atomic saves (rename) never expose a partial file.
//! - Inotify does not report changes made on another machine to a network filesystem: use
//!   [`WatchMode::Poll`] there.

mod debounce;
mod events;
mod files;
mod native;
mod options;
mod poll;
mod stats;
mod task;
mod worker;

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::de::DeserializeOwned;

#[cfg(doc)]
use crate::Trigger;
use crate::{HotReload, Reloader};

/// The `notify` crate this module is built on, re-exported so a custom native watcher (see
/// [`WatchOptions::native_watcher`]) need not match its version.
pub use notify;

pub use events::NativeEvents;
pub use options::{
    NativeFactory, WatchMode, WatchOptions, DEFAULT_DEBOUNCE, DEFAULT_MAX_DELAY,
    DEFAULT_POLL_INTERVAL, DEFAULT_TORN_READ_RETRIES,
};
pub use stats::{Backend, WatchError, WatchStats};

use debounce::{Debouncer, SystemClock};
use events::{start_native, Msg, Outbox};
use files::fingerprint;
use poll::PollBackend;
use stats::describe_native;
use worker::{Active, Engine, Look, Shared, Worker};

/// Watches a [`Reloader`]'s files and reloads when their bytes change: on a thread of its own
/// ([`start`](ConfigWatcher::start)) or as a task on a tokio runtime
/// ([`spawn_on`](ConfigWatcher::spawn_on)). Stops when dropped. See the [module docs](self) for
/// what it survives.
pub struct ConfigWatcher {
    tx: Outbox,
    runner: Option<Runner>,
    shared: Arc<Shared>,
}

/// What runs the watcher's [`Worker`].
enum Runner {
    Thread(JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigWatcher")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ConfigWatcher {
    /// Starts watching the files of `reloader`: its source's files and the files named by
    /// `#[reload(watch)]` fields of the live configuration. Returns once the watches are in
    /// place: a change made after this returns is seen.
    ///
    /// Fails when the source names no files, when [`WatchMode::Native`] was asked for and the
    /// native watcher cannot be had, or when the thread cannot be started.
    ///
    /// ```
    /// # use hotcfg::{FileSource, HotReload, Reloader};
    /// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// # struct Config { #[reload(scope = "limits")] workers: usize }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.toml");
    /// # std::fs::write(&path, "workers = 2")?;
    /// use hotcfg::watcher::{Backend, ConfigWatcher, WatchOptions};
    ///
    /// let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build()?;
    /// let watcher = ConfigWatcher::start(reloader.clone(), WatchOptions::default())?;
    /// assert_eq!(watcher.mode(), Backend::Native);
    /// drop(watcher); // stops watching
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<C>(reloader: Reloader<C>, options: WatchOptions) -> Result<Self, WatchError>
    where
        C: HotReload + DeserializeOwned + Send + Sync,
    {
        Self::start_engine(Box::new(reloader), options)
    }

    fn start_engine(engine: Box<dyn Engine>, options: WatchOptions) -> Result<Self, WatchError> {
        let (tx, rx) = mpsc::channel();
        let tx = Outbox::Thread(tx);
        let (worker, shared) = prepare(engine, &options, &tx)?;
        let thread = std::thread::Builder::new()
            .name("hotcfg-watcher".into())
            .spawn(move || worker.run(rx))
            .map_err(WatchError::Thread)?;
        Ok(ConfigWatcher {
            tx,
            runner: Some(Runner::Thread(thread)),
            shared,
        })
    }

    /// The backend in use now (after a fallback, [`Backend::Poll`]).
    pub fn mode(&self) -> Backend {
        self.shared.stats().backend
    }

    /// What the watcher has done so far.
    pub fn stats(&self) -> WatchStats {
        self.shared.stats()
    }
}

/// The watcher's state, its watches in place, ready to be run by a thread or a task whose
/// messages come through `tx`.
fn prepare(
    engine: Box<dyn Engine>,
    options: &WatchOptions,
    tx: &Outbox,
) -> Result<(Worker, Arc<Shared>), WatchError> {
    let files = engine.watched_files();
    if files.is_empty() {
        return Err(WatchError::NoFiles);
    }
    let active = start_backend(options, tx, &files)?;
    let timing = options.timing();
    let mut debouncer = Debouncer::new(
        SystemClock,
        match &active {
            Active::Poll(poll) => timing.for_polling(poll.interval),
            Active::Native(_) => timing,
        },
    );
    let mut at_trigger = fingerprint(&files);
    // Changed between the engine's load and now: treat it as a change seen at the start.
    if engine.look() != Look::Unchanged {
        at_trigger.clear();
        debouncer.change();
    }
    let backend = match active {
        Active::Native(_) => Backend::Native,
        Active::Poll(_) => Backend::Poll,
    };
    let shared = Arc::new(Shared::default());
    shared
        .stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .backend = backend;
    let worker = Worker {
        generation: engine.generation(),
        engine,
        debouncer,
        active,
        files,
        at_trigger,
        fallback_interval: options.fallback_interval,
        timing,
        shared: Arc::clone(&shared),
        stats: WatchStats::default(),
        read_failed_for_now: false,
    };
    tracing::info!(?backend, "watching configuration files");
    Ok((worker, shared))
}

/// The backend `options` ask for; under [`WatchMode::Auto`], polling when the native watcher
/// cannot be had.
fn start_backend(
    options: &WatchOptions,
    tx: &Outbox,
    files: &[PathBuf],
) -> Result<Active, WatchError> {
    if let WatchMode::Poll { interval } = options.mode {
        return Ok(Active::Poll(PollBackend::new(interval, files)));
    }
    match start_native(options, NativeEvents { tx: tx.clone() }, files) {
        Ok(native) => Ok(Active::Native(native)),
        Err(err) if options.mode == WatchMode::Native => Err(WatchError::Native(err)),
        Err(err) => {
            tracing::warn!(
                "{}; falling back to polling every {:?}",
                describe_native(&err),
                options.fallback_interval
            );
            Ok(Active::Poll(PollBackend::new(
                options.fallback_interval,
                files,
            )))
        }
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.tx.send(Msg::Stop);
        match self.runner.take() {
            // Dropped from a handler the watcher itself called: it stops when the call returns.
            Some(Runner::Thread(thread)) if thread.thread().id() != std::thread::current().id() => {
                let _ = thread.join();
            }
            // A reload it triggered goes on; its watches go when its step on the blocking pool
            // (if one runs) ends.
            Some(Runner::Task(task)) => task.abort(),
            _ => {}
        }
    }
}
