//! The async API: `reload().await` and friends run the same pipeline as the blocking calls, on a
//! thread that is not a runtime worker, and the caller awaits the event; and where the blocking
//! calls run when they are made from inside a tokio runtime.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::runtime::{Handle as RuntimeHandle, RuntimeFlavor};

use super::Reloader;
use crate::diff::Diff;
use crate::event::{ReloadError, ReloadEvent, ReloadResult, Rollback, Trigger};
use crate::hot_reload::HotConfig;
use crate::plan::{Plan, PlanOptions};
use crate::source::{SourceContent, SourceError};

impl<C: HotConfig> Reloader<C> {
    /// Reloads now (trigger [`Trigger::Manual`]) without blocking the async caller: the
    /// [`reload_now`](Reloader::reload_now) of async code. See
    /// [`trigger_async`](Reloader::trigger_async).
    ///
    /// ```
    /// use hotcfg::{Format, HotReload, MemorySource, ReloadResult, Reloader};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
    /// let reloader = Reloader::<Config>::builder(source.clone())
    ///     .on_apply_async("pool", |cx| Box::pin(async move {
    ///         tokio::task::yield_now().await; // resize the pool...
    ///         println!("workers: {}", cx.new.workers);
    ///         Ok(())
    ///     }))
    ///     .build_async()
    ///     .await?;
    /// source.set("workers = 4");
    /// let event = reloader.reload().await;
    /// assert!(matches!(event.result, ReloadResult::Applied { .. }));
    /// assert_eq!(reloader.handle().load().workers, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn reload(&self) -> Arc<ReloadEvent> {
        self.trigger_async(Trigger::Manual).await
    }

    /// Reloads because of `trigger` without blocking the async caller. The attempt runs on a
    /// blocking thread (tokio's pool when a runtime is current, else a thread of its own), with
    /// the same coalescing as [`trigger`](Reloader::trigger): the runtime's workers keep running
    /// other tasks meanwhile, and async handlers run on the captured runtime. Dropping the future
    /// does not cancel the reload.
    pub async fn trigger_async(&self, trigger: Trigger) -> Arc<ReloadEvent> {
        let reloader = self.clone();
        off_runtime(move || reloader.trigger_here(trigger)).await
    }

    /// [`plan_with`](Reloader::plan_with) without blocking the async caller (a plan that asks
    /// the handlers runs async ones, and waits for a running reload).
    pub async fn plan_async(
        &self,
        content: Result<SourceContent, SourceError>,
        options: PlanOptions,
    ) -> Plan {
        let reloader = self.clone();
        off_runtime(move || reloader.plan_here(content, options)).await
    }

    /// The unrecorded answer of a blocking call refused on a current-thread runtime.
    pub(super) fn would_block(&self, trigger: Trigger) -> ReloadEvent {
        tracing::warn!(%trigger, "blocking reload refused on a current-thread runtime");
        ReloadEvent {
            generation: self.inner.handle.generation(),
            timestamp: SystemTime::now(),
            trigger,
            source: None,
            changes: Diff::empty(),
            result: ReloadResult::Failed {
                error: ReloadError::WouldBlockRuntime,
                rollback: Rollback::NotNeeded,
            },
            duration: Duration::ZERO,
        }
    }
}

/// Whether a blocking call made here must be refused: on a current-thread runtime, with async
/// handlers, which need the thread the call would block.
pub(super) fn refuses_blocking(has_async: bool) -> bool {
    has_async
        && RuntimeHandle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// Runs `work` where a blocking call made now may run handlers: here on a plain thread; on a
/// thread of its own when a tokio runtime is current, since a runtime worker must not drive the
/// async handlers' futures with `block_on` (a runtime inside a runtime). `work` may borrow, as
/// the blocking call does; this thread waits for it.
pub(super) fn off_worker<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if RuntimeHandle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    })
}

/// Runs `work` on a blocking thread and awaits its result (a panic in it is resumed here).
pub(crate) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(work)));
    };
    match RuntimeHandle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(job)),
        Err(_) => {
            if let Err(error) = std::thread::Builder::new()
                .name("hotcfg-reload".into())
                .spawn(job)
            {
                panic!("cannot start a thread for the reload: {error}");
            }
        }
    }
    match rx.await {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("the reload thread ended without an answer"),
    }
}
