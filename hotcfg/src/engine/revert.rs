//! Reverting to an earlier version: its content, read back from the snapshot its audit record
//! names, is written back to the source and goes through the normal attempt (validate, decide,
//! prepare, apply, audit) with a [`Trigger::Revert`] naming it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{awaiting, Reloader, State};
use crate::audit::{read_records, Restorable, SnapshotError};
use crate::event::{ReloadEvent, ReloadResult, RevertTarget, Trigger};
use crate::hot_reload::HotConfig;
use crate::plan::{Decision, Plan, PlanOptions};
use crate::source::{ChangeNote, SourceError};

/// Why [`Reloader::revert_to`] did not make an earlier version live.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevertError {
    /// The version's content cannot be found or read back (no audit log, no such generation,
    /// a snapshot pruned, missing or corrupt): nothing was attempted.
    #[error("cannot revert: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The source cannot write the version back (it only reads, or its files are no longer the
    /// ones the version came from, or the write failed): nothing was changed.
    #[error("cannot revert to generation {generation}: {error}; nothing was changed")]
    Restore {
        /// The generation asked for.
        generation: u64,
        /// Why the source refused.
        error: SourceError,
    },
    /// The attempt ran and the version is not live: today's validation, the restart policy,
    /// a handler's veto or failure refused it. The attempt is recorded (`event`) and the source
    /// holds what it held before.
    #[error("revert to generation {generation} refused: {reason}")]
    Refused {
        /// The generation asked for.
        generation: u64,
        /// Why, as the event says.
        reason: String,
        /// The attempt's event.
        event: Arc<ReloadEvent>,
    },
}

impl<C: HotConfig> Reloader<C> {
    /// Makes the content generation `generation` applied live again, as a new generation.
    ///
    /// The content comes from the snapshot its audit record names (the newest record that
    /// applied that generation: generations start at 1 again after a restart), checked against
    /// its hash. It is checked with today's pipeline first: content that no longer validates, or
    /// that the restart policy refuses, is refused (recorded, the source untouched). Otherwise
    /// the source writes it back ([`Source::restore`](crate::Source::restore): a file is
    /// replaced atomically, so it stays the source of truth and the watcher then finds its own
    /// bytes, unchanged and not recorded again) and the normal attempt runs with
    /// [`Trigger::Revert`]: prepare, apply, rollback on failure, the audit record (naming the
    /// generation and its sha256), metrics (`hotcfg_reverts_total{reason="requested"}`). If the
    /// handlers refuse it, the source gets back what it held.
    ///
    /// Needs an [`audit_log`](crate::ReloaderBuilder::audit_log) (snapshots are kept beside it).
    /// The snapshots hold what the configuration held, secrets included, with mode 0600.
    ///
    /// ```
    /// use hotcfg::{FileSource, HotReload, Reloader};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.toml");
    /// std::fs::write(&path, "workers = 2\n")?;
    /// let reloader = Reloader::<Config>::builder(FileSource::new(&path))
    ///     .audit_log(dir.path().join("audit.jsonl"))
    ///     .build()?;
    /// std::fs::write(&path, "workers = 64\n")?;
    /// reloader.reload_now(); // generation 2: too many workers, it turns out
    ///
    /// let plan = reloader.plan_revert(1)?; // the dry run: what would change
    /// assert_eq!(plan.changes.changes()[0].path, "workers");
    /// let event = reloader.revert_to(1)?;
    /// assert_eq!(event.generation, 3);
    /// assert_eq!(reloader.handle().load().workers, 2);
    /// assert_eq!(std::fs::read_to_string(&path)?, "workers = 2\n"); // the file says so too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn revert_to(&self, generation: u64) -> Result<Arc<ReloadEvent>, RevertError> {
        if awaiting::refuses_blocking(self.inner.has_async) {
            let trigger = Trigger::Revert(RevertTarget::new(generation, ""));
            let event = Arc::new(self.would_block(trigger));
            return Err(refused(generation, event, None));
        }
        awaiting::off_worker(|| self.revert_here(generation))
    }

    /// [`revert_to`](Reloader::revert_to) without blocking the async caller.
    pub async fn revert_to_async(&self, generation: u64) -> Result<Arc<ReloadEvent>, RevertError> {
        let reloader = self.clone();
        awaiting::off_runtime(move || reloader.revert_here(generation)).await
    }

    /// The dry run of [`revert_to`](Reloader::revert_to): what reverting to `generation` would
    /// change, against the live version. Nothing is written.
    pub fn plan_revert(&self, generation: u64) -> Result<Plan, RevertError> {
        let target = self.find_snapshot(generation)?;
        Ok(self.plan_content(Ok(target.content)))
    }

    /// For each generation the audit log says was applied, whether
    /// [`revert_to`](Reloader::revert_to) can restore it: `Ok` with its snapshot's file, or why
    /// not (pruned, corrupt, never kept).
    pub fn restorable(
        &self,
    ) -> Result<BTreeMap<u64, Result<PathBuf, SnapshotError>>, SnapshotError> {
        let (log, snapshots) = self.inner.recorder.snapshots()?;
        let records = read_records(&log)?;
        Ok(snapshots.restorable(&log, &records))
    }

    fn find_snapshot(&self, generation: u64) -> Result<Restorable, SnapshotError> {
        let (log, snapshots) = self.inner.recorder.snapshots()?;
        snapshots.find(&log, generation)
    }

    /// [`revert_to`](Reloader::revert_to) on this thread.
    fn revert_here(&self, generation: u64) -> Result<Arc<ReloadEvent>, RevertError> {
        let mut state = self.lock();
        let content = self.find_snapshot(generation)?.content;
        let target = RevertTarget::new(generation, content.identity.sha256.clone());
        let trigger = Trigger::Revert(target);
        let plan = self.plan_here(Ok(content.clone()), PlanOptions::default());
        if matches!(
            plan.decision,
            Decision::Invalid { .. } | Decision::Reject { .. }
        ) {
            // Refused as any attempt on this content would be; recorded, the source untouched.
            let (event, record) = self.run_with(&mut state, trigger, Some(content));
            let event = self.finish(&mut state, event, record);
            // Content that is live already is found unchanged before it is validated again.
            return match event.result.is_ok() {
                true => Ok(event),
                false => Err(refused(generation, event, None)),
            };
        }
        let source = self.inner.source.as_ref();
        let live = self.inner.handle.snapshot();
        let before = source.read().ok();
        // Who reverted, and to what, travel with the version (a store that keeps notes writes it).
        let mut restoring = content;
        let reason = format!("revert to generation {generation}");
        restoring.identity.change = Some(ChangeNote::by_current_user().reason(reason));
        source
            .restore(&restoring, live.source())
            .map_err(|error| RevertError::Restore { generation, error })?;
        let event = self.attempt_restored(&mut state, trigger);
        if event.result.is_ok() {
            return Ok(event);
        }
        // Not made live: the source gets back what it held.
        let put_back = match before {
            Some(before) => source.restore(&before, live.source()).err(),
            None => Some(SourceError::new(
                source.name(),
                crate::source::SourceErrorKind::Unreadable,
                "what it held before could not be read",
            )),
        };
        Err(refused(generation, event, put_back))
    }

    /// The normal attempt, reading the source that now holds the restored version.
    fn attempt_restored(&self, state: &mut State, trigger: Trigger) -> Arc<ReloadEvent> {
        let (event, record) = self.run(state, trigger);
        self.finish(state, event, record)
    }
}

/// The error of a revert whose attempt did not make it live; `put_back`: the source could not
/// get back what it held.
fn refused(generation: u64, event: Arc<ReloadEvent>, put_back: Option<SourceError>) -> RevertError {
    let mut reason = match &event.result {
        ReloadResult::Failed { error, rollback } if rollback.was_attempted() => {
            format!("{error}; {rollback}")
        }
        ReloadResult::Failed { error, .. } => error.to_string(),
        ReloadResult::Rejected { reason, .. } => reason.clone(),
        other => other.kind().to_string(),
    };
    if let Some(error) = put_back {
        tracing::error!(%error, "the source could not get back what it held before the revert");
        reason.push_str(&format!(
            "; and the source could not get back what it held before: {error}"
        ));
    }
    RevertError::Refused {
        generation,
        reason,
        event,
    }
}
