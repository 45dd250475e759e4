//! [`SourceError`]: a failure to read configuration bytes, with its [`SourceErrorKind`].

/// A failure to read configuration bytes: which source, what kind of failure, and what is wrong.
///
/// ```
/// use hotcfg::{SourceError, SourceErrorKind};
///
/// let err = SourceError::new("etcd:app/config", SourceErrorKind::NotFound, "the key does not exist")
///     .at_revision(12);
/// assert_eq!(err.to_string(), "etcd:app/config: the key does not exist");
/// assert_eq!((err.kind, err.revision), (SourceErrorKind::NotFound, Some(12)));
/// assert!(!err.is_temporary());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
#[non_exhaustive]
pub struct SourceError {
    /// The file or key.
    pub name: String,
    /// What kind of failure: what a caller can act on (retry, report) without reading `problem`.
    pub kind: SourceErrorKind,
    /// What went wrong, for people.
    pub problem: String,
    /// For a versioned store that answered (etcd): the store revision the failed read saw.
    pub revision: Option<i64>,
}

/// What kind of failure a [`SourceError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// The file or key does not exist (for a prefix: no key under it).
    NotFound,
    /// Cannot be read for now, and a later read may succeed: the store cannot be reached, or the
    /// process is out of file descriptors (`EMFILE`, `ENFILE`, `EAGAIN`).
    Unavailable,
    /// Larger than the source's size limit.
    TooLarge,
    /// The bytes are not UTF-8 text.
    NotText,
    /// Reading is not allowed: the operating system's permissions, or strict permissions
    /// ([`FileSource::strict_permissions`](crate::FileSource::strict_permissions)) refuse it.
    Denied,
    /// Not a regular file: a directory, a FIFO, a socket or a device.
    NotAFile,
    /// The format cannot be told from the name (no `.toml`, `.yaml`, `.yml` or `.json`).
    UnknownFormat,
    /// Any other failure: an I/O error, a symlink loop, a store that refused the request.
    Unreadable,
    /// The source cannot do what was asked: write an earlier version back
    /// ([`Source::restore`](crate::Source::restore)) when it only reads, or when its files or
    /// keys are no longer the ones that version came from.
    Unsupported,
}

impl SourceError {
    /// An error of `kind` about `name`.
    pub fn new(name: impl Into<String>, kind: SourceErrorKind, problem: impl Into<String>) -> Self {
        SourceError {
            name: name.into(),
            kind,
            problem: problem.into(),
            revision: None,
        }
    }

    /// The same error, seen at `revision` of the store.
    pub fn at_revision(mut self, revision: i64) -> Self {
        self.revision = Some(revision);
        self
    }

    /// Whether a later read may succeed without anything being changed
    /// ([`SourceErrorKind::Unavailable`]).
    pub fn is_temporary(&self) -> bool {
        self.kind == SourceErrorKind::Unavailable
    }
}
