//! Scope handlers: the code that makes a running program follow a configuration change, in two
//! phases (prepare may veto, then apply), with rollback of what was applied when a later step fails.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::event::Rollback;
use crate::plan::{PrepareVerdict, Verdict};
use crate::{Change, Diff};

/// The error type handlers return: any error, or a plain message (`Err("...".into())`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler is given: the live configuration, the candidate, and the changes in its scope.
#[derive(Debug)]
pub struct ApplyContext<'a, C> {
    /// The scope being handled.
    pub scope: &'a str,
    /// The configuration live now. In [`init`](ScopeHandler::init) there is none before the
    /// first: `old` is `new` then ([`is_startup`](ApplyContext::is_startup)).
    pub old: &'a C,
    /// The configuration being applied (stored for readers only after every handler applied it).
    pub new: &'a C,
    /// The changes in this scope (empty when the scope runs because a scope it depends on... see
    /// [`ReloaderBuilder::scope_depends_on`](crate::ReloaderBuilder::scope_depends_on); empty in
    /// [`init`](ScopeHandler::init)).
    pub changes: &'a [&'a Change],
    /// The generation `new` will have once committed (1: the first configuration).
    pub generation: u64,
    /// The directory relative paths in the configuration are resolved against: the
    /// configuration file's own ([`Source::base_dir`](crate::Source::base_dir)); `None` for
    /// sources without one (memory, etcd).
    pub config_dir: Option<&'a Path>,
}

impl<C> ApplyContext<'_, C> {
    /// `path` as the engine and the watcher read it: a relative path is taken from
    /// [`config_dir`](ApplyContext::config_dir), an absolute one (or any path when there is no
    /// directory) as it is. So `tls.cert = "certs/server.pem"` names the file whose changes
    /// `#[reload(watch)]` reports.
    ///
    /// ```
    /// use hotcfg::{FileSource, HotReload, Reloader};
    /// use std::path::PathBuf;
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "tls")]
    ///     cert: PathBuf,
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.toml");
    /// std::fs::write(&path, "cert = 'a.pem'")?;
    /// let seen = Arc::new(Mutex::new(PathBuf::new()));
    /// let reloader = Reloader::<Config>::builder(FileSource::new(&path))
    ///     .on_apply("tls", {
    ///         let seen = Arc::clone(&seen);
    ///         move |cx| {
    ///             *seen.lock().unwrap() = cx.resolve(&cx.new.cert);
    ///             Ok(())
    ///         }
    ///     })
    ///     .build()?;
    /// std::fs::write(&path, "cert = 'certs/b.pem'")?;
    /// reloader.reload_now();
    /// assert_eq!(*seen.lock().unwrap(), dir.path().join("certs/b.pem"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        resolve(self.config_dir, path.as_ref())
    }

    /// Whether this is the first configuration ([`init`](ScopeHandler::init), run by
    /// [`build`](crate::ReloaderBuilder::build)): there is no older one.
    pub fn is_startup(&self) -> bool {
        self.generation == 1
    }
}

/// The rule every reader of paths in the configuration follows: relative to `base`, if any.
pub(crate) fn resolve(base: Option<&Path>, file: &Path) -> PathBuf {
    match base {
        Some(base) if file.is_relative() => base.join(file),
        _ => file.to_path_buf(),
    }
}

/// Makes one scope of a running program follow configuration changes.
///
/// The engine calls [`prepare`](ScopeHandler::prepare) on every affected handler first; any of them
/// may veto (the reload is then rejected and nothing is applied). Then it calls
/// [`apply`](ScopeHandler::apply) in dependency order. If an `apply` fails or panics, the handlers
/// that already applied get [`rollback`](ScopeHandler::rollback) in reverse order and the new
/// configuration is never stored. An `apply` that fails must leave its own subsystem as it was.
///
/// ```
/// use hotcfg::{ApplyContext, BoxError, ScopeHandler};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// struct Config { workers: usize }
/// struct Pool { size: AtomicUsize, busy: AtomicUsize }
///
/// impl ScopeHandler<Config> for Pool {
///     fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
///         if cx.new.workers < self.busy.load(Ordering::SeqCst) {
///             return Err("cannot shrink below the number of busy workers".into());
///         }
///         Ok(())
///     }
///     fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
///         self.size.store(cx.new.workers, Ordering::SeqCst);
///         Ok(())
///     }
///     fn rollback(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
///         self.size.store(cx.old.workers, Ordering::SeqCst);
///         Ok(())
///     }
/// }
/// ```
pub trait ScopeHandler<C>: Send + Sync + 'static {
    /// Sets the subsystem up from the first configuration, when
    /// [`build`](crate::ReloaderBuilder::build) has loaded it: every handler's `init` runs there,
    /// scopes in dependency order, before the engine starts. `cx.old` is `cx.new`, `cx.changes`
    /// is empty and `cx.generation` is 1 ([`ApplyContext::is_startup`]). An error (or a panic)
    /// fails `build` with [`BuildError::Init`](crate::BuildError::Init) naming the scope; the
    /// handlers set up before it are not undone (the program is not starting).
    ///
    /// The default does nothing. To start through the same code as a reload, call
    /// [`apply`](ScopeHandler::apply): `fn init(&self, cx: ..) -> .. { self.apply(cx) }`.
    fn init(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        let _ = cx;
        Ok(())
    }

    /// Checks that the change is compatible with running work; an error vetoes the reload.
    ///
    /// It must change nothing: a dry run ([`PlanOptions::run_prepare`](crate::PlanOptions::run_prepare))
    /// calls it without `apply`, and a reload vetoed by another handler does not undo it.
    fn prepare(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        let _ = cx;
        Ok(())
    }

    /// Makes the subsystem follow `cx.new`.
    fn apply(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError>;

    /// Undoes a successful [`apply`](ScopeHandler::apply): make the subsystem follow `cx.old` again.
    fn rollback(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        let _ = cx;
        Ok(())
    }
}

/// A handler made of one closure, for scopes whose apply cannot fail in a way that needs undoing.
pub(crate) struct FnHandler<F>(pub(crate) F);

impl<C, F> ScopeHandler<C> for FnHandler<F>
where
    F: Fn(&ApplyContext<'_, C>) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn apply(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        (self.0)(cx)
    }
}

/// How a handler step ended badly.
#[derive(Debug)]
pub(crate) enum StepFailure {
    Error(String),
    Panic(String),
}

impl StepFailure {
    /// What a refusal of `scope`'s `prepare` says, in a plan or a reload's rejection.
    pub(crate) fn into_verdict(self, scope: String) -> PrepareVerdict {
        let verdict = match self {
            StepFailure::Error(message) => Verdict::Vetoed { message },
            StepFailure::Panic(message) => Verdict::Panicked { message },
        };
        PrepareVerdict { scope, verdict }
    }
}

/// The registered handlers, by scope. (The order scopes run in is the
/// [`ScopeGraph`](crate::engine::scope_graph::ScopeGraph)'s.)
pub(crate) struct Handlers<C> {
    by_scope: BTreeMap<String, Vec<Box<dyn ScopeHandler<C>>>>,
}

impl<C> fmt::Debug for Handlers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("scopes", &self.by_scope.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C> Default for Handlers<C> {
    fn default() -> Self {
        Handlers {
            by_scope: BTreeMap::new(),
        }
    }
}

impl<C: 'static> Handlers<C> {
    pub(crate) fn add(&mut self, scope: String, handler: Box<dyn ScopeHandler<C>>) {
        self.by_scope.entry(scope).or_default().push(handler);
    }

    /// The scopes that have handlers.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.by_scope.keys().map(String::as_str)
    }

    /// The scopes in `order` that have at least one handler.
    pub(crate) fn with_handlers(&self, order: &[String]) -> Vec<String> {
        order
            .iter()
            .filter(|s| self.by_scope.contains_key(*s))
            .cloned()
            .collect()
    }

    /// Runs `prepare` of every handler of the given scopes; the first refusal is returned.
    pub(crate) fn prepare_all(
        &self,
        order: &[String],
        step: &Step<'_, C>,
    ) -> Result<(), (String, StepFailure)> {
        self.each(order, step, |handler, cx| handler.prepare(cx))
    }

    /// Runs `init` of every handler of the given scopes, in order; the first failure is returned.
    pub(crate) fn init_all(
        &self,
        order: &[String],
        step: &Step<'_, C>,
    ) -> Result<(), (String, StepFailure)> {
        self.each(order, step, |handler, cx| handler.init(cx))
    }

    /// Calls `call` on every handler of the given scopes, in order, until one fails.
    fn each(
        &self,
        order: &[String],
        step: &Step<'_, C>,
        call: impl Fn(&dyn ScopeHandler<C>, &ApplyContext<'_, C>) -> Result<(), BoxError>,
    ) -> Result<(), (String, StepFailure)> {
        for scope in order {
            step.in_context(scope, |cx| {
                for handler in self.by_scope.get(scope).into_iter().flatten() {
                    guarded(|| call(handler.as_ref(), cx)).map_err(|f| (scope.clone(), f))?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// A dry run's `prepare`: asks every handler of every given scope, even after a veto, so a
    /// plan shows every refusal at once; each scope's verdict is its first refusal, as in a reload.
    pub(crate) fn prepare_each(&self, order: &[String], step: &Step<'_, C>) -> Vec<PrepareVerdict> {
        order
            .iter()
            .map(|scope| {
                let refusal = step.in_context(scope, |cx| {
                    self.by_scope
                        .get(scope)
                        .into_iter()
                        .flatten()
                        .find_map(|handler| guarded(|| handler.prepare(cx)).err())
                });
                match refusal {
                    None => PrepareVerdict {
                        scope: scope.clone(),
                        verdict: Verdict::Accepted,
                    },
                    Some(failure) => failure.into_verdict(scope.clone()),
                }
            })
            .collect()
    }

    /// Runs `apply` in order; on failure rolls back what applied, in reverse order.
    /// Returns the failing scope, its failure and what became of the rollback.
    pub(crate) fn apply_all<'h>(
        &'h self,
        order: &'h [String],
        step: &Step<'_, C>,
    ) -> Result<Applied<'h, C>, (String, StepFailure, Rollback)> {
        let mut applied: Vec<(&String, &dyn ScopeHandler<C>)> = Vec::new();
        for scope in order {
            let failed = step.in_context(scope, |cx| {
                for handler in self.by_scope.get(scope).into_iter().flatten() {
                    tracing::debug!(scope = %scope, "applying");
                    guarded(|| handler.apply(cx))?;
                    applied.push((scope, handler.as_ref()));
                }
                Ok(())
            });
            if let Err(failure) = failed {
                return Err((scope.clone(), failure, rollback(&applied, step)));
            }
        }
        Ok(Applied(applied))
    }
}

/// The handlers that applied a candidate, in order: a commit step that fails after them (an audit
/// write that must precede the store, say) undoes them with [`Applied::rollback`].
pub(crate) struct Applied<'h, C>(Vec<(&'h String, &'h dyn ScopeHandler<C>)>);

impl<C: 'static> Applied<'_, C> {
    /// Rolls back every handler that applied, in reverse order.
    pub(crate) fn rollback(&self, step: &Step<'_, C>) -> Rollback {
        rollback(&self.0, step)
    }
}

/// What every handler step of one reload shares.
pub(crate) struct Step<'a, C> {
    pub(crate) old: &'a C,
    pub(crate) new: &'a C,
    pub(crate) diff: &'a Diff,
    pub(crate) generation: u64,
    pub(crate) config_dir: Option<&'a Path>,
}

impl<C> Step<'_, C> {
    /// Calls `f` with the context of `scope`: its own changes, the two configurations.
    fn in_context<R>(&self, scope: &str, f: impl FnOnce(&ApplyContext<'_, C>) -> R) -> R {
        let changes: Vec<&Change> = self.diff.in_scope(scope).collect();
        f(&ApplyContext {
            scope,
            old: self.old,
            new: self.new,
            changes: &changes,
            generation: self.generation,
            config_dir: self.config_dir,
        })
    }
}

/// Rolls back `applied` handlers in reverse order.
fn rollback<C: 'static>(
    applied: &[(&String, &dyn ScopeHandler<C>)],
    step: &Step<'_, C>,
) -> Rollback {
    if applied.is_empty() {
        return Rollback::NotNeeded;
    }
    let mut errors = Vec::new();
    let mut scopes: Vec<String> = Vec::new();
    for (scope, handler) in applied.iter().rev() {
        if scopes.last() != Some(*scope) {
            scopes.push(scope.to_string());
        }
        tracing::warn!(scope = %scope, "rolling back");
        match step.in_context(scope, |cx| guarded(|| handler.rollback(cx))) {
            Ok(()) => {}
            Err(StepFailure::Error(e)) => errors.push(format!("rollback of `{scope}`: {e}")),
            Err(StepFailure::Panic(e)) => {
                errors.push(format!("rollback of `{scope}` panicked: {e}"))
            }
        }
    }
    if errors.is_empty() {
        Rollback::Complete { scopes }
    } else {
        Rollback::Incomplete { errors }
    }
}

/// Runs a handler step, turning an error or a panic into a [`StepFailure`].
fn guarded(step: impl FnOnce() -> Result<(), BoxError>) -> Result<(), StepFailure> {
    match catch_unwind(AssertUnwindSafe(step)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(StepFailure::Error(err.to_string())),
        Err(panic) => Err(StepFailure::Panic(panic_message(panic.as_ref()))),
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
