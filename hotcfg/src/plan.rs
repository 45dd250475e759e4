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
/// decision. Nothing is applied. No handler is called unless the dry run was asked to run their
/// `prepare` ([`PlanOptions::run_prepare`]); then [`prepare`](Plan::prepare) holds each verdict.
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
    /// Each scope's `prepare` verdict, in the order [`handlers`](Plan::handlers) lists them, when
    /// the dry run ran them ([`PlanOptions::run_prepare`]) and the decision was to apply; `None`
    /// (not serialized) otherwise. A veto makes the decision [`Decision::Reject`] with the reason
    /// the reload would give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepare: Option<Vec<PrepareVerdict>>,
}

/// What a dry run does beyond deciding. The default decides only: no handler is called.
///
/// ```
/// use hotcfg::PlanOptions;
///
/// let options = PlanOptions::new().run_prepare();
/// assert!(options.runs_prepare());
/// assert!(!PlanOptions::default().runs_prepare());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    run_prepare: bool,
}

impl PlanOptions {
    /// Decide only (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also call [`prepare`](crate::ScopeHandler::prepare) of every handler an apply would run,
    /// without `apply`, and report each verdict in [`Plan::prepare`]. Only for handlers whose
    /// `prepare` changes nothing (it checks, as the trait asks): a dry run must leave the program
    /// as it was. The dry run waits for a running reload and keeps the next one waiting while the
    /// handlers answer, so they see the live configuration a reload would see.
    pub fn run_prepare(mut self) -> Self {
        self.run_prepare = true;
        self
    }

    /// Whether `prepare` runs.
    pub fn runs_prepare(&self) -> bool {
        self.run_prepare
    }
}

/// One scope's answer to `prepare` in a dry run ([`PlanOptions::run_prepare`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrepareVerdict {
    /// The scope whose handlers were asked.
    pub scope: String,
    /// What they said (the first refusal among the scope's handlers, as in a reload).
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What a scope's handlers said to a candidate in `prepare`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every handler of the scope accepted the change.
    Accepted,
    /// A handler refused it: the reload would be rejected with this message.
    Vetoed {
        /// The handler's error.
        message: String,
    },
    /// A handler panicked: the reload would be rejected.
    Panicked {
        /// The panic's message.
        message: String,
    },
}

impl PrepareVerdict {
    /// Why a reload would be rejected because of this verdict, if it refuses (the reload's words).
    pub(crate) fn refusal(&self) -> Option<String> {
        let scope = &self.scope;
        match &self.verdict {
            Verdict::Accepted => None,
            Verdict::Vetoed { message } => {
                Some(format!("vetoed by the `{scope}` handler: {message}"))
            }
            Verdict::Panicked { message } => Some(format!(
                "the `{scope}` handler panicked in prepare: {message}"
            )),
        }
    }
}

impl fmt::Display for PrepareVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Accepted => write!(f, "{}: accepted", self.scope),
            Verdict::Vetoed { message } => write!(f, "{}: vetoed: {message}", self.scope),
            Verdict::Panicked { message } => write!(f, "{}: panicked: {message}", self.scope),
        }
    }
}

impl Plan {
    /// A plan for a candidate that cannot be used.
    pub(crate) fn invalid(source: Option<SourceIdentity>, error: ConfigError) -> Plan {
        Plan {
            source,
            changes: Diff::empty(),
            handlers: Vec::new(),
            decision: Decision::Invalid { error },
            prepare: None,
        }
    }

    /// The plan for a decided candidate; `handlers_for` orders the scopes an apply would run.
    /// (The engine's plans go through [`Plan::prepared`]; etcd's push plans without handlers.)
    #[cfg(any(feature = "etcd", test))]
    pub(crate) fn decided<C>(
        source: Option<SourceIdentity>,
        changes: Diff,
        decided: Decided<C>,
        handlers_for: impl FnOnce(&Diff) -> Vec<String>,
    ) -> Plan {
        Plan::prepared(source, changes, decided, handlers_for, |_, _, _| None)
    }

    /// [`Plan::decided`], and for an apply `prepare` asks the handlers of the ordered scopes
    /// about the configuration that would be stored and its diff (`None`: not asked). The first
    /// veto, in order, turns the decision into the rejection the reload would give.
    pub(crate) fn prepared<C>(
        source: Option<SourceIdentity>,
        changes: Diff,
        decided: Decided<C>,
        handlers_for: impl FnOnce(&Diff) -> Vec<String>,
        prepare: impl FnOnce(&C, &Diff, &[String]) -> Option<Vec<PrepareVerdict>>,
    ) -> Plan {
        let mut verdicts: Option<Vec<PrepareVerdict>> = None;
        let mut rejection = None;
        let (decision, handlers) = decided.into_decision(|effective, diff| {
            let handlers = handlers_for(diff);
            verdicts = prepare(effective, diff, &handlers);
            let veto = verdicts
                .iter()
                .flatten()
                .find_map(|v| Some((v, v.refusal()?)));
            rejection = veto.map(|(verdict, reason)| Decision::Reject {
                reason,
                refused: diff.in_scope(&verdict.scope).cloned().collect(),
            });
            handlers
        });
        let decision = rejection.unwrap_or(decision);
        Plan {
            source,
            changes,
            handlers,
            decision,
            prepare: verdicts,
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
        }?;
        for verdict in self.prepare.iter().flatten() {
            write!(f, "\n  prepare {verdict}")?;
        }
        Ok(())
    }
}

pub(crate) fn paths(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| c.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
