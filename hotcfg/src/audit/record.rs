//! The audit record: what one line of the log says about one reload attempt.

use std::fmt;

use crate::event::{RemoteChange, RevertTarget, Rollback, Trigger};
use crate::{ReloadEvent, ReloadResult, SourceIdentity};

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Live generation after the attempt.
    pub generation: u64,
    /// RFC 3339 UTC time of the attempt.
    pub time: String,
    /// What started the attempt: its kind, and the file or the remote change.
    #[serde(deserialize_with = "trigger_or_kind")]
    pub trigger: AuditTrigger,
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
    /// On a `recovered` record: what [`AuditLog::open`](super::AuditLog::open) cut off the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<AuditRecovery>,
    /// On a record that committed a generation: the snapshot of the source content it applied,
    /// by the SHA-256 of the snapshot file ([`Snapshots`](super::Snapshots)); written (and
    /// synced) before this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// What started an attempt, as its audit record says: the kind, and the file that changed or
/// the remote change that arrived.
///
/// ```
/// use hotcfg::{AuditTrigger, Trigger};
///
/// let trigger = AuditTrigger::from(&Trigger::File("/etc/app/cert.pem".into()));
/// assert_eq!(trigger.kind, "file");
/// assert_eq!(trigger.path.as_deref(), Some("/etc/app/cert.pem"));
/// assert_eq!(
///     serde_json::to_string(&trigger)?,
///     r#"{"kind":"file","path":"/etc/app/cert.pem"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct AuditTrigger {
    /// `startup`, `file`, `signal`, `manual`, `remote`, `revert`, `probation` or
    /// `last-known-good` (`open` on a `recovered` record).
    pub kind: String,
    /// `file`: the file that changed (the configuration, or a file it refers to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `remote`: the store (`etcd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `remote`: the key or prefix followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `remote`: the store revision announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// `remote`: `watched` (the watch delivered a change) or `read` (a fresh read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// `revert`: the generation whose content is restored; `last-known-good`: the generation of
    /// an earlier run whose content the engine started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `revert`, `last-known-good`: the SHA-256 of the content restored or started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `probation`: the generation reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<u64>,
    /// `probation`: why (`unhealthy: ...`, `not confirmed within 30s`, ...); `last-known-good`:
    /// why the source could not be read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditTrigger {
    fn of_kind(kind: &str) -> Self {
        AuditTrigger {
            kind: kind.to_string(),
            ..AuditTrigger::default()
        }
    }
}

impl From<&Trigger> for AuditTrigger {
    fn from(trigger: &Trigger) -> Self {
        let mut audit = AuditTrigger::of_kind(trigger.kind());
        match trigger {
            Trigger::File(path) => audit.path = Some(path.display().to_string()),
            Trigger::Remote(RemoteChange {
                store,
                key,
                revision,
                cause,
            }) => {
                audit.store = Some(store.clone());
                audit.key = Some(key.clone());
                audit.revision = Some(*revision);
                audit.cause = Some(cause.as_str().to_string());
            }
            Trigger::Revert(RevertTarget { generation, sha256 }) => {
                audit.generation = Some(*generation);
                audit.sha256 = Some(sha256.clone());
            }
            Trigger::Probation(revert) => {
                audit.reverted = Some(revert.reverted);
                audit.reason = Some(revert.reason.to_string());
            }
            Trigger::LastKnownGood(start) => {
                audit.generation = Some(start.generation);
                audit.sha256 = Some(start.sha256.clone());
                audit.reason = Some(start.unreachable.clone());
            }
            _ => {}
        }
        audit
    }
}

/// The kind, then the file, the remote change or the version restored: `file /etc/app/cert.pem`,
/// `remote etcd app/config.toml revision 42 (watched)`, `revert to generation 3 (sha256 9f86d081884c)`.
impl fmt::Display for AuditTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        let words = [&self.path, &self.store, &self.key];
        for word in words.into_iter().flatten() {
            write!(f, " {word}")?;
        }
        if let Some(revision) = self.revision {
            write!(f, " revision {revision}")?;
        }
        if let Some(cause) = &self.cause {
            write!(f, " ({cause})")?;
        }
        if let Some(generation) = self.generation {
            write!(f, " to generation {generation}")?;
        }
        if let Some(sha256) = &self.sha256 {
            write!(f, " (sha256 {})", &sha256[..12.min(sha256.len())])?;
        }
        if let Some(reverted) = self.reverted {
            write!(f, " of generation {reverted}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Reads `trigger` as an object, or as the bare kind that records written before it named its
/// file held (`"trigger":"file"`), so older logs still read and verify.
fn trigger_or_kind<'de, D: serde::Deserializer<'de>>(from: D) -> Result<AuditTrigger, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Written {
        Object(AuditTrigger),
        Kind(String),
    }
    Ok(match serde::Deserialize::deserialize(from)? {
        Written::Object(trigger) => trigger,
        Written::Kind(kind) => AuditTrigger::of_kind(&kind),
    })
}

/// The torn tail an [`AuditLog::open`](super::AuditLog::open) cut off, as its `recovered` record names it.
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
            trigger: AuditTrigger::from(&event.trigger),
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
            snapshot: None,
        }
    }

    /// The record [`AuditLog::open`](super::AuditLog::open) appends after cutting off a torn tail: the generation of the
    /// last whole record, result `recovered`.
    pub(super) fn recovery(generation: u64, recovered: AuditRecovery, prev: String) -> Self {
        AuditRecord {
            generation,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            trigger: AuditTrigger::of_kind("open"),
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
            snapshot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProbationRevert, RevertReason};

    #[test]
    fn a_record_written_before_triggers_named_their_file_still_reads() {
        let line = r#"{"generation":3,"time":"2026-11-30T06:00:00.000Z","trigger":"file","source":null,"result":"unchanged","changes":[],"pending_restart":[],"rollback":false,"error":null,"duration_ms":0.5,"prev":"00"}"#;
        let record: AuditRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.trigger, AuditTrigger::of_kind("file"));
        assert_eq!(record.trigger.to_string(), "file");
    }

    fn event(trigger: Trigger, result: ReloadResult) -> ReloadEvent {
        ReloadEvent {
            generation: 4,
            timestamp: std::time::SystemTime::UNIX_EPOCH,
            trigger,
            source: None,
            changes: crate::Diff::empty(),
            result,
            duration: std::time::Duration::from_micros(1_500),
        }
    }

    // Kills the mutants of `from_event` that change the duration's unit (`*` into `+` or `/`)
    // or drop the `Failed` or `Incomplete` arm: the rollback's errors join the error.
    #[test]
    fn a_failed_reload_is_recorded_with_its_rollback_and_its_duration_in_milliseconds() {
        let rollback = Rollback::Incomplete {
            errors: vec!["rollback of `b`: stuck".to_string()],
        };
        let failed = ReloadResult::Failed {
            error: crate::ReloadError::Handler {
                scope: "a".to_string(),
                message: "busy".to_string(),
            },
            rollback,
        };
        let record = AuditRecord::from_event(&event(Trigger::Manual, failed), "prev".into());
        assert_eq!(record.duration_ms, 1.5);
        assert_eq!(record.result, "failed");
        assert!(record.rollback);
        assert_eq!(
            record.error.as_deref(),
            Some(
                "handler for scope `a` failed: busy; rollback incomplete (rollback of `b`: \
                 stuck); readers keep the previous configuration, but those subsystems may still \
                 run the refused one"
            )
        );
        assert_eq!((record.generation, record.prev.as_str()), (4, "prev"));
    }

    // Kills the mutant that drops the `Rejected` arm: the reason is the record's error.
    #[test]
    fn a_rejection_is_recorded_with_its_reason_and_no_rollback() {
        let rejected = ReloadResult::Rejected {
            reason: "restart needed".to_string(),
            refused: Vec::new(),
        };
        let record = AuditRecord::from_event(&event(Trigger::Manual, rejected), String::new());
        assert_eq!(record.error.as_deref(), Some("restart needed"));
        assert!(!record.rollback);
    }

    // Kills the mutants that drop the `File` or `Remote` arm of the trigger's conversion.
    #[test]
    fn triggers_are_recorded_with_their_file_or_remote_change() {
        let file = AuditTrigger::from(&Trigger::File("/etc/app/cert.pem".into()));
        assert_eq!(file.to_string(), "file /etc/app/cert.pem");
        let remote = AuditTrigger::from(&Trigger::Remote(RemoteChange {
            store: "etcd".to_string(),
            key: "app/config.toml".to_string(),
            revision: 42,
            cause: crate::RemoteCause::Watched,
        }));
        assert_eq!(
            remote.to_string(),
            "remote etcd app/config.toml revision 42 (watched)"
        );
    }

    /// Kills the mutants deleting the `Trigger::Revert` or the `Trigger::Probation` arm of
    /// `AuditTrigger::from` (issue 22): the record would name the kind but not the version.
    #[test]
    fn reverts_are_recorded_with_the_version_they_restore_and_why() {
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let revert = AuditTrigger::from(&Trigger::Revert(RevertTarget::new(3, sha)));
        assert_eq!(
            (revert.generation, revert.sha256.as_deref()),
            (Some(3), Some(sha))
        );
        assert_eq!(
            revert.to_string(),
            "revert to generation 3 (sha256 9f86d081884c)"
        );

        let probation = AuditTrigger::from(&Trigger::Probation(ProbationRevert {
            reverted: 7,
            restored: 6,
            reason: RevertReason::Unhealthy("error rate 40%".to_string()),
        }));
        assert_eq!(probation.reverted, Some(7));
        assert_eq!(
            probation.to_string(),
            "probation of generation 7: unhealthy: error rate 40%"
        );
    }

    /// Kills the `Trigger::LastKnownGood` arm of `AuditTrigger::from` deleted (issue 22): the
    /// record names the version started from and why the store was not used.
    #[test]
    fn a_last_known_good_start_is_recorded_with_its_version_and_why() {
        let start = crate::engine::LastKnownGoodStart {
            generation: 5,
            applied_at: "2026-11-30T06:00:00Z".to_string(),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
            unreachable: "etcd unreachable".to_string(),
        };
        let trigger = AuditTrigger::from(&Trigger::LastKnownGood(start));
        assert_eq!(
            trigger.to_string(),
            "last-known-good to generation 5 (sha256 9f86d081884c): etcd unreachable"
        );
    }
}
