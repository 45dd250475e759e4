//! The last-known-good version of a source, found in its audit log and snapshots: what a process
//! starts from when the source cannot be reached at start
//! ([`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)).
//!
//! "Good" means: the newest version of this source the log says was applied (by any trigger:
//! startup, a reload, a revert, or probation putting a trusted version back), whose content was
//! never reverted by probation (unhealthy, unconfirmed: what a running engine quarantines), and
//! whose snapshot is kept and verifies against its name. A version still on probation when the
//! process stopped counts as good: the log holds no verdict on it, and it passed validation and
//! was applied. The newest such version is used or nothing is: a damaged or missing snapshot is
//! an error naming the file, not a reason to start from an older version silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::record::AuditRecord;
use super::snapshots::{read_records, SnapshotError, Snapshots};
use crate::load::ConfigError;
use crate::source::{Source, SourceContent};

/// The version a last-known-good start runs: its record and its content, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptVersion {
    /// The newest record that applied it.
    pub record: AuditRecord,
    /// The content, from its snapshot (checked against its hash).
    pub content: SourceContent,
    /// The snapshot file.
    pub snapshot: PathBuf,
}

/// Why no last-known-good version can be used. Each message names the audit log, and the
/// snapshot file when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LastKnownGoodError {
    /// The log records no applied version of this source that probation did not revert.
    #[error("{log} records no applied version of {source_name}{}", others_note(.others))]
    NoneRecorded {
        /// The audit log.
        log: PathBuf,
        /// The source's name.
        source_name: String,
        /// The sources the log does record applied versions of (another key, another file).
        others: Vec<String>,
    },
    /// The newest good version has a layer this source does not read now (another node's
    /// override, a file no longer read).
    #[error(
        "the newest version of {source_name} in {log} (generation {generation}, applied at \
         {time}) has the layer {layer}, which this source does not read"
    )]
    OtherLayers {
        /// The audit log.
        log: PathBuf,
        /// The source's name.
        source_name: String,
        /// The generation its record applied.
        generation: u64,
        /// When.
        time: String,
        /// The layer not read now.
        layer: String,
    },
    /// The newest good version's snapshot cannot be used: not kept, missing, corrupt or
    /// unreadable (the error names the file); or the log cannot be read.
    #[error("the newest version of {source_name} in {log} (applied at {time}): {error}")]
    Snapshot {
        /// The audit log.
        log: PathBuf,
        /// The source's name.
        source_name: String,
        /// When its record was written.
        time: String,
        /// What is wrong.
        error: Box<SnapshotError>,
    },
    /// Today's loading or validation refuses the newest good version.
    #[error(
        "the newest version of {source_name} in {log} (generation {generation}, applied at \
         {time}) is refused now: {error}"
    )]
    Refused {
        /// The audit log.
        log: PathBuf,
        /// The source's name.
        source_name: String,
        /// The generation its record applied.
        generation: u64,
        /// When.
        time: String,
        /// Why.
        error: Box<ConfigError>,
    },
    /// The audit log cannot be read.
    #[error(transparent)]
    Log(SnapshotError),
}

fn others_note(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!(" (it records versions of {} only)", others.join(", "))
    }
}

/// Finds the last-known-good version of `source` in the audit log at `log` and its
/// `snapshots`: see the module docs.
pub fn last_known_good(
    log: &Path,
    snapshots: &Snapshots,
    source: &dyn Source,
) -> Result<KeptVersion, LastKnownGoodError> {
    let records = read_records(log).map_err(LastKnownGoodError::Log)?;
    let name = source.name();
    let reverted = reverted_by_probation(&records);
    let applied = |r: &&AuditRecord| r.result == "applied" && r.source.is_some();
    let of_source = |r: &&AuditRecord| r.source.as_ref().is_some_and(|s| s.path == name);
    let Some(newest) = records
        .iter()
        .rev()
        .filter(applied)
        .filter(of_source)
        .find(|r| !reverted.contains(sha256_of(r)))
    else {
        let others: BTreeSet<String> = records
            .iter()
            .filter(applied)
            .filter(|r| !of_source(r))
            .filter_map(|r| r.source.as_ref().map(|s| s.path.clone()))
            .collect();
        return Err(LastKnownGoodError::NoneRecorded {
            log: log.to_path_buf(),
            source_name: name,
            others: others.into_iter().collect(),
        });
    };
    let snapshot_error = |error: SnapshotError| LastKnownGoodError::Snapshot {
        log: log.to_path_buf(),
        source_name: name.clone(),
        time: newest.time.clone(),
        error: Box::new(error),
    };
    // A probation revert's record names no snapshot: the content's first commit kept it.
    let id = records
        .iter()
        .rev()
        .filter(applied)
        .filter(of_source)
        .filter(|r| sha256_of(r) == sha256_of(newest))
        .find_map(|r| r.snapshot.clone())
        .ok_or_else(|| {
            snapshot_error(SnapshotError::NotKept {
                generation: newest.generation,
                log: log.to_path_buf(),
            })
        })?;
    let mut content = snapshots
        .read(newest.generation, &id)
        .map_err(snapshot_error)?;
    if let Some(layer) = content.layers.iter().find(|l| !source.reads_layer(&l.name)) {
        return Err(LastKnownGoodError::OtherLayers {
            log: log.to_path_buf(),
            source_name: name,
            generation: newest.generation,
            time: newest.time.clone(),
            layer: layer.name.clone(),
        });
    }
    // Who made the version and why travel with it; the store revision it was read at does not:
    // it was not read from the store now.
    content.identity.change = newest.source.as_ref().and_then(|s| s.change.clone());
    Ok(KeptVersion {
        record: newest.clone(),
        content,
        snapshot: snapshots.path_of(&id),
    })
}

fn sha256_of(record: &AuditRecord) -> &str {
    record.source.as_ref().map_or("", |s| s.sha256.as_str())
}

/// The contents probation reverted: for each `probation` record, the content of the generation
/// it reverted (the nearest record before it that applied that generation: generations are
/// numbered again after a restart, never within a run).
fn reverted_by_probation(records: &[AuditRecord]) -> BTreeSet<String> {
    let mut reverted = BTreeSet::new();
    for (i, record) in records.iter().enumerate() {
        let Some(generation) = record
            .trigger
            .reverted
            .filter(|_| record.trigger.kind == "probation")
        else {
            continue;
        };
        let bad = records[..i]
            .iter()
            .rev()
            .find(|r| r.generation == generation && r.result == "applied");
        if let Some(bad) = bad {
            reverted.insert(sha256_of(bad).to_string());
        }
    }
    reverted
}

#[cfg(test)]
mod tests;
