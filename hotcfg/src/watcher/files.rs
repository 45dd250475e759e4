//! Where a watched path really is (its symlink chain), which directories to watch for it, and
//! what its content is now.
//!
//! Everything here is recomputed on every event: a path is a name, and the inode behind the name
//! changes with every atomic save, `ln -sfn` and ConfigMap update.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::source::{read_bytes, sha256_hex, ReadFailure, DEFAULT_MAX_BYTES};

/// Symlinks followed before giving up (Linux's own limit is 40).
const MAX_HOPS: usize = 40;

/// A path resolved link by link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Every symlink met on the way, in order; each has a symlink-free parent directory.
    pub links: Vec<PathBuf>,
    /// Where the chain ends: the real path of the file (which may not exist).
    pub target: PathBuf,
}

enum Part {
    Root(PathBuf),
    Up,
    Name(OsString),
}

fn parts(path: &Path) -> Vec<Part> {
    let mut out = Vec::new();
    let mut root = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => root.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !root.as_os_str().is_empty() {
                    out.push(Part::Root(std::mem::take(&mut root)));
                }
                out.push(Part::Up);
            }
            Component::Normal(name) => {
                if !root.as_os_str().is_empty() {
                    out.push(Part::Root(std::mem::take(&mut root)));
                }
                out.push(Part::Name(name.to_owned()));
            }
        }
    }
    if !root.as_os_str().is_empty() {
        out.push(Part::Root(root));
    }
    out
}

/// Resolves `path` one component at a time, recording every symlink met (what `realpath` does,
/// keeping the chain). A missing component ends the resolution: the rest is joined as written.
pub(crate) fn resolve(path: &Path) -> Resolved {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut queue: VecDeque<Part> = parts(&absolute).into();
    let mut current = PathBuf::new();
    let mut links = Vec::new();
    let mut lexical = false;
    while let Some(part) = queue.pop_front() {
        let name = match part {
            Part::Root(root) => {
                current = root;
                continue;
            }
            Part::Up => {
                current.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let next = current.join(&name);
        if lexical {
            current = next;
            continue;
        }
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() && links.len() < MAX_HOPS => {
                match std::fs::read_link(&next) {
                    Ok(target) => {
                        links.push(next);
                        // A relative target is relative to the link's directory: `current`.
                        for part in parts(&target).into_iter().rev() {
                            queue.push_front(part);
                        }
                    }
                    Err(_) => {
                        current = next;
                        lexical = true;
                    }
                }
            }
            // A loop: stop here; reading the file will report it.
            Ok(meta) if meta.file_type().is_symlink() => {
                current = next;
                lexical = true;
            }
            Ok(_) => current = next,
            Err(_) => {
                current = next;
                lexical = true;
            }
        }
    }
    Resolved {
        links,
        target: current,
    }
}

/// What to watch for a set of files: directories (never the files: their inodes are replaced),
/// and the paths whose events matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WatchPlan {
    /// Existing directories to watch, non-recursively.
    pub dirs: BTreeSet<PathBuf>,
    /// Paths whose events matter: every link of every chain, every target, the directories
    /// holding them, and the missing directories between them and the nearest existing one.
    pub interesting: BTreeSet<PathBuf>,
}

impl WatchPlan {
    /// Resolves every file now.
    pub fn new(files: &[PathBuf]) -> Self {
        let mut plan = WatchPlan::default();
        for file in files {
            let resolved = resolve(file);
            for path in resolved.links.iter().chain([&resolved.target]) {
                plan.add(path);
            }
        }
        plan
    }

    fn add(&mut self, path: &Path) {
        self.interesting.insert(path.to_path_buf());
        let mut dir = path.parent();
        while let Some(d) = dir {
            self.interesting.insert(d.to_path_buf());
            if d.is_dir() {
                self.dirs.insert(d.to_path_buf());
                return;
            }
            // Missing: watch the nearest existing ancestor to see it come back.
            dir = d.parent();
        }
    }
}

/// The content of one watched file, as far as deciding "did it change" needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// SHA-256 of the bytes.
    Content(String),
    /// Not there.
    Missing,
    /// Too large to hash on every look: its metadata stands in for its bytes.
    Large {
        len: u64,
        modified: Option<SystemTime>,
        inode: u64,
    },
    /// There but not readable as a file (permissions, a directory, a FIFO, a symlink loop).
    Unreadable(String),
}

/// Reads `path` (following symlinks) and says what it holds.
pub(crate) fn file_state(path: &Path) -> FileState {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return FileState::Missing,
        Err(err) => return FileState::Unreadable(err.to_string()),
    };
    if meta.is_file() && meta.len() > DEFAULT_MAX_BYTES {
        return FileState::Large {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: inode(&meta),
        };
    }
    match read_bytes(path, DEFAULT_MAX_BYTES) {
        Ok(bytes) => FileState::Content(sha256_hex(&bytes)),
        Err(ReadFailure::Missing) => FileState::Missing,
        Err(ReadFailure::Other(_, problem)) => FileState::Unreadable(problem),
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

/// The state of every file.
pub(crate) fn fingerprint(files: &[PathBuf]) -> BTreeMap<PathBuf, FileState> {
    files
        .iter()
        .map(|file| (file.clone(), file_state(file)))
        .collect()
}

/// When and how a file was last changed, as far as its metadata says: a stream of writes keeps
/// changing it even while the content happens to look the same at two polls (two empty
/// moments of two truncating writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ctime: (i64, i64),
    inode: u64,
}

/// The stamp of what `path` points to now, if it exists.
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        ctime: {
            use std::os::unix::fs::MetadataExt;
            (meta.ctime(), meta.ctime_nsec())
        },
        inode: inode(&meta),
    })
}

/// The stamps of `files`, in order.
pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Option<Stamp>> {
    files.iter().map(|f| stamp(f)).collect()
}

/// Identity of a directory: a watch is on an inode, so a directory removed and created again under
/// the same name needs a new watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirId {
    dev: u64,
    ino: u64,
}

/// The identity of the directory at `path` now, if there is one.
pub(crate) fn dir_id(path: &Path) -> Option<DirId> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(DirId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        Some(DirId { dev: 0, ino: 0 })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().canonicalize().unwrap()
    }

    #[test]
    fn a_plain_file_resolves_to_itself_and_its_directory_is_watched() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        let file = root.join("app.toml");
        std::fs::write(&file, "x = 1").unwrap();
        let resolved = resolve(&file);
        assert!(resolved.links.is_empty());
        assert_eq!(resolved.target, file);
        let plan = WatchPlan::new(std::slice::from_ref(&file));
        assert_eq!(plan.dirs, BTreeSet::from([root.clone()]));
        assert!(plan.interesting.contains(&file));
        assert!(plan.interesting.contains(&root));
    }

    #[test]
    fn kubernetes_chain_records_every_link_and_every_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        let data = root.join("..2026_11_26_1");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("config.toml"), "x = 1").unwrap();
        symlink("..2026_11_26_1", root.join("..data")).unwrap();
        symlink("..data/config.toml", root.join("config.toml")).unwrap();

        let resolved = resolve(&root.join("config.toml"));
        assert_eq!(
            resolved.links,
            vec![root.join("config.toml"), root.join("..data")]
        );
        assert_eq!(resolved.target, data.join("config.toml"));
        let plan = WatchPlan::new(&[root.join("config.toml")]);
        assert_eq!(plan.dirs, BTreeSet::from([root.clone(), data.clone()]));
        assert!(plan.interesting.contains(&root.join("..data")));
    }

    #[test]
    fn relative_links_dot_dot_and_absolute_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("c")).unwrap();
        std::fs::write(root.join("c/real.toml"), "").unwrap();
        symlink("../../c/real.toml", root.join("a/b/link.toml")).unwrap();
        symlink(root.join("a/b/link.toml"), root.join("abs.toml")).unwrap();
        let resolved = resolve(&root.join("abs.toml"));
        assert_eq!(
            resolved.links,
            vec![root.join("abs.toml"), root.join("a/b/link.toml")]
        );
        assert_eq!(resolved.target, root.join("c/real.toml"));
    }

    #[test]
    fn a_missing_directory_watches_the_nearest_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        let file = root.join("gone/deeper/app.toml");
        let plan = WatchPlan::new(std::slice::from_ref(&file));
        assert_eq!(plan.dirs, BTreeSet::from([root.clone()]));
        for p in [&file, &root.join("gone/deeper"), &root.join("gone")] {
            assert!(plan.interesting.contains(p), "{}", p.display());
        }
    }

    #[test]
    fn a_symlink_loop_terminates() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let resolved = resolve(&root.join("a"));
        assert_eq!(resolved.links.len(), MAX_HOPS);
        assert!(matches!(
            file_state(&root.join("a")),
            FileState::Unreadable(_)
        ));
    }

    #[test]
    fn file_states() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        let file = root.join("f.toml");
        assert_eq!(file_state(&file), FileState::Missing);
        std::fs::write(&file, "x").unwrap();
        assert_eq!(file_state(&file), FileState::Content(sha256_hex(b"x")));
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        assert!(matches!(file_state(&file), FileState::Unreadable(p) if p.contains("directory")));
        assert!(dir_id(&root.join("nope")).is_none());
    }

    #[test]
    fn a_directory_replaced_under_its_name_has_a_new_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let root = real(&tmp);
        let dir = root.join("conf");
        std::fs::create_dir(&dir).unwrap();
        let first = dir_id(&dir).expect("a directory has an identity");
        assert_eq!(
            dir_id(&dir),
            Some(first),
            "the same directory, the same identity"
        );
        // Renamed away (its inode lives on, so the new one cannot reuse the number) and replaced.
        std::fs::rename(&dir, root.join("conf.old")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let second = dir_id(&dir).expect("the new directory has an identity");
        assert_ne!(first, second, "a watch on the old inode must be re-armed");
        assert_eq!(dir_id(&root.join("conf.old")), Some(first));
        std::fs::write(root.join("file"), "").unwrap();
        assert_eq!(
            dir_id(&root.join("file")),
            None,
            "a file is not a directory"
        );
    }
}
