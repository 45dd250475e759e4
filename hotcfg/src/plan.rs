//! Deciding what a candidate configuration would do, without doing it: the dry run behind
//! [`Reloader::plan`](crate::Reloader::plan), and the decision the engine then carries out.

use std::fmt;

use crate::diff::{Change, Diff};
use crate::engine::decide::Decided;
use crate::load::ConfigError;
use crate::source::SourceIdentity;

/// What to do with restart-only changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Refuse the whole reload when any change needs a restart (nothing is applied).
    #[default]
    Reject,
    /// Apply the hot changes now; keep the running values of restart-only fields and report their
    /// new values as pending restart until the source matches the running values again
    /// (PostgreSQL's `pending_restart`).
    Defer,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reject" => Ok(RestartPolicy::Reject),
            "defer" => Ok(RestartPolicy::Defer),
            other => Err(format!(
                "unknown restart policy `{other}`: expected `reject` or `defer`"
            )),
        }
    }
}

/// What a reload of a candidate would do. Computed once by the engine's decision step; the dry
/// run and the reload both match on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Nothing differs: nothing would run.
    Unchanged,
    /// The hot changes would be applied (by the listed handlers); restart-only ones deferred.
    Apply {
        /// Changes that would become live.
        applied: Vec<Change>,
        /// Restart-only changes that would wait for a restart.
        pending_restart: Vec<Change>,
    },
    /// Only restart-only changes, under [`RestartPolicy::Defer`]: nothing would run; they
    /// would wait for a restart.
    Defer {
        /// Restart-only changes that would wait for a restart.
        pending_restart: Vec<Change>,
    },
    /// The reload would be refused.
    Reject {
        /// Why.
        reason: String,
        /// The changes refused.
        refused: Vec<Change>,
    },
    /// The candidate cannot be used: it cannot be read, parsed or validated.
    Invalid {
        /// Why, with file, line and key.
        error: ConfigError,
    },
}

/// A dry run: the diff, each change's class, validation, the handlers that would run and the
/// decision. Nothing is applied and no handler is called.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// The candidate's identity, if it could be read.
    pub source: Option<SourceIdentity>,
    /// Every difference between the live configuration and the candidate.
    pub changes: Diff,
    /// Scopes whose handlers would run, in order.
    pub handlers: Vec<String>,
    /// What would happen.
    #[serde(flatten)]
    pub decision: Decision,
}

impl Plan {
    /// A plan for a candidate that cannot be used.
    pub(crate) fn invalid(source: Option<SourceIdentity>, error: ConfigError) -> Plan {
        Plan {
            source,
            changes: Diff::empty(),
            handlers: Vec::new(),
            decision: Decision::Invalid { error },
        }
    }

    /// The plan for a decided candidate; `handlers_for` orders the scopes an apply would run.
    pub(crate) fn decided<C>(
        source: Option<SourceIdentity>,
        changes: Diff,
        decided: Decided<C>,
        handlers_for: impl FnOnce(&Diff) -> Vec<String>,
    ) -> Plan {
        let (decision, handlers) = decided.into_decision(handlers_for);
        Plan {
            source,
            changes,
            handlers,
            decision,
        }
    }

    /// Why the candidate cannot be used, if it cannot ([`Decision::Invalid`]).
    pub fn error(&self) -> Option<&ConfigError> {
        match &self.decision {
            Decision::Invalid { error } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            writeln!(f, "candidate: {source}")?;
        }
        if let Decision::Invalid { error } = &self.decision {
            return write!(f, "decision: invalid, nothing would change\n{error}");
        }
        if self.changes.is_empty() {
            writeln!(f, "changes: none")?;
        } else {
            writeln!(f, "changes ({}):", self.changes.len())?;
            for change in &self.changes {
                writeln!(f, "  {change}")?;
            }
        }
        match &self.decision {
            Decision::Unchanged => write!(f, "decision: unchanged, nothing would run"),
            Decision::Apply {
                applied,
                pending_restart,
            } => {
                write!(f, "decision: apply {} change(s)", applied.len())?;
                if self.handlers.is_empty() {
                    write!(f, " (no handler runs; readers see the new values)")?;
                } else {
                    write!(f, " with handlers: {}", self.handlers.join(" -> "))?;
                }
                if !pending_restart.is_empty() {
                    write!(f, "\n  deferred until restart: {}", paths(pending_restart))?;
                }
                Ok(())
            }
            Decision::Defer { pending_restart } => write!(
                f,
                "decision: defer {} restart-only change(s) until restart, nothing would run: {}",
                pending_restart.len(),
                paths(pending_restart)
            ),
            Decision::Reject { reason, .. } => write!(f, "decision: reject: {reason}"),
            Decision::Invalid { .. } => unreachable!("handled above"),
        }
    }
}

pub(crate) fn paths(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| c.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
