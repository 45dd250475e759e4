//! The status reporter: one JSON [`NodeStatus`] per result under the node's status key, bound to
//! a lease kept alive, rewritten when the watch's health changes or the key disappears.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper, WatchFilterType, WatchOptions, WatchStream};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use super::backoff::{sleep_or_stop, Backoff};
use super::client::EtcdError;
use super::follower::{trigger_revision, Shared};
use super::health::WatchHealth;
use super::node_probation::{Generations, NodeProbation};
use super::source::EtcdSource;
use super::status::{NodeResult, NodeStatus};
use crate::{HotReload, ProbationStatus, ReloadEvent, Reloader};

pub(super) struct Reporter<C: HotReload> {
    pub(super) reloader: Reloader<C>,
    pub(super) source: EtcdSource,
    pub(super) shared: Arc<Shared>,
    pub(super) node: String,
    pub(super) key: String,
    pub(super) ttl: Duration,
    pub(super) backoff: (Duration, Duration),
    /// The revisions of recent generations, for the probation report.
    pub(super) generations: Generations,
}

/// What a reporter session listens to: the engine's events, the watch's health, probation, the
/// stop signal.
type Channels<'a> = (
    &'a mut broadcast::Receiver<Arc<ReloadEvent>>,
    &'a mut watch::Receiver<WatchHealth>,
    &'a mut watch::Receiver<ProbationStatus>,
    &'a mut watch::Receiver<bool>,
);

/// A status lease and the stream that keeps it alive.
struct Lease {
    id: i64,
    keeper: LeaseKeeper,
    answers: LeaseKeepAliveStream,
    epoch: u64,
}

impl<C> Reporter<C>
where
    C: HotReload + DeserializeOwned + Send + Sync + 'static,
{
    /// The report for `event`, or `None` when it has nothing to say about a revision (a read
    /// that could not reach etcd).
    fn status_of(&self, event: &ReloadEvent, health: &WatchHealth) -> Option<NodeStatus> {
        let mut status = self.report_of(event);
        status.watch = Some(health.clone());
        status.probation = self.probation();
        if let Some(failed) = event.result.read_error() {
            if failed.is_temporary() {
                return None;
            }
            // Nothing was read: the result is for the revision that triggered the reload (a
            // deletion), else for the store revision the failed read saw.
            status.revision = trigger_revision(&event.trigger).or(failed.revision);
        }
        Some(status)
    }

    /// Where probation stands, when the node runs it.
    fn probation(&self) -> Option<NodeProbation> {
        self.reloader.has_probation().then(|| {
            let status = self.reloader.probation_status();
            NodeProbation::of(&status, |g| self.generations.revision_of(g))
        })
    }

    /// The report of `event` (noted for probation's revisions), stale while the engine is.
    fn report_of(&self, event: &ReloadEvent) -> NodeStatus {
        self.generations.note(event);
        let mut status = NodeStatus::from_event(&self.node, event, self.pending());
        status.stale = self.reloader.stale().is_some();
        status
    }

    fn pending(&self) -> Vec<String> {
        self.reloader
            .pending_restart()
            .into_iter()
            .map(|c| c.path.to_string())
            .collect()
    }

    pub(super) async fn run(
        self,
        mut events: broadcast::Receiver<Arc<ReloadEvent>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut health = self.shared.health.subscribe();
        let mut probation = self.reloader.probation_updates();
        let mut latest = self.report_of(&self.reloader.last_event());
        latest.probation = self.probation();
        let mut backoff = Backoff::new(self.backoff);
        loop {
            latest.watch = Some(health.borrow_and_update().clone());
            let channels = (&mut events, &mut health, &mut probation, &mut stop);
            match self.session(&mut latest, channels, &mut backoff).await {
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
    /// alive, until stopped (revoking the lease) or etcd fails. Watches its own key, so a report
    /// deleted by someone else is written again.
    async fn session(
        &self,
        latest: &mut NodeStatus,
        (events, health, probation, stop): Channels<'_>,
        backoff: &mut Backoff,
    ) -> Result<(), EtcdError> {
        let client = self.source.client();
        let mut lease = self.lease().await?;
        let mut written = latest.clone();
        let revision = self.write(latest, lease.id).await?;
        backoff.reset();
        let mut own = self.watch_own_key(revision, lease.epoch).await?;
        let mut probation_open = self.reloader.has_probation();
        let mut tick = tokio::time::interval(keep_alive_period(self.ttl));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    self.revoke(lease.id).await;
                    return Ok(());
                }
                event = events.recv() => {
                    let event = match event {
                        Ok(event) => event,
                        Err(broadcast::error::RecvError::Lagged(_)) => self.reloader.last_event(),
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    let Some(status) = self.status_of(&event, &health.borrow()) else { continue };
                    // A repeated read of a revision already reported says nothing new: the
                    // report keeps what was done with that revision.
                    let repeat = status.result == NodeResult::Unchanged
                        && status.revision == written.revision;
                    if !repeat {
                        *latest = status;
                        self.write_if_new(latest, &mut written, lease.id).await?;
                    }
                }
                changed = probation.changed(), if probation_open => {
                    // Without probation (or once the engine is gone) nothing more comes.
                    probation_open = changed.is_ok();
                    latest.probation = self.probation();
                    self.write_if_new(latest, &mut written, lease.id).await?;
                }
                changed = health.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    latest.watch = Some(health.borrow_and_update().clone());
                    self.write_if_new(latest, &mut written, lease.id).await?;
                }
                message = own.message() => {
                    let deleted = message
                        .map_err(|e| client.classify(&format!("watch {}", self.key), e))?
                        .ok_or_else(|| client.unreachable(format!("the watch of {} was closed", self.key)))?
                        .events()
                        .len();
                    if deleted > 0 && !*stop.borrow() {
                        tracing::warn!(key = self.key, "the status report was deleted; writing it again");
                        self.write(latest, lease.id).await?;
                        written = latest.clone();
                    }
                }
                _ = tick.tick() => self.keep_alive(&mut lease).await?,
            }
        }
    }

    /// Revokes the status lease, so the report disappears now (best effort: it expires anyway).
    async fn revoke(&self, id: i64) {
        let _ = self
            .source
            .client()
            .call("revoke the status lease", |mut c| async move {
                c.lease_revoke(id).await
            })
            .await;
    }

    /// A new lease with its keep-alive stream.
    async fn lease(&self) -> Result<Lease, EtcdError> {
        let client = self.source.client();
        let ttl = self.ttl.as_secs().max(2) as i64;
        let id = client
            .call("grant a status lease", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?
            .id();
        let (mut raw, epoch) = client.raw().await?;
        match tokio::time::timeout(client.options().request, raw.lease_keep_alive(id)).await {
            Ok(Ok((keeper, answers))) => Ok(Lease {
                id,
                keeper,
                answers,
                epoch,
            }),
            Ok(Err(err)) => {
                client.forget(epoch).await;
                Err(client.classify(KEEP_ALIVE, err))
            }
            Err(_) => {
                client.forget(epoch).await;
                Err(client.unreachable("no answer to the lease keep-alive"))
            }
        }
    }

    /// Renews the lease once. An answer with no time left means etcd is up but the lease expired
    /// (the node could not renew it in time): an error of its own, so a new lease is taken.
    async fn keep_alive(&self, lease: &mut Lease) -> Result<(), EtcdError> {
        let client = self.source.client();
        lease
            .keeper
            .keep_alive()
            .await
            .map_err(|e| client.classify(KEEP_ALIVE, e))?;
        let answer = tokio::time::timeout(client.options().request, lease.answers.message()).await;
        let answer = answer.ok().map(|a| a.map(|a| a.map(|a| a.ttl())));
        let Err(error) = self.renewal(lease.id, answer) else {
            return Ok(());
        };
        if error.is_unreachable() {
            client.forget(lease.epoch).await;
        }
        Err(error)
    }

    /// What the answer to a keep-alive of lease `id` says: `Ok` when it was renewed, else why not.
    /// `answer` is `None` when none came in time, else the stream's item: the lease's time left
    /// in seconds (0 once expired), `None` when the stream closed.
    fn renewal(
        &self,
        id: i64,
        answer: Option<Result<Option<i64>, etcd_client::Error>>,
    ) -> Result<(), EtcdError> {
        let client = self.source.client();
        Err(match answer {
            Some(Ok(Some(ttl))) if ttl > 0 => return Ok(()),
            Some(Ok(Some(_))) => EtcdError::Refused {
                endpoints: client.endpoint_list(),
                operation: KEEP_ALIVE.to_string(),
                message: format!(
                    "lease {id:x} expired while etcd was up (not renewed within its {} s time to \
                     live); taking a new one",
                    self.ttl.as_secs().max(2)
                ),
            },
            Some(Ok(None)) => client.unreachable("the lease keep-alive stream closed"),
            Some(Err(err)) => client.classify(KEEP_ALIVE, err),
            None => client.unreachable("no answer to the lease keep-alive"),
        })
    }

    /// Watches the node's own status key for deletions after `revision` (its own write).
    async fn watch_own_key(&self, revision: i64, epoch: u64) -> Result<WatchStream, EtcdError> {
        let client = self.source.client();
        let (mut raw, _) = client.raw().await?;
        let options = WatchOptions::new()
            .with_start_revision(revision + 1)
            .with_filters([WatchFilterType::NoPut]);
        let operation = format!("watch {}", self.key);
        let opening = async {
            let mut stream = raw.watch(self.key.clone(), Some(options)).await?;
            // Wait for etcd to confirm the watch.
            stream.message().await?;
            Ok::<_, etcd_client::Error>(stream)
        };
        match tokio::time::timeout(client.options().request, opening).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(err)) => Err(client.classify(&operation, err)),
            Err(_) => {
                client.forget(epoch).await;
                Err(client.unreachable(format!(
                    "no answer within the request timeout to {operation}"
                )))
            }
        }
    }

    /// Writes `latest` when it says something `written` (the last report written) does not.
    async fn write_if_new(
        &self,
        latest: &NodeStatus,
        written: &mut NodeStatus,
        lease: i64,
    ) -> Result<(), EtcdError> {
        if !latest.same_as(written) {
            self.write(latest, lease).await?;
            *written = latest.clone();
        }
        Ok(())
    }

    /// Writes `status` bound to `lease`; returns the revision of the write.
    async fn write(&self, status: &NodeStatus, lease: i64) -> Result<i64, EtcdError> {
        let json = serde_json::to_vec(status)
            .map_err(|e| EtcdError::Setup(format!("cannot encode the status: {e}")))?;
        let revision = self
            .source
            .client()
            .put_async(&self.key, json, Some(lease))
            .await?;
        self.shared.reports.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(key = self.key, result = %status.result, revision = ?status.revision, "status reported");
        Ok(revision)
    }
}

/// The operation named in keep-alive errors.
const KEEP_ALIVE: &str = "keep the status lease alive";

/// How often the status lease is renewed: three times per time to live, so one lost keep-alive
/// (or a slow answer) does not let the report expire.
fn keep_alive_period(ttl: Duration) -> Duration {
    ttl / 3
}

#[cfg(test)]
mod tests;
