//! The operations of safety after the commit (issue 17): a change probation reverts, a revert to
//! an earlier generation, and its dry run.

use std::sync::Arc;

use hotcfg::audit::SnapshotError;
use hotcfg::{Decision, ProbationStatus, ReloadEvent, RevertError, RevertTarget, Trigger};
use hotcfg_tests::sha256_hex;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::checks::says_quarantined;
use super::edits::typed;
use super::run::Run;
use super::system::{LISTEN, SICK};

/// The events a step's calls returned, and what it did.
type Stepped = (Vec<Arc<ReloadEvent>>, String);

impl Run {
    /// A valid edit the health check judges unhealthy: applied, then reverted as the next
    /// generation to the version live before (every step waits for probation to end, so that
    /// one is trusted), its text quarantined: the same bytes written again are refused. A text
    /// quarantined already is refused at once.
    pub(super) fn sick(&mut self, a: u32, at: &str) -> Result<Stepped, TestCaseError> {
        let (text, parsed) = typed(LISTEN, a, SICK);
        let trusted = self.expected.generation;
        let quarantined = self.expected.quarantined.contains(&text);
        let parsed = parsed.unwrap();
        self.write(&text, Some(parsed.clone()));
        let want = self.expected.reload_sick(&text, parsed.clone());
        let event = self.reloader.reload_now();
        prop_assert_eq!(event.result.kind(), want, "{}: {}", at, event);
        prop_assert!(
            !quarantined || says_quarantined(&event),
            "{}: {}",
            at,
            event
        );
        // Judged before it is confirmed: an unhealthy change reverts, confirmed or not.
        let status = self.probation_ended(at)?;
        self.confirm_change(at)?;
        if self.expected.generation != trusted + 2 {
            let outcome = match quarantined {
                true => "refused (quarantined)".to_string(),
                false => event.result.kind().to_string(),
            };
            return Ok((vec![event], outcome));
        }
        let reverted = matches!(&status, ProbationStatus::Reverted { revert, live }
            if (revert.reverted, revert.restored, *live) == (trusted + 1, trusted, trusted + 2));
        prop_assert!(
            reverted,
            "{}: generation {} is not reverted to {}: {:?}",
            at,
            trusted + 1,
            trusted,
            status
        );
        let sha = sha256_hex(text.as_bytes());
        let listed = self.reloader.quarantined().iter().any(|q| q.sha256 == sha);
        prop_assert!(listed, "{}: {} is not quarantined", at, sha);
        // The same bytes written again are refused.
        self.write(&text, Some(parsed.clone()));
        let again = self.reloader.reload_now();
        prop_assert_eq!(
            self.expected.reload(&text, Some(parsed)),
            "rejected",
            "{}",
            at
        );
        prop_assert!(says_quarantined(&again), "{}: written again: {}", at, again);
        Ok((vec![event, again], "reverted".to_string()))
    }

    /// `revert_to` a generation: its version again (the file holding its text), or refused as
    /// its text would be (quarantined, or failing today's validation: then the file holds what
    /// it held), or no snapshot (a version probation restored).
    pub(super) fn revert(&mut self, pick: u64, at: &str) -> Result<Stepped, TestCaseError> {
        self.check_restorable(at)?;
        let generation = self.expected.pick(pick);
        // Content the dry run refuses is attempted as given: the file is not written.
        let writes = matches!(
            self.expected.plan_revert(generation),
            Some("apply" | "unchanged" | "defer")
        );
        let want = self.expected.revert_to(generation);
        let got = self.reloader.revert_to(generation);
        let at = format!("{at}: revert_to({generation}): expected {want:?}, got {got:?}");
        let outcome;
        let (text, event) = match (want, got) {
            (None, Err(RevertError::Snapshot(SnapshotError::NotKept { .. }))) => {
                return Ok((Vec::new(), "no snapshot".to_string()));
            }
            (Some((text, want @ ("applied" | "unchanged"))), Ok(event)) => {
                outcome = want.to_string();
                prop_assert_eq!(event.result.kind(), want, "{}", at);
                let version = self.expected.kept[&generation].1.clone();
                let live = self.reloader.handle().snapshot();
                let values = (live.a, live.b);
                prop_assert_eq!(values, (version.a, version.b), "{}: live values", at);
                if writes {
                    self.current = (text.clone(), Some(version));
                }
                (text, event)
            }
            (Some((text, want)), Err(RevertError::Refused { event, reason, .. })) => {
                prop_assert_eq!(event.result.kind(), want, "{}", at);
                let quarantined = self.expected.quarantined.contains(&text);
                prop_assert_eq!(says_quarantined(&event), quarantined, "{}", at);
                prop_assert!(quarantined || reason.contains("forbidden"), "{}", at);
                outcome = match quarantined {
                    true => "refused (quarantined)".to_string(),
                    false => "refused (invalid today)".to_string(),
                };
                (text, event)
            }
            _ => return Err(TestCaseError::fail(at)),
        };
        let target = RevertTarget::new(generation, sha256_hex(text.as_bytes()));
        prop_assert_eq!(&event.trigger, &Trigger::Revert(target), "{}", at);
        self.probation_settled(&at)?;
        Ok((vec![event], outcome))
    }

    /// `plan_revert` of a generation: the decision the model expects; nothing is recorded.
    pub(super) fn plan_revert(&mut self, pick: u64, at: &str) -> Result<String, TestCaseError> {
        self.check_restorable(at)?;
        let generation = self.expected.pick(pick);
        let last = self.reloader.last_event();
        let want = self.expected.plan_revert(generation);
        let got = self.reloader.plan_revert(generation);
        let at = format!("{at}: plan_revert({generation}): expected {want:?}, got {got:?}");
        let outcome = match (want, &got) {
            (None, Err(RevertError::Snapshot(SnapshotError::NotKept { .. }))) => "no snapshot",
            (Some(want), Ok(plan)) => {
                prop_assert_eq!(decision(&plan.decision), want, "{}", at);
                want
            }
            _ => return Err(TestCaseError::fail(at)),
        };
        prop_assert!(Arc::ptr_eq(&last, &self.reloader.last_event()), "{}", at);
        Ok(outcome.to_string())
    }

    /// The generations `restorable()` can restore are the ones the model keeps.
    fn check_restorable(&self, at: &str) -> Result<(), TestCaseError> {
        let restorable = self.reloader.restorable();
        let restorable = restorable.map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
        let can: Vec<u64> = restorable
            .iter()
            .filter(|(_, snapshot)| snapshot.is_ok())
            .map(|(generation, _)| *generation)
            .collect();
        let kept: Vec<u64> = self.expected.kept.keys().copied().collect();
        prop_assert_eq!(
            can,
            kept,
            "{}: restorable generations: {:?}",
            at,
            restorable
        );
        Ok(())
    }
}

/// The name of a dry run's decision.
fn decision(decision: &Decision) -> &'static str {
    match decision {
        Decision::Unchanged => "unchanged",
        Decision::Apply { .. } => "apply",
        Decision::Defer { .. } => "defer",
        Decision::Reject { .. } => "reject",
        Decision::Invalid { .. } => "invalid",
        _ => "a decision this test does not know",
    }
}
