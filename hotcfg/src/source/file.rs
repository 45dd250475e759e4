//! [`FileSource`]: configuration read from a base file and its overlays.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::read::{read_text, ReadFailure};
use super::write::write_atomic;
use super::DEFAULT_MAX_BYTES;
use super::{
    hex, sha256_hex, Layer, Source, SourceContent, SourceError, SourceErrorKind, SourceIdentity,
};
use crate::load::Format;

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
                    return Err(SourceError::new(
                        name,
                        SourceErrorKind::NotFound,
                        "file not found",
                    ));
                }
                Err(ReadFailure::Other(kind, problem)) => {
                    return Err(SourceError::new(name, kind, problem))
                }
            };
            let format = Format::from_path(path).ok_or_else(|| {
                SourceError::new(
                    &name,
                    SourceErrorKind::UnknownFormat,
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
                change: None,
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

    /// Writes each layer back to its file, each atomically (a temporary file synced, then
    /// renamed over the file, which keeps its mode; a symlink keeps pointing where it did).
    /// Refused, writing nothing, when the files are not the ones `content` came from: a layer
    /// names a file this source does not read, a required file has no layer, or an optional
    /// overlay exists now that did not then.
    fn restore(
        &self,
        content: &SourceContent,
        _live: Option<&SourceIdentity>,
    ) -> Result<(), SourceError> {
        let writes = self.restore_plan(content)?;
        for (path, text) in writes {
            write_atomic(path, text.as_bytes(), None).map_err(|err| {
                let name = path.display().to_string();
                SourceError::new(
                    name,
                    SourceErrorKind::Unreadable,
                    format!("cannot write: {err}"),
                )
            })?;
        }
        Ok(())
    }
}

impl FileSource {
    /// Which file gets which layer's text, checking that the files are the ones `content` came
    /// from.
    fn restore_plan<'a>(
        &'a self,
        content: &'a SourceContent,
    ) -> Result<Vec<(&'a Path, &'a str)>, SourceError> {
        let refuse = |name: &str, problem: String| {
            Err(SourceError::new(
                name,
                SourceErrorKind::Unsupported,
                problem,
            ))
        };
        let mut writes = Vec::new();
        for (path, required) in &self.files {
            let name = path.display().to_string();
            match content
                .layers
                .iter()
                .find(|layer| same_file(&layer.name, path))
            {
                Some(layer) => writes.push((path.as_path(), layer.text.as_str())),
                None if *required => {
                    return refuse(&name, "the version to restore has no content for it".into())
                }
                None if path.exists() => {
                    return refuse(
                        &name,
                        "this optional overlay exists now but did not in the version to restore: \
                         move it away first"
                            .into(),
                    )
                }
                None => {}
            }
        }
        if let Some(stray) = content
            .layers
            .iter()
            .find(|layer| !writes.iter().any(|(path, _)| same_file(&layer.name, path)))
        {
            return refuse(
                &stray.name,
                "the version to restore has this file, which this source no longer reads".into(),
            );
        }
        Ok(writes)
    }
}

/// Whether the layer named `name` (the path as the reading process spelt it) is the file at
/// `path` (as this source spells it: relative, or through another link).
fn same_file(name: &str, path: &Path) -> bool {
    if name == path.display().to_string() {
        return true;
    }
    match (std::fs::canonicalize(name), std::fs::canonicalize(path)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
