//! Reload on SIGHUP, the daemon convention (nginx, PostgreSQL, Consul): `kill -HUP <pid>`; on a
//! thread of its own ([`reload_on_sighup`]) or as a task on a tokio runtime
//! ([`reload_on_sighup_task`]).

use std::fmt;
use std::io;
use std::thread::JoinHandle;

use serde::de::DeserializeOwned;
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};
use tokio::runtime::Handle as RuntimeHandle;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle as TaskHandle;

use crate::{HotReload, Reloader, Trigger};

/// Reloads `reloader` (with [`Trigger::Signal`]) every time the process receives SIGHUP, on a
/// thread of its own, through the engine's coalescing queue: signals that arrive during a reload
/// cause one more reload, not one each. Stops when the returned guard is dropped.
///
/// While the guard lives SIGHUP no longer terminates the process.
///
/// ```
/// use hotcfg::{FileSource, HotReload, Reloader, ReloadResult, Trigger};
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
/// let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build()?;
/// let mut events = reloader.events();
///
/// let _guard = hotcfg::reload_on_sighup(reloader.clone())?;
/// std::fs::write(&path, "workers = 3")?;
/// signal_hook::low_level::raise(signal_hook::consts::SIGHUP)?; // as `kill -HUP` would
///
/// let event = events.blocking_recv()?;
/// assert_eq!(event.trigger, Trigger::Signal);
/// assert!(matches!(event.result, ReloadResult::Applied { .. }));
/// assert_eq!(reloader.handle().load().workers, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn reload_on_sighup<C>(reloader: Reloader<C>) -> io::Result<SignalGuard>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    let mut signals = Signals::new([SIGHUP])?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("hotcfg-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP received: reloading the configuration");
                reloader.trigger(Trigger::Signal);
            }
        });
    let thread = match thread {
        Ok(thread) => thread,
        Err(err) => {
            handle.close();
            return Err(err);
        }
    };
    Ok(SignalGuard {
        handle,
        thread: Some(thread),
    })
}

/// Keeps SIGHUP reloading the configuration; dropping it stops that (see [`reload_on_sighup`]).
pub struct SignalGuard {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalGuard")
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// [`reload_on_sighup`] as a task on `runtime`, through [`tokio::signal`]: every SIGHUP reloads
/// `reloader` with [`Reloader::trigger_async`] ([`Trigger::Signal`]); signals that arrive during
/// a reload cause one more reload. Returns once the handler is installed: a SIGHUP sent after
/// this returns is seen. Stops when the returned guard is dropped (the task is aborted; a reload
/// it started still completes), or when the runtime shuts down.
///
/// The runtime needs its I/O driver (`enable_io` or `enable_all`), which delivers signals; a
/// current-thread runtime reloads while something drives it (`block_on`). tokio keeps its SIGHUP
/// handler for the life of the process: after the guard is dropped SIGHUP is ignored, it does
/// not terminate the process.
///
/// ```
/// use hotcfg::{FileSource, HotReload, Reloader, ReloadResult, Trigger};
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
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// runtime.block_on(async {
///     let reloader = Reloader::<Config>::builder(FileSource::new(&path)).build_async().await?;
///     let mut events = reloader.events();
///     let _sighup = hotcfg::reload_on_sighup_task(
///         reloader.clone(),
///         &tokio::runtime::Handle::current(),
///     )?;
///     std::fs::write(&path, "workers = 3")?;
///     signal_hook::low_level::raise(signal_hook::consts::SIGHUP)?; // as `kill -HUP` would
///
///     let event = events.recv().await?;
///     assert_eq!(event.trigger, Trigger::Signal);
///     assert!(matches!(event.result, ReloadResult::Applied { .. }));
///     assert_eq!(reloader.handle().load().workers, 3);
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn reload_on_sighup_task<C>(
    reloader: Reloader<C>,
    runtime: &RuntimeHandle,
) -> io::Result<SignalTask>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    let mut hangups = {
        let _in_runtime = runtime.enter();
        signal(SignalKind::hangup())?
    };
    let task = runtime.spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the configuration");
            reloader.trigger_async(Trigger::Signal).await;
        }
    });
    Ok(SignalTask { task })
}

/// Keeps SIGHUP reloading the configuration from a task; dropping it stops that (see
/// [`reload_on_sighup_task`]).
#[derive(Debug)]
pub struct SignalTask {
    task: TaskHandle<()>,
}

impl Drop for SignalTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}
