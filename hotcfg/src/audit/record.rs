//! The audit record: what one line of the log says about one reload attempt.

use crate::event::Rollback;
use crate::{ReloadEvent, ReloadResult, SourceIdentity};

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Live generation after the attempt.
    pub generation: u64,
    /// RFC 3339 UTC time of the attempt.
    pub time: String,
    /// `startup`, `file`, `signal`, `manual` or `remote`.
    pub trigger: String,
    /// The version read, if it could be read.
    pub source: Option<SourceIdentity>,
    /// `applied`, `rejected`, `failed` or `unchanged`.
    pub result: String,
    /// Every difference between the live configuration and the candidate (secrets redacted).
    pub changes: Vec<AuditChange>,
    /// Paths of restart-only changes deferred.
    pub pending_restart: Vec<String>,
    /// Whether handlers had applied and were rolled back (an incomplete rollback also says so in
    /// `error`).
    pub rollback: bool,
    /// The error or rejection reason.
    pub error: Option<String>,
    /// Duration of the attempt in milliseconds.
    pub duration_ms: f64,
    /// SHA-256 of the previous line ([`GENESIS`](super::GENESIS) for the first).
    pub prev: String,
    /// On a `recovered` record: what [`AuditLog::open`] cut off the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<AuditRecovery>,
}

/// The torn tail an [`AuditLog::open`] cut off, as its `recovered` record names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecovery {
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
    /// SHA-256 of the dropped bytes, so a copy kept elsewhere can be matched.
    pub dropped_sha256: String,
}

/// A change as written to the audit log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditChange {
    /// Dotted path.
    pub path: String,
    /// Scope name or `restart`.
    pub class: String,
    /// `added`, `removed` or `modified`.
    pub kind: String,
    /// Old value rendered (`<redacted>` for secrets).
    pub old: Option<String>,
    /// New value rendered (`<redacted>` for secrets).
    pub new: Option<String>,
}

impl AuditRecord {
    /// The record of `event`, chained to the line whose hash is `prev`.
    pub fn from_event(event: &ReloadEvent, prev: String) -> Self {
        let (rollback, error) = match &event.result {
            ReloadResult::Failed { error, rollback } => {
                let error = match rollback {
                    Rollback::Incomplete { .. } => format!("{error}; {rollback}"),
                    _ => error.to_string(),
                };
                (rollback.was_attempted(), Some(error))
            }
            ReloadResult::Rejected { reason, .. } => (false, Some(reason.clone())),
            _ => (false, None),
        };
        AuditRecord {
            generation: event.generation,
            time: humantime::format_rfc3339_millis(event.timestamp).to_string(),
            trigger: event.trigger.kind().to_string(),
            source: event.source.clone(),
            result: event.result.kind().to_string(),
            changes: event
                .changes
                .iter()
                .map(|c| AuditChange {
                    path: c.path.clone(),
                    class: c.class.to_string(),
                    kind: c.kind.to_string(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect(),
            pending_restart: event
                .result
                .pending_restart()
                .iter()
                .map(|c| c.path.clone())
                .collect(),
            rollback,
            error,
            duration_ms: event.duration.as_secs_f64() * 1000.0,
            prev,
            recovered: None,
        }
    }

    /// The record [`AuditLog::open`] appends after cutting off a torn tail: the generation of the
    /// last whole record, result `recovered`.
    pub(super) fn recovery(generation: u64, recovered: AuditRecovery, prev: String) -> Self {
        AuditRecord {
            generation,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            trigger: "open".to_string(),
            source: None,
            result: "recovered".to_string(),
            changes: Vec::new(),
            pending_restart: Vec::new(),
            rollback: false,
            error: Some(format!(
                "torn tail repaired: {} byte(s) dropped (sha256 {})",
                recovered.dropped_bytes, recovered.dropped_sha256
            )),
            duration_ms: 0.0,
            prev,
            recovered: Some(recovered),
        }
    }
}
