//! The event stream: every reload event as Server-Sent Events, numbered so that a client that
//! reconnects with `Last-Event-ID` gets what it missed, without loss or duplicate.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::Stream;
use hotcfg::{AuditRecord, ReloadEvent};
use serde_json::Value;
use tokio::sync::broadcast;

use super::Api;

/// Events kept for clients that reconnect.
const RETAINED: usize = 1024;

/// A reload event with its stream id.
#[derive(Debug)]
pub struct Numbered {
    pub id: u64,
    pub json: Value,
}

/// Reload events numbered from 1, the most recent kept, each also sent to live streams.
pub struct EventLog {
    recent: Mutex<VecDeque<Arc<Numbered>>>,
    live: broadcast::Sender<Arc<Numbered>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Arc<Self> {
        let (live, _) = broadcast::channel(RETAINED);
        Arc::new(EventLog {
            recent: Mutex::new(VecDeque::new()),
            live,
        })
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Numbered>>> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Numbers `event`, keeps it and sends it to every stream (the engine's subscriber).
    pub fn record(&self, event: &ReloadEvent) {
        let mut recent = self.recent();
        let id = recent.back().map_or(1, |last| last.id + 1);
        let numbered = Arc::new(Numbered {
            id,
            json: event_json(event),
        });
        if recent.len() == RETAINED {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&numbered));
        // Sent under the lock, so a stream that subscribes sees each event exactly once:
        // either in its backlog or live.
        let _ = self.live.send(numbered);
    }

    /// Kept events after `after`, and a receiver of every later one.
    fn follow(&self, after: u64) -> (VecDeque<Arc<Numbered>>, broadcast::Receiver<Arc<Numbered>>) {
        let recent = self.recent();
        let backlog = recent.iter().filter(|e| e.id > after).cloned().collect();
        (backlog, self.live.subscribe())
    }

    /// The id of the newest event (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.recent().back().map_or(0, |e| e.id)
    }
}

/// A reload event as JSON: the audit record's fields plus a readable summary.
pub fn event_json(event: &ReloadEvent) -> Value {
    let mut value =
        serde_json::to_value(AuditRecord::from_event(event, String::new())).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("prev");
        map.insert("summary".into(), Value::String(event.to_string()));
    }
    value
}

/// `GET /api/events`: the stream. Without `Last-Event-ID` it starts with the next event.
pub async fn get(State(api): State<Arc<Api>>, headers: HeaderMap) -> impl IntoResponse {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| api.events.last_id());
    let (backlog, live) = api.events.follow(after);
    let stream = Follower {
        api: Arc::clone(&api),
        backlog,
        live,
        last: after,
    }
    .into_stream();
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One open stream's position.
struct Follower {
    api: Arc<Api>,
    backlog: VecDeque<Arc<Numbered>>,
    live: broadcast::Receiver<Arc<Numbered>>,
    last: u64,
}

impl Follower {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        self.api.streams.fetch_add(1, Ordering::SeqCst);
        futures_util::stream::unfold(self, |mut follower| async move {
            let next = follower.next().await?;
            follower.last = next.id;
            let event = Event::default()
                .id(next.id.to_string())
                .event("reload")
                .json_data(&next.json)
                .unwrap_or_default();
            Some((Ok(event), follower))
        })
    }

    async fn next(&mut self) -> Option<Arc<Numbered>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(event);
            }
            match self.live.recv().await {
                Ok(event) if event.id > self.last => return Some(event),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow for the live channel: catch up from the kept events.
                    let (backlog, live) = self.api.events.follow(self.last);
                    self.backlog = backlog;
                    self.live = live;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.api.streams.fetch_sub(1, Ordering::SeqCst);
    }
}
