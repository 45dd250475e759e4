//! Where configuration bytes come from, and how each version is identified.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::load::Format;

/// Files larger than this are refused unless [`FileSource::max_bytes`] says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Identifies one version of the configuration: where it came from and a hash of its bytes.
///
/// ```
/// let id = hotcfg::SourceIdentity::new("app.toml", b"x = 1");
/// assert_eq!(id.sha256.len(), 64);
/// assert_eq!(id.to_string(), format!("app.toml (sha256 {})", &id.sha256[..12]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SourceIdentity {
    /// The file path (or paths joined by ` + `), or a key in a remote store.
    pub path: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The store's revision, for sources that have one (etcd's mod revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

impl SourceIdentity {
    /// Identity of `bytes` read from `path`.
    pub fn new(path: impl Into<String>, bytes: &[u8]) -> Self {
        SourceIdentity {
            path: path.into(),
            sha256: sha256_hex(bytes),
            revision: None,
        }
    }
}

impl fmt::Display for SourceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (sha256 {}",
            self.path,
            &self.sha256[..12.min(self.sha256.len())]
        )?;
        if let Some(rev) = self.revision {
            write!(f, ", revision {rev}")?;
        }
        f.write_str(")")
    }
}

/// Hex-encoded SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One document of a configuration: a base file, an overlay, or a value from a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Shown in errors: the file path or the key.
    pub name: String,
    /// How to parse it.
    pub format: Format,
    /// The text.
    pub text: String,
}

/// What a [`Source`] read: its layers in merge order (later ones override), and an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceContent {
    /// Documents, merged in order.
    pub layers: Vec<Layer>,
    /// Identity of exactly these bytes.
    pub identity: SourceIdentity,
}

impl SourceContent {
    /// One document, its identity computed from its bytes: what an in-memory source, a test or a
    /// value fetched elsewhere reads as.
    ///
    /// ```
    /// use hotcfg::{Format, SourceContent};
    ///
    /// let content = SourceContent::single("app.toml", Format::Toml, "workers = 2");
    /// assert_eq!(content.identity.path, "app.toml");
    /// assert_eq!(content.layers[0].text, "workers = 2");
    /// ```
    pub fn single(name: impl Into<String>, format: Format, text: impl Into<String>) -> Self {
        let (name, text) = (name.into(), text.into());
        SourceContent {
            identity: SourceIdentity::new(name.clone(), text.as_bytes()),
            layers: vec![Layer { name, format, text }],
        }
    }
}

/// A failure to read configuration bytes. Names the source and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SourceError {
    /// The file or key.
    pub name: String,
    /// What went wrong.
    pub problem: String,
}

impl SourceError {
    /// An error about `name`.
    pub fn new(name: impl Into<String>, problem: impl Into<String>) -> Self {
        SourceError {
            name: name.into(),
            problem: problem.into(),
        }
    }
}

/// Something configuration can be read from: files here, a key in etcd elsewhere.
///
/// A source only reads; deciding *when* to read is the job of triggers (the file watcher,
/// SIGHUP, a manual reload, a store's watch).
pub trait Source: fmt::Debug + Send + Sync + 'static {
    /// Reads the current content.
    fn read(&self) -> Result<SourceContent, SourceError>;

    /// A short name for messages: the path or key.
    fn name(&self) -> String;

    /// The directory relative paths in the configuration are resolved against.
    fn base_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Files to watch for changes (empty for sources that are not files).
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Configuration read from files: a base file, then overlays merged over it in order.
///
/// The format comes from each file's extension (`.toml`, `.yaml`/`.yml`, `.json`). Files must be
/// regular files (a directory, FIFO or device in their place is an error, never a hang), valid
/// UTF-8 and at most [`max_bytes`](FileSource::max_bytes) long.
///
/// ```
/// use hotcfg::{FileSource, Source};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.toml");
/// std::fs::write(&path, "workers = 4\n")?;
/// let content = FileSource::new(&path).read()?;
/// assert_eq!(content.layers[0].text, "workers = 4\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileSource {
    files: Vec<(PathBuf, bool)>,
    max_bytes: u64,
    strict_permissions: bool,
}

impl FileSource {
    /// A source reading one file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource {
            files: vec![(path.into(), true)],
            max_bytes: DEFAULT_MAX_BYTES,
            strict_permissions: false,
        }
    }

    /// Adds an overlay file merged over the previous ones. A missing overlay is an error.
    pub fn overlay(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), true));
        self
    }

    /// Adds an overlay that is skipped while it does not exist (a local override file).
    pub fn optional_overlay(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), false));
        self
    }

    /// Refuses files larger than `max` bytes (default [`DEFAULT_MAX_BYTES`]).
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Refuses (with `strict` true) files that users other than the process's own and root could
    /// have written, as sshd's `StrictModes` does: each file (after symlinks) and the directory
    /// holding it must be owned by root or the effective user and not writable by group or
    /// others (a directory with the sticky bit, like `/tmp`, may be). Off by default. Unix only:
    /// elsewhere it checks nothing.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt;
    /// use hotcfg::{FileSource, Source};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.toml");
    /// std::fs::write(&path, "workers = 4\n")?;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    /// let err = FileSource::new(&path).strict_permissions(true).read().unwrap_err();
    /// assert!(err.problem.starts_with("refused: writable by group and others (mode 0666)"), "{err}");
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    /// assert!(FileSource::new(&path).strict_permissions(true).read().is_ok());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn strict_permissions(mut self, strict: bool) -> Self {
        self.strict_permissions = strict;
        self
    }

    /// The base file.
    pub fn path(&self) -> &Path {
        &self.files[0].0
    }
}

impl Source for FileSource {
    fn read(&self) -> Result<SourceContent, SourceError> {
        let mut layers = Vec::with_capacity(self.files.len());
        let mut hasher = Sha256::new();
        let mut names = Vec::new();
        for (path, required) in &self.files {
            let name = path.display().to_string();
            let text = match read_text(path, self.max_bytes, self.strict_permissions) {
                Ok(text) => text,
                Err(ReadFailure::Missing) if !required => continue,
                Err(ReadFailure::Missing) => {
                    return Err(SourceError::new(name, "file not found"));
                }
                Err(ReadFailure::Other(problem)) => return Err(SourceError::new(name, problem)),
            };
            let format = Format::from_path(path).ok_or_else(|| {
                SourceError::new(
                    &name,
                    "unknown format: the file name must end in .toml, .yaml, .yml or .json",
                )
            })?;
            // Length-prefix each layer so moving bytes between files changes the hash.
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
            names.push(name.clone());
            layers.push(Layer { name, format, text });
        }
        let sha256 = if layers.len() == 1 {
            sha256_hex(layers[0].text.as_bytes())
        } else {
            hex(&hasher.finalize())
        };
        Ok(SourceContent {
            layers,
            identity: SourceIdentity {
                path: names.join(" + "),
                sha256,
                revision: None,
            },
        })
    }

    fn name(&self) -> String {
        self.path().display().to_string()
    }

    fn base_dir(&self) -> Option<PathBuf> {
        self.path().parent().map(Path::to_path_buf)
    }

    fn files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }
}

pub(crate) enum ReadFailure {
    Missing,
    Other(String),
}

/// Reads a regular file of at most `max` bytes as UTF-8 (with `strict`, see
/// [`FileSource::strict_permissions`]).
pub(crate) fn read_text(path: &Path, max: u64, strict: bool) -> Result<String, ReadFailure> {
    let bytes = read_file(path, max, strict)?;
    String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let bytes = err.as_bytes();
        let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        ReadFailure::Other(format!(
            "not valid UTF-8 (line {line}, byte offset {offset})"
        ))
    })
}

/// Reads a regular file of at most `max` bytes.
pub(crate) fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, ReadFailure> {
    read_file(path, max, false)
}

fn read_file(path: &Path, max: u64, strict: bool) -> Result<Vec<u8>, ReadFailure> {
    // Check the kind first: opening a FIFO would block, reading a device would never end.
    let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::Missing,
        _ => ReadFailure::Other(describe_io(&err)),
    })?;
    check_kind_and_size(&meta, max)?;
    let (file, meta) = open_checked(path, max)?;
    if strict {
        check_permissions(path, &meta)?;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between stat and read: never read more than the limit.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| ReadFailure::Other(describe_io(&err)))?;
    if bytes.len() as u64 > max {
        return Err(ReadFailure::Other(format!(
            "is above the limit of {max} bytes"
        )));
    }
    Ok(bytes)
}

/// Opens `path` and checks what was opened. The path may have been pointed elsewhere since it was
/// last checked (a FIFO put in place would make a plain open wait for a writer forever): open
/// without blocking, then check the open file itself.
fn open_checked(path: &Path, max: u64) -> Result<(std::fs::File, std::fs::Metadata), ReadFailure> {
    let file = open_nonblocking(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::Missing,
        _ => ReadFailure::Other(describe_io(&err)),
    })?;
    let meta = file
        .metadata()
        .map_err(|err| ReadFailure::Other(describe_io(&err)))?;
    check_kind_and_size(&meta, max)?;
    Ok((file, meta))
}

fn check_kind_and_size(meta: &std::fs::Metadata, max: u64) -> Result<(), ReadFailure> {
    if meta.is_dir() {
        return Err(ReadFailure::Other(
            "is a directory, expected a file".to_string(),
        ));
    }
    if !meta.is_file() {
        return Err(ReadFailure::Other(
            "is not a regular file (a FIFO, socket or device?)".to_string(),
        ));
    }
    if meta.len() > max {
        return Err(ReadFailure::Other(format!(
            "is {} bytes, above the limit of {max} bytes",
            meta.len()
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// [`FileSource::strict_permissions`]: the opened file and the directory holding it.
#[cfg(unix)]
fn check_permissions(path: &Path, file: &std::fs::Metadata) -> Result<(), ReadFailure> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let check = |what: &str, meta: &std::fs::Metadata, sticky_ok: bool| {
        let mode = meta.mode() & 0o7777;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(ReadFailure::Other(format!(
                "refused: {what}is owned by uid {}, neither root nor this process's user (uid {me}); \
                 strict permissions are on",
                meta.uid()
            )));
        }
        let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            (false, true) => "others",
            (false, false) => return Ok(()),
        };
        if sticky_ok && mode & 0o1000 != 0 {
            return Ok(()); // others may add files but not replace ours
        }
        Err(ReadFailure::Other(format!(
            "refused: {what}writable by {writers} (mode {mode:04o}); strict permissions are on: \
             `chmod go-w` it"
        )))
    };
    check("", file, false)?;
    // Whoever may write the directory may replace the file. Resolve symlinks first: the
    // directory that matters is the one holding the file itself.
    let real = std::fs::canonicalize(path).map_err(|err| ReadFailure::Other(describe_io(&err)))?;
    if let Some(dir) = real.parent() {
        let meta = std::fs::metadata(dir).map_err(|err| ReadFailure::Other(describe_io(&err)))?;
        check(&format!("its directory {} is ", dir.display()), &meta, true)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &std::fs::Metadata) -> Result<(), ReadFailure> {
    Ok(())
}

fn describe_io(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            if err.raw_os_error() == Some(40) {
                // ELOOP on Linux.
                "too many levels of symbolic links (a symlink loop?)".to_string()
            } else {
                err.to_string()
            }
        }
    }
}

/// Reads a referenced file's bytes for hashing; `None` when it cannot be read.
pub(crate) fn hash_file(path: &Path, max: u64) -> Option<String> {
    read_bytes(path, max).ok().map(|b| sha256_hex(&b))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn opening_a_fifo_that_replaced_the_file_never_blocks() {
        // What a reload meets when a FIFO is renamed over the file between its check of the path
        // and the open. A plain open would wait for a writer forever: run it on a thread.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let opener = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_checked(&opener, DEFAULT_MAX_BYTES).map(|_| ()));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Err(ReadFailure::Other(problem))) => {
                assert_eq!(problem, "is not a regular file (a FIFO, socket or device?)")
            }
            Ok(_) => panic!("a FIFO was accepted"),
            Err(_) => {
                // Unblock the opener before failing.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
                panic!("opening a FIFO blocked");
            }
        }
    }
}
