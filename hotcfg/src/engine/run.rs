//! One reload attempt: read, unchanged-check, load, decide, then carry the decision out. The
//! commit prepares every affected handler (any may veto), applies them in dependency order
//! (rolling back on failure) and only then stores the new version with one atomic swap.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::decide::Decided;
use super::referenced::Hashes;
use super::{Reloader, State};
use crate::diff::{Change, Diff};
use crate::event::{ReloadError, ReloadEvent, ReloadResult, Rollback, Trigger};
use crate::handle::Snapshot;
use crate::handlers::{Step, StepFailure};
use crate::hot_reload::HotConfig;
use crate::load::ConfigError;
use crate::plan::paths;
use crate::source::{SourceContent, SourceIdentity};

/// What one attempt came to, before it is stamped with its trigger and timing.
struct Attempt {
    generation: u64,
    source: Option<SourceIdentity>,
    changes: Diff,
    result: ReloadResult,
    record: Record,
}

/// How an attempt's event is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// Recorded after the attempt (audit log included).
    After,
    /// Recorded after the attempt; its audit record was written before the commit.
    AuditedFirst,
    /// Not recorded: the attempt found the bytes the last recorded event already reported as
    /// live (a manual reload after the watcher applied the same edit). Only the caller sees it.
    Not,
}

/// When and why an attempt started: what its event (and its audit record) is stamped with.
pub(super) struct Stamp {
    pub(super) started: Instant,
    pub(super) timestamp: SystemTime,
    pub(super) trigger: Trigger,
}

impl Stamp {
    pub(super) fn event(
        &self,
        generation: u64,
        source: Option<SourceIdentity>,
        changes: Diff,
        result: ReloadResult,
    ) -> ReloadEvent {
        ReloadEvent {
            generation,
            timestamp: self.timestamp,
            trigger: self.trigger.clone(),
            source,
            changes,
            result,
            duration: self.started.elapsed(),
        }
    }
}

impl Attempt {
    fn unchanged(generation: u64, source: Option<SourceIdentity>, record: Record) -> Self {
        Attempt {
            generation,
            source,
            changes: Diff::empty(),
            result: ReloadResult::Unchanged,
            record,
        }
    }

    /// The candidate could not be read, parsed or validated: nothing reached the handlers.
    fn failed(generation: u64, source: Option<SourceIdentity>, error: ConfigError) -> Self {
        Attempt {
            generation,
            source,
            changes: Diff::empty(),
            result: ReloadResult::Failed {
                error: error.into(),
                rollback: Rollback::NotNeeded,
            },
            record: Record::After,
        }
    }
}

/// What was read: the version, its hash, and the hashes of the files it names; every difference
/// from the live version (restart-only ones included, for the audit record); when it started.
struct Read<'a> {
    identity: Option<SourceIdentity>,
    content: &'a SourceContent,
    sha256: String,
    hashes: Hashes,
    changes: &'a Diff,
    stamp: &'a Stamp,
}

/// A decided candidate on its way to the handlers and the store.
pub(super) struct Commit<'a, C> {
    pub(super) live: &'a Snapshot<C>,
    pub(super) effective: C,
    pub(super) effective_diff: Diff,
    pub(super) pending: Vec<Change>,
    pub(super) identity: Option<SourceIdentity>,
    /// What the source held: its snapshot is kept with the commit's audit record (`None`: a
    /// probation revert, whose content's snapshot was kept when it was first committed).
    pub(super) content: Option<&'a SourceContent>,
    pub(super) changes: &'a Diff,
    pub(super) stamp: &'a Stamp,
}

impl<C: HotConfig> Reloader<C> {
    /// One attempt's event, and how to record it.
    pub(super) fn run(&self, state: &mut State, trigger: Trigger) -> (ReloadEvent, Record) {
        self.run_with(state, trigger, None)
    }

    /// [`run`](Reloader::run) on `given` content instead of a read of the source (a revert
    /// refused before its content is written back).
    pub(super) fn run_with(
        &self,
        state: &mut State,
        trigger: Trigger,
        given: Option<SourceContent>,
    ) -> (ReloadEvent, Record) {
        let span = tracing::info_span!("reload", %trigger);
        let _enter = span.enter();
        let stamp = Stamp {
            started: Instant::now(),
            timestamp: SystemTime::now(),
            trigger,
        };
        let attempt = self.attempt(state, &stamp, given);
        let event = stamp.event(
            attempt.generation,
            attempt.source,
            attempt.changes,
            attempt.result,
        );
        (event, attempt.record)
    }

    /// Read, unchanged-check, load, decide, then carry the decision out.
    fn attempt(&self, state: &mut State, stamp: &Stamp, given: Option<SourceContent>) -> Attempt {
        let inner = &self.inner;
        let live = inner.handle.snapshot();
        let generation = live.generation();
        let read_source = given.is_none();
        let content = match given.map_or_else(|| inner.source.read(), Ok) {
            Ok(content) => content,
            Err(err) => {
                tracing::warn!(%err, "cannot read the configuration; keeping the live one");
                return Attempt::failed(generation, None, ConfigError::from(err));
            }
        };
        // The first read after a last-known-good start ends staleness: worth recording.
        let was_stale = read_source && self.source_answered();
        let identity = Some(content.identity.clone());
        // The bytes' hash, with the environment overlay's variables when there is one.
        let sha256 = inner.pipeline.content_key(&content);
        if let Some((reason, record)) = self.quarantine_refusal(&sha256) {
            let result = ReloadResult::Rejected {
                reason,
                refused: Vec::new(),
            };
            let changes = Diff::empty();
            return Attempt {
                generation,
                source: identity,
                changes,
                result,
                record,
            };
        }
        if state.last_hash.as_deref() == Some(sha256.as_str())
            && (inner.referenced.changes(live.config(), &state.referenced).0).is_empty()
        {
            tracing::debug!("same content as the live configuration");
            // Events name the source's own hash (without the environment's variables).
            let record = if !was_stale && self.reported_live(&content.identity.sha256) {
                Record::Not
            } else {
                Record::After
            };
            return Attempt::unchanged(generation, identity, record);
        }
        let candidate = match inner.pipeline.load(&content) {
            Ok(candidate) => candidate,
            Err(err) => {
                tracing::warn!(%err, "candidate refused; keeping the live configuration");
                return Attempt::failed(generation, identity, err);
            }
        };
        let (referenced, hashes) = inner.referenced.changes(&candidate, &state.referenced);
        let (changes, decided) = inner.pipeline.decide(live.config(), candidate, referenced);
        let read = Read {
            identity: identity.clone(),
            content: &content,
            sha256,
            hashes,
            changes: &changes,
            stamp,
        };
        let (generation, result, record) = self.carry_out(state, &live, decided, read);
        Attempt {
            generation,
            source: identity,
            changes,
            result,
            record,
        }
    }

    /// Whether the last recorded event already says that the content hashed `sha256` is live
    /// (applied, deferred or found unchanged): another attempt finding it has nothing to report.
    /// After a failure or a rejection it does: the live bytes are back.
    fn reported_live(&self, sha256: &str) -> bool {
        let published = self.published();
        let last = &published.last_event;
        last.result.is_ok() && last.source.as_ref().is_some_and(|s| s.sha256 == sha256)
    }

    /// Does what was decided; the state follows what is live afterwards. Returns the live
    /// generation, the outcome, and how to record it.
    fn carry_out(
        &self,
        state: &mut State,
        live: &Arc<Snapshot<C>>,
        decided: Decided<C>,
        read: Read<'_>,
    ) -> (u64, ReloadResult, Record) {
        let generation = live.generation();
        match decided {
            Decided::Unchanged => {
                state.last_hash = Some(read.sha256);
                state.pending.clear();
                (generation, ReloadResult::Unchanged, Record::After)
            }
            Decided::Reject { reason, refused } => {
                tracing::warn!(%reason, "reload rejected");
                let result = ReloadResult::Rejected { reason, refused };
                (generation, result, Record::After)
            }
            Decided::Defer { pending } => {
                // Nothing is applied, but the engine's state changes: its record comes first.
                let result = applied(Vec::new(), pending.clone());
                let record =
                    read.stamp
                        .event(generation, read.identity, read.changes.clone(), result);
                match self.inner.recorder.audit_first(&record) {
                    Ok(result) => {
                        tracing::warn!(pending = pending.len(), "restart-only changes deferred");
                        state.last_hash = Some(read.sha256);
                        state.pending = pending;
                        (generation, result, Record::AuditedFirst)
                    }
                    Err(error) => {
                        tracing::error!(%error, "restart-only changes not deferred");
                        let rollback = Rollback::NotNeeded;
                        let result = ReloadResult::Failed { error, rollback };
                        (generation, result, Record::After)
                    }
                }
            }
            Decided::Apply {
                effective,
                effective_diff,
                pending,
            } => {
                let commit = Commit {
                    live,
                    effective,
                    effective_diff,
                    pending,
                    identity: read.identity,
                    content: Some(read.content),
                    changes: read.changes,
                    stamp: read.stamp,
                };
                match self.commit(commit) {
                    Ok((generation, result)) => {
                        // The version live before is what a revert would restore.
                        self.begin_probation(state, live, &read.sha256);
                        state.last_hash = Some(read.sha256);
                        state.referenced = read.hashes;
                        state.pending = result.pending_restart().to_vec();
                        (generation, result, Record::AuditedFirst)
                    }
                    Err(result) => (generation, result, Record::After),
                }
            }
        }
    }

    /// Prepare every affected handler (any may veto), apply them in dependency order (rolling
    /// back on failure), then store the new version with one atomic swap. `Err` is the outcome of
    /// a veto or a failure; the live version is unchanged then.
    pub(super) fn commit(
        &self,
        commit: Commit<'_, C>,
    ) -> Result<(u64, ReloadResult), ReloadResult> {
        let next = commit.live.generation() + 1;
        let handlers = &self.inner.handlers;
        let order = self.inner.pipeline.scope_order(&commit.effective_diff);
        let step = Step {
            old: commit.live.config(),
            new: &commit.effective,
            diff: &commit.effective_diff,
            generation: next,
            config_dir: self.inner.referenced.base.as_deref(),
        };
        if let Err((scope, failure)) = handlers.prepare_all(&order, &step) {
            let verdict = failure.into_verdict(scope);
            let reason = verdict.refusal().unwrap_or_default();
            tracing::warn!(%reason, "reload rejected");
            let refused = commit
                .effective_diff
                .in_scope(&verdict.scope)
                .cloned()
                .collect();
            return Err(ReloadResult::Rejected { reason, refused });
        }
        let applied_handlers = match handlers.apply_all(&order, &step) {
            Ok(applied_handlers) => applied_handlers,
            Err((scope, failure, rollback)) => {
                let error = match failure {
                    StepFailure::Error(message) => ReloadError::Handler { scope, message },
                    StepFailure::Panic(message) => ReloadError::HandlerPanicked { scope, message },
                };
                tracing::error!(%error, %rollback, "reload failed");
                return Err(ReloadResult::Failed { error, rollback });
            }
        };
        // Every handler applied. The audit record precedes the store: nothing becomes live
        // without it (unless the engine was told to go on), and on error the handlers are undone.
        let result = applied(commit.effective_diff.changes().to_vec(), commit.pending);
        let record = commit.stamp.event(
            next,
            commit.identity.clone(),
            commit.changes.clone(),
            result,
        );
        let recorder = &self.inner.recorder;
        let result = recorder
            .audit_commit(&record, commit.content)
            .map_err(|error| {
                let rollback = applied_handlers.rollback(&step);
                tracing::error!(%error, %rollback, "reload failed");
                ReloadResult::Failed { error, rollback }
            })?;
        // Published before the store, so a reader that sees the new generation never sees the
        // previous generation's pending restarts beside it.
        self.inner
            .recorder
            .publish_pending(result.pending_restart());
        let snapshot = Snapshot::new(next, commit.identity, commit.effective);
        self.inner.handle.store(snapshot);
        tracing::info!(
            generation = next,
            changes = commit.effective_diff.len(),
            "configuration applied"
        );
        Ok((next, result))
    }
}

/// The outcome of a commit (or of deferring restart-only changes: nothing applied).
fn applied(applied: Vec<Change>, pending_restart: Vec<Change>) -> ReloadResult {
    let mut warnings = Vec::new();
    if !pending_restart.is_empty() {
        warnings.push(format!(
            "{} restart-only change(s) deferred until restart: {}",
            pending_restart.len(),
            paths(&pending_restart)
        ));
    }
    ReloadResult::Applied {
        applied,
        warnings,
        pending_restart,
    }
}
