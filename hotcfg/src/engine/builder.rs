//! Setting up a [`Reloader`]: source, pipeline, handlers, recording; then the first load.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::runtime::Handle as RuntimeHandle;

use super::awaiting;
use super::probation::ProbationSetup;
use super::probation_cell::ProbationCell;
use super::recorder::Recorder;
use super::referenced::Referenced;
use super::{Inner, Pipeline, Reloader, State};
use crate::async_handlers::{
    AsyncFnHandler, AsyncScopeHandler, OnRuntime, RuntimeSlot, StepFuture,
};
use crate::async_subscribers::{deliver, AsyncReloadSubscriber};
use crate::audit::{
    AuditFailure, AuditLog, AuditSync, AuditTrail, Snapshots, DEFAULT_SNAPSHOTS_KEPT,
};
use crate::diff::Diff;
use crate::event::{ReloadEvent, ReloadResult, ReloadSubscriber, Trigger};
use crate::handle::{Handle, Snapshot};
use crate::handlers::{
    ApplyContext, BoxError, FnHandler, Handlers, ScopeHandler, Step, StepFailure,
};
use crate::hot_reload::{HotConfig, HotReload};
use crate::load::{ConfigError, Loader};
use crate::plan::RestartPolicy;
use crate::source::{Source, DEFAULT_MAX_BYTES};
use crate::validate::Violations;

/// Events kept in memory by default.
pub const DEFAULT_HISTORY_LEN: usize = 64;

/// Why a [`Reloader`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The initial configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The audit log cannot be opened.
    #[error("cannot open audit log {path}: {error}")]
    Audit {
        /// The log's path.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The startup record cannot be written to the audit log, and the engine fails closed
    /// ([`AuditFailure::FailClosed`]).
    #[error("the audit log {path} is not writable: {error}")]
    AuditUnwritable {
        /// The log's path.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The source cannot be reached, and no last-known-good version can replace it
    /// ([`ReloaderBuilder::last_known_good`]): `why` says which (none recorded, a snapshot
    /// missing or corrupt, naming its file, another key's versions only, refused now).
    #[error("{read}; no last-known-good version to start from: {why}")]
    NoLastKnownGood {
        /// The read that failed.
        read: crate::source::SourceError,
        /// Why no last-known-good version could be used.
        why: Box<crate::audit::LastKnownGoodError>,
    },
    /// Handlers or scope dependencies are set up wrongly.
    #[error("{0}")]
    Setup(String),
    /// A handler could not set its subsystem up from the first configuration
    /// ([`ScopeHandler::init`]).
    #[error("the `{scope}` handler cannot start from the first configuration: {message}")]
    Init {
        /// The handler's scope.
        scope: String,
        /// Its error, or `panicked: ` and the panic's message.
        message: String,
    },
}

/// Sets up a [`Reloader`]: source, [`Pipeline`], handlers, recording.
pub struct ReloaderBuilder<C: HotReload> {
    pub(super) source: Box<dyn Source>,
    pipeline: Pipeline<C>,
    handlers: Handlers<C>,
    history_len: usize,
    pub(super) audit_path: Option<PathBuf>,
    audit_sync: AuditSync,
    audit_failure: AuditFailure,
    pub(super) snapshots_kept: usize,
    /// Set by `last_known_good` (`last_known_good.rs`).
    pub(super) last_known_good: bool,
    subscribers: Vec<Box<dyn ReloadSubscriber>>,
    max_referenced_bytes: u64,
    /// The runtime async handlers run on: given, or captured by `build()`.
    runtime: Option<RuntimeHandle>,
    /// Shared with every async handler registered; set by `build()`.
    async_runtime: RuntimeSlot,
    has_async: bool,
    async_subscribers: Vec<Arc<dyn AsyncReloadSubscriber>>,
    /// Set by `probation`, `confirm_within` and their options (`probation_api.rs`).
    pub(super) probation: ProbationSetup<C>,
}

impl<C: HotReload> fmt::Debug for ReloaderBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("source", &self.source)
            .field("pipeline", &self.pipeline)
            .field("handlers", &self.handlers)
            .finish_non_exhaustive()
    }
}

impl<C: HotConfig> ReloaderBuilder<C> {
    pub(super) fn new(source: Box<dyn Source>) -> Self {
        ReloaderBuilder {
            source,
            pipeline: Pipeline::default(),
            handlers: Handlers::default(),
            history_len: DEFAULT_HISTORY_LEN,
            audit_path: None,
            audit_sync: AuditSync::default(),
            audit_failure: AuditFailure::default(),
            snapshots_kept: DEFAULT_SNAPSHOTS_KEPT,
            last_known_good: false,
            subscribers: Vec::new(),
            max_referenced_bytes: DEFAULT_MAX_BYTES,
            runtime: None,
            async_runtime: RuntimeSlot::default(),
            has_async: false,
            async_subscribers: Vec::new(),
            probation: ProbationSetup::default(),
        }
    }

    /// Loads, validates and decides with `pipeline` (the same value the operator commands take).
    pub fn pipeline(mut self, pipeline: Pipeline<C>) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Parses with `loader`: see [`Pipeline::loader`].
    pub fn loader(mut self, loader: Loader<C>) -> Self {
        self.pipeline = self.pipeline.loader(loader);
        self
    }

    /// Checks every candidate with `validate`: see [`Pipeline::validator`].
    pub fn validator(
        mut self,
        validate: impl Fn(&C, &mut Violations) + Send + Sync + 'static,
    ) -> Self {
        self.pipeline = self.pipeline.validator(validate);
        self
    }

    /// What to do with restart-only changes: see [`Pipeline::policy`].
    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        self.pipeline = self.pipeline.policy(policy);
        self
    }

    /// Scope dependencies: see [`Pipeline::scope_depends_on`].
    pub fn scope_depends_on(mut self, scope: &str, dependencies: &[&str]) -> Self {
        self.pipeline = self.pipeline.scope_depends_on(scope, dependencies);
        self
    }

    /// Registers a handler for `scope`. Several handlers of one scope run in registration order.
    pub fn handler(mut self, scope: &str, handler: impl ScopeHandler<C>) -> Self {
        self.handlers.add(scope.to_string(), Box::new(handler));
        self
    }

    /// Registers a closure as the apply step of a handler for `scope` (no prepare, no rollback).
    pub fn on_apply(
        self,
        scope: &str,
        apply: impl Fn(&ApplyContext<'_, C>) -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.handler(scope, FnHandler(apply))
    }

    /// Registers an async handler for `scope` ([`AsyncScopeHandler`]); sync and async handlers
    /// mix freely, in registration order within a scope. They run on the tokio runtime given
    /// with [`runtime`](ReloaderBuilder::runtime), or else the one current when
    /// [`build`](ReloaderBuilder::build) runs (without either, `build` fails with
    /// [`BuildError::Setup`]).
    pub fn async_handler(mut self, scope: &str, handler: impl AsyncScopeHandler<C>) -> Self {
        self.has_async = true;
        let runtime = Arc::clone(&self.async_runtime);
        self.handler(scope, OnRuntime { handler, runtime })
    }

    /// Registers an async closure as the apply step of a handler for `scope`: return
    /// `Box::pin(async move { ... })`. See [`async_handler`](ReloaderBuilder::async_handler).
    pub fn on_apply_async<F>(self, scope: &str, apply: F) -> Self
    where
        F: for<'a> Fn(&'a ApplyContext<'a, C>) -> StepFuture<'a> + Send + Sync + 'static,
    {
        self.async_handler(scope, AsyncFnHandler(apply))
    }

    /// Tells `subscriber` of every event (the startup event first), from a task of its own on
    /// the runtime async handlers use (see [`async_handler`](ReloaderBuilder::async_handler) for
    /// which): a slow or failing subscriber delays nothing else.
    ///
    /// ```
    /// use hotcfg::{AsyncReloadSubscriber, BoxFuture, Format, HotReload, MemorySource, Reloader};
    /// use hotcfg::ReloadEvent;
    /// use tokio::sync::mpsc;
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// struct Forward(mpsc::UnboundedSender<u64>);
    /// impl AsyncReloadSubscriber for Forward {
    ///     fn on_reload<'a>(&'a self, event: &'a ReloadEvent) -> BoxFuture<'a, ()> {
    ///         Box::pin(async move { let _ = self.0.send(event.generation); })
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let (tx, mut rx) = mpsc::unbounded_channel();
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
    /// let reloader = Reloader::<Config>::builder(source.clone())
    ///     .async_subscriber(Forward(tx))
    ///     .build_async()
    ///     .await?;
    /// source.set("workers = 3");
    /// reloader.reload().await;
    /// assert_eq!(rx.recv().await, Some(1)); // the startup event
    /// assert_eq!(rx.recv().await, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn async_subscriber(mut self, subscriber: impl AsyncReloadSubscriber) -> Self {
        self.async_subscribers.push(Arc::new(subscriber));
        self
    }

    /// The tokio runtime async handlers run on (default: the one current at `build()`).
    pub fn runtime(mut self, runtime: RuntimeHandle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Keeps the last `len` events in memory (default [`DEFAULT_HISTORY_LEN`]).
    pub fn history_len(mut self, len: usize) -> Self {
        self.history_len = len;
        self
    }

    /// Appends every attempt to a hash-chained JSON Lines audit log at `path`.
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_path = Some(path.into());
        self
    }

    /// What a failed audit write means (default [`AuditFailure::FailClosed`]: the reload is rolled
    /// back and reported as failed, "the audit log is not writable: ...", and an engine whose
    /// startup record cannot be written does not start). With [`AuditFailure::Continue`] it is
    /// applied, with a warning in its event, and `hotcfg_audit_write_failures_total` counts the
    /// lost record. Either way no reload reports a plain `applied` whose record was lost.
    ///
    /// ```
    /// use hotcfg::{AuditFailure, FileSource, HotReload, Reloader};
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
    /// let reloader = Reloader::<Config>::builder(FileSource::new(&path))
    ///     .audit_log(dir.path().join("audit.jsonl"))
    ///     .audit_failure(AuditFailure::Continue)
    ///     .build()?;
    /// assert_eq!(reloader.handle().load().workers, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit_failure(mut self, on_failure: AuditFailure) -> Self {
        self.audit_failure = on_failure;
        self
    }

    /// How far each audit record is pushed before a reload returns (default
    /// [`AuditSync::Data`]: synced to disk).
    pub fn audit_sync(mut self, sync: AuditSync) -> Self {
        self.audit_sync = sync;
        self
    }

    /// Keeps the source content of the `kept` most recently applied versions beside the audit log
    /// (default [`DEFAULT_SNAPSHOTS_KEPT`]; 0 keeps none), so that
    /// [`Reloader::revert_to`] can restore them. Each is written and synced before the audit record
    /// that names it; a snapshot that cannot be written fails the commit as the record would
    /// ([`audit_failure`](ReloaderBuilder::audit_failure)). The snapshots hold what the files held,
    /// secrets included: mode 0600 in a 0700 directory (see [`Snapshots`]). Only with an
    /// [`audit_log`](ReloaderBuilder::audit_log).
    ///
    /// ```
    /// # use hotcfg::{HotReload, MemorySource, Format, Reloader};
    /// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// # struct Config { #[reload(scope = "pool")] workers: usize }
    /// let dir = tempfile::tempdir()?;
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
    /// let reloader = Reloader::<Config>::builder(source)
    ///     .audit_log(dir.path().join("audit.jsonl"))
    ///     .snapshots_kept(8)
    ///     .build()?;
    /// assert_eq!(std::fs::read_dir(dir.path().join("audit.snapshots"))?.count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshots_kept(mut self, kept: usize) -> Self {
        self.snapshots_kept = kept;
        self
    }

    /// Calls `subscriber` with every event, on a dispatcher thread.
    pub fn subscriber(mut self, subscriber: impl ReloadSubscriber) -> Self {
        self.subscribers.push(Box::new(subscriber));
        self
    }

    /// Refuses files named by `#[reload(watch)]` fields above this size when hashing them.
    pub fn max_referenced_bytes(mut self, max: u64) -> Self {
        self.max_referenced_bytes = max;
        self
    }

    /// Checks the setup, loads and validates the initial configuration (failing fast with the
    /// same errors a reload would give), and starts the engine at generation 1.
    ///
    /// Async handlers' `init` runs on the runtime they will use; on a current-thread runtime
    /// with async handlers, `build` would block the thread they need and fails: use
    /// [`build_async`](ReloaderBuilder::build_async)`().await` there.
    pub fn build(self) -> Result<Reloader<C>, BuildError> {
        if awaiting::refuses_blocking(self.has_async) {
            return Err(BuildError::Setup(
                "build() on a current-thread tokio runtime cannot start async handlers: they need \
                 the thread it blocks; use `build_async().await`"
                    .into(),
            ));
        }
        self.build_here()
    }

    /// [`build`](ReloaderBuilder::build) on this thread.
    fn build_here(self) -> Result<Reloader<C>, BuildError> {
        self.check_scopes()?;
        self.check_last_known_good()?;
        self.capture_runtime()?;
        let audit = self.open_audit()?;
        let started = Instant::now();
        let timestamp = SystemTime::now();
        let (content, stale) = self.first_content()?;
        let content_key = self.pipeline.content_key(&content);
        let config = match self.pipeline.load(&content) {
            Ok(config) => config,
            Err(err) => {
                return Err(match stale {
                    Some(stale) => stale.refused(err),
                    None => err.into(),
                })
            }
        };
        let stale = stale.map(|s| s.start);
        if self.last_known_good {
            crate::metrics::stale(stale.is_some());
        }
        let referenced = Referenced {
            base: self.source.base_dir(),
            max_bytes: self.max_referenced_bytes,
        };
        let hashes = referenced.hash_all(&config);
        let base = referenced.base.as_deref();
        awaiting::off_worker(|| self.init_handlers(&config, base))?;
        let identity = content.identity.clone();
        let handle = Handle::from_snapshot(Snapshot::new(1, Some(identity.clone()), config));
        let event = ReloadEvent {
            generation: 1,
            timestamp,
            trigger: stale
                .clone()
                .map_or(Trigger::Startup, Trigger::LastKnownGood),
            source: Some(identity.clone()),
            changes: Diff::empty(),
            result: ReloadResult::Applied {
                applied: Vec::new(),
                warnings: Vec::new(),
                pending_restart: Vec::new(),
            },
            duration: started.elapsed(),
        };
        let snapshots = self.audit_path.as_deref().map(Snapshots::beside);
        let snapshots = snapshots
            .filter(|_| self.snapshots_kept > 0)
            .map(|s| s.keep(self.snapshots_kept));
        let (recorder, event) = Recorder::start(
            event,
            &content,
            hashes.clone(),
            self.history_len,
            AuditTrail::new(audit, self.audit_failure, snapshots),
            self.subscribers,
        )
        .map_err(|error| BuildError::AuditUnwritable {
            path: self.audit_path.clone().unwrap_or_default(),
            error,
        })?;
        if let Some(runtime) = self.async_runtime.get() {
            for subscriber in self.async_subscribers {
                let events = recorder.subscribe();
                deliver(runtime, subscriber, Arc::clone(&event), events);
            }
        }
        tracing::info!(source = %identity, "configuration loaded");
        let state = State {
            last_hash: Some(content_key),
            referenced: hashes,
            pending: Vec::new(),
            covered: 0,
            last_event: event,
        };
        let runtime = self.async_runtime.get().cloned();
        let probation = self
            .probation
            .enabled()
            .then(|| Arc::new(ProbationCell::new(self.probation)));
        let reloader = Reloader {
            inner: Arc::new(Inner {
                source: self.source,
                pipeline: self.pipeline,
                handlers: self.handlers,
                referenced,
                handle,
                recorder,
                has_async: self.has_async,
                requested: AtomicU64::new(0),
                state: Mutex::new(state),
                probation,
                stale: Mutex::new(stale),
            }),
        };
        super::probation_thread::start(&reloader, runtime);
        Ok(reloader)
    }

    /// [`build`](ReloaderBuilder::build) for async code: on a blocking thread, so that async
    /// handlers can start on the current runtime (whatever its flavour) while it keeps running.
    pub async fn build_async(self) -> Result<Reloader<C>, BuildError> {
        // The build runs on the current runtime's blocking pool, whose threads see that runtime
        // as current: `capture_runtime` finds it there.
        awaiting::off_runtime(move || self.build_here()).await
    }

    /// Sets the runtime async handlers run on: given, or the current one.
    fn capture_runtime(&self) -> Result<(), BuildError> {
        if !self.has_async && self.async_subscribers.is_empty() && !self.probation.needs_runtime() {
            return Ok(());
        }
        let runtime = match &self.runtime {
            Some(runtime) => runtime.clone(),
            None => RuntimeHandle::try_current().map_err(|_| {
                BuildError::Setup(
                    "async handlers and subscribers need a tokio runtime: build inside one, or give it with \
                     `ReloaderBuilder::runtime`"
                        .into(),
                )
            })?,
        };
        let _ = self.async_runtime.set(runtime);
        Ok(())
    }

    /// Runs every handler's `init` with the first configuration, scopes in dependency order.
    fn init_handlers(&self, config: &C, config_dir: Option<&Path>) -> Result<(), BuildError> {
        let order = self.pipeline.scope_graph().order(self.handlers.scopes());
        let order = self.handlers.with_handlers(&order);
        let step = Step {
            old: config,
            new: config,
            diff: &Diff::empty(),
            generation: 1,
            config_dir,
        };
        self.handlers
            .init_all(&order, &step)
            .map_err(|(scope, failure)| {
                let message = match failure {
                    StepFailure::Error(e) => e,
                    StepFailure::Panic(e) => format!("panicked: {e}"),
                };
                tracing::error!(%scope, %message, "a handler cannot start");
                BuildError::Init { scope, message }
            })
    }

    fn open_audit(&self) -> Result<Option<AuditLog>, BuildError> {
        let Some(path) = &self.audit_path else {
            return Ok(None);
        };
        AuditLog::open(path)
            .map(|log| Some(log.sync(self.audit_sync)))
            .map_err(|error| BuildError::Audit {
                path: path.clone(),
                error,
            })
    }

    fn check_scopes(&self) -> Result<(), BuildError> {
        let known: BTreeSet<&str> = C::schema().iter().filter_map(|f| f.class.scope()).collect();
        let graph = self.pipeline.scope_graph();
        for scope in self.handlers.scopes().chain(graph.scopes()) {
            crate::class::validate_scope_name(scope).map_err(BuildError::Setup)?;
            if !known.contains(scope) {
                return Err(BuildError::Setup(format!(
                    "scope `{scope}` is not used by any field of {} (known scopes: {})",
                    std::any::type_name::<C>(),
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        graph
            .check_acyclic()
            .map_err(|cycle| BuildError::Setup(format!("scope dependencies form a cycle: {cycle}")))
    }
}
