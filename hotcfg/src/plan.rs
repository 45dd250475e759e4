//! Deciding what a candidate configuration would do, without doing it: the dry run behind
//! [`Reloader::plan`](crate::Reloader::plan), and the decision the engine then carries out.

use std::fmt;

use crate::{Change, ConfigError, Diff, HotReload, SourceIdentity};

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

/// What a reload of a candidate would do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
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
    /// The reload would be refused.
    Reject {
        /// Why.
        reason: String,
        /// What could not be applied.
        unsafe_changes: Vec<Change>,
    },
    /// The candidate cannot be used (see [`Plan::error`]).
    Invalid,
}

/// A dry run: the diff, each change's class, validation, the handlers that would run and the
/// decision. Nothing is applied and no handler is called.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// The candidate's identity, if it could be read.
    pub source: Option<SourceIdentity>,
    /// Every difference between the live configuration and the candidate.
    pub changes: Diff,
    /// Why the candidate cannot be used, if it cannot.
    pub error: Option<ConfigError>,
    /// Scopes whose handlers would run, in order.
    pub handlers: Vec<String>,
    /// What would happen.
    #[serde(flatten)]
    pub decision: Decision,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            writeln!(f, "candidate: {source}")?;
        }
        if let Some(error) = &self.error {
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
            Decision::Reject { reason, .. } => write!(f, "decision: reject: {reason}"),
            Decision::Invalid => write!(f, "decision: invalid"),
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

/// The decision for a parsed, validated candidate.
pub(crate) struct Decided<C> {
    /// All differences, live vs candidate.
    pub diff: Diff,
    /// What would be stored.
    pub effective: C,
    /// Live vs `effective`: what handlers apply (plus referenced-file changes).
    pub effective_diff: Diff,
    /// Restart-only changes deferred.
    pub pending: Vec<Change>,
    /// Set when the policy refuses the candidate.
    pub rejection: Option<(String, Vec<Change>)>,
}

/// Applies the policy to a candidate. `referenced` are changes to files the configuration names
/// (their content changed while the path did not).
pub(crate) fn decide<C: HotReload>(
    live: &C,
    candidate: C,
    policy: RestartPolicy,
    referenced: Vec<Change>,
) -> Decided<C> {
    let diff = with_referenced(live.diff(&candidate), &referenced);
    let restart: Vec<Change> = diff.restart_changes().cloned().collect();
    if restart.is_empty() {
        return Decided {
            effective_diff: diff.clone(),
            diff,
            effective: candidate,
            pending: Vec::new(),
            rejection: None,
        };
    }
    match policy {
        RestartPolicy::Reject => {
            let reason = format!(
                "{} change(s) need a restart: {}",
                restart.len(),
                paths(&restart)
            );
            Decided {
                effective_diff: Diff::empty(),
                diff,
                effective: candidate,
                pending: Vec::new(),
                rejection: Some((reason, restart)),
            }
        }
        RestartPolicy::Defer => {
            let effective = live.merge_hot(&candidate);
            let effective_diff = with_referenced(live.diff(&effective), &referenced);
            Decided {
                diff,
                effective,
                effective_diff,
                pending: restart,
                rejection: None,
            }
        }
    }
}

fn with_referenced(diff: Diff, referenced: &[Change]) -> Diff {
    if referenced.is_empty() {
        return diff;
    }
    let mut changes = diff.into_changes();
    for change in referenced {
        if !changes.iter().any(|c| c.path == change.path) {
            changes.push(change.clone());
        }
    }
    Diff::from_changes(changes)
}
