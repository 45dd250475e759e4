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

/// The decision for a parsed, validated candidate, with what carrying it out needs. Computed by
/// [`decide`] alone; the reload and the dry run both match on it.
#[derive(Debug)]
pub(crate) enum Decided<C> {
    /// The candidate equals the live configuration.
    Unchanged,
    /// The policy refuses the candidate.
    Reject {
        reason: String,
        refused: Vec<Change>,
    },
    /// Only restart-only changes, deferred: nothing to apply or store.
    Defer { pending: Vec<Change> },
    /// Hot changes to apply (and restart-only ones deferred).
    Apply {
        /// What would be stored.
        effective: C,
        /// Live vs `effective`: what handlers apply (plus referenced-file changes).
        effective_diff: Diff,
        /// Restart-only changes deferred.
        pending: Vec<Change>,
    },
}

impl<C> Decided<C> {
    /// The public form, for a plan; `handlers_for` orders the scopes an apply would run.
    pub(crate) fn into_decision(
        self,
        handlers_for: impl FnOnce(&Diff) -> Vec<String>,
    ) -> (Decision, Vec<String>) {
        match self {
            Decided::Unchanged => (Decision::Unchanged, Vec::new()),
            Decided::Reject { reason, refused } => {
                (Decision::Reject { reason, refused }, Vec::new())
            }
            Decided::Defer { pending } => (
                Decision::Defer {
                    pending_restart: pending,
                },
                Vec::new(),
            ),
            Decided::Apply {
                effective_diff,
                pending,
                ..
            } => {
                let handlers = handlers_for(&effective_diff);
                let decision = Decision::Apply {
                    applied: effective_diff.into_changes(),
                    pending_restart: pending,
                };
                (decision, handlers)
            }
        }
    }
}

/// Applies the policy to a candidate: a pure function of the live configuration, the candidate,
/// the policy and `referenced` (changes to files the configuration names whose content changed
/// while the path did not). Returns every difference and the decision.
pub(crate) fn decide<C: HotReload>(
    live: &C,
    candidate: C,
    policy: RestartPolicy,
    referenced: Vec<Change>,
) -> (Diff, Decided<C>) {
    let diff = with_referenced(live.diff(&candidate), &referenced);
    if diff.is_empty() {
        return (diff, Decided::Unchanged);
    }
    let restart: Vec<Change> = diff.restart_changes().cloned().collect();
    if restart.is_empty() {
        let decided = Decided::Apply {
            effective: candidate,
            effective_diff: diff.clone(),
            pending: Vec::new(),
        };
        return (diff, decided);
    }
    let decided = match policy {
        RestartPolicy::Reject => Decided::Reject {
            reason: format!(
                "{} change(s) need a restart: {}",
                restart.len(),
                paths(&restart)
            ),
            refused: restart,
        },
        RestartPolicy::Defer => {
            let effective = live.merge_hot(&candidate);
            let effective_diff = with_referenced(live.diff(&effective), &referenced);
            if effective_diff.is_empty() {
                Decided::Defer { pending: restart }
            } else {
                Decided::Apply {
                    effective,
                    effective_diff,
                    pending: restart,
                }
            }
        }
    };
    (diff, decided)
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

#[cfg(all(test, feature = "derive"))]
mod tests {
    use super::*;
    use crate::{ChangeKind, Class};

    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, crate::HotReload)]
    struct Config {
        #[reload(restart)]
        listen: String,
        #[reload(scope = "limits")]
        max: u32,
    }

    fn config(listen: &str, max: u32) -> Config {
        Config {
            listen: listen.to_string(),
            max,
        }
    }

    /// A file named by the configuration changed on disk while its path did not.
    fn referenced() -> Change {
        Change {
            path: "template".into(),
            class: Class::Scope("limits"),
            kind: ChangeKind::Modified,
            old: Some("t (sha256 aaa)".into()),
            new: Some("t (sha256 bbb)".into()),
            secret: false,
        }
    }

    fn paths(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    /// The decision's kind, the paths it applies (or refuses) and the paths it defers.
    type Summary<'a> = (&'static str, Vec<&'a str>, Vec<&'a str>);

    fn summary(decided: &Decided<Config>) -> Summary<'_> {
        match decided {
            Decided::Unchanged => ("unchanged", vec![], vec![]),
            Decided::Reject { refused, .. } => ("reject", paths(refused), vec![]),
            Decided::Defer { pending } => ("defer", vec![], paths(pending)),
            Decided::Apply {
                effective_diff,
                pending,
                ..
            } => ("apply", paths(effective_diff.changes()), paths(pending)),
        }
    }

    #[test]
    fn the_decision_table() {
        use RestartPolicy::{Defer, Reject};
        let live = config("a", 1);
        #[rustfmt::skip]
        let table: [(&str, Config, RestartPolicy, bool, Summary<'_>); 12] = [
            ("equal", config("a", 1), Reject, false, ("unchanged", vec![], vec![])),
            ("equal", config("a", 1), Defer, false, ("unchanged", vec![], vec![])),
            ("hot", config("a", 2), Reject, false, ("apply", vec!["max"], vec![])),
            ("hot", config("a", 2), Defer, false, ("apply", vec!["max"], vec![])),
            ("restart", config("b", 1), Reject, false, ("reject", vec!["listen"], vec![])),
            ("restart", config("b", 1), Defer, false, ("defer", vec![], vec!["listen"])),
            ("both", config("b", 2), Reject, false, ("reject", vec!["listen"], vec![])),
            ("both", config("b", 2), Defer, false, ("apply", vec!["max"], vec!["listen"])),
            ("file", config("a", 1), Reject, true, ("apply", vec!["template"], vec![])),
            ("file", config("a", 1), Defer, true, ("apply", vec!["template"], vec![])),
            ("restart+file", config("b", 1), Reject, true, ("reject", vec!["listen"], vec![])),
            ("restart+file", config("b", 1), Defer, true, ("apply", vec!["template"], vec!["listen"])),
        ];
        for (name, candidate, policy, file_changed, expected) in table {
            let referenced = if file_changed {
                vec![referenced()]
            } else {
                vec![]
            };
            let (diff, decided) = decide(&live, candidate.clone(), policy, referenced);
            assert_eq!(summary(&decided), expected, "{name} under {policy:?}");
            // The full diff always lists every difference, whatever is decided.
            let expected_diff = live.diff(&candidate).len() + usize::from(file_changed);
            assert_eq!(diff.len(), expected_diff, "{name} under {policy:?}");
        }
    }

    #[test]
    fn a_deferred_apply_stores_the_hot_values_and_keeps_the_restart_ones() {
        let (_, decided) = decide(
            &config("a", 1),
            config("b", 2),
            RestartPolicy::Defer,
            vec![],
        );
        let Decided::Apply { effective, .. } = decided else {
            panic!("expected an apply, got {decided:?}");
        };
        assert_eq!(effective, config("a", 2));
    }

    #[test]
    fn a_rejection_names_every_restart_only_change() {
        let (_, decided) = decide(
            &config("a", 1),
            config("b", 2),
            RestartPolicy::Reject,
            vec![],
        );
        let Decided::Reject { reason, .. } = decided else {
            panic!("expected a rejection, got {decided:?}");
        };
        assert_eq!(reason, "1 change(s) need a restart: listen");
    }

    #[test]
    fn the_plan_lists_handlers_only_for_an_apply() {
        let handlers = |_: &Diff| vec!["limits".to_string()];
        for (candidate, policy, want) in [
            (config("a", 2), RestartPolicy::Reject, vec!["limits"]),
            (config("b", 1), RestartPolicy::Defer, vec![]),
            (config("b", 1), RestartPolicy::Reject, vec![]),
            (config("a", 1), RestartPolicy::Reject, vec![]),
        ] {
            let (changes, decided) = decide(&config("a", 1), candidate, policy, vec![]);
            let plan = Plan::decided(None, changes, decided, handlers);
            assert_eq!(plan.handlers, want, "{plan}");
        }
    }

    #[test]
    fn a_defer_only_plan_says_nothing_would_run() {
        let (changes, decided) = decide(
            &config("a", 1),
            config("b", 1),
            RestartPolicy::Defer,
            vec![],
        );
        let plan = Plan::decided(None, changes, decided, |_| vec![]);
        assert_eq!(
            plan.decision,
            Decision::Defer {
                pending_restart: plan.changes.changes().to_vec()
            }
        );
        assert!(plan.to_string().ends_with(
            "decision: defer 1 restart-only change(s) until restart, nothing would run: listen"
        ));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["decision"], "defer");
    }

    #[test]
    fn an_invalid_plan_carries_its_error() {
        let error = ConfigError::new(crate::Stage::Parse, Vec::new());
        let plan = Plan::invalid(None, error.clone());
        assert_eq!(plan.error(), Some(&error));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["decision"], "invalid");
        assert!(json.get("error").is_some(), "{json}");
    }
}
