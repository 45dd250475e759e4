//! The follower's watch loop: a fresh read when needed, then a watch from the revision read,
//! each batch of changes coalesced into one reload of the newest value; reconnection with
//! backoff when etcd fails, and a fresh read when the history to resume from is gone or too
//! large to receive.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{WatchOptions, WatchResponse, WatchStream};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::backoff::{sleep_or_stop, Backoff};
use super::client::EtcdError;
use super::follower::{remote_trigger, Shared};
use super::source::EtcdSource;
use crate::event::{RemoteCause, Trigger};
use crate::source::SourceError;
use crate::{HotReload, Reloader};

/// How a watch session ended without an error.
enum SessionEnd {
    Stopped,
    Paused,
    /// The revision to resume from was compacted: read afresh.
    Compacted,
}

/// A watch stream that etcd confirmed, with the connection epoch it runs on.
struct Watching {
    stream: WatchStream,
    epoch: u64,
}

pub(super) struct Follow<C: HotReload> {
    pub(super) reloader: Reloader<C>,
    pub(super) source: EtcdSource,
    pub(super) shared: Arc<Shared>,
    pub(super) backoff: (Duration, Duration),
}

impl<C> Follow<C>
where
    C: HotReload + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) async fn run(
        self,
        mut stop: watch::Receiver<bool>,
        mut paused: watch::Receiver<bool>,
    ) {
        // The revision every change up to which has been handed to the engine; `None` until a
        // fresh read established it.
        let mut position: Option<i64> = None;
        let mut backoff = Backoff::new(self.backoff);
        loop {
            if *stop.borrow() {
                return;
            }
            if *paused.borrow() {
                self.shared.paused();
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = paused.changed() => continue,
                }
            }
            let session = self
                .session(&mut position, &mut stop, &mut paused, &mut backoff)
                .await;
            let err = match session {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Paused) => continue,
                Ok(SessionEnd::Compacted) => {
                    self.resync(&mut position, "the revision to resume from was compacted");
                    continue;
                }
                Err(err) => err,
            };
            if err.is_too_large() && position.is_some() {
                // Asking again from the same revision would fail the same way.
                self.resync(
                    &mut position,
                    "the changes to catch up on are too large to receive",
                );
            }
            self.shared.failed(&err);
            let delay = backoff.step();
            tracing::warn!(
                key = self.source.key(),
                %err,
                retry_in = ?delay,
                "lost the etcd watch; keeping the live configuration"
            );
            if sleep_or_stop(delay, &mut stop).await {
                return;
            }
        }
    }

    /// Forgets the position, so the next session reads the newest value afresh.
    fn resync(&self, position: &mut Option<i64>, why: &str) {
        self.shared.resyncs.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(key = self.source.key(), after = ?position, "{why}; reading the key afresh");
        *position = None;
    }

    /// One connection: a fresh read when needed, then a watch until it fails or is told to stop.
    async fn session(
        &self,
        position: &mut Option<i64>,
        stop: &mut watch::Receiver<bool>,
        paused: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Result<SessionEnd, EtcdError> {
        let start = match *position {
            Some(revision) => revision + 1,
            None => self.fresh_read(position).await? + 1,
        };
        let Watching { mut stream, epoch } = match self.open(start).await? {
            Ok(watching) => watching,
            Err(end) => return Ok(end),
        };
        self.shared.watching();
        tracing::info!(key = self.source.key(), from = start, "following etcd");
        // Until the watch has delivered and handled a response (or stayed up for the longest
        // delay), a failure counts as a failed attempt: the backoff is not reset.
        let mut settled = false;
        let settle = tokio::time::sleep(backoff.cap());
        tokio::pin!(settle);
        loop {
            let message = tokio::select! {
                _ = stop.changed() => return Ok(SessionEnd::Stopped),
                changed = paused.changed() => {
                    if changed.is_err() || *paused.borrow() {
                        return Ok(SessionEnd::Paused);
                    }
                    continue;
                }
                _ = &mut settle, if !settled => {
                    settled = true;
                    backoff.reset();
                    continue;
                }
                message = stream.message() => message,
            };
            let newest = match self.batch(message, &mut stream, epoch).await? {
                Ok(newest) => newest,
                Err(end) => return Ok(end),
            };
            if let Some(revision) = newest {
                self.hand(revision, position).await?;
            }
            if !settled {
                settled = true;
                backoff.reset();
            }
        }
    }

    /// The newest revision among `first` and every message already received after it: one
    /// reload for the whole batch. `Ok(Err(end))` when etcd ended the watch.
    async fn batch(
        &self,
        first: Result<Option<WatchResponse>, etcd_client::Error>,
        stream: &mut WatchStream,
        epoch: u64,
    ) -> Result<Result<Option<i64>, SessionEnd>, EtcdError> {
        let mut newest = match self.received(first, epoch).await? {
            Ok(response) => self.newest_in(&response),
            Err(end) => return Ok(Err(end)),
        };
        while let Ok(message) = tokio::time::timeout(Duration::ZERO, stream.message()).await {
            match self.received(message, epoch).await? {
                Ok(response) => newest = newest.max(self.newest_in(&response)),
                Err(end) => return Ok(Err(end)),
            }
        }
        Ok(Ok(newest))
    }

    /// Hands `revision` to the engine: a reload, unless the last read already covered it.
    async fn hand(&self, revision: i64, position: &mut Option<i64>) -> Result<(), EtcdError> {
        self.shared.handed(revision);
        if position.is_none_or(|p| revision > p) {
            let trigger = remote_trigger(self.source.key(), RemoteCause::Watched, revision);
            let read = self.reload(trigger).await?;
            *position = Some(revision.max(read));
        }
        Ok(())
    }

    /// Reads the key, has the engine read it when it does not run that version yet, and returns
    /// the store revision the read reflects (the watch starts after it).
    async fn fresh_read(&self, position: &mut Option<i64>) -> Result<i64, EtcdError> {
        let key = self.source.key();
        // Learn the store revision first, then have the engine read: the read sees at least that
        // revision, and the watch delivers everything after it.
        let listing = self
            .source
            .client()
            .range(key, self.source.watches_prefix())
            .await?;
        let mut revision = listing.revision;
        let newest = listing
            .entries
            .iter()
            .filter(|e| !self.source.is_excluded(&e.key))
            .map(|e| e.mod_revision)
            .max();
        // The engine already runs exactly this version of a key (typically: it was just built
        // from it): nothing to reload. A prefix (or a key with an override) always re-reads,
        // since a deleted key leaves no revision behind.
        let live = self
            .reloader
            .handle()
            .snapshot()
            .source()
            .and_then(|s| s.revision);
        if self.source.watches_prefix() || newest.is_none() || live != newest {
            let read = self
                .reload(remote_trigger(key, RemoteCause::Read, revision))
                .await?;
            revision = revision.max(read);
        }
        *position = Some(revision);
        self.shared.handed(newest.unwrap_or(0));
        Ok(revision)
    }

    /// Opens a watch from `start` and waits (bounded) for etcd to confirm it. `Ok(Err(end))`
    /// when etcd cancels it at once (compacted).
    async fn open(&self, start: i64) -> Result<Result<Watching, SessionEnd>, EtcdError> {
        let client = self.source.client();
        let key = self.source.key().to_string();
        let (raw, epoch) = client.raw().await?;
        // Fragments keep each response near etcd's request limit however much was missed.
        let mut options = WatchOptions::new()
            .with_start_revision(start)
            .with_fragment();
        if self.source.watches_prefix() {
            options = options.with_prefix();
        }
        let mut watcher = client.watcher(&raw);
        let timeout = client.options().request;
        let opening = async {
            let mut stream = watcher.watch(key.clone(), Some(options)).await?;
            let first = stream.message().await;
            Ok::<_, etcd_client::Error>((stream, first))
        };
        let (stream, first) = match tokio::time::timeout(timeout, opening).await {
            Ok(Ok(opened)) => opened,
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
        // The confirmation carries no events.
        Ok(self
            .received(first, epoch)
            .await?
            .map(|_| Watching { stream, epoch }))
    }

    /// A message from the watch stream: the response, `Err(end)` when etcd canceled the watch
    /// because of compaction, or the error (the stream failed, closed or was refused).
    async fn received(
        &self,
        message: Result<Option<WatchResponse>, etcd_client::Error>,
        epoch: u64,
    ) -> Result<Result<WatchResponse, SessionEnd>, EtcdError> {
        let client = self.source.client();
        let key = self.source.key();
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                client.forget(epoch).await;
                return Err(client.unreachable(format!("the watch of {key} was closed")));
            }
            Err(err) => {
                let err = client.classify(&format!("watch {key}"), err);
                if !err.is_too_large() {
                    client.forget(epoch).await;
                }
                return Err(err);
            }
        };
        if !response.canceled() {
            return Ok(Ok(response));
        }
        if response.compact_revision() > 0 {
            return Ok(Err(SessionEnd::Compacted));
        }
        Err(EtcdError::Refused {
            endpoints: client.endpoint_list(),
            operation: format!("watch {key}"),
            message: format!("watch canceled: {}", response.cancel_reason()),
        })
    }

    /// The newest revision a response changes, among the keys followed.
    fn newest_in(&self, response: &WatchResponse) -> Option<i64> {
        response
            .events()
            .iter()
            .filter_map(|event| event.kv())
            .filter(|kv| !self.source.is_excluded(&String::from_utf8_lossy(kv.key())))
            .map(|kv| kv.mod_revision())
            .max()
    }

    /// Runs one reload ([`Reloader::trigger_async`](crate::Reloader::trigger_async): off this
    /// runtime's workers) and returns the revision its read reflected: the newest mod revision
    /// read, or the store revision a failed read saw (0 when unknown). A read that could not
    /// reach etcd is an error, so the session reconnects and the revision is handled again.
    async fn reload(&self, trigger: Trigger) -> Result<i64, EtcdError> {
        let event = self.reloader.trigger_async(trigger).await;
        self.shared.reloads.fetch_add(1, Ordering::SeqCst);
        let failed = event.result.read_error();
        if failed.is_some_and(SourceError::is_temporary) {
            return Err(self
                .source
                .client()
                .unreachable("etcd went away while the engine read the key"));
        }
        let read = event.source.as_ref().and_then(|s| s.revision);
        Ok(read.or(failed.and_then(|e| e.revision)).unwrap_or(0))
    }
}
