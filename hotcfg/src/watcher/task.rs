//! The watcher as a task on a tokio runtime: the thread's work ([`Worker`]) driven by the
//! runtime's timer and a channel. Each step (reading files, the dry run, and a reload right after
//! it, as [`Reloader::trigger_async`] runs one) runs on the runtime's blocking pool: no worker
//! thread of the runtime ever waits on a file or a handler.

use std::thread::JoinHandle;

use serde::de::DeserializeOwned;
use tokio::runtime::Handle as RuntimeHandle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::worker::{Engine, Worker};
use super::{prepare, ConfigWatcher, Msg, Outbox, Runner, WatchError, WatchOptions};
use crate::engine::off_runtime;
use crate::{HotReload, Reloader};

impl ConfigWatcher {
    /// [`start`](ConfigWatcher::start) as a task on `runtime` instead of a thread: the same
    /// debounce, symlink and hazard handling (the same code); its file reads, dry runs and
    /// reloads run on the runtime's blocking pool, as [`Reloader::trigger_async`] runs a
    /// reload. Returns once the watches are in place (setting them up reads the files once, on
    /// this thread: [`watch_async`](ConfigWatcher::watch_async) does it on the blocking pool). Stops when dropped (the task is aborted; a reload it
    /// triggered still completes) or with [`stop`](ConfigWatcher::stop)`().await`, and when the
    /// runtime shuts down.
    ///
    /// The runtime needs its timer (`enable_time` or `enable_all`); either flavour will do, a
    /// current-thread runtime only while something drives it (`block_on`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use hotcfg::{FileSource, HotReload, Reloader};
    /// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// # struct Config { #[reload(scope = "limits")] workers: usize }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.toml");
    /// # std::fs::write(&path, "workers = 2")?;
    /// use hotcfg::watcher::{ConfigWatcher, WatchOptions};
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// runtime.block_on(async {
    ///     let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build_async().await?;
    ///     let mut events = reloader.events();
    ///     let watcher = ConfigWatcher::spawn_on(
    ///         reloader.clone(),
    ///         WatchOptions::default(),
    ///         &tokio::runtime::Handle::current(),
    ///     )?;
    ///
    ///     std::fs::write(dir.path().join(".app.toml.tmp"), "workers = 8")?;
    ///     std::fs::rename(dir.path().join(".app.toml.tmp"), &path)?;
    ///
    ///     // The watcher's task runs while this one awaits.
    ///     let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
    ///     assert_eq!(reloader.handle().load().workers, 8, "{event}");
    ///     watcher.stop().await;
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_on<C>(
        reloader: Reloader<C>,
        options: WatchOptions,
        runtime: &RuntimeHandle,
    ) -> Result<Self, WatchError>
    where
        C: HotReload + DeserializeOwned + Send + Sync,
    {
        Self::spawn_engine(Box::new(reloader), options, runtime)
    }

    /// [`spawn_on`](ConfigWatcher::spawn_on) the current runtime, with the set-up (reading the
    /// files, placing the watches, a dry run) on its blocking pool rather than the calling task's
    /// thread.
    ///
    /// ```
    /// # use hotcfg::{FileSource, HotReload, Reloader};
    /// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// # struct Config { #[reload(scope = "limits")] workers: usize }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.toml");
    /// # std::fs::write(&path, "workers = 2")?;
    /// use hotcfg::watcher::{Backend, ConfigWatcher, WatchOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build_async().await?;
    /// let watcher = ConfigWatcher::watch_async(reloader, WatchOptions::default()).await?;
    /// assert_eq!(watcher.mode(), Backend::Native);
    /// watcher.stop().await;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn watch_async<C>(
        reloader: Reloader<C>,
        options: WatchOptions,
    ) -> Result<Self, WatchError>
    where
        C: HotReload + DeserializeOwned + Send + Sync,
    {
        let runtime = RuntimeHandle::current();
        off_runtime(move || Self::spawn_engine(Box::new(reloader), options, &runtime)).await
    }

    fn spawn_engine(
        engine: Box<dyn Engine>,
        options: WatchOptions,
        runtime: &RuntimeHandle,
    ) -> Result<Self, WatchError> {
        let (tx, rx) = unbounded_channel();
        let tx = Outbox::Task(tx);
        let (worker, shared) = prepare(engine, &options, &tx)?;
        let task = runtime.spawn(run(worker, rx));
        Ok(ConfigWatcher {
            tx,
            runner: Some(Runner::Task(task)),
            shared,
        })
    }

    /// Stops watching and returns once the watcher has stopped: a reload it triggered is over
    /// and its watches are gone. For a watcher started either way; dropping it stops it too,
    /// without waiting for a task.
    pub async fn stop(mut self) {
        self.tx.send(Msg::Stop);
        match self.runner.take() {
            Some(Runner::Task(task)) => {
                if let Err(err) = task.await {
                    if let Ok(panic) = err.try_into_panic() {
                        std::panic::resume_unwind(panic);
                    }
                }
            }
            Some(Runner::Thread(thread)) => join_elsewhere(thread).await,
            None => {}
        }
    }
}

/// Waits for the watcher thread without blocking an async caller (unless the caller is that
/// thread: a handler it called, which returns to it first).
async fn join_elsewhere(thread: JoinHandle<()>) {
    if thread.thread().id() == std::thread::current().id() {
        return;
    }
    if let Err(panic) = off_runtime(move || thread.join()).await {
        std::panic::resume_unwind(panic);
    }
}

/// The watcher's task: until [`Msg::Stop`], or until every sender is gone.
async fn run(mut worker: Worker, mut rx: UnboundedReceiver<Msg>) {
    loop {
        worker.publish();
        let wake = tokio::time::Instant::from_std(worker.next_wake());
        match tokio::time::timeout_at(wake, rx.recv()).await {
            Ok(Some(msg)) => {
                if !worker.take_all(msg, || rx.try_recv().ok()) {
                    return;
                }
            }
            Ok(None) => return,
            Err(_timeout) => {}
        }
        // Reading files, the dry run and the reload after it: on the blocking pool.
        worker = off_runtime(move || {
            if worker.step() {
                worker.look();
            }
            worker
        })
        .await;
    }
}
