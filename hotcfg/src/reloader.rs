//! The reload engine: read, parse, validate, diff, decide, prepare, apply, store, record.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use crate::audit::{AuditLog, AuditSync};
use crate::event::Rollback;
use crate::handle::Snapshot;
use crate::handlers::{FnHandler, Handlers, Step, StepFailure};
use crate::plan::{decide, Decided, Plan, RestartPolicy};
use crate::source::SourceIdentity;
use crate::source::{hash_file, SourceContent, SourceError, DEFAULT_MAX_BYTES};
use crate::validate::Validator;
use crate::{
    ApplyContext, BoxError, Change, ChangeKind, ConfigError, Diff, Handle, HotReload, Loader,
    Problem, ReloadError, ReloadEvent, ReloadResult, ReloadSubscriber, ScopeHandler, Source, Stage,
    Trigger, Violations,
};

/// Events kept in memory by default.
pub const DEFAULT_HISTORY_LEN: usize = 64;

/// Why a [`Reloader`] could not start.
#[derive(Debug, thiserror::Error)]
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
    /// Handlers or scope dependencies are set up wrongly.
    #[error("{0}")]
    Setup(String),
}

/// Sets up a [`Reloader`]: source, loader, validation, policy, handlers, recording.
pub struct ReloaderBuilder<C: HotReload> {
    source: Box<dyn Source>,
    loader: Loader<C>,
    validator: Option<Validator<C>>,
    policy: RestartPolicy,
    handlers: Handlers<C>,
    history_len: usize,
    audit_path: Option<PathBuf>,
    audit_sync: AuditSync,
    subscribers: Vec<Box<dyn ReloadSubscriber>>,
    max_referenced_bytes: u64,
}

impl<C: HotReload> fmt::Debug for ReloaderBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .field("handlers", &self.handlers)
            .finish_non_exhaustive()
    }
}

impl<C> ReloaderBuilder<C>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    /// Parses with `loader` (defaults, environment overlay) instead of a plain [`Loader`].
    pub fn loader(mut self, loader: Loader<C>) -> Self {
        self.loader = loader;
        self
    }

    /// Checks every candidate with `validate` (e.g. `Config::validate` from a
    /// [`Validate`](crate::Validate) impl). Without one, every well-typed candidate is accepted.
    pub fn validator(
        mut self,
        validate: impl Fn(&C, &mut Violations) + Send + Sync + 'static,
    ) -> Self {
        self.validator = Some(Box::new(validate));
        self
    }

    /// What to do with restart-only changes (default [`RestartPolicy::Reject`]).
    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
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

    /// Declares that a change in `scope` also runs the handlers of `dependencies`, and that those
    /// run first (a change of loop definitions re-applies the limits and templates they use).
    pub fn scope_depends_on(mut self, scope: &str, dependencies: &[&str]) -> Self {
        for dep in dependencies {
            self.handlers
                .add_dependency(scope.to_string(), dep.to_string());
        }
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

    /// How far each audit record is pushed before a reload returns (default
    /// [`AuditSync::Data`]: synced to disk).
    pub fn audit_sync(mut self, sync: AuditSync) -> Self {
        self.audit_sync = sync;
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
    pub fn build(self) -> Result<Reloader<C>, BuildError> {
        self.check_scopes()?;
        let mut audit = match &self.audit_path {
            Some(path) => Some(
                AuditLog::open(path)
                    .map(|log| log.sync(self.audit_sync))
                    .map_err(|error| BuildError::Audit {
                        path: path.clone(),
                        error,
                    })?,
            ),
            None => None,
        };
        let started = Instant::now();
        let timestamp = SystemTime::now();
        let content = self.source.read().map_err(ConfigError::from)?;
        let config = load_candidate(&self.loader, self.validator.as_ref(), &content)?;
        let referenced = hash_referenced(
            &config,
            self.source.base_dir().as_deref(),
            self.max_referenced_bytes,
        );
        let identity = content.identity.clone();
        let handle = Handle::from_snapshot(Snapshot::new(1, Some(identity.clone()), config));
        let event = Arc::new(ReloadEvent {
            generation: 1,
            timestamp,
            trigger: Trigger::Startup,
            source: Some(identity.clone()),
            changes: Diff::empty(),
            result: ReloadResult::Applied {
                applied: Vec::new(),
                warnings: Vec::new(),
                pending_restart: Vec::new(),
            },
            duration: started.elapsed(),
        });
        if let Some(log) = audit.as_mut() {
            if let Err(err) = log.append(&event) {
                tracing::error!(path = %log.path().display(), %err, "cannot write the audit log");
            }
        }
        crate::metrics::record(&event, 0);
        let (events, _) = broadcast::channel(256);
        let dispatcher = spawn_dispatcher(self.subscribers);
        if let Some(tx) = &dispatcher {
            let _ = tx.send(Arc::clone(&event));
        }
        let mut history = VecDeque::with_capacity(self.history_len.min(1024));
        if self.history_len > 0 {
            history.push_back(Arc::clone(&event));
        }
        tracing::info!(source = %identity, "configuration loaded");
        Ok(Reloader {
            inner: Arc::new(Inner {
                source: self.source,
                loader: self.loader,
                validator: self.validator,
                policy: self.policy,
                handlers: self.handlers,
                history_len: self.history_len,
                max_referenced_bytes: self.max_referenced_bytes,
                handle,
                events,
                dispatcher: Mutex::new(dispatcher),
                requested: AtomicU64::new(0),
                published: Mutex::new(Published {
                    history,
                    pending: Vec::new(),
                    last_event: Arc::clone(&event),
                    referenced: referenced.clone(),
                }),
                state: Mutex::new(State {
                    last_hash: Some(identity.sha256),
                    referenced,
                    pending: Vec::new(),
                    audit,
                    covered: 0,
                    last_event: event,
                }),
            }),
        })
    }

    fn check_scopes(&self) -> Result<(), BuildError> {
        let known: std::collections::BTreeSet<&str> =
            C::schema().iter().filter_map(|f| f.class.scope()).collect();
        for scope in self.handlers.scopes() {
            crate::validate_scope_name(scope).map_err(BuildError::Setup)?;
            if !known.contains(scope) {
                return Err(BuildError::Setup(format!(
                    "scope `{scope}` is not used by any field of {} (known scopes: {})",
                    std::any::type_name::<C>(),
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        self.handlers
            .check_acyclic()
            .map_err(|cycle| BuildError::Setup(format!("scope dependencies form a cycle: {cycle}")))
    }
}

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
            .field("policy", &self.inner.policy)
            .field("generation", &self.inner.handle.load().generation())
            .finish_non_exhaustive()
    }
}

struct Inner<C: HotReload> {
    source: Box<dyn Source>,
    loader: Loader<C>,
    validator: Option<Validator<C>>,
    policy: RestartPolicy,
    handlers: Handlers<C>,
    history_len: usize,
    max_referenced_bytes: u64,
    handle: Handle<C>,
    events: broadcast::Sender<Arc<ReloadEvent>>,
    dispatcher: Mutex<Option<mpsc::Sender<Arc<ReloadEvent>>>>,
    /// Reload requests taken so far (tickets).
    requested: AtomicU64,
    /// Held for a whole attempt: one reload at a time.
    state: Mutex<State>,
    /// Copied from `state` at the end of each attempt, so that asking for the history or the
    /// pending restarts never waits for a running reload's handlers.
    published: Mutex<Published>,
}

struct Published {
    history: VecDeque<Arc<ReloadEvent>>,
    pending: Vec<Change>,
    last_event: Arc<ReloadEvent>,
    referenced: BTreeMap<PathBuf, Option<String>>,
}

struct State {
    /// Hash of the source content the live state reflects (applied or deferred).
    last_hash: Option<String>,
    /// Hashes of the files `#[reload(watch)]` fields of the live configuration name.
    referenced: BTreeMap<PathBuf, Option<String>>,
    pending: Vec<Change>,
    audit: Option<AuditLog>,
    /// Every ticket up to this one has been served by a finished reload.
    covered: u64,
    last_event: Arc<ReloadEvent>,
}

impl<C> Reloader<C>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    /// Starts setting up an engine reading from `source`.
    pub fn builder(source: impl Source) -> ReloaderBuilder<C> {
        ReloaderBuilder {
            source: Box::new(source),
            loader: Loader::default(),
            validator: None,
            policy: RestartPolicy::default(),
            handlers: Handlers::default(),
            history_len: DEFAULT_HISTORY_LEN,
            audit_path: None,
            audit_sync: AuditSync::default(),
            subscribers: Vec::new(),
            max_referenced_bytes: DEFAULT_MAX_BYTES,
        }
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
        self.inner.policy
    }

    /// Reloads now (trigger [`Trigger::Manual`]) and returns what happened.
    pub fn reload_now(&self) -> Arc<ReloadEvent> {
        self.trigger(Trigger::Manual)
    }

    /// Reloads because of `trigger` and returns what happened. Blocks while another reload runs;
    /// if a reload that started after this call finishes first, its event is returned instead of
    /// running another one.
    pub fn trigger(&self, trigger: Trigger) -> Arc<ReloadEvent> {
        let ticket = self.inner.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.lock();
        if state.covered >= ticket {
            tracing::debug!(%trigger, "coalesced with a reload that started after it");
            return Arc::clone(&state.last_event);
        }
        // Everything requested until now is served by this reload: it reads the newest content.
        let covers = self.inner.requested.load(Ordering::SeqCst);
        let event = Arc::new(self.run(&mut state, trigger));
        state.covered = covers;
        state.last_event = Arc::clone(&event);
        self.record(&mut state, &event);
        event
    }

    /// A dry run against the source's current content.
    pub fn plan(&self) -> Plan {
        self.plan_content(self.inner.source.read())
    }

    /// A dry run of `content` (read elsewhere: a file given on the command line).
    pub fn plan_content(&self, content: Result<SourceContent, SourceError>) -> Plan {
        let live = self.inner.handle.snapshot();
        let content = match content {
            Ok(content) => content,
            Err(err) => return Plan::invalid(None, err.into()),
        };
        let identity = Some(content.identity.clone());
        let candidate =
            match load_candidate(&self.inner.loader, self.inner.validator.as_ref(), &content) {
                Ok(candidate) => candidate,
                Err(err) => return Plan::invalid(identity, err),
            };
        let referenced = {
            let published = self.published();
            self.referenced_changes(&candidate, &published.referenced).0
        };
        let (changes, decided) = decide(live.config(), candidate, self.inner.policy, referenced);
        Plan::decided(identity, changes, decided, |diff| {
            let order = self.inner.handlers.plan(diff.scopes());
            self.inner.handlers.with_handlers(&order)
        })
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
        self.inner.events.subscribe()
    }

    /// Files to watch: the source's files and the files `#[reload(watch)]` fields name.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = self.inner.source.files();
        files.extend(self.published().referenced.keys().cloned());
        files
    }

    fn published(&self) -> MutexGuard<'_, Published> {
        self.inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Handler panics are caught, so poisoning means a bug here; the state is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, state: &mut State, trigger: Trigger) -> ReloadEvent {
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
        let live = self.inner.handle.snapshot();
        let generation = live.generation();
        let content = match self.inner.source.read() {
            Ok(content) => content,
            Err(err) => {
                tracing::warn!(%err, "cannot read the configuration; keeping the live one");
                return Attempt::failed(generation, None, ConfigError::from(err));
            }
        };
        let identity = Some(content.identity.clone());
        let sha256 = content.identity.sha256.clone();
        if state.last_hash.as_deref() == Some(sha256.as_str())
            && self
                .referenced_changes(live.config(), &state.referenced)
                .0
                .is_empty()
        {
            tracing::debug!("same content as the live configuration");
            return Attempt::unchanged(generation, identity);
        }
        let candidate =
            match load_candidate(&self.inner.loader, self.inner.validator.as_ref(), &content) {
                Ok(candidate) => candidate,
                Err(err) => {
                    tracing::warn!(%err, "candidate refused; keeping the live configuration");
                    return Attempt::failed(generation, identity, err);
                }
            };
        let (referenced, referenced_hashes) =
            self.referenced_changes(&candidate, &state.referenced);
        let (changes, decided) = decide(live.config(), candidate, self.inner.policy, referenced);
        let (generation, result) = match decided {
            Decided::Unchanged => {
                state.last_hash = Some(sha256);
                state.pending.clear();
                (generation, ReloadResult::Unchanged)
            }
            Decided::Reject { reason, refused } => {
                tracing::warn!(%reason, "reload rejected");
                (generation, ReloadResult::Rejected { reason, refused })
            }
            Decided::Defer { pending } => {
                tracing::warn!(pending = pending.len(), "restart-only changes deferred");
                state.last_hash = Some(sha256);
                state.pending.clone_from(&pending);
                let warnings = vec![deferred_warning(&pending)];
                let result = ReloadResult::Applied {
                    applied: Vec::new(),
                    warnings,
                    pending_restart: pending,
                };
                (generation, result)
            }
            Decided::Apply {
                effective,
                effective_diff,
                pending,
            } => {
                let commit = Commit {
                    live: &live,
                    effective,
                    effective_diff,
                    pending,
                    identity: identity.clone(),
                };
                match self.commit(commit) {
                    Ok((generation, result)) => {
                        state.last_hash = Some(sha256);
                        state.referenced = referenced_hashes;
                        state.pending = result.pending_restart().to_vec();
                        (generation, result)
                    }
                    Err(result) => (generation, result),
                }
            }
        };
        Attempt {
            generation,
            source: identity,
            changes,
            result,
        }
    }

    /// Prepare every affected handler (any may veto), apply them in dependency order (rolling back
    /// on failure), then store the new version with one atomic swap. `Err` is the outcome of a
    /// veto or a failure; the live version is unchanged then.
    fn commit(&self, commit: Commit<'_, C>) -> Result<(u64, ReloadResult), ReloadResult> {
        let next = commit.live.generation() + 1;
        let handlers = &self.inner.handlers;
        let order = handlers.plan(commit.effective_diff.scopes());
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
        // Every handler applied. (A write that must precede the store, such as a fail-closed
        // audit record, goes here and undoes the handlers with `Applied::rollback` on error.)
        self.inner
            .handle
            .store(Snapshot::new(next, commit.identity, commit.effective));
        let mut warnings = Vec::new();
        if !commit.pending.is_empty() {
            warnings.push(deferred_warning(&commit.pending));
        }
        tracing::info!(
            generation = next,
            changes = commit.effective_diff.len(),
            "configuration applied"
        );
        let result = ReloadResult::Applied {
            applied: commit.effective_diff.into_changes(),
            warnings,
            pending_restart: commit.pending,
        };
        Ok((next, result))
    }

    /// Changes to files named by `#[reload(watch)]` fields of `candidate` whose content differs
    /// from what the live configuration saw, and the new hashes.
    fn referenced_changes(
        &self,
        candidate: &C,
        live: &BTreeMap<PathBuf, Option<String>>,
    ) -> (Vec<Change>, BTreeMap<PathBuf, Option<String>>) {
        let base = self.inner.source.base_dir();
        let mut changes = Vec::new();
        let mut hashes = BTreeMap::new();
        for watched in candidate.watched_files() {
            let file = resolve(base.as_deref(), &watched.file);
            let hash = hash_file(&file, self.inner.max_referenced_bytes);
            if let Some(before) = live.get(&file) {
                if *before != hash {
                    changes.push(Change {
                        path: watched.field.clone(),
                        class: watched.class,
                        kind: ChangeKind::Modified,
                        old: Some(describe_file_hash(&file, before.as_deref())),
                        new: Some(describe_file_hash(&file, hash.as_deref())),
                        secret: false,
                    });
                }
            }
            hashes.insert(file, hash);
        }
        (changes, hashes)
    }

    fn record(&self, state: &mut State, event: &Arc<ReloadEvent>) {
        {
            let mut published = self.published();
            if self.inner.history_len > 0 {
                while published.history.len() >= self.inner.history_len {
                    published.history.pop_front();
                }
                published.history.push_back(Arc::clone(event));
            }
            published.pending.clone_from(&state.pending);
            published.last_event = Arc::clone(event);
            published.referenced.clone_from(&state.referenced);
        }
        if let Some(log) = state.audit.as_mut() {
            if let Err(err) = log.append(event) {
                tracing::error!(path = %log.path().display(), %err, "cannot write the audit log");
            }
        }
        crate::metrics::record(event, state.pending.len());
        let _ = self.inner.events.send(Arc::clone(event));
        let dispatcher = self
            .inner
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = dispatcher.as_ref() {
            let _ = tx.send(Arc::clone(event));
        }
    }
}

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

/// A decided candidate on its way to the handlers and the store.
struct Commit<'a, C> {
    live: &'a Snapshot<C>,
    effective: C,
    effective_diff: Diff,
    pending: Vec<Change>,
    identity: Option<SourceIdentity>,
}

fn deferred_warning(pending: &[Change]) -> String {
    format!(
        "{} restart-only change(s) deferred until restart: {}",
        pending.len(),
        crate::plan::paths(pending)
    )
}

fn describe_file_hash(file: &Path, hash: Option<&str>) -> String {
    match hash {
        Some(hash) => format!(
            "{} (sha256 {})",
            file.display(),
            &hash[..12.min(hash.len())]
        ),
        None => format!("{} (unreadable)", file.display()),
    }
}

fn resolve(base: Option<&Path>, file: &Path) -> PathBuf {
    match base {
        Some(base) if file.is_relative() => base.join(file),
        _ => file.to_path_buf(),
    }
}

fn hash_referenced<C: HotReload>(
    config: &C,
    base: Option<&Path>,
    max: u64,
) -> BTreeMap<PathBuf, Option<String>> {
    config
        .watched_files()
        .into_iter()
        .map(|w| {
            let file = resolve(base, &w.file);
            let hash = hash_file(&file, max);
            (file, hash)
        })
        .collect()
}

/// Parses and validates a candidate; problems carry file, line and key. Parse errors about
/// `#[reload(secret)]` fields do not quote the value.
pub(crate) fn load_candidate<C>(
    loader: &Loader<C>,
    validator: Option<&Validator<C>>,
    content: &SourceContent,
) -> Result<C, ConfigError>
where
    C: HotReload + DeserializeOwned,
{
    let candidate = loader.parse_hiding(content, &|key| is_secret_key::<C>(key))?;
    if let Some(validate) = validator {
        let mut violations = Violations::default();
        validate(&candidate, &mut violations);
        if !violations.is_empty() {
            return Err(violations_error(&violations, content));
        }
    }
    Ok(candidate)
}

/// Whether `key` is a secret field, lies inside one, or holds one (a section or map entry whose
/// value includes a secret): an error about it could quote the secret.
fn is_secret_key<C: HotReload>(key: &[String]) -> bool {
    C::schema().iter().filter(|f| f.secret).any(|field| {
        field
            .path
            .split('.')
            .zip(key)
            .all(|(schema, key)| schema == "*" || schema.trim_matches('"') == key)
    })
}

/// Problems reported, and located in the text, for one failed validation. A validator that reports
/// one violation per entry of a huge map would otherwise make every reload scan the whole text
/// once per violation (minutes for a few megabytes) and write a line as long to the audit log.
pub(crate) const MAX_LOCATED_PROBLEMS: usize = 20;

/// Turns violations into problems located in the layer that sets each key (the first
/// [`MAX_LOCATED_PROBLEMS`], then one problem counting the rest).
pub(crate) fn violations_error(violations: &Violations, content: &SourceContent) -> ConfigError {
    let mut problems: Vec<Problem> = violations
        .iter()
        .take(MAX_LOCATED_PROBLEMS)
        .map(|v| {
            let path: Vec<String> = v.key.split('.').map(str::to_string).collect();
            // The last layer that mentions the key is the one whose value is in force.
            let located = content.layers.iter().rev().find_map(|layer| {
                crate::load::locate_key(&layer.text, layer.format, &path)
                    .map(|line| (layer.name.clone(), line))
            });
            let (source, line) = match located {
                Some((name, line)) => (Some(name), Some(line)),
                None => (Some(content.identity.path.clone()), None),
            };
            Problem {
                source,
                line,
                column: None,
                key: Some(crate::load::clip(v.key.clone())),
                message: crate::load::clip(v.message.clone()),
            }
        })
        .collect();
    if violations.len() > MAX_LOCATED_PROBLEMS {
        problems.push(Problem {
            source: Some(content.identity.path.clone()),
            line: None,
            column: None,
            key: None,
            message: format!(
                "and {} more problem(s) not listed",
                violations.len() - MAX_LOCATED_PROBLEMS
            ),
        });
    }
    ConfigError::new(Stage::Validate, problems)
}

/// Starts the thread that calls subscribers, so none of them can delay a reload.
fn spawn_dispatcher(
    subscribers: Vec<Box<dyn ReloadSubscriber>>,
) -> Option<mpsc::Sender<Arc<ReloadEvent>>> {
    if subscribers.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel::<Arc<ReloadEvent>>();
    let spawned = std::thread::Builder::new()
        .name("hotcfg-subscribers".into())
        .spawn(move || {
            for event in rx {
                for subscriber in &subscribers {
                    let call = std::panic::AssertUnwindSafe(|| subscriber.on_reload(&event));
                    if let Err(panic) = std::panic::catch_unwind(call) {
                        tracing::error!(
                            panic = %crate::handlers::panic_message(panic.as_ref()),
                            "a reload subscriber panicked"
                        );
                    }
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(err) => {
            tracing::error!(%err, "cannot start the subscriber thread; subscribers will not be called");
            None
        }
    }
}
