//! Checks of the events a step returned against the events it broadcast.

use std::sync::Arc;

use hotcfg::{ReloadEvent, ReloadResult, Trigger};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Checks that the `returned` events missing from `broadcast` were rightly left unrecorded: a
/// reload finding the bytes the last recorded event reported live (issue 14), which answers
/// `unchanged`; and a refusal of quarantined bytes the last recorded event already named (the
/// probation revert, or the same refusal: issue 17). Attempts run one at a time, so their start
/// times order them. Returns the last recorded event, for the next step.
pub(super) fn check_unrecorded(
    mut last_recorded: Arc<ReloadEvent>,
    broadcast: &[Arc<ReloadEvent>],
    returned: &[Arc<ReloadEvent>],
    at: &str,
) -> Result<Arc<ReloadEvent>, TestCaseError> {
    let mut timeline: Vec<(&Arc<ReloadEvent>, bool)> =
        broadcast.iter().map(|e| (e, true)).collect();
    for event in returned {
        if !timeline.iter().any(|(seen, _)| Arc::ptr_eq(seen, event)) {
            timeline.push((event, false));
        }
    }
    timeline.sort_by_key(|(event, _)| event.timestamp);
    let sha = |event: &ReloadEvent| event.source.as_ref().map(|s| s.sha256.clone());
    for (event, recorded) in timeline {
        if recorded {
            last_recorded = Arc::clone(event);
            continue;
        }
        let live_already = event.result == ReloadResult::Unchanged
            && last_recorded.result.is_ok()
            && sha(event).is_some()
            && sha(event) == sha(&last_recorded);
        prop_assert!(
            live_already || quarantine_said(event, &last_recorded),
            "{}: a returned event was not recorded: {} (the last recorded one: {})",
            at,
            event,
            last_recorded
        );
    }
    Ok(last_recorded)
}

/// Whether `event` refuses quarantined content.
pub(super) fn says_quarantined(event: &ReloadEvent) -> bool {
    matches!(&event.result, ReloadResult::Rejected { reason, .. } if reason.contains("is quarantined"))
}

/// Whether `event` refuses quarantined content that `last` already named: `last` reverted it,
/// or refused it with the same words.
fn quarantine_said(event: &ReloadEvent, last: &ReloadEvent) -> bool {
    let ReloadResult::Rejected { reason, .. } = &event.result else {
        return false;
    };
    says_quarantined(event)
        && match &last.trigger {
            Trigger::Probation(revert) => {
                reason.contains(&format!("generation {} was reverted", revert.reverted))
            }
            _ => last.result == event.result,
        }
}

/// The generations of the distinct events among `events` that applied something, in order.
pub(super) fn distinct_applied_generations(events: &[Arc<ReloadEvent>]) -> Vec<u64> {
    let mut applied: Vec<&Arc<ReloadEvent>> = Vec::new();
    for event in events {
        let changed =
            matches!(&event.result, ReloadResult::Applied { applied, .. } if !applied.is_empty());
        if changed && !applied.iter().any(|seen| Arc::ptr_eq(seen, event)) {
            applied.push(event);
        }
    }
    let mut generations: Vec<u64> = applied.iter().map(|e| e.generation).collect();
    generations.sort_unstable();
    generations
}
