//! [`EtcdFollower`]: keeps one engine in step with its etcd key, and reports each result back.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use etcd_client::WatchOptions;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use super::client::{EtcdClient, EtcdError};
use super::source::EtcdSource;
use super::status::{NodeResult, NodeStatus};
use crate::{HotReload, ReloadEvent, Reloader, Trigger};

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
    /// 5 s), with jitter so a fleet does not reconnect in lockstep.
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

struct Shared {
    connected: AtomicBool,
    revision: AtomicI64,
    reloads: AtomicU64,
    disconnects: AtomicU64,
    resyncs: AtomicU64,
    reports: AtomicU64,
}

/// Follows an etcd key for one engine: reads it at start, watches it from the revision read
/// (so no write in between is missed), and triggers a reload ([`Trigger::Remote`]) for every
/// change; reports each result under `<status prefix><node id>`, bound to a lease kept alive.
///
/// * **etcd down.** The engine keeps serving its live configuration; nothing is dropped or
///   reset. The follower retries with exponential backoff and jitter, and on reconnection resumes
///   the watch from the last revision it saw, so changes made meanwhile arrive in order. If that
///   revision has been compacted away, it reads the key afresh instead (a *resync*).
/// * **Ordering.** A node handles revisions in etcd's order and never goes back to an older one:
///   each reload reads the newest value, so changes that arrive while a reload runs coalesce into
///   one reload of the newest (intermediate revisions may be skipped, never reordered).
/// * **Reports.** One JSON [`NodeStatus`] per result, written when it says something new. The
///   key disappears when the lease expires (the node died) or at once on
///   [`shutdown`](EtcdFollower::shutdown).
///
/// Dropping the follower stops it (the status key then expires with its lease).
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

impl EtcdFollower {
    /// Starts following `source` for `reloader` (which should read that source). Never fails:
    /// when etcd is unreachable it keeps retrying in the background.
    pub fn start<C>(reloader: &Reloader<C>, source: &EtcdSource, options: FollowerOptions) -> Self
    where
        C: HotReload + DeserializeOwned + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared {
            connected: AtomicBool::new(false),
            revision: AtomicI64::new(0),
            reloads: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            reports: AtomicU64::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (paused, paused_rx) = watch::channel(false);
        let client = source.client().clone();
        let status_key = options.report.then(|| {
            format!(
                "{}{}",
                options
                    .status_prefix
                    .clone()
                    .unwrap_or_else(|| source.default_status_prefix()),
                options.node_id
            )
        });
        let mut source = source.clone();
        if let Some(prefix) = &options.status_prefix {
            if source.is_prefix() && prefix.starts_with(source.key()) && !source.is_excluded(prefix)
            {
                tracing::warn!(
                    status_prefix = %prefix,
                    key = source.key(),
                    "status reports lie inside the followed prefix and will be read as \
                     configuration: exclude them with EtcdSource::exclude"
                );
            }
            source = source.exclude(prefix.clone());
        }
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

impl Drop for EtcdFollower {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Exponential backoff with jitter.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new((min, max): (Duration, Duration)) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    /// The delay to wait now: the current step with up to 25% jitter either way.
    fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // A cheap spread in [-25%, +25%].
        let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
        base.mul_f64(factor)
    }
}

/// Sleeps `delay` unless `stop` turns true first; returns `true` when stopped.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = stop.changed() => true,
    }
}

enum SessionEnd {
    Stopped,
    Paused,
    Compacted,
}

struct Follow<C: HotReload> {
    reloader: Reloader<C>,
    source: EtcdSource,
    shared: Arc<Shared>,
    backoff: (Duration, Duration),
}

impl<C> Follow<C>
where
    C: HotReload + DeserializeOwned + Send + Sync + 'static,
{
    async fn run(self, mut stop: watch::Receiver<bool>, mut paused: watch::Receiver<bool>) {
        // The revision every change up to which has been handed to the engine; `None` until a
        // fresh read established it.
        let mut position: Option<i64> = None;
        let mut backoff = Backoff::new(self.backoff);
        loop {
            if *stop.borrow() {
                return;
            }
            if *paused.borrow() {
                self.shared.connected.store(false, Ordering::SeqCst);
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = paused.changed() => continue,
                }
            }
            match self
                .session(&mut position, &mut stop, &mut paused, &mut backoff)
                .await
            {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Paused) => {}
                Ok(SessionEnd::Compacted) => {
                    self.shared.resyncs.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(
                        key = self.source.key(),
                        after = ?position,
                        "the revision to resume from was compacted; reading the key afresh"
                    );
                    position = None;
                }
                Err(err) => {
                    self.shared.connected.store(false, Ordering::SeqCst);
                    self.shared.disconnects.fetch_add(1, Ordering::SeqCst);
                    let delay = backoff.step();
                    tracing::warn!(
                        key = self.source.key(),
                        %err,
                        retry_in = ?delay,
                        "lost etcd; keeping the live configuration"
                    );
                    if sleep_or_stop(delay, &mut stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// One connection: a fresh read when needed, then a watch until it fails or is told to stop.
    async fn session(
        &self,
        position: &mut Option<i64>,
        stop: &mut watch::Receiver<bool>,
        paused: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Result<SessionEnd, EtcdError> {
        let client = self.source.client();
        let key = self.source.key().to_string();
        let start = match *position {
            Some(revision) => revision + 1,
            None => {
                // Learn the store revision first, then have the engine read: the read sees at
                // least that revision, and the watch delivers everything after it.
                let listing = client.range(&key, self.source.is_prefix()).await?;
                let revision = listing.revision;
                let newest = listing
                    .entries
                    .iter()
                    .filter(|e| !self.source.is_excluded(&e.key))
                    .map(|e| e.mod_revision)
                    .max();
                // The engine already runs exactly this version of a key (typically: it was just
                // built from it): nothing to reload. A prefix always re-reads, since a deleted key
                // leaves no revision behind.
                let live = self
                    .reloader
                    .handle()
                    .snapshot()
                    .source()
                    .and_then(|s| s.revision);
                if self.source.is_prefix() || newest.is_none() || live != newest {
                    self.reload(remote_trigger(&key, true, revision)).await?;
                }
                *position = Some(revision);
                self.shared
                    .revision
                    .fetch_max(newest.unwrap_or(0), Ordering::SeqCst);
                revision + 1
            }
        };
        let (raw, epoch) = client.raw().await?;
        let mut options = WatchOptions::new().with_start_revision(start);
        if self.source.is_prefix() {
            options = options.with_prefix();
        }
        let timeout = client.options().request;
        let watching = async {
            let mut raw = raw;
            let mut stream = raw.watch(key.clone(), Some(options)).await?;
            // Wait for etcd to confirm (or refuse) the watch.
            let first = stream.message().await?;
            Ok::<_, etcd_client::Error>((stream, first))
        };
        let (mut stream, first) = match tokio::time::timeout(timeout, watching).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(err)) => {
                let err = client.classify(&format!("watch {key}"), err);
                if err.is_unreachable() {
                    client.forget(epoch).await;
                }
                return Err(err);
            }
            Err(_) => {
                client.forget(epoch).await;
                return Err(
                    client.unreachable(format!("no answer within {timeout:?} to watch {key}"))
                );
            }
        };
        let mut confirmed = false;
        let mut next = first;
        loop {
            let Some(response) = next else {
                client.forget(epoch).await;
                return Err(client.unreachable(format!("the watch of {key} was closed")));
            };
            if response.canceled() {
                if response.compact_revision() > 0 {
                    return Ok(SessionEnd::Compacted);
                }
                return Err(EtcdError::Refused {
                    endpoints: client.endpoint_list(),
                    operation: format!("watch {key}"),
                    message: format!("watch canceled: {}", response.cancel_reason()),
                });
            }
            if !confirmed {
                confirmed = true;
                self.shared.connected.store(true, Ordering::SeqCst);
                backoff.reset();
                tracing::info!(key, from = start, "following etcd");
            }
            let newest = response
                .events()
                .iter()
                .filter_map(|event| event.kv())
                .filter(|kv| !self.source.is_excluded(&String::from_utf8_lossy(kv.key())))
                .map(|kv| kv.mod_revision())
                .max();
            if let Some(revision) = newest {
                self.reload(remote_trigger(&key, false, revision)).await?;
                *position = Some(revision);
                self.shared.revision.fetch_max(revision, Ordering::SeqCst);
            }
            let message = loop {
                tokio::select! {
                    _ = stop.changed() => return Ok(SessionEnd::Stopped),
                    changed = paused.changed() => {
                        if changed.is_err() || *paused.borrow() {
                            return Ok(SessionEnd::Paused);
                        }
                    }
                    message = stream.message() => break message,
                }
            };
            next = match message {
                Ok(message) => message,
                Err(err) => {
                    let err = client.classify(&format!("watch {key}"), err);
                    client.forget(epoch).await;
                    return Err(err);
                }
            };
        }
    }

    /// Runs one reload on a blocking thread. A read that could not reach etcd is an error, so the
    /// session reconnects and the revision is handled again.
    async fn reload(&self, trigger: Trigger) -> Result<Arc<ReloadEvent>, EtcdError> {
        let reloader = self.reloader.clone();
        let event = tokio::task::spawn_blocking(move || reloader.trigger(trigger))
            .await
            .map_err(|e| EtcdError::Setup(format!("the reload task failed: {e}")))?;
        self.shared.reloads.fetch_add(1, Ordering::SeqCst);
        if event.source.is_none() && self.source.last_read().unreachable {
            return Err(self
                .source
                .client()
                .unreachable("etcd went away while the engine read the key"));
        }
        Ok(event)
    }
}

/// The trigger of a reload for `revision` of `key`: `etcd KEY revision N` for a watched change,
/// `etcd KEY read at revision N` for a fresh read.
fn remote_trigger(key: &str, fresh: bool, revision: i64) -> Trigger {
    let what = if fresh {
        "read at revision"
    } else {
        "revision"
    };
    Trigger::Remote(format!("etcd {key} {what} {revision}"))
}

/// The revision a trigger made by [`remote_trigger`] names.
fn trigger_revision(trigger: &Trigger) -> Option<i64> {
    match trigger {
        Trigger::Remote(what) if what.starts_with("etcd ") => {
            what.rsplit_once(" revision ")?.1.parse().ok()
        }
        _ => None,
    }
}

struct Reporter<C: HotReload> {
    reloader: Reloader<C>,
    source: EtcdSource,
    shared: Arc<Shared>,
    node: String,
    key: String,
    ttl: Duration,
    backoff: (Duration, Duration),
}

impl<C> Reporter<C>
where
    C: HotReload + DeserializeOwned + Send + Sync + 'static,
{
    /// The report for `event`, or `None` when it has nothing to say about a revision (a read
    /// that could not reach etcd).
    fn status_of(&self, event: &ReloadEvent) -> Option<NodeStatus> {
        let mut status = NodeStatus::from_event(&self.node, event, self.pending());
        if event.source.is_none() {
            // Nothing was read: the result is for the revision that triggered the reload (a
            // deletion), else for the store revision the failed read saw.
            let note = self.source.last_read();
            if note.unreachable {
                return None;
            }
            status.revision = trigger_revision(&event.trigger).or(note.revision);
        }
        Some(status)
    }

    fn pending(&self) -> Vec<String> {
        self.reloader
            .pending_restart()
            .into_iter()
            .map(|c| c.path.to_string())
            .collect()
    }

    async fn run(
        self,
        mut events: broadcast::Receiver<Arc<ReloadEvent>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut latest =
            NodeStatus::from_event(&self.node, &self.reloader.last_event(), self.pending());
        let mut backoff = Backoff::new(self.backoff);
        loop {
            match self
                .session(&mut latest, &mut events, &mut stop, &mut backoff)
                .await
            {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(key = self.key, %err, "cannot report status; retrying");
                    if sleep_or_stop(backoff.step(), &mut stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// Grants a lease, writes the latest report, then writes each new one and keeps the lease
    /// alive, until stopped (revoking the lease) or etcd fails.
    async fn session(
        &self,
        latest: &mut NodeStatus,
        events: &mut broadcast::Receiver<Arc<ReloadEvent>>,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Result<(), EtcdError> {
        let client = self.source.client();
        let ttl = self.ttl.as_secs().max(2) as i64;
        let lease = client
            .call("grant a status lease", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?
            .id();
        let (raw, epoch) = client.raw().await?;
        let (mut keeper, mut answers) = {
            let mut raw = raw;
            match tokio::time::timeout(client.options().request, raw.lease_keep_alive(lease)).await
            {
                Ok(Ok(pair)) => pair,
                Ok(Err(err)) => {
                    client.forget(epoch).await;
                    return Err(client.classify("keep the status lease alive", err));
                }
                Err(_) => {
                    client.forget(epoch).await;
                    return Err(client.unreachable("no answer to the lease keep-alive"));
                }
            }
        };
        let mut written: NodeStatus = latest.clone();
        self.write(latest, lease).await?;
        backoff.reset();
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = client
                        .call("revoke the status lease", |mut c| async move { c.lease_revoke(lease).await })
                        .await;
                    return Ok(());
                }
                event = events.recv() => {
                    let event = match event {
                        Ok(event) => event,
                        Err(broadcast::error::RecvError::Lagged(_)) => self.reloader.last_event(),
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    let Some(status) = self.status_of(&event) else { continue };
                    // A repeated read of a revision already reported says nothing new.
                    let repeat = status.result == NodeResult::Unchanged
                        && status.revision == written.revision;
                    *latest = status;
                    if repeat || latest.same_as(&written) {
                        continue;
                    }
                    self.write(latest, lease).await?;
                    written = latest.clone();
                }
                _ = tick.tick() => {
                    keeper.keep_alive().await.map_err(|e| client.classify("keep the status lease alive", e))?;
                    match tokio::time::timeout(client.options().request, answers.message()).await {
                        Ok(Ok(Some(answer))) if answer.ttl() > 0 => {}
                        Ok(Ok(Some(_))) => {
                            return Err(client.unreachable("the status lease expired"));
                        }
                        Ok(Ok(None)) => {
                            client.forget(epoch).await;
                            return Err(client.unreachable("the lease keep-alive stream closed"));
                        }
                        Ok(Err(err)) => {
                            client.forget(epoch).await;
                            return Err(client.classify("keep the status lease alive", err));
                        }
                        Err(_) => {
                            client.forget(epoch).await;
                            return Err(client.unreachable("no answer to the lease keep-alive"));
                        }
                    }
                }
            }
        }
    }

    async fn write(&self, status: &NodeStatus, lease: i64) -> Result<(), EtcdError> {
        let json = serde_json::to_vec(status)
            .map_err(|e| EtcdError::Setup(format!("cannot encode the status: {e}")))?;
        self.source
            .client()
            .put_async(&self.key, json, Some(lease))
            .await?;
        self.shared.reports.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(key = self.key, result = %status.result, revision = ?status.revision, "status reported");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_trigger_names_its_revision() {
        for fresh in [true, false] {
            let trigger = remote_trigger("a/revision 9/b", fresh, 42);
            assert_eq!(trigger_revision(&trigger), Some(42), "{trigger}");
        }
        assert_eq!(
            remote_trigger("k", false, 7).to_string(),
            "remote etcd k revision 7"
        );
        assert_eq!(trigger_revision(&Trigger::Signal), None);
        assert_eq!(
            trigger_revision(&Trigger::Remote("consul k revision 3".into())),
            None
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_bounded_jitter_and_resets() {
        let mut backoff = Backoff::new((Duration::from_millis(100), Duration::from_millis(400)));
        let steps: Vec<Duration> = (0..5).map(|_| backoff.step()).collect();
        let bases = [100, 200, 400, 400, 400];
        for (step, base) in steps.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(
                *step >= base.mul_f64(0.75) && *step <= base.mul_f64(1.25),
                "{steps:?}"
            );
        }
        backoff.reset();
        assert!(backoff.step() <= Duration::from_millis(125));
    }
}
