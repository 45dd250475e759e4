//! The engine's side of the audit log: which records precede a commit, and what a failed write
//! means ([`AuditFailure`]).

use super::log::AuditLog;
use super::snapshots::{SnapshotError, Snapshots};
use crate::source::SourceContent;
use crate::ReloadEvent;

/// What a failed audit write means for the reload whose record it was (see
/// [`ReloaderBuilder::audit_failure`](crate::ReloaderBuilder::audit_failure)).
///
/// ```
/// assert_eq!(hotcfg::AuditFailure::default(), hotcfg::AuditFailure::FailClosed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditFailure {
    /// The reload is rolled back and reported as failed ("the audit log is not writable: ...");
    /// nothing is applied without its record. At startup, the engine does not start.
    #[default]
    FailClosed,
    /// The reload is applied, with a warning in its event, and
    /// `hotcfg_audit_write_failures_total` counts the lost record.
    Continue,
}

/// The engine's audit log with its failure choice: the record of an attempt that changes the
/// live state is written before the change ([`before_commit`](AuditTrail::before_commit)); the
/// record of any other attempt after it ([`after`](AuditTrail::after)). Every failed write is
/// logged and counted.
#[derive(Debug)]
pub(crate) struct AuditTrail {
    log: Option<AuditLog>,
    on_failure: AuditFailure,
    /// Where the content of each committed version is kept (beside the log), if it is.
    snapshots: Option<Snapshots>,
}

/// Why a record that had to precede a commit was not written.
pub(crate) enum Unwritten {
    /// Under [`AuditFailure::Continue`]: commit, with this warning.
    Warn(String),
    /// Under [`AuditFailure::FailClosed`]: do not commit; this is the error.
    Refuse(std::io::Error),
}

impl AuditTrail {
    pub(crate) fn new(
        log: Option<AuditLog>,
        on_failure: AuditFailure,
        snapshots: Option<Snapshots>,
    ) -> Self {
        let snapshots = snapshots.filter(|_| log.is_some());
        AuditTrail {
            log,
            on_failure,
            snapshots,
        }
    }

    /// The audit log's path and its snapshots, or why there are none.
    pub(crate) fn snapshots(&self) -> Result<(&std::path::Path, &Snapshots), SnapshotError> {
        let log = self.log.as_ref().ok_or(SnapshotError::NoAuditLog)?;
        let snapshots = self.snapshots.as_ref().ok_or(SnapshotError::Disabled)?;
        Ok((log.path(), snapshots))
    }

    /// Writes the record of an attempt about to change the live state. With `content` (the
    /// version a commit makes live), its snapshot is written and synced first and the record
    /// names it; a snapshot that cannot be written fails like the record.
    pub(crate) fn before_commit(
        &mut self,
        event: &ReloadEvent,
        content: Option<&SourceContent>,
    ) -> Result<(), Unwritten> {
        let mut warnings = Vec::new();
        let snapshot = match (content, &self.snapshots) {
            (Some(content), Some(snapshots)) => match snapshots.write(content) {
                Ok(id) => Some(id),
                Err(err) => {
                    let dir = snapshots.dir().display();
                    tracing::error!(%dir, %err, "cannot keep the snapshot of this version");
                    crate::metrics::audit_write_failed();
                    let err = std::io::Error::new(
                        err.kind(),
                        format!("cannot keep the snapshot of this version in {dir}: {err}"),
                    );
                    if self.on_failure == AuditFailure::FailClosed {
                        return Err(Unwritten::Refuse(err));
                    }
                    warnings.push(format!("{err}; it cannot be restored"));
                    None
                }
            },
            _ => None,
        };
        if let Err(err) = self.write(event, snapshot) {
            if self.on_failure == AuditFailure::FailClosed {
                return Err(Unwritten::Refuse(err));
            }
            warnings.push(format!(
                "the audit record of this reload was not written: {err}"
            ));
        }
        match warnings.is_empty() {
            true => Ok(()),
            false => Err(Unwritten::Warn(warnings.join("; "))),
        }
    }

    /// Writes the record of an attempt that changed nothing (its failure changes nothing either).
    pub(crate) fn after(&mut self, event: &ReloadEvent) {
        let _ = self.write(event, None);
    }

    fn write(&mut self, event: &ReloadEvent, snapshot: Option<String>) -> std::io::Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.append_naming(event, snapshot).inspect_err(|err| {
            tracing::error!(path = %log.path().display(), %err, "cannot write the audit log");
            crate::metrics::audit_write_failed();
        })
    }
}
