//! The read side: wait-free access to the live configuration.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwapAny;
use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

use crate::cached::CachedReader;
use crate::SourceIdentity;

/// One committed version of the configuration.
///
/// Dereferences to the configuration. A holder keeps exactly this version for as long as it holds
/// the snapshot, whatever reloads happen meanwhile: take one per unit of work (a loop iteration, a
/// request) and that unit sees one consistent configuration.
#[derive(Debug)]
pub struct Snapshot<C> {
    generation: u64,
    source: Option<SourceIdentity>,
    config: C,
}

impl<C> Snapshot<C> {
    pub(crate) fn new(generation: u64, source: Option<SourceIdentity>, config: C) -> Self {
        Snapshot {
            generation,
            source,
            config,
        }
    }

    /// The generation: 1 for the configuration loaded at start-up, one more per committed reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where this version came from, with the hash of its bytes.
    pub fn source(&self) -> Option<&SourceIdentity> {
        self.source.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &C {
        &self.config
    }
}

impl<C> Deref for Snapshot<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.config
    }
}

/// A cheap, cloneable reader of the live configuration.
///
/// [`load`](Handle::load) never blocks and is never blocked by a reload (it is an
/// [`arc_swap`] load). Readers never observe a configuration that a reload later rolled back:
/// the new version is stored only after every handler has applied it.
///
/// ```
/// let handle = hotcfg::Handle::new(42u32);
/// let before = handle.snapshot();
/// assert_eq!(*handle.load().config(), 42);
/// assert_eq!(before.generation(), 1);
/// ```
pub struct Handle<C> {
    live: Arc<ArcSwap<Snapshot<C>>>,
    changes: Arc<watch::Sender<Arc<Snapshot<C>>>>,
}

impl<C> Clone for Handle<C> {
    fn clone(&self) -> Self {
        Handle {
            live: Arc::clone(&self.live),
            changes: Arc::clone(&self.changes),
        }
    }
}

impl<C> fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("generation", &ArcSwapAny::load(&self.live).generation)
            .finish_non_exhaustive()
    }
}

impl<C: Send + Sync + 'static> Handle<C> {
    /// A handle holding `config` as generation 1, with no engine behind it (for tests and for
    /// components that take a handle).
    pub fn new(config: C) -> Self {
        Self::from_snapshot(Snapshot::new(1, None, config))
    }

    pub(crate) fn from_snapshot(snapshot: Snapshot<C>) -> Self {
        let snapshot = Arc::new(snapshot);
        let (changes, _) = watch::channel(Arc::clone(&snapshot));
        Handle {
            live: Arc::new(ArcSwap::new(snapshot)),
            changes: Arc::new(changes),
        }
    }

    /// The live version, for a short read. Wait-free; do not hold the guard across long work
    /// (take a [`snapshot`](Handle::snapshot) for that).
    pub fn load(&self) -> Guard<Arc<Snapshot<C>>> {
        ArcSwapAny::load(&self.live)
    }

    /// A reader for a hot loop that remembers its last version: its
    /// [`load`](CachedReader::load) costs one atomic load while no reload commits. One per
    /// thread or task; see [`CachedReader`] for the contract.
    ///
    /// ```
    /// let handle = hotcfg::Handle::new(4u32);
    /// let mut reader = handle.cached();
    /// assert_eq!(*reader.load().config(), 4);
    /// ```
    pub fn cached(&self) -> CachedReader<C> {
        CachedReader::new(Arc::clone(&self.live))
    }

    /// The live version as an owned `Arc`, to keep for a unit of work.
    pub fn snapshot(&self) -> Arc<Snapshot<C>> {
        self.live.load_full()
    }

    /// The live generation.
    pub fn generation(&self) -> u64 {
        ArcSwapAny::load(&self.live).generation
    }

    /// A receiver that is told of every committed version (for code that reacts in its own loop,
    /// e.g. with `tokio::select!`).
    ///
    /// ```
    /// let handle = hotcfg::Handle::new(1u8);
    /// let rx = handle.subscribe();
    /// assert_eq!(rx.borrow().generation(), 1);
    /// ```
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot<C>>> {
        self.changes.subscribe()
    }

    /// A handle to one part of the configuration (`|c| &c.limits`) that still sees every new
    /// version. Loading through it is as cheap as [`load`](Handle::load): no allocation.
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Config { limits: Limits }
    /// #[derive(Debug, PartialEq)]
    /// struct Limits { max: u32 }
    ///
    /// let handle = hotcfg::Handle::new(Config { limits: Limits { max: 4 } });
    /// let limits = handle.project(|c: &Config| &c.limits);
    /// assert_eq!(limits.load().max, 4);
    /// ```
    pub fn project<T, F>(&self, project: F) -> Projection<C, T>
    where
        T: ?Sized + 'static,
        F: Fn(&C) -> &T + Send + Sync + 'static,
    {
        Projection {
            live: Arc::clone(&self.live),
            project: Arc::new(project),
        }
    }

    /// Commits a new version: one atomic store, then change notification.
    pub(crate) fn store(&self, snapshot: Snapshot<C>) -> Arc<Snapshot<C>> {
        let snapshot = Arc::new(snapshot);
        self.live.store(Arc::clone(&snapshot));
        self.changes.send_replace(Arc::clone(&snapshot));
        snapshot
    }
}

/// A handle to part of the configuration, made by [`Handle::project`].
pub struct Projection<C, T: ?Sized> {
    live: Arc<ArcSwap<Snapshot<C>>>,
    project: Arc<dyn Fn(&C) -> &T + Send + Sync>,
}

impl<C, T: ?Sized> Clone for Projection<C, T> {
    fn clone(&self) -> Self {
        Projection {
            live: Arc::clone(&self.live),
            project: Arc::clone(&self.project),
        }
    }
}

impl<C, T: ?Sized> fmt::Debug for Projection<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection").finish_non_exhaustive()
    }
}

impl<C, T: ?Sized> Projection<C, T> {
    /// The part of the live version. Wait-free; keep the guard for short reads only.
    pub fn load(&self) -> ProjectionGuard<'_, C, T> {
        ProjectionGuard {
            snapshot: ArcSwapAny::load(&self.live),
            project: self.project.as_ref(),
        }
    }
}

/// The part of one version a [`Projection`] loaded; dereferences to it.
pub struct ProjectionGuard<'a, C, T: ?Sized> {
    snapshot: Guard<Arc<Snapshot<C>>>,
    project: &'a (dyn Fn(&C) -> &T + Send + Sync),
}

impl<C, T: ?Sized> Deref for ProjectionGuard<'_, C, T> {
    type Target = T;
    fn deref(&self) -> &T {
        (self.project)(&self.snapshot.config)
    }
}

impl<C, T: ?Sized + fmt::Debug> fmt::Debug for ProjectionGuard<'_, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
