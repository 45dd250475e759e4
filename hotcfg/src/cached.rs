//! A reader for hot loops: keeps the version it loaded last and checks for a newer one with a
//! single atomic load (arc-swap's [`Cache`]).

use std::fmt;
use std::sync::Arc;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;

use crate::handle::Snapshot;

/// A reader that remembers the last version it loaded, made by
/// [`Handle::cached`](crate::Handle::cached).
///
/// [`load`](CachedReader::load) compares the live version's pointer with the remembered one
/// (one atomic load, no reference counting, no thread-local lookup) and reloads only when a
/// reload committed meanwhile. Use it where a loop reads the configuration millions of times a
/// second; elsewhere [`Handle::load`](crate::Handle::load) is simpler and nearly as fast.
///
/// # Contract
///
/// - **One reader per thread or per task.** `load` takes `&mut self`: the reader is not shared,
///   it is owned (move it into the thread or task, or [`Clone`] it for another one). It is
///   `Send` when the configuration is `Send + Sync`.
/// - **Fresh on every `load`.** A `load` returns the version that is live when it runs: every
///   reload whose commit happened before the call (for example, one whose
///   [`ReloadEvent`](crate::ReloadEvent) this thread has received) is seen. Versions never go
///   backwards for one reader.
/// - **Staleness is about memory, not values.** Between two calls the reader keeps the version it
///   returned last alive (and everything it owns). A reader that stops calling `load` pins that
///   version until it is dropped or loads again; drop idle readers.
/// - **Borrowed, not kept.** The returned reference lives until the next `load`; to keep one
///   version for a longer unit of work, clone the `Arc` (or take a
///   [`Handle::snapshot`](crate::Handle::snapshot)).
///
/// ```
/// let handle = hotcfg::Handle::new(7u32);
/// let mut reader = handle.cached();
/// let mut sum = 0;
/// for _ in 0..1_000 {
///     sum += *reader.load().config();
/// }
/// assert_eq!(sum, 7_000);
/// assert_eq!(reader.load().generation(), 1);
/// ```
pub struct CachedReader<C> {
    cache: Cache<Arc<ArcSwap<Snapshot<C>>>, Arc<Snapshot<C>>>,
}

impl<C> CachedReader<C> {
    pub(crate) fn new(live: Arc<ArcSwap<Snapshot<C>>>) -> Self {
        CachedReader {
            cache: Cache::new(live),
        }
    }

    /// The live version: the remembered one when no reload committed since the last call, else
    /// the new one (which is then remembered).
    #[inline]
    pub fn load(&mut self) -> &Arc<Snapshot<C>> {
        self.cache.load()
    }
}

impl<C> Clone for CachedReader<C> {
    fn clone(&self) -> Self {
        CachedReader {
            cache: self.cache.clone(),
        }
    }
}

impl<C> fmt::Debug for CachedReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedReader").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::handle::{Handle, Snapshot};

    #[test]
    fn sees_a_commit_at_the_next_load_and_keeps_the_old_version_until_then() {
        let handle = Handle::new(String::from("first"));
        let mut reader = handle.cached();
        let first = std::sync::Arc::downgrade(reader.load());
        handle.store(Snapshot::new(2, None, String::from("second")));
        // The reader still holds the first version: it has not loaded since.
        assert!(first.upgrade().is_some(), "pinned until the next load");
        let now = reader.load();
        assert_eq!((now.generation(), now.as_str()), (2, "second"));
        assert!(
            first.upgrade().is_none(),
            "released by the load that saw the commit"
        );
    }

    #[test]
    fn a_reader_on_another_thread_sees_a_commit_that_happened_before_its_load() {
        let handle = Handle::new(1u64);
        let mut reader = handle.cached();
        assert_eq!(*reader.load().config(), 1);
        let (committed, wait_commit) = mpsc::channel();
        let (seen, wait_seen) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            wait_commit
                .recv_timeout(Duration::from_secs(10))
                .expect("the main thread commits within 10 s");
            seen.send(*reader.load().config())
                .expect("the main thread waits");
        });
        handle.store(Snapshot::new(2, None, 2));
        committed.send(()).expect("the reader thread waits");
        let value = wait_seen
            .recv_timeout(Duration::from_secs(10))
            .expect("the reader thread reports within 10 s");
        assert_eq!(value, 2);
        thread.join().expect("the reader thread does not panic");
    }

    #[test]
    fn clones_are_independent_readers() {
        let handle = Handle::new(1u8);
        let mut a = handle.cached();
        let mut b = a.clone();
        handle.store(Snapshot::new(2, None, 2));
        assert_eq!(*a.load().config(), 2);
        assert_eq!(*b.load().config(), 2);
        assert_eq!(format!("{a:?}"), "CachedReader { .. }");
    }
}
