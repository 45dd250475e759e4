//! Reload on SIGHUP, the daemon convention (nginx, PostgreSQL, Consul): `kill -HUP <pid>`.

use std::fmt;
use std::io;
use std::thread::JoinHandle;

use serde::de::DeserializeOwned;
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

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
