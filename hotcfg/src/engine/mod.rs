//! The reload engine. A reload goes through these stages, one file each:
//!
//! - [`Reloader`] (this file): the handle callers hold; one reload at a time, and triggers that
//!   arrive during a reload coalesce into one more.
//! - `builder`: [`ReloaderBuilder`] sets the engine up and loads the first version.
//! - `run`: one attempt: read, unchanged-check, load, decide, then commit (prepare, apply in
//!   dependency order, roll back on failure, one atomic store).
//! - `pipeline` ([`Pipeline`]): load (parse, validate) and decide, shared with the CLI;
//!   `decide` is the pure decision; `scope_graph` orders the scopes.
//! - `recorder`: history, published state, audit log, metrics, broadcast and subscribers.
//! - `referenced`: the files `#[reload(watch)]` fields name, hashed.
//! - `probation` (types), `probation_cell` (state), `probation_thread` (the checker),
//!   `probation_revert` (start, quarantine, revert), `probation_api` (public calls): safety after
//!   the commit.
//! - `last_known_good`: a start from the last version applied when the source cannot be reached,
//!   stale until it answers.

mod awaiting;
mod builder;
pub(crate) mod decide;
mod last_known_good;
mod pipeline;
mod probation;
mod probation_api;
mod probation_cell;
mod probation_revert;
mod probation_thread;
mod recorder;
mod referenced;
mod revert;
mod run;
pub(crate) mod scope_graph;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

pub(crate) use awaiting::off_runtime;
pub use builder::{BuildError, ReloaderBuilder, DEFAULT_HISTORY_LEN};
pub use last_known_good::LastKnownGoodStart;
pub use pipeline::Pipeline;
pub use probation::{
    AsyncHealthCheck, ConfirmError, Health, HealthCheck, ProbationRevert, ProbationStatus, Probe,
    Quarantined, RevertReason, DEFAULT_HEALTH_TIMEOUT,
};
pub use revert::RevertError;

use crate::diff::{Change, Diff};
use crate::event::{ReloadEvent, Trigger};
use crate::handle::Handle;
use crate::handlers::{Handlers, Step};
use crate::hot_reload::{HotConfig, HotReload};
use crate::plan::{Plan, PlanOptions, RestartPolicy};
use crate::source::{Source, SourceContent, SourceError};
use probation_cell::ProbationCell;
use recorder::{Published, Recorder};
use referenced::{Hashes, Referenced};
use run::Record;

/// The hot-reload engine for configuration type `C`.
///
/// Cheap to clone; all clones drive the same engine. One reload runs at a time; a trigger that
/// arrives during a reload causes exactly one more reload of the newest content afterwards (callers
/// that arrive together share it).
///
/// ```
/// use hotcfg::{FileSource, HotReload, Reloader, ReloadResult};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "limits")]
///     workers: usize,
/// }
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.toml");
/// std::fs::write(&path, "workers = 2")?;
///
/// let reloader = Reloader::<Config>::builder(FileSource::new(&path))
///     .on_apply("limits", |cx| {
///         println!("workers: {} -> {}", cx.old.workers, cx.new.workers);
///         Ok(())
///     })
///     .build()?;
/// let handle = reloader.handle();
/// assert_eq!(handle.load().workers, 2);
///
/// std::fs::write(&path, "workers = 4")?;
/// let event = reloader.reload_now();
/// assert!(matches!(event.result, ReloadResult::Applied { .. }));
/// assert_eq!(handle.load().workers, 4);
/// assert_eq!(handle.generation(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reloader<C: HotReload> {
    inner: Arc<Inner<C>>,
}

impl<C: HotReload> Clone for Reloader<C> {
    fn clone(&self) -> Self {
        Reloader {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: HotReload + Send + Sync> fmt::Debug for Reloader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.inner.source)
            .field("pipeline", &self.inner.pipeline)
            .field("generation", &self.inner.handle.load().generation())
            .finish_non_exhaustive()
    }
}

struct Inner<C: HotReload> {
    source: Box<dyn Source>,
    pipeline: Pipeline<C>,
    handlers: Handlers<C>,
    referenced: Referenced,
    handle: Handle<C>,
    recorder: Recorder,
    /// Some handlers are async: they run on a captured runtime, which blocking calls on a
    /// current-thread runtime would stall.
    has_async: bool,
    /// Reload requests taken so far (tickets).
    requested: AtomicU64,
    /// Held for a whole attempt: one reload at a time.
    state: Mutex<State>,
    /// Set up with `probation` or `confirm_within`: the change on probation, the quarantine.
    probation: Option<Arc<ProbationCell<C>>>,
    /// Started from a last-known-good version, and no read of the source answered since.
    stale: Mutex<Option<LastKnownGoodStart>>,
}

/// What the engine knows between attempts; only the attempt holding the lock changes it.
struct State {
    /// Hash of the source content the live state reflects (applied or deferred).
    last_hash: Option<String>,
    /// Hashes of the files `#[reload(watch)]` fields of the live configuration name.
    referenced: Hashes,
    pending: Vec<Change>,
    /// Every ticket up to this one has been served by a finished reload.
    covered: u64,
    last_event: Arc<ReloadEvent>,
}

impl<C: HotConfig> Reloader<C> {
    /// Starts setting up an engine reading from `source`.
    pub fn builder(source: impl Source) -> ReloaderBuilder<C> {
        ReloaderBuilder::new(Box::new(source))
    }

    /// A reader of the live configuration.
    pub fn handle(&self) -> Handle<C> {
        self.inner.handle.clone()
    }

    /// The source this engine reads.
    pub fn source(&self) -> &dyn Source {
        self.inner.source.as_ref()
    }

    /// The restart policy in force.
    pub fn policy(&self) -> RestartPolicy {
        self.inner.pipeline.restart_policy()
    }

    /// The stages a candidate goes through before the commit.
    pub fn pipeline(&self) -> &Pipeline<C> {
        &self.inner.pipeline
    }

    /// Reloads now (trigger [`Trigger::Manual`]) and returns what happened.
    pub fn reload_now(&self) -> Arc<ReloadEvent> {
        self.trigger(Trigger::Manual)
    }

    /// Reloads because of `trigger` and returns what happened. Blocks while another reload runs;
    /// if a reload that started after this call finishes first, its event is returned instead of
    /// running another one.
    ///
    /// A reload that finds the very bytes (and watched files) the last recorded event already
    /// reported live returns an [`Unchanged`](crate::ReloadResult::Unchanged) event that is not
    /// recorded: no history entry, audit record, metric or broadcast. So `reload_now()` after the
    /// watcher applied the same edit says "unchanged" without a duplicate line. After a failed or
    /// rejected attempt, finding the live bytes again is recorded (the problem is gone).
    ///
    /// Called from inside a tokio runtime, the attempt runs on a thread of its own while this one
    /// waits (handlers never run on a runtime worker, so async ones behave as anywhere else); on
    /// a current-thread runtime with async handlers it is refused with
    /// [`ReloadError::WouldBlockRuntime`](crate::ReloadError::WouldBlockRuntime), unrecorded:
    /// use [`reload`](Reloader::reload)`().await` there.
    pub fn trigger(&self, trigger: Trigger) -> Arc<ReloadEvent> {
        if awaiting::refuses_blocking(self.inner.has_async) {
            return Arc::new(self.would_block(trigger));
        }
        awaiting::off_worker(|| self.trigger_here(trigger))
    }

    /// [`trigger`](Reloader::trigger) on this thread (which must not be a runtime worker when
    /// there are async handlers).
    pub(crate) fn trigger_here(&self, trigger: Trigger) -> Arc<ReloadEvent> {
        let ticket = self.inner.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.lock();
        if state.covered >= ticket {
            tracing::debug!(%trigger, "coalesced with a reload that started after it");
            return Arc::clone(&state.last_event);
        }
        // Everything requested until now is served by this reload: it reads the newest content.
        let covers = self.inner.requested.load(Ordering::SeqCst);
        let (event, record) = self.run(&mut state, trigger);
        state.covered = covers;
        self.finish(&mut state, event, record)
    }

    /// Keeps `event` as the last one and records it as `record` says.
    fn finish(&self, state: &mut State, event: ReloadEvent, record: Record) -> Arc<ReloadEvent> {
        let event = Arc::new(event);
        state.last_event = Arc::clone(&event);
        if record != Record::Not {
            let (pending, referenced) = (&state.pending, &state.referenced);
            let audited = record == Record::AuditedFirst;
            self.inner
                .recorder
                .record(&event, pending, referenced, audited);
        }
        event
    }

    /// A dry run against the source's current content.
    pub fn plan(&self) -> Plan {
        self.plan_content(self.inner.source.read())
    }

    /// A dry run of `content` (read elsewhere: a file given on the command line).
    pub fn plan_content(&self, content: Result<SourceContent, SourceError>) -> Plan {
        self.plan_with(content, PlanOptions::default())
    }

    /// A dry run of `content` that may do more than decide, as `options` say: with
    /// [`PlanOptions::run_prepare`], every handler an apply would run is asked (`prepare` only,
    /// never `apply`) and the plan carries each verdict; a veto makes the decision the rejection
    /// the reload would give. Only for handlers whose `prepare` changes nothing. Asking handlers
    /// from inside a tokio runtime follows [`trigger`](Reloader::trigger)'s rule; where that
    /// refuses, the handlers are not asked ([`Plan::prepare`] is `None`): use
    /// [`plan_async`](Reloader::plan_async).
    ///
    /// ```
    /// use hotcfg::{BoxError, Decision, HotReload, MemorySource, PlanOptions, Reloader, Verdict};
    /// use hotcfg::{ApplyContext, ScopeHandler, SourceContent, Format};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// /// Refuses to shrink below the 3 busy workers.
    /// struct Pool;
    /// impl ScopeHandler<Config> for Pool {
    ///     fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
    ///         if cx.new.workers < 3 {
    ///             return Err("3 workers are busy".into());
    ///         }
    ///         Ok(())
    ///     }
    ///     fn apply(&self, _: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
    ///         unreachable!("a dry run never applies")
    ///     }
    /// }
    ///
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 4");
    /// let reloader = Reloader::<Config>::builder(source).handler("pool", Pool).build()?;
    /// let candidate = SourceContent::single("candidate", Format::Toml, "workers = 2");
    /// let plan = reloader.plan_with(Ok(candidate), PlanOptions::new().run_prepare());
    ///
    /// let verdicts = plan.prepare.as_deref().unwrap_or_default();
    /// assert_eq!(verdicts[0].scope, "pool");
    /// assert_eq!(verdicts[0].verdict, Verdict::Vetoed { message: "3 workers are busy".into() });
    /// assert!(matches!(&plan.decision, Decision::Reject { reason, .. }
    ///     if reason == "vetoed by the `pool` handler: 3 workers are busy"));
    /// assert_eq!(reloader.handle().load().workers, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan_with(
        &self,
        content: Result<SourceContent, SourceError>,
        options: PlanOptions,
    ) -> Plan {
        // Asking handlers waits for a running reload: they see the live version it would see.
        if !options.runs_prepare() {
            return self.plan_here(content, options);
        }
        if awaiting::refuses_blocking(self.inner.has_async) {
            tracing::warn!("handlers not asked: use plan_async(..).await on this runtime");
            return self.plan_here(content, PlanOptions::default());
        }
        awaiting::off_worker(|| self.plan_here(content, options))
    }

    /// [`plan_with`](Reloader::plan_with) on this thread.
    fn plan_here(&self, content: Result<SourceContent, SourceError>, options: PlanOptions) -> Plan {
        let _one_at_a_time = options.runs_prepare().then(|| self.lock());
        let live = self.inner.handle.snapshot();
        let handlers = &self.inner.handlers;
        let referenced = |candidate: &C| {
            let published = self.published();
            let (changes, _) = self
                .inner
                .referenced
                .changes(candidate, &published.referenced);
            changes
        };
        let prepare = |effective: &C, diff: &Diff, order: &[String]| {
            options.runs_prepare().then(|| {
                let step = Step {
                    old: live.config(),
                    new: effective,
                    diff,
                    generation: live.generation() + 1,
                    config_dir: self.inner.referenced.base.as_deref(),
                };
                handlers.prepare_each(order, &step)
            })
        };
        self.inner.pipeline.plan_prepared(
            live.config(),
            content,
            referenced,
            |order| handlers.with_handlers(&order),
            prepare,
        )
    }

    /// How many reloads have been requested since start (served or coalesced), for monitoring.
    pub fn requested_reloads(&self) -> u64 {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// The most recent events, oldest first.
    pub fn history(&self) -> Vec<Arc<ReloadEvent>> {
        self.published().history.iter().cloned().collect()
    }

    /// Restart-only changes in the source that are not live.
    pub fn pending_restart(&self) -> Vec<Change> {
        self.published().pending.clone()
    }

    /// The most recent event.
    pub fn last_event(&self) -> Arc<ReloadEvent> {
        Arc::clone(&self.published().last_event)
    }

    /// A receiver of every event from now on (a lagging receiver loses the oldest, never blocks
    /// a reload).
    pub fn events(&self) -> broadcast::Receiver<Arc<ReloadEvent>> {
        self.inner.recorder.subscribe()
    }

    /// Files to watch: the source's files and the files `#[reload(watch)]` fields name.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = self.inner.source.files();
        files.extend(self.published().referenced.keys().cloned());
        files
    }

    fn published(&self) -> MutexGuard<'_, Published> {
        self.inner.recorder.published()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Handler panics are caught, so poisoning means a bug here; the state is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
