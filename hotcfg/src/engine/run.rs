//! One reload attempt: read, unchanged-check, load, decide, then carry the decision out. The
//! commit prepares every affected handler (any may veto), applies them in dependency order
//! (rolling back on failure) and only then stores the new version with one atomic swap.

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
use crate::source::SourceIdentity;

/// What one attempt came to, before it is stamped with its trigger and timing.
struct Attempt {
    generation: u64,
    source: Option<SourceIdentity>,
    changes: Diff,
    result: ReloadResult,
}

impl Attempt {
    fn unchanged(generation: u64, source: Option<SourceIdentity>) -> Self {
        Attempt {
            generation,
            source,
            changes: Diff::empty(),
            result: ReloadResult::Unchanged,
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
        }
    }
}

/// What was read: the version, its hash, and the hashes of the files it names.
struct Read {
    identity: Option<SourceIdentity>,
    sha256: String,
    hashes: Hashes,
}

/// A decided candidate on its way to the handlers and the store.
struct Commit<'a, C> {
    live: &'a Snapshot<C>,
    effective: C,
    effective_diff: Diff,
    pending: Vec<Change>,
    identity: Option<SourceIdentity>,
}

impl<C: HotConfig> Reloader<C> {
    pub(super) fn run(&self, state: &mut State, trigger: Trigger) -> ReloadEvent {
        let span = tracing::info_span!("reload", %trigger);
        let _enter = span.enter();
        let started = Instant::now();
        let timestamp = SystemTime::now();
        let attempt = self.attempt(state);
        ReloadEvent {
            generation: attempt.generation,
            timestamp,
            trigger,
            source: attempt.source,
            changes: attempt.changes,
            result: attempt.result,
            duration: started.elapsed(),
        }
    }

    /// Read, unchanged-check, load, decide, then carry the decision out.
    fn attempt(&self, state: &mut State) -> Attempt {
        let inner = &self.inner;
        let live = inner.handle.snapshot();
        let generation = live.generation();
        let content = match inner.source.read() {
            Ok(content) => content,
            Err(err) => {
                tracing::warn!(%err, "cannot read the configuration; keeping the live one");
                return Attempt::failed(generation, None, ConfigError::from(err));
            }
        };
        let identity = Some(content.identity.clone());
        let sha256 = content.identity.sha256.clone();
        if state.last_hash.as_deref() == Some(sha256.as_str())
            && (inner.referenced.changes(live.config(), &state.referenced).0).is_empty()
        {
            tracing::debug!("same content as the live configuration");
            return Attempt::unchanged(generation, identity);
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
            sha256,
            hashes,
        };
        let (generation, result) = self.carry_out(state, &live, decided, read);
        Attempt {
            generation,
            source: identity,
            changes,
            result,
        }
    }

    /// Does what was decided; the state follows what is live afterwards. Returns the live
    /// generation and the outcome.
    fn carry_out(
        &self,
        state: &mut State,
        live: &Snapshot<C>,
        decided: Decided<C>,
        read: Read,
    ) -> (u64, ReloadResult) {
        let generation = live.generation();
        match decided {
            Decided::Unchanged => {
                state.last_hash = Some(read.sha256);
                state.pending.clear();
                (generation, ReloadResult::Unchanged)
            }
            Decided::Reject { reason, refused } => {
                tracing::warn!(%reason, "reload rejected");
                (generation, ReloadResult::Rejected { reason, refused })
            }
            Decided::Defer { pending } => {
                tracing::warn!(pending = pending.len(), "restart-only changes deferred");
                state.last_hash = Some(read.sha256);
                state.pending.clone_from(&pending);
                (generation, applied(Vec::new(), pending))
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
                };
                match self.commit(commit) {
                    Ok((generation, result)) => {
                        state.last_hash = Some(read.sha256);
                        state.referenced = read.hashes;
                        state.pending = result.pending_restart().to_vec();
                        (generation, result)
                    }
                    Err(result) => (generation, result),
                }
            }
        }
    }

    /// Prepare every affected handler (any may veto), apply them in dependency order (rolling
    /// back on failure), then store the new version with one atomic swap. `Err` is the outcome of
    /// a veto or a failure; the live version is unchanged then.
    fn commit(&self, commit: Commit<'_, C>) -> Result<(u64, ReloadResult), ReloadResult> {
        let next = commit.live.generation() + 1;
        let handlers = &self.inner.handlers;
        let order = self.inner.pipeline.scope_order(&commit.effective_diff);
        let step = Step {
            old: commit.live.config(),
            new: &commit.effective,
            diff: &commit.effective_diff,
            generation: next,
        };
        if let Err((scope, failure)) = handlers.prepare_all(&order, &step) {
            let reason = match failure {
                StepFailure::Error(e) => format!("vetoed by the `{scope}` handler: {e}"),
                StepFailure::Panic(e) => format!("the `{scope}` handler panicked in prepare: {e}"),
            };
            tracing::warn!(%reason, "reload rejected");
            let refused = commit.effective_diff.in_scope(&scope).cloned().collect();
            return Err(ReloadResult::Rejected { reason, refused });
        }
        if let Err((scope, failure, rollback)) = handlers.apply_all(&order, &step) {
            let error = match failure {
                StepFailure::Error(message) => ReloadError::Handler { scope, message },
                StepFailure::Panic(message) => ReloadError::HandlerPanicked { scope, message },
            };
            tracing::error!(%error, %rollback, "reload failed");
            return Err(ReloadResult::Failed { error, rollback });
        }
        // Every handler applied. A write that must precede the store (a fail-closed audit
        // record) goes here, and on error undoes the handlers with `Applied::rollback`.
        let snapshot = Snapshot::new(next, commit.identity, commit.effective);
        self.inner.handle.store(snapshot);
        tracing::info!(
            generation = next,
            changes = commit.effective_diff.len(),
            "configuration applied"
        );
        Ok((
            next,
            applied(commit.effective_diff.into_changes(), commit.pending),
        ))
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
