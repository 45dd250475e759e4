//! The native backend (inotify on Linux, through `notify`): watches directories, decides which
//! events matter, and re-arms watches whose directory was replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::files::{dir_id, DirId, WatchPlan};

/// Re-resolutions in one reconcile before accepting the state (the tree keeps changing).
const RECONCILE_ROUNDS: usize = 4;

/// A native watcher and the directories it watches.
pub(crate) struct NativeBackend {
    watcher: Box<dyn Watcher + Send>,
    /// Directories watched, with the identity of the inode the watch is on.
    armed: BTreeMap<PathBuf, DirId>,
    /// Watched directories an event says may have been replaced: re-armed at the next reconcile.
    stale: BTreeSet<PathBuf>,
    plan: WatchPlan,
    /// An event asks for the paths to be resolved again.
    pub dirty: bool,
}

impl std::fmt::Debug for NativeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeBackend")
            .field("armed", &self.armed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl NativeBackend {
    pub fn new(watcher: Box<dyn Watcher + Send>) -> Self {
        NativeBackend {
            watcher,
            armed: BTreeMap::new(),
            stale: BTreeSet::new(),
            plan: WatchPlan::default(),
            dirty: true,
        }
    }

    /// Whether `event` may have changed what a watched path holds. Reads (ours included) never do.
    pub fn is_relevant(&self, event: &Event) -> bool {
        if is_read(&event.kind) {
            return false;
        }
        event.need_rescan()
            || event.paths.is_empty()
            || event
                .paths
                .iter()
                .any(|p| self.plan.interesting.contains(p))
    }

    /// Takes note of a relevant event: paths must be resolved again, and a watched directory
    /// that was removed, renamed or created anew needs a new watch.
    pub fn note(&mut self, event: &Event) {
        self.dirty = true;
        let replaces = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        if replaces || event.need_rescan() {
            for path in &event.paths {
                if self.armed.contains_key(path) {
                    self.stale.insert(path.clone());
                }
            }
            if event.need_rescan() {
                self.stale.extend(self.armed.keys().cloned());
            }
        }
    }

    /// Resolves `files` again and makes the watches match: new directories watched, replaced
    /// ones re-armed, unneeded ones dropped. Returns whether a directory got a new watch (events
    /// in it may have been missed: look at the content).
    pub fn reconcile(&mut self, files: &[PathBuf]) -> notify::Result<bool> {
        self.dirty = false;
        let mut rearmed = false;
        for _ in 0..RECONCILE_ROUNDS {
            let plan = WatchPlan::new(files);
            let unneeded: Vec<PathBuf> = self
                .armed
                .keys()
                .filter(|d| !plan.dirs.contains(*d))
                .cloned()
                .collect();
            for dir in unneeded {
                self.armed.remove(&dir);
                // Already gone when the directory was removed: nothing to undo.
                let _ = self.watcher.unwatch(&dir);
            }
            let mut changed = false;
            for dir in &plan.dirs {
                let Some(id) = dir_id(dir) else {
                    // Vanished since the plan was made: resolve again.
                    changed = true;
                    continue;
                };
                if self.armed.get(dir) == Some(&id) && !self.stale.contains(dir) {
                    continue;
                }
                if self.armed.remove(dir).is_some() {
                    let _ = self.watcher.unwatch(dir);
                }
                match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        tracing::debug!(dir = %dir.display(), "watching directory");
                        self.armed.insert(dir.clone(), id);
                        changed = true;
                    }
                    Err(err) if matches!(err.kind, notify::ErrorKind::PathNotFound) => {
                        changed = true;
                    }
                    Err(err) => return Err(add_path(err, dir)),
                }
            }
            self.stale.clear();
            self.plan = plan;
            if !changed {
                return Ok(rearmed);
            }
            rearmed = true;
        }
        // Still moving: the events of the next change will bring us back here.
        self.dirty = true;
        Ok(rearmed)
    }

    /// Directories watched now.
    #[cfg(test)]
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.armed.keys().cloned().collect()
    }
}

fn add_path(err: notify::Error, dir: &Path) -> notify::Error {
    if err.paths.is_empty() {
        err.add_path(dir.to_path_buf())
    } else {
        err
    }
}

/// Opening and reading a file change nothing; the watcher's own reads produce these.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_)
                | AccessKind::Read
                | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
        )
    )
}

/// Whether `err` says the system's limits on watches or watchers were hit (inotify's
/// `max_user_watches` gives ENOSPC, `max_user_instances` EMFILE).
pub(crate) fn is_limit_error(err: &notify::Error) -> bool {
    match &err.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => is_limit_errno(io.raw_os_error()),
        _ => false,
    }
}

fn is_limit_errno(errno: Option<i32>) -> bool {
    // ENOSPC, EMFILE, ENFILE on Linux and the BSDs alike.
    matches!(errno, Some(28 | 24 | 23))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, RemoveKind};

    #[test]
    fn reads_are_never_relevant() {
        let backend = NativeBackend::new(Box::new(notify::NullWatcher));
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!backend.is_relevant(&Event::new(kind)));
        }
        // A closed write, a rescan after an overflow: look.
        assert!(
            backend.is_relevant(&Event::new(EventKind::Access(AccessKind::Close(
                AccessMode::Write
            ))))
        );
        assert!(backend
            .is_relevant(&Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)));
    }

    #[test]
    fn only_events_on_interesting_paths_matter_and_replaced_directories_are_rearmed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let file = root.join("app.toml");
        std::fs::write(&file, "").unwrap();
        let mut backend = NativeBackend::new(Box::new(notify::NullWatcher));
        assert!(backend.reconcile(std::slice::from_ref(&file)).unwrap());
        assert_eq!(backend.dirs(), vec![root.clone()]);
        assert!(!backend.reconcile(std::slice::from_ref(&file)).unwrap());

        let other = Event::new(EventKind::Create(CreateKind::File)).add_path(root.join("x.log"));
        assert!(!backend.is_relevant(&other));
        let ours = Event::new(EventKind::Create(CreateKind::File)).add_path(file.clone());
        assert!(backend.is_relevant(&ours));

        let gone = Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(root.clone());
        assert!(backend.is_relevant(&gone));
        backend.note(&gone);
        assert!(backend.dirty);
        assert!(
            backend.reconcile(std::slice::from_ref(&file)).unwrap(),
            "a directory reported removed is watched anew"
        );
    }

    #[test]
    fn limit_errors() {
        assert!(is_limit_error(&notify::Error::new(
            notify::ErrorKind::MaxFilesWatch
        )));
        assert!(is_limit_error(&notify::Error::io(
            std::io::Error::from_raw_os_error(24)
        )));
        assert!(!is_limit_error(&notify::Error::path_not_found()));
    }
}
