//! Where configuration bytes come from, and how each version is identified.

mod change;
mod error;
mod file;
mod read;
mod write;

use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::load::Format;

pub use change::ChangeNote;
#[cfg(feature = "etcd")]
pub(crate) use change::MAX_NOTE_BYTES;
pub use error::{SourceError, SourceErrorKind};
pub use file::FileSource;
pub(crate) use read::{hash_file, read_bytes, ReadFailure};
pub(crate) use write::{sync_dir, write_atomic};

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
    /// Who made this version and why, when the source keeps that (etcd: `push --reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeNote>,
}

impl SourceIdentity {
    /// Identity of `bytes` read from `path`.
    pub fn new(path: impl Into<String>, bytes: &[u8]) -> Self {
        SourceIdentity {
            path: path.into(),
            sha256: sha256_hex(bytes),
            revision: None,
            change: None,
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
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
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

    /// Whether this source, as set up now, reads a layer named `layer` (a file, a key): a version
    /// kept from an earlier run is started from
    /// ([`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)) only when
    /// it reads all of its layers. The default: every layer (the version's source name already
    /// matched); an etcd key with a node's override reads the key and that node's override only.
    fn reads_layer(&self, layer: &str) -> bool {
        let _ = layer;
        true
    }

    /// Makes `content`, an earlier version read back from its snapshot, the source's current
    /// content, so that the source stays the truth after a revert
    /// ([`Reloader::revert_to`](crate::Reloader::revert_to)): the next read returns it. `live`
    /// is the version the engine has live (a store compares its revision before writing). A
    /// file source replaces each file atomically; an etcd key is written with a
    /// compare-and-swap. The default refuses ([`SourceErrorKind::Unsupported`]).
    fn restore(
        &self,
        content: &SourceContent,
        live: Option<&SourceIdentity>,
    ) -> Result<(), SourceError> {
        let _ = (content, live);
        Err(SourceError::new(
            self.name(),
            SourceErrorKind::Unsupported,
            "this source cannot write an earlier version back (it only reads)",
        ))
    }
}
