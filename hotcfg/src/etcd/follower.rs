//! [`EtcdFollower`]: keeps one engine in step with its etcd key, and reports each result back.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::client::{EtcdClient, EtcdError};
use super::follow::Follow;
use super::health::{WatchHealth, WatchState};
use super::reporter::Reporter;
use super::source::EtcdSource;
use crate::event::{RemoteCause, RemoteChange, Trigger};
use crate::{HotReload, Reloader};

/// How an [`EtcdFollower`] behaves.
///
/// ```
/// use std::time::Duration;
/// use hotcfg::etcd::FollowerOptions;
///
/// let options = FollowerOptions::new("web-1")
///     .lease_ttl(Duration::from_secs(5))
///     .backoff(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(options.node_id(), "web-1");
/// ```
#[derive(Clone, Debug)]
pub struct FollowerOptions {
    node_id: String,
    status_prefix: Option<String>,
    report: bool,
    lease_ttl: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl FollowerOptions {
    /// Options for the node `node_id` (unique in the fleet: it names the status key).
    pub fn new(node_id: impl Into<String>) -> Self {
        FollowerOptions {
            node_id: node_id.into(),
            status_prefix: None,
            report: true,
            lease_ttl: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Writes status reports under `prefix` instead of the source's
    /// [default](EtcdSource::default_status_prefix). When it lies inside a followed prefix, give
    /// it to [`EtcdSource::exclude`] too, so the engine does not read the reports as
    /// configuration.
    pub fn status_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.status_prefix = Some(prefix.into());
        self
    }

    /// Whether to report results (default `true`).
    pub fn report(mut self, report: bool) -> Self {
        self.report = report;
        self
    }

    /// Time to live of the lease the status key is bound to (default 10 s, at least 2 s): a node
    /// that dies disappears from the status view at most this long after its last keep-alive.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(2));
        self
    }

    /// Reconnection delays: the first retry after `min`, doubling up to `max` (defaults 100 ms and
    /// 5 s), each shortened by up to a quarter at random so a fleet does not reconnect in
    /// lockstep: no delay exceeds `max`. The delays start again from `min` only once a new watch
    /// has delivered and handled its first response (or stayed up for `max`), so a watch that
    /// etcd accepts but that fails at once does not retry in a tight loop.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
        self
    }
}

/// Counters of an [`EtcdFollower`], for monitoring and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowerStats {
    /// A watch is established now.
    pub connected: bool,
    /// The newest revision of the key seen (read or watched); every change up to it has been
    /// handed to the engine.
    pub revision: i64,
    /// Reloads triggered by etcd.
    pub reloads: u64,
    /// Times the connection was lost or could not be made.
    pub disconnects: u64,
    /// Fresh reads because the revision to resume from had been compacted.
    pub resyncs: u64,
    /// Status reports written.
    pub reports: u64,
}

pub(super) struct Shared {
    pub(super) connected: AtomicBool,
    pub(super) revision: AtomicI64,
    pub(super) reloads: AtomicU64,
    pub(super) disconnects: AtomicU64,
    pub(super) resyncs: AtomicU64,
    pub(super) reports: AtomicU64,
    /// The watch's state, which the reporter subscribes to.
    pub(super) health: watch::Sender<WatchHealth>,
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            connected: AtomicBool::new(false),
            revision: AtomicI64::new(0),
            reloads: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            health: watch::Sender::new(WatchHealth::now(WatchState::Starting, None)),
        }
    }

    /// The watch is established.
    pub(super) fn watching(&self) {
        self.connected.store(true, Ordering::SeqCst);
        self.set_health(WatchHealth::now(WatchState::Watching, None), false);
    }

    /// The follower was paused.
    pub(super) fn paused(&self) {
        self.connected.store(false, Ordering::SeqCst);
        if self.health.borrow().state != WatchState::Paused {
            self.set_health(WatchHealth::now(WatchState::Paused, None), false);
        }
    }

    /// A connection or watch attempt failed with `err`: reconnecting since the first failure.
    pub(super) fn failed(&self, err: &EtcdError) {
        self.connected.store(false, Ordering::SeqCst);
        self.disconnects.fetch_add(1, Ordering::SeqCst);
        let current = self.health.borrow().clone();
        let mut health = if current.state == WatchState::Reconnecting {
            current
        } else {
            WatchHealth::now(WatchState::Reconnecting, None)
        };
        health.last_error = Some(err.to_string());
        self.set_health(health, true);
    }

    /// `revision` of the key was handed to the engine.
    pub(super) fn handed(&self, revision: i64) {
        let newest = self
            .revision
            .fetch_max(revision, Ordering::SeqCst)
            .max(revision);
        metrics::gauge!(super::health::ETCD_REVISION).set(newest as f64);
    }

    fn set_health(&self, health: WatchHealth, failed: bool) {
        health.record(failed);
        self.health.send_if_modified(|old| {
            let changed = *old != health;
            *old = health;
            changed
        });
    }
}

/// Follows an etcd key for one engine: reads it at start, watches it from the revision read
/// (so no write in between is missed), and triggers a reload ([`Trigger::Remote`]) for every
/// change; reports each result under `<status prefix><node id>`, bound to a lease kept alive.
///
/// * **etcd down.** The engine keeps serving its live configuration; nothing is dropped or
///   reset. The follower retries with exponential backoff and jitter, and on reconnection resumes
///   the watch from the last revision it saw, so changes made meanwhile arrive in order. If that
///   revision has been compacted away, or the changes since are too large to receive, it reads
///   the key afresh instead (a *resync*).
/// * **Ordering.** A node handles revisions in etcd's order and never goes back to an older one:
///   each reload reads the newest value, so changes that arrive while a reload runs, or a backlog
///   received at once, coalesce into one reload of the newest (intermediate revisions may be
///   skipped, never reordered).
/// * **Reports.** One JSON [`NodeStatus`](super::NodeStatus) per result, written when it says
///   something new, with the watch's [`health`](EtcdFollower::health) (rewritten when that
///   changes, and when the key is deleted while the node lives). The key disappears when the
///   lease expires (the node died) or at once on [`shutdown`](EtcdFollower::shutdown).
///
/// Dropping the follower stops it too: its tasks end and revoke the status lease without being
/// waited for ([`shutdown`](EtcdFollower::shutdown) waits).
///
/// ```no_run
/// use hotcfg::etcd::{EtcdClient, EtcdFollower, EtcdSource, FollowerOptions};
/// use hotcfg::{HotReload, Reloader};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "limits")]
///     workers: usize,
/// }
///
/// let client = EtcdClient::new(["127.0.0.1:2379"])?;
/// let source = EtcdSource::new(client, "apps/billing/config.toml");
/// let reloader = Reloader::<Config>::builder(source.clone()).build()?;
/// let follower = EtcdFollower::start(&reloader, &source, FollowerOptions::new("billing-1"));
/// // ... serve with reloader.handle() ...
/// follower.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EtcdFollower {
    shared: Arc<Shared>,
    /// Told `true` by `shutdown`. Dropping the follower drops it, which its tasks take for the
    /// same order (a closed channel ends their waits too): no `Drop` needed.
    stop: watch::Sender<bool>,
    paused: watch::Sender<bool>,
    status_key: Option<String>,
    client: EtcdClient,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for EtcdFollower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdFollower")
            .field("status_key", &self.status_key)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// `source`, skipping the keys under the status prefix `options` name (when they lie inside a
/// followed prefix, the reports would otherwise be read as configuration).
fn without_reports(source: &EtcdSource, options: &FollowerOptions) -> EtcdSource {
    let Some(prefix) = &options.status_prefix else {
        return source.clone();
    };
    if source.is_prefix() && prefix.starts_with(source.key()) && !source.is_excluded(prefix) {
        tracing::warn!(
            status_prefix = %prefix,
            key = source.key(),
            "status reports lie inside the followed prefix and will be read as configuration: \
             exclude them with EtcdSource::exclude"
        );
    }
    source.clone().exclude(prefix.clone())
}

impl EtcdFollower {
    /// Starts following `source` for `reloader` (which should read that source). Never fails:
    /// when etcd is unreachable it keeps retrying in the background.
    pub fn start<C>(reloader: &Reloader<C>, source: &EtcdSource, options: FollowerOptions) -> Self
    where
        C: HotReload + DeserializeOwned + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared::new());
        let (stop, stop_rx) = watch::channel(false);
        let (paused, paused_rx) = watch::channel(false);
        let client = source.client().clone();
        let status_key = options.report.then(|| {
            let prefix = options.status_prefix.clone();
            let prefix = prefix.unwrap_or_else(|| source.default_status_prefix());
            format!("{prefix}{}", options.node_id)
        });
        let source = without_reports(source, &options);
        let mut tasks = Vec::new();
        if let Some(key) = &status_key {
            let reporter = Reporter {
                reloader: reloader.clone(),
                source: source.clone(),
                shared: Arc::clone(&shared),
                node: options.node_id.clone(),
                key: key.clone(),
                ttl: options.lease_ttl,
                backoff: (options.backoff_min, options.backoff_max),
                generations: Default::default(),
            };
            // Subscribe now, so no event after start is missed.
            let events = reloader.events();
            tasks.push(client.spawn(reporter.run(events, stop_rx.clone())));
        }
        let follow = Follow {
            reloader: reloader.clone(),
            source,
            shared: Arc::clone(&shared),
            backoff: (options.backoff_min, options.backoff_max),
        };
        tasks.push(client.spawn(follow.run(stop_rx, paused_rx)));
        EtcdFollower {
            shared,
            stop,
            paused,
            status_key,
            client,
            tasks: Mutex::new(tasks),
        }
    }

    /// Current counters.
    pub fn stats(&self) -> FollowerStats {
        let s = &self.shared;
        FollowerStats {
            connected: s.connected.load(Ordering::SeqCst),
            revision: s.revision.load(Ordering::SeqCst),
            reloads: s.reloads.load(Ordering::SeqCst),
            disconnects: s.disconnects.load(Ordering::SeqCst),
            resyncs: s.resyncs.load(Ordering::SeqCst),
            reports: s.reports.load(Ordering::SeqCst),
        }
    }

    /// What the watch is doing now: watching, reconnecting (since when, and why) or paused. Every
    /// status report carries it too.
    pub fn health(&self) -> WatchHealth {
        self.shared.health.borrow().clone()
    }

    /// The key this node reports under, when reporting.
    pub fn status_key(&self) -> Option<&str> {
        self.status_key.as_deref()
    }

    /// Stops watching and holds the node at its live configuration (a freeze during an incident,
    /// a maintenance window). Reports continue. [`resume`](EtcdFollower::resume) catches up.
    pub fn pause(&self) {
        let _ = self.paused.send(true);
    }

    /// Resumes following from the last revision seen; changes made while paused are applied
    /// (after a fresh read if their history was compacted meanwhile).
    pub fn resume(&self) {
        let _ = self.paused.send(false);
    }

    /// Whether the follower is paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Stops following and revokes the status lease so the node leaves the status view now.
    /// Waits at most `timeout`.
    pub fn shutdown(self, timeout: Duration) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = Instant::now() + timeout;
        let _ = self.client.block_on(async move {
            for task in tasks {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = tokio::time::timeout(left, task).await;
            }
            Ok(())
        });
    }
}

/// The trigger of a reload for `revision` of `key`: a watched change, or a fresh read.
pub(super) fn remote_trigger(key: &str, cause: RemoteCause, revision: i64) -> Trigger {
    Trigger::Remote(RemoteChange::new(STORE, key, revision, cause))
}

/// The revision an etcd trigger (made by [`remote_trigger`]) names.
pub(super) fn trigger_revision(trigger: &Trigger) -> Option<i64> {
    match trigger {
        Trigger::Remote(change) if change.store == STORE => Some(change.revision),
        _ => None,
    }
}

/// The store name in the triggers the follower makes.
const STORE: &str = "etcd";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_the_node_id_they_were_given() {
        assert_eq!(FollowerOptions::new("web-1").node_id(), "web-1");
    }

    /// `without_reports` warns only when the reports lie inside a followed prefix that does not
    /// exclude them (the engine, reading its own source, would take them for configuration),
    /// and the follower's copy of a prefix skips them in every case (cargo-mutants, issue 22:
    /// both `&&` into `||` and `delete !` in its condition survived).
    #[test]
    fn reports_inside_a_followed_prefix_are_skipped_and_warned_of_unless_excluded() {
        let client = || crate::etcd::EtcdClient::new(["127.0.0.1:9"]).unwrap();
        let options = FollowerOptions::new("n1").status_prefix("app/status/");
        let cases = [
            (EtcdSource::prefix(client(), "app/"), 1),
            (
                EtcdSource::prefix(client(), "app/").exclude("app/status/"),
                0,
            ),
            (EtcdSource::prefix(client(), "other/"), 0),
            (EtcdSource::new(client(), "app/"), 0),
        ];
        for (source, warned) in cases {
            let (warnings, guard) = crate::test_support::warnings();
            let followed = without_reports(&source, &options);
            drop(guard);
            let warnings = warnings.lock().unwrap();
            assert_eq!(warnings.len(), warned, "{source:?}: {warnings:?}");
            if source.is_prefix() {
                assert!(followed.is_excluded("app/status/n1"), "{source:?}");
            }
        }
        assert!(FollowerOptions::new("n1").status_prefix.is_none());
        let plain = EtcdSource::prefix(client(), "app/");
        assert!(!without_reports(&plain, &FollowerOptions::new("n1")).is_excluded("app/status/n1"));
    }

    #[test]
    fn a_remote_trigger_names_its_revision() {
        for cause in [RemoteCause::Read, RemoteCause::Watched] {
            let trigger = remote_trigger("a/revision 9/b", cause, 42);
            assert_eq!(trigger_revision(&trigger), Some(42), "{trigger}");
        }
        assert_eq!(
            remote_trigger("k", RemoteCause::Watched, 7).to_string(),
            "remote etcd k revision 7"
        );
        assert_eq!(
            remote_trigger("k", RemoteCause::Read, 7).to_string(),
            "remote etcd k read at revision 7"
        );
        assert_eq!(trigger_revision(&Trigger::Signal), None);
        let consul = RemoteChange::new("consul", "k", 3, RemoteCause::Watched);
        assert_eq!(trigger_revision(&Trigger::Remote(consul)), None);
    }

    #[test]
    fn each_change_of_the_watch_is_published_once_and_a_retry_keeps_its_start() {
        let shared = Shared::new();
        let mut health = shared.health.subscribe();
        assert_eq!(health.borrow_and_update().state, WatchState::Starting);
        let down = EtcdError::Setup("etcd is down".into());
        shared.failed(&down);
        assert!(
            health.has_changed().unwrap(),
            "reconnecting was not published"
        );
        let first = health.borrow_and_update().clone();
        assert_eq!(first.state, WatchState::Reconnecting);
        assert_eq!(first.last_error, Some(down.to_string()));
        assert!(!shared.connected.load(Ordering::SeqCst));
        // A second failure keeps the state's start, names the newer error.
        shared.health.send_modify(|h| h.since = 5);
        health.borrow_and_update();
        let again = EtcdError::Setup("still down".into());
        shared.failed(&again);
        let retried = health.borrow_and_update().clone();
        assert_eq!(
            (retried.since, retried.last_error),
            (5, Some(again.to_string()))
        );
        assert_eq!(shared.disconnects.load(Ordering::SeqCst), 2);
        shared.watching();
        assert!(health.has_changed().unwrap(), "watching was not published");
        let watching = health.borrow_and_update().clone();
        assert_eq!(
            (watching.state, &watching.last_error),
            (WatchState::Watching, &None)
        );
        assert!(shared.connected.load(Ordering::SeqCst));
        // The same health again wakes nobody (the reporter would rewrite an identical report).
        shared.set_health(watching.clone(), false);
        assert!(
            !health.has_changed().unwrap(),
            "an unchanged health was published"
        );
        shared.paused();
        assert_eq!(health.borrow_and_update().state, WatchState::Paused);
        assert!(!shared.connected.load(Ordering::SeqCst));
        shared.paused();
        assert!(
            !health.has_changed().unwrap(),
            "pausing twice was published twice"
        );
    }

    #[test]
    fn the_newest_revision_handed_over_is_kept_and_published() {
        use crate::etcd::health::{tests::recorded, ETCD_REVISION};
        use metrics_util::debugging::DebugValue;
        let shared = Shared::new();
        // An older revision after a newer one (a resync's read) does not move it back.
        let gauges = recorded(|| {
            shared.handed(7);
            shared.handed(3);
        });
        assert_eq!(shared.revision.load(Ordering::SeqCst), 7);
        let revision = (ETCD_REVISION.to_string(), DebugValue::Gauge(7.0.into()));
        assert_eq!(gauges, [revision]);
    }
}
