//! Async scope handlers: the same two phases as [`ScopeHandler`] (prepare may veto, then apply,
//! rollback on a later failure), written as async code. The engine runs them on a tokio runtime
//! handle captured by [`build`](crate::ReloaderBuilder::build) (or given with
//! [`ReloaderBuilder::runtime`](crate::ReloaderBuilder::runtime)), from its own thread, never from
//! a runtime worker: so a handler that awaits I/O behaves the same whoever triggered the reload.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle as RuntimeHandle;

use crate::handlers::{ApplyContext, BoxError, ScopeHandler};

/// A boxed future a handler returns: `Send`, so a registry of `dyn` handlers can hold any of them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an async handler step returns.
pub type StepFuture<'a> = BoxFuture<'a, Result<(), BoxError>>;

/// The async counterpart of [`ScopeHandler`], for handlers that await (connect a pool, resolve a
/// name). Registered with [`ReloaderBuilder::async_handler`](crate::ReloaderBuilder::async_handler)
/// beside sync handlers: the protocol, the dependency order, panic safety and rollback are the
/// same whichever kind runs. Methods return boxed futures so handlers can live in `dyn`
/// registries; write them as `Box::pin(async move { ... })`.
///
/// ```
/// use hotcfg::{ApplyContext, AsyncScopeHandler, StepFuture};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// struct Config { pool_size: usize }
/// struct Pool { size: AtomicUsize }
///
/// impl AsyncScopeHandler<Config> for Pool {
///     fn apply<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
///         Box::pin(async move {
///             tokio::task::yield_now().await; // reconnect, resize...
///             self.size.store(cx.new.pool_size, Ordering::SeqCst);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait AsyncScopeHandler<C>: Send + Sync + 'static {
    /// As [`ScopeHandler::init`]: set up from the first configuration (default: nothing).
    fn init<'a>(&'a self, cx: &'a ApplyContext<'a, C>) -> StepFuture<'a> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }

    /// As [`ScopeHandler::prepare`]: check, change nothing; an error vetoes the reload.
    fn prepare<'a>(&'a self, cx: &'a ApplyContext<'a, C>) -> StepFuture<'a> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }

    /// As [`ScopeHandler::apply`]: make the subsystem follow `cx.new`.
    fn apply<'a>(&'a self, cx: &'a ApplyContext<'a, C>) -> StepFuture<'a>;

    /// As [`ScopeHandler::rollback`]: make the subsystem follow `cx.old` again.
    fn rollback<'a>(&'a self, cx: &'a ApplyContext<'a, C>) -> StepFuture<'a> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }
}

/// The runtime async handlers run on, set by `build()` (shared by every handler of one builder).
pub(crate) type RuntimeSlot = Arc<OnceLock<RuntimeHandle>>;

/// An async handler seen as a sync one: each step is driven to completion on the captured
/// runtime, from the engine's thread (never a runtime worker: see `Reloader::trigger`).
pub(crate) struct OnRuntime<H> {
    pub(crate) handler: H,
    pub(crate) runtime: RuntimeSlot,
}

impl<H> OnRuntime<H> {
    fn run(&self, step: StepFuture<'_>) -> Result<(), BoxError> {
        let runtime = self
            .runtime
            .get()
            .ok_or("no tokio runtime was captured for async handlers")?;
        runtime.block_on(step)
    }
}

impl<C, H: AsyncScopeHandler<C>> ScopeHandler<C> for OnRuntime<H> {
    fn init(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        self.run(self.handler.init(cx))
    }
    fn prepare(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        self.run(self.handler.prepare(cx))
    }
    fn apply(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        self.run(self.handler.apply(cx))
    }
    fn rollback(&self, cx: &ApplyContext<'_, C>) -> Result<(), BoxError> {
        self.run(self.handler.rollback(cx))
    }
}

/// An async handler made of one closure (the apply step), for
/// [`ReloaderBuilder::on_apply_async`](crate::ReloaderBuilder::on_apply_async).
pub(crate) struct AsyncFnHandler<F>(pub(crate) F);

impl<C, F> AsyncScopeHandler<C> for AsyncFnHandler<F>
where
    F: for<'a> Fn(&'a ApplyContext<'a, C>) -> StepFuture<'a> + Send + Sync + 'static,
{
    fn apply<'a>(&'a self, cx: &'a ApplyContext<'a, C>) -> StepFuture<'a> {
        (self.0)(cx)
    }
}
