//! Snapshots of applied source content, kept beside the audit log so that any version the log
//! says was applied can be restored ([`Reloader::revert_to`](crate::Reloader::revert_to)).
//!
//! Each snapshot is one file named by the SHA-256 of its own bytes: a JSON object holding the
//! source's identity and every layer's name, format and text, enough to run the pipeline again.
//! The same content is stored once. The directory is `audit.snapshots` beside `audit.jsonl`
//! ([`snapshot_dir`]), mode 0700, each file 0600: a snapshot holds what the configuration held,
//! secrets included, so it is protected like the files themselves. A snapshot is written and
//! synced before the audit record that names it. Only the [`keep`](Snapshots::keep) most recently
//! applied contents are kept (default [`DEFAULT_SNAPSHOTS_KEPT`]); the live one is never removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::record::AuditRecord;
use crate::load::Format;
use crate::source::{sha256_hex, sync_dir, write_atomic, Layer, SourceContent, SourceIdentity};

/// How many snapshots are kept by default: the 32 most recently applied contents.
pub const DEFAULT_SNAPSHOTS_KEPT: usize = 32;

/// The directory the snapshots of the audit log at `audit_log` are kept in: its name with the
/// extension replaced by `snapshots` (`/var/lib/app/audit.jsonl` → `/var/lib/app/audit.snapshots`).
///
/// ```
/// use std::path::Path;
/// let dir = hotcfg::audit::snapshot_dir(Path::new("/var/lib/app/audit.jsonl"));
/// assert_eq!(dir, Path::new("/var/lib/app/audit.snapshots"));
/// ```
pub fn snapshot_dir(audit_log: &Path) -> PathBuf {
    audit_log.with_extension("snapshots")
}

/// The snapshot store of one audit log: see the module docs.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
    keep: usize,
}

/// What a snapshot file holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    source: StoredSource,
    layers: Vec<StoredLayer>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSource {
    path: String,
    sha256: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredLayer {
    name: String,
    format: String,
    text: String,
}

/// Why the content of a generation cannot be restored. Each message names the generation, and the
/// file when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The engine keeps no audit log, so no snapshots either.
    #[error("no audit log is kept, so no snapshots either: set `ReloaderBuilder::audit_log`")]
    NoAuditLog,
    /// Snapshots are off (`ReloaderBuilder::snapshots_kept(0)`).
    #[error("no snapshots are kept (`ReloaderBuilder::snapshots_kept(0)`)")]
    Disabled,
    /// The audit log cannot be read.
    #[error("cannot read the audit log {path}: {problem}")]
    Log {
        /// The log.
        path: PathBuf,
        /// The problem.
        problem: String,
    },
    /// No record of the log committed that generation.
    #[error("no record in {log} applied generation {generation}")]
    NotRecorded {
        /// The generation asked for.
        generation: u64,
        /// The audit log.
        log: PathBuf,
    },
    /// The generation's record names no snapshot (written before snapshots were kept, or with
    /// snapshots off).
    #[error(
        "generation {generation} was applied but no snapshot of it was kept (its record in {log} \
         names none)"
    )]
    NotKept {
        /// The generation asked for.
        generation: u64,
        /// The audit log.
        log: PathBuf,
    },
    /// The snapshot file is gone (pruned, or removed by hand).
    #[error("the snapshot of generation {generation} is missing: {path} (pruned or removed)")]
    Missing {
        /// The generation asked for.
        generation: u64,
        /// The file the record names.
        path: PathBuf,
    },
    /// The snapshot file is damaged: its bytes do not hash to its name, or it is not a snapshot.
    #[error("the snapshot of generation {generation} is corrupt: {path}: {problem}")]
    Corrupt {
        /// The generation asked for.
        generation: u64,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The snapshot file cannot be read.
    #[error("cannot read the snapshot of generation {generation}: {path}: {error}")]
    Unreadable {
        /// The generation asked for.
        generation: u64,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The content a generation applied, found through its audit record.
#[derive(Clone, Debug, PartialEq)]
pub struct Restorable {
    /// The generation.
    pub generation: u64,
    /// The record that committed it (the newest one, if generations were numbered again after a
    /// restart).
    pub record: AuditRecord,
    /// The content, checked against its hash.
    pub content: SourceContent,
}

impl Snapshots {
    /// The snapshots of the audit log at `audit_log`, kept in [`snapshot_dir`].
    pub fn beside(audit_log: &Path) -> Self {
        Snapshots {
            dir: snapshot_dir(audit_log),
            keep: DEFAULT_SNAPSHOTS_KEPT,
        }
    }

    /// Keeps the `keep` most recently applied contents (at least 1: the live one).
    pub fn keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the snapshot named `id`.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Stores `content` (synced; the same content is stored once) and prunes the oldest beyond
    /// the limit; returns the snapshot's name, the SHA-256 of its file.
    pub(crate) fn write(&self, content: &SourceContent) -> std::io::Result<String> {
        let bytes = serde_json::to_vec(&stored(content)).map_err(std::io::Error::other)?;
        let id = sha256_hex(&bytes);
        create_private_dir(&self.dir)?;
        let path = self.path_of(&id);
        match std::fs::read(&path) {
            // Already kept: mark it as the most recently applied, for pruning.
            Ok(existing) if existing == bytes => touch(&path)?,
            _ => {
                write_atomic(&path, &bytes, Some(0o600))?;
                sync_dir(&self.dir)?;
            }
        }
        if let Err(err) = self.prune(&id) {
            tracing::warn!(dir = %self.dir.display(), %err, "cannot prune old snapshots");
        }
        Ok(id)
    }

    /// Reads the snapshot named `id`, checking its bytes against the name.
    pub fn read(&self, generation: u64, id: &str) -> Result<SourceContent, SnapshotError> {
        let path = self.path_of(id);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::Missing { generation, path })
            }
            Err(error) => {
                return Err(SnapshotError::Unreadable {
                    generation,
                    path,
                    error,
                })
            }
        };
        let corrupt = |problem: String| SnapshotError::Corrupt {
            generation,
            path: path.clone(),
            problem,
        };
        let actual = sha256_hex(&bytes);
        if actual != id {
            return Err(corrupt(format!(
                "its {} byte(s) hash to sha256 {actual}, not to its name (truncated or altered)",
                bytes.len()
            )));
        }
        let stored: Stored =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a snapshot: {e}")))?;
        content_of(stored).map_err(corrupt)
    }

    /// Finds the content generation `generation` applied: the newest record of the log at
    /// `audit_log` that committed it, and its snapshot, checked.
    pub fn find(&self, audit_log: &Path, generation: u64) -> Result<Restorable, SnapshotError> {
        let mut records = read_records(audit_log)?;
        let index =
            newest_commit(&records, generation).ok_or_else(|| SnapshotError::NotRecorded {
                generation,
                log: audit_log.to_path_buf(),
            })?;
        let record = records.swap_remove(index);
        let Some(id) = &record.snapshot else {
            return Err(SnapshotError::NotKept {
                generation,
                log: audit_log.to_path_buf(),
            });
        };
        let content = self.read(generation, id)?;
        Ok(Restorable {
            generation,
            record,
            content,
        })
    }

    /// For each generation the records of the log at `audit_log` applied, whether
    /// [`find`](Snapshots::find) would restore it: `Ok` with the snapshot's file, or why not.
    /// Snapshots are checked against their names.
    pub fn restorable(
        &self,
        audit_log: &Path,
        records: &[AuditRecord],
    ) -> BTreeMap<u64, Result<PathBuf, SnapshotError>> {
        self.marks(audit_log, records)
            .into_iter()
            .enumerate()
            .filter_map(|(i, mark)| Some((records[i].generation, mark?)))
            .collect()
    }

    /// For each record: `Some` on the record [`find`](Snapshots::find) would choose for its
    /// generation, saying whether it can be restored; `None` on the others.
    pub(crate) fn marks(
        &self,
        audit_log: &Path,
        records: &[AuditRecord],
    ) -> Vec<Option<Result<PathBuf, SnapshotError>>> {
        let generations: BTreeSet<u64> = records
            .iter()
            .filter(|r| r.result == "applied")
            .map(|r| r.generation)
            .collect();
        let mut marks: Vec<_> = records.iter().map(|_| None).collect();
        for generation in generations {
            let Some(index) = newest_commit(records, generation) else {
                continue;
            };
            marks[index] = Some(match &records[index].snapshot {
                Some(id) => self.read(generation, id).map(|_| self.path_of(id)),
                None => Err(SnapshotError::NotKept {
                    generation,
                    log: audit_log.to_path_buf(),
                }),
            });
        }
        marks
    }

    /// Removes the oldest snapshots (by the time they were last applied) beyond the limit, never
    /// `live`.
    fn prune(&self, live: &str) -> std::io::Result<()> {
        let mut kept = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) && name != live {
                kept.push((entry.metadata()?.modified()?, name));
            }
        }
        // The live one counts towards the limit.
        let excess = (kept.len() + 1).saturating_sub(self.keep);
        kept.sort();
        for (_, name) in kept.into_iter().take(excess) {
            std::fs::remove_file(self.path_of(&name))?;
            tracing::debug!(snapshot = %name, "old snapshot pruned");
        }
        Ok(())
    }
}

/// The index of the newest record that committed `generation`: preferring one that names a
/// snapshot.
fn newest_commit(records: &[AuditRecord], generation: u64) -> Option<usize> {
    let of_generation = || {
        records
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, r)| r.generation == generation && r.result == "applied")
            .map(|(i, _)| i)
    };
    let newest = of_generation().next()?;
    Some(
        of_generation()
            .find(|i| records[*i].snapshot.is_some())
            .unwrap_or(newest),
    )
}

/// Every record of the log at `path` (not verified: see
/// [`verify_audit_log`](super::verify_audit_log)).
pub fn read_records(path: &Path) -> Result<Vec<AuditRecord>, SnapshotError> {
    let log_error = |problem: String| SnapshotError::Log {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| log_error(e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| log_error(format!("line {}: not an audit record: {e}", i + 1)))
        })
        .collect()
}

fn stored(content: &SourceContent) -> Stored {
    Stored {
        source: StoredSource {
            path: content.identity.path.clone(),
            sha256: content.identity.sha256.clone(),
        },
        layers: content
            .layers
            .iter()
            .map(|layer| StoredLayer {
                name: layer.name.clone(),
                format: format_name(layer.format).to_string(),
                text: layer.text.clone(),
            })
            .collect(),
    }
}

fn content_of(stored: Stored) -> Result<SourceContent, String> {
    let layers = stored
        .layers
        .into_iter()
        .map(|layer| {
            let format = match layer.format.as_str() {
                "toml" => Format::Toml,
                "yaml" => Format::Yaml,
                "json" => Format::Json,
                other => return Err(format!("layer {}: unknown format `{other}`", layer.name)),
            };
            Ok(Layer {
                name: layer.name,
                format,
                text: layer.text,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SourceContent {
        layers,
        identity: SourceIdentity {
            path: stored.source.path,
            sha256: stored.source.sha256,
            revision: None,
            change: None,
        },
    })
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Toml => "toml",
        Format::Yaml => "yaml",
        Format::Json => "json",
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn touch(path: &Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_modified(std::time::SystemTime::now())
}

#[cfg(test)]
pub(super) mod tests;
