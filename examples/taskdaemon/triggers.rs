//! What makes the daemon reload: edits of its files (the watcher) and SIGHUP.

use hotcfg::watcher::{ConfigWatcher, WatchOptions};
use hotcfg::Reloader;

use crate::config::TaskDaemonConfig;

/// Starts the file watcher and the SIGHUP handler; they stop when the returned guards drop.
pub fn start(
    reloader: &Reloader<TaskDaemonConfig>,
) -> Result<Vec<Box<dyn std::any::Any + Send>>, String> {
    let watcher = ConfigWatcher::start(reloader.clone(), WatchOptions::default())
        .map_err(|e| format!("cannot watch the configuration: {e}"))?;
    tracing::info!(backend = ?watcher.mode(), "watching the configuration files");
    let mut guards: Vec<Box<dyn std::any::Any + Send>> = vec![Box::new(watcher)];
    #[cfg(unix)]
    {
        let sighup = hotcfg::reload_on_sighup(reloader.clone())
            .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
        guards.push(Box::new(sighup));
    }
    Ok(guards)
}
