//! The decision: one pure function from the live configuration, a candidate and the policy to
//! what a reload does. The reload (`run`) and the dry run ([`Plan`](crate::Plan)) both match on
//! its result, so they cannot drift apart.

use crate::diff::{Change, Diff};
use crate::hot_reload::HotReload;
use crate::plan::{paths, Decision, RestartPolicy};

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
    /// The public form, for a plan; `handlers_for` orders the scopes an apply of the configuration
    /// it would store, with its diff, would run.
    pub(crate) fn into_decision(
        self,
        handlers_for: impl FnOnce(&C, &Diff) -> Vec<String>,
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
                effective,
                effective_diff,
                pending,
            } => {
                let handlers = handlers_for(&effective, &effective_diff);
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
    use crate::diff::ChangeKind;
    use crate::load::ConfigError;
    use crate::plan::Plan;
    use crate::Class;

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
