//! What makes the daemon reload: edits of its files (the watcher) and SIGHUP, both as tasks on
//! the daemon's runtime, their reloads off its workers (on the blocking pool).

use hotcfg::watcher::{ConfigWatcher, WatchOptions};
use hotcfg::Reloader;
use tokio::runtime::Handle;

use crate::config::TaskDaemonConfig;

/// Starts the file watcher and the SIGHUP handler on the current runtime; they stop when the
/// returned guards drop.
pub async fn start(
    reloader: &Reloader<TaskDaemonConfig>,
) -> Result<Vec<Box<dyn std::any::Any + Send>>, String> {
    let watcher = ConfigWatcher::watch_async(reloader.clone(), WatchOptions::default())
        .await
        .map_err(|e| format!("cannot watch the configuration: {e}"))?;
    tracing::info!(backend = ?watcher.mode(), "watching the configuration files");
    let mut guards = start_signal_only(reloader)?;
    guards.push(Box::new(watcher));
    Ok(guards)
}

/// Only the SIGHUP handler (a daemon that follows etcd has no file to watch).
pub fn start_signal_only(
    reloader: &Reloader<TaskDaemonConfig>,
) -> Result<Vec<Box<dyn std::any::Any + Send>>, String> {
    let mut guards: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    #[cfg(unix)]
    {
        let sighup = hotcfg::reload_on_sighup_task(reloader.clone(), &Handle::current())
            .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
        guards.push(Box::new(sighup));
    }
    #[cfg(not(unix))]
    let _ = reloader;
    Ok(guards)
}

/// Follows the etcd key: every change reloads, every result is reported under
/// `<key>/status/<node_id>`.
#[cfg(feature = "etcd")]
pub fn follow_etcd(
    reloader: &Reloader<TaskDaemonConfig>,
    source: &hotcfg::etcd::EtcdSource,
    node_id: &str,
) -> hotcfg::etcd::EtcdFollower {
    let follower = hotcfg::etcd::EtcdFollower::start(
        reloader,
        source,
        hotcfg::etcd::FollowerOptions::new(node_id),
    );
    tracing::info!(key = source.key(), node = node_id, "following etcd");
    follower
}
