//! The engine's side of probation: a commit starts one, a reload of quarantined content is
//! refused, and a revert restores the last trusted version through the same commit as any
//! reload (prepare, apply in dependency order, rollback on failure, audit first, one store), as
//! a new generation recorded with its reason.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::decide::Decided;
use super::probation::{ProbationRevert, ProbationStatus, Quarantined, RevertReason};
use super::probation_cell::{OnProbation, Target};
use super::run::{Commit, Record, Stamp};
use super::{Reloader, State};
use crate::event::{ReloadResult, Trigger};
use crate::handle::Snapshot;
use crate::hot_reload::HotConfig;

impl<C: HotConfig> Reloader<C> {
    /// After a commit (the engine's lock held): puts the new live version, whose content key is
    /// `key`, on probation; `before` and `state` describe the version live until now.
    pub(super) fn begin_probation(&self, state: &State, before: &Arc<Snapshot<C>>, key: &str) {
        let Some(cell) = &self.inner.probation else {
            return;
        };
        let target = Target {
            snapshot: Arc::clone(before),
            key: state.last_hash.clone(),
            hashes: state.referenced.clone(),
            pending: state.pending.clone(),
        };
        cell.begin(self.inner.handle.snapshot(), key.to_string(), target);
    }

    /// The rejection of content `key` when it is quarantined, and whether to record it: not
    /// when the last recorded event already said so (the revert itself, or this rejection).
    pub(super) fn quarantine_refusal(&self, key: &str) -> Option<(String, Record)> {
        let entry = self.inner.probation.as_ref()?.quarantined(key)?;
        let reason = entry.refusal();
        let published = self.published();
        let said = match (&published.last_event.trigger, &published.last_event.result) {
            (Trigger::Probation(revert), _) => revert.reverted == entry.generation,
            (_, ReloadResult::Rejected { reason: said, .. }) => *said == reason,
            _ => false,
        };
        Some((reason, if said { Record::Not } else { Record::After }))
    }

    /// Reverts probation `id` (unless it ended meanwhile) for `reason`: called by the checker.
    pub(super) fn revert_probation(&self, id: u64, reason: RevertReason) {
        let Some(cell) = &self.inner.probation else {
            return;
        };
        let mut state = self.lock();
        let Some(on) = cell.take(id) else {
            return;
        };
        let live = self.inner.handle.snapshot();
        let revert = ProbationRevert {
            reverted: on.generation,
            restored: on.target.snapshot.generation(),
            reason,
        };
        tracing::warn!(%revert, "reverting the change on probation");
        let stamp = Stamp {
            started: Instant::now(),
            timestamp: SystemTime::now(),
            trigger: Trigger::Probation(revert.clone()),
        };
        let restored = on.target.snapshot.config().clone();
        let (changes, decided) = self
            .inner
            .pipeline
            .decide(live.config(), restored, Vec::new());
        let identity = on.target.snapshot.source().cloned();
        let outcome = match decided {
            Decided::Apply {
                effective,
                effective_diff,
                ..
            } => self.commit(Commit {
                live: &live,
                effective,
                effective_diff,
                // What waits for a restart is the restored version's, not the reverted change's.
                pending: on.target.pending.clone(),
                identity: identity.clone(),
                content: None,
                changes: &changes,
                stamp: &stamp,
            }),
            // The configurations are equal: the change was in files the configuration names,
            // whose earlier content no one kept.
            Decided::Unchanged => Err(ReloadResult::Rejected {
                reason: "nothing to restore in the configuration: the change came from files it \
                         names (`#[reload(watch)]`), whose earlier content is not kept"
                    .into(),
                refused: Vec::new(),
            }),
            Decided::Reject { reason, refused } => Err(ReloadResult::Rejected { reason, refused }),
            Decided::Defer { pending } => Err(ReloadResult::Rejected {
                reason: "only restart-only fields differ; they cannot change live".into(),
                refused: pending,
            }),
        };
        let (generation, result, record, ended) = match outcome {
            Ok((generation, result)) => {
                let (record, ended) = self.reverted(&mut state, &on, &revert, generation, &result);
                (generation, result, record, ended)
            }
            Err(result) => {
                let ended = revert_failed(&on, &revert, live.generation(), &result);
                (live.generation(), result, Record::After, ended)
            }
        };
        let event = Arc::new(stamp.event(generation, identity, changes, result));
        state.last_event = Arc::clone(&event);
        let audited = record == Record::AuditedFirst;
        let (pending, referenced) = (&state.pending, &state.referenced);
        self.inner
            .recorder
            .record(&event, pending, referenced, audited);
        // Told after the event is recorded, and before the engine's lock is released: a reload
        // that follows finds the content quarantined.
        let done = matches!(ended.0, ProbationStatus::Reverted { .. });
        crate::metrics::reverted(revert.reason.label(), done);
        let quarantined = cell.quarantine().len() + usize::from(ended.1.is_some());
        crate::metrics::quarantined(quarantined.min(super::probation_cell::MAX_QUARANTINED));
        cell.ended(ended.0, ended.1);
    }

    /// The revert committed: the engine follows the restored version,
    /// the reverted content is to be quarantined. Returns how its event is recorded, and how the
    /// probation ended.
    fn reverted(
        &self,
        state: &mut State,
        on: &OnProbation<C>,
        revert: &ProbationRevert,
        live: u64,
        result: &ReloadResult,
    ) -> (Record, Ended) {
        state.last_hash.clone_from(&on.target.key);
        state.referenced.clone_from(&on.target.hashes);
        state.pending.clone_from(&on.target.pending);
        // A change that came from a referenced file alone has the restored version's key:
        // quarantining it would refuse the good content.
        let quarantine = (on.target.key.as_deref() != Some(on.key.as_str())).then(|| Quarantined {
            sha256: on.key.clone(),
            generation: on.generation,
            reason: revert.reason.clone(),
        });
        let status = ProbationStatus::Reverted {
            revert: revert.clone(),
            live,
        };
        tracing::warn!(%revert, live, "change reverted");
        let record = match result {
            ReloadResult::Applied { .. } => Record::AuditedFirst,
            _ => Record::After,
        };
        (record, (status, quarantine))
    }
}

/// How a probation ended, and the content to quarantine.
type Ended = (ProbationStatus, Option<Quarantined>);

/// The revert was vetoed or failed: the change stays live (not on probation any more).
fn revert_failed<C>(
    on: &OnProbation<C>,
    revert: &ProbationRevert,
    live: u64,
    result: &ReloadResult,
) -> Ended {
    let why = match result {
        ReloadResult::Failed { error, rollback } => format!("{error}; {rollback}"),
        ReloadResult::Rejected { reason, .. } => reason.clone(),
        other => other.kind().to_string(),
    };
    let error = format!(
        "{why}; generation {} (the change on probation) stays live",
        on.generation
    );
    tracing::error!(%revert, %error, "the revert failed");
    let revert = revert.clone();
    let status = ProbationStatus::RevertFailed {
        revert,
        live,
        error,
    };
    (status, None)
}
