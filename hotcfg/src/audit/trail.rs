//! The engine's side of the audit log: which records precede a commit, and what a failed write
//! means ([`AuditFailure`]).

use super::log::AuditLog;
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
}

/// Why a record that had to precede a commit was not written.
pub(crate) enum Unwritten {
    /// Under [`AuditFailure::Continue`]: commit, with this warning.
    Warn(String),
    /// Under [`AuditFailure::FailClosed`]: do not commit; this is the error.
    Refuse(std::io::Error),
}

impl AuditTrail {
    pub(crate) fn new(log: Option<AuditLog>, on_failure: AuditFailure) -> Self {
        AuditTrail { log, on_failure }
    }

    /// Writes the record of an attempt about to change the live state.
    pub(crate) fn before_commit(&mut self, event: &ReloadEvent) -> Result<(), Unwritten> {
        let Err(err) = self.write(event) else {
            return Ok(());
        };
        Err(match self.on_failure {
            AuditFailure::FailClosed => Unwritten::Refuse(err),
            AuditFailure::Continue => Unwritten::Warn(format!(
                "the audit record of this reload was not written: {err}"
            )),
        })
    }

    /// Writes the record of an attempt that changed nothing (its failure changes nothing either).
    pub(crate) fn after(&mut self, event: &ReloadEvent) {
        let _ = self.write(event);
    }

    fn write(&mut self, event: &ReloadEvent) -> std::io::Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.append(event).inspect_err(|err| {
            tracing::error!(path = %log.path().display(), %err, "cannot write the audit log");
            crate::metrics::audit_write_failed();
        })
    }
}
