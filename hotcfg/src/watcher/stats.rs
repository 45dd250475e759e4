//! What a running watcher reports: its [`Backend`] and its [`WatchStats`] counters, and why it
//! could not start ([`WatchError`]).

use super::native;
#[cfg(doc)]
use super::{ConfigWatcher, WatchMode};

/// The backend a [`ConfigWatcher`] is using.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Operating system notifications (inotify, FSEvents, kqueue, ReadDirectoryChanges).
    #[default]
    Native,
    /// Polling.
    Poll,
}

/// What a running [`ConfigWatcher`] has done so far, for logs, metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchStats {
    /// The backend in use now.
    pub backend: Backend,
    /// Native events received (all of them, before filtering).
    pub fs_events: u64,
    /// Changes seen: relevant native events, or polls that found new content or metadata.
    pub changes: u64,
    /// Native events that completed a save (a rename into place, a close after writing, a
    /// symlink created): counted among `changes` too.
    pub completions: u64,
    /// Polls done.
    pub polls: u64,
    /// Looks at the content after a debounce.
    pub checks: u64,
    /// Looks that found the same bytes as at the last reload (no reload).
    pub skipped: u64,
    /// Extra looks at content that could not be read or parsed.
    pub retries: u64,
    /// Reloads triggered.
    pub triggers: u64,
    /// Times a directory got a new watch after the start (it was replaced or newly needed).
    pub rearms: u64,
    /// Fallbacks from the native backend to polling after the start.
    pub fallbacks: u64,
    /// Whether a look is scheduled (a debounce window or a retry is running).
    pub pending: bool,
}

/// Why a [`ConfigWatcher`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The source names no files (a remote store: use its own watch).
    #[error("nothing to watch: the configuration source names no files")]
    NoFiles,
    /// [`WatchMode::Native`] was asked for and the native watcher cannot be had.
    #[error("{}", describe_native(.0))]
    Native(#[source] notify::Error),
    /// The watcher thread cannot be started.
    #[error("cannot start the file watcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl WatchError {
    /// Whether the error is an operating system limit on watches or watchers (inotify's
    /// `max_user_watches`, `max_user_instances`).
    pub fn is_limit(&self) -> bool {
        matches!(self, WatchError::Native(err) if native::is_limit_error(err))
    }
}

pub(super) fn describe_native(err: &notify::Error) -> String {
    let paths = if err.paths.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = err.paths.iter().map(|p| p.display().to_string()).collect();
        format!(" (watching {})", list.join(", "))
    };
    if native::is_limit_error(err) {
        format!(
            "the native file watcher hit an inotify limit{paths}: {err}; raise \
             fs.inotify.max_user_watches / fs.inotify.max_user_instances, or use WatchMode::Auto \
             (falls back to polling) or WatchMode::Poll"
        )
    } else {
        format!(
            "cannot use the native file watcher{paths}: {err}; WatchMode::Poll works on every \
             filesystem"
        )
    }
}
