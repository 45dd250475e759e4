//! [`WatchOptions`]: the debounce timing, the backend, and the native watcher's factory.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::debounce::Timing;
use super::events::NativeEvents;
#[cfg(doc)]
use super::ConfigWatcher;

/// Default debounce window.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(75);
/// Default longest wait from the first event of a burst to a look.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Default poll interval of the fallback from the native backend.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of extra looks at content that cannot be read or parsed.
pub const DEFAULT_TORN_READ_RETRIES: u32 = 4;

/// Which backend to use.
///
/// ```
/// use std::time::Duration;
/// use hotcfg::watcher::{WatchMode, WatchOptions};
///
/// // An NFS mount: no inotify there.
/// let options = WatchOptions::default().mode(WatchMode::Poll { interval: Duration::from_secs(2) });
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchMode {
    /// Native notifications, falling back to polling (every
    /// [`WatchOptions::fallback_interval`]) with a warning when they cannot be had.
    #[default]
    Auto,
    /// Native notifications only: [`ConfigWatcher::start`] fails when they cannot be had. A
    /// failure later (an inotify limit reached while following a new directory) still falls back
    /// to polling, logged as an error, rather than leave a dead watcher.
    Native,
    /// Poll: read and hash the files every `interval`.
    Poll {
        /// Time between polls.
        interval: Duration,
    },
}

/// Creates the native watcher: given the handler that feeds events to the [`ConfigWatcher`],
/// returns a [`notify::Watcher`] that calls it.
pub type NativeFactory =
    Arc<dyn Fn(NativeEvents) -> notify::Result<Box<dyn notify::Watcher + Send>> + Send + Sync>;

/// Settings of a [`ConfigWatcher`].
///
/// ```
/// use std::time::Duration;
/// use hotcfg::watcher::{WatchMode, WatchOptions};
///
/// let options = WatchOptions::default()
///     .debounce(Duration::from_millis(50))
///     .torn_read_retries(6)
///     .mode(WatchMode::Auto);
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct WatchOptions {
    debounce: Duration,
    max_delay: Duration,
    pub(super) mode: WatchMode,
    pub(super) fallback_interval: Duration,
    torn_read_retries: u32,
    pub(super) native: Option<NativeFactory>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: DEFAULT_DEBOUNCE,
            max_delay: DEFAULT_MAX_DELAY,
            mode: WatchMode::Auto,
            fallback_interval: DEFAULT_POLL_INTERVAL,
            torn_read_retries: DEFAULT_TORN_READ_RETRIES,
            native: None,
        }
    }
}

impl fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchOptions")
            .field("debounce", &self.debounce)
            .field("max_delay", &self.max_delay)
            .field("mode", &self.mode)
            .field("fallback_interval", &self.fallback_interval)
            .field("torn_read_retries", &self.torn_read_retries)
            .field("custom_native_watcher", &self.native.is_some())
            .finish()
    }
}

impl WatchOptions {
    /// Quiet time after the last event of a write in progress before the files are looked at
    /// (default [`DEFAULT_DEBOUNCE`], 75 ms). A completed save after this long a quiet is looked
    /// at without waiting (native backend). Also the wait between looks at incomplete content.
    pub fn debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }

    /// Longest time from the first event of an uninterrupted stream to a look (default
    /// [`DEFAULT_MAX_DELAY`], 1 s), so that a file rewritten continuously is still reloaded.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Which backend to use (default [`WatchMode::Auto`]).
    pub fn mode(mut self, mode: WatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Poll interval used when [`WatchMode::Auto`] falls back to polling (default
    /// [`DEFAULT_POLL_INTERVAL`], 1 s).
    pub fn fallback_interval(mut self, interval: Duration) -> Self {
        self.fallback_interval = interval;
        self
    }

    /// How many more times to look, one debounce window apart, at content that cannot be read
    /// or parsed before reporting the error (default [`DEFAULT_TORN_READ_RETRIES`]). A writer
    /// that truncates and then writes, or a file briefly missing, is given that long to finish.
    pub fn torn_read_retries(mut self, retries: u32) -> Self {
        self.torn_read_retries = retries;
        self
    }

    /// Creates the native watcher with `factory` instead of [`notify::RecommendedWatcher`]: to
    /// pick another `notify` backend, or, in tests, to simulate a platform whose native watcher
    /// fails.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hotcfg::watcher::{notify, WatchOptions};
    ///
    /// // As if inotify's max_user_watches were exhausted.
    /// let options = WatchOptions::default().native_watcher(Arc::new(|_events| {
    ///     Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
    /// }));
    /// # let _ = options;
    /// ```
    pub fn native_watcher(mut self, factory: NativeFactory) -> Self {
        self.native = Some(factory);
        self
    }

    pub(super) fn timing(&self) -> Timing {
        Timing {
            window: self.debounce,
            max_delay: self.max_delay.max(self.debounce),
            retry_delay: self.debounce.max(Duration::from_millis(1)),
            retries: self.torn_read_retries,
        }
    }
}
