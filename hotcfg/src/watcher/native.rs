//! The native backend (inotify on Linux, through `notify`): watches directories, decides which
//! events matter, and re-arms watches whose directory was replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::files::{dir_id, DirId, WatchPlan};

/// Re-resolutions in one reconcile before accepting the state (the tree keeps changing).
const RECONCILE_ROUNDS: usize = 4;

/// What a native event means for the debounce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relevance {
    /// About other files, or a read.
    Irrelevant,
    /// A watched path changed; the writer may still be at work.
    Change,
    /// A save of a watched path was completed.
    Completed,
}

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

    /// What a relevant `event` says about the writer: done ([`Relevance::Completed`]) or maybe
    /// still at work ([`Relevance::Change`]).
    pub fn classify(&self, event: &Event) -> Relevance {
        if !self.is_relevant(event) {
            return Relevance::Irrelevant;
        }
        if self.completes_a_save(event) {
            Relevance::Completed
        } else {
            Relevance::Change
        }
    }

    /// A save announces its end: a file closed after writing, a name renamed into place (an
    /// atomic save, a ConfigMap's `..data` link), a symlink created (`ln -sfn`: a link is whole
    /// when it appears). Anything else may be a write in progress.
    fn completes_a_save(&self, event: &Event) -> bool {
        let interesting = |path: &PathBuf| self.plan.interesting.contains(path);
        match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                event.paths.iter().any(interesting)
            }
            // From and to: what matters is the name renamed onto.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                event.paths.last().is_some_and(interesting)
            }
            EventKind::Create(_) => event.paths.iter().any(|path| {
                interesting(path)
                    && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            }),
            _ => false,
        }
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

    fn watching(file: &Path) -> NativeBackend {
        let mut backend = NativeBackend::new(Box::new(notify::NullWatcher));
        backend.reconcile(&[file.to_path_buf()]).unwrap();
        backend
    }

    #[test]
    fn a_close_after_writing_completes_a_save() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().canonicalize().unwrap().join("app.toml");
        std::fs::write(&file, "").unwrap();
        let backend = watching(&file);
        let close = |path: &Path| {
            Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write)))
                .add_path(path.to_path_buf())
        };
        assert_eq!(backend.classify(&close(&file)), Relevance::Completed);
        let other = file.with_file_name(".app.toml.tmp");
        assert_eq!(backend.classify(&close(&other)), Relevance::Irrelevant);
        let data = Event::new(EventKind::Modify(ModifyKind::Data(
            notify::event::DataChange::Any,
        )))
        .add_path(file.clone());
        assert_eq!(
            backend.classify(&data),
            Relevance::Change,
            "a write in progress"
        );
        let truncated_by_removal =
            Event::new(EventKind::Remove(RemoveKind::File)).add_path(file.clone());
        assert_eq!(backend.classify(&truncated_by_removal), Relevance::Change);
    }

    #[test]
    fn a_rename_into_place_completes_a_save_and_a_rename_away_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().canonicalize().unwrap().join("app.toml");
        std::fs::write(&file, "").unwrap();
        let backend = watching(&file);
        let temp = file.with_file_name(".app.toml.tmp");
        let backup = file.with_file_name("app.toml~");
        let name = |mode| EventKind::Modify(ModifyKind::Name(mode));
        let to = Event::new(name(RenameMode::To)).add_path(file.clone());
        assert_eq!(backend.classify(&to), Relevance::Completed);
        let both = Event::new(name(RenameMode::Both))
            .add_path(temp.clone())
            .add_path(file.clone());
        assert_eq!(backend.classify(&both), Relevance::Completed);
        // vim renames the config away first: that is the start of its save, not the end.
        let away = Event::new(name(RenameMode::Both))
            .add_path(file.clone())
            .add_path(backup.clone());
        assert_eq!(backend.classify(&away), Relevance::Change);
        let from = Event::new(name(RenameMode::From)).add_path(file.clone());
        assert_eq!(backend.classify(&from), Relevance::Change);
    }

    #[cfg(unix)]
    #[test]
    fn a_configmap_data_swap_and_a_new_symlink_complete_a_save() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("..2026_1")).unwrap();
        std::fs::write(root.join("..2026_1/config.toml"), "").unwrap();
        std::os::unix::fs::symlink("..2026_1", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config.toml", root.join("config.toml")).unwrap();
        let backend = watching(&root.join("config.toml"));
        let swap = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(root.join("..data_tmp"))
            .add_path(root.join("..data"));
        assert_eq!(backend.classify(&swap), Relevance::Completed);
        // `ln -sfn`: the link removed, then created again, whole.
        let created =
            Event::new(EventKind::Create(CreateKind::File)).add_path(root.join("config.toml"));
        assert_eq!(backend.classify(&created), Relevance::Completed);
        // A regular file created is empty until written: in progress.
        let created_file = Event::new(EventKind::Create(CreateKind::File))
            .add_path(root.join("..2026_1/config.toml"));
        assert_eq!(backend.classify(&created_file), Relevance::Change);
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
