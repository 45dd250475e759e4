//! The line protocol: one command per line, one JSON object per reply line.
//!
//! `auth TOKEN`, `status`, `submit TYPE`, `job ID`, `reload`, `config`, `quit`.
//!
//! `submit` replies `{"queued": ID}` only after the job is committed to the state database.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotcfg::Reloader;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::config::TaskDaemonConfig;
use crate::work::Work;

/// Longest command line accepted.
const MAX_LINE: u64 = 4096;

/// Submits allowed per second, changed live by the `limits` handler.
pub struct RateLimiter {
    per_second: AtomicU32,
    window: Mutex<(Instant, u32)>,
}

impl RateLimiter {
    /// `per_second` submits per second.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: AtomicU32::new(per_second),
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Changes the rate.
    pub fn set_per_second(&self, per_second: u32) {
        self.per_second.store(per_second, Ordering::SeqCst);
    }

    /// Takes one submit from the current one-second window, if any is left.
    pub fn allow(&self) -> bool {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        if window.1 < self.per_second.load(Ordering::SeqCst) {
            window.1 += 1;
            true
        } else {
            false
        }
    }
}

/// What the server needs.
pub struct Server {
    pub reloader: Reloader<TaskDaemonConfig>,
    pub work: Arc<Work>,
    pub rate: Arc<RateLimiter>,
    pub connections: AtomicUsize,
}

struct ConnectionGuard<'a>(&'a AtomicUsize);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Accepts clients until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let server = Arc::clone(&self);
                    tokio::spawn(async move {
                        if let Err(err) = server.client(stream).await {
                            tracing::debug!(%peer, %err, "client connection ended");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn client(&self, stream: TcpStream) -> std::io::Result<()> {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let _guard = ConnectionGuard(&self.connections);
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut authed: Option<String> = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Ok(());
            }
            let reply = if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
                // Drop the rest of an over-long line.
                json!({"error": format!("line longer than {MAX_LINE} bytes")})
            } else {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                if text == "quit" {
                    return Ok(());
                }
                self.command(text, &mut authed).await
            };
            let mut out = serde_json::to_vec(&reply).unwrap_or_default();
            out.push(b'\n');
            write.write_all(&out).await?;
        }
    }

    async fn command(&self, text: &str, authed: &mut Option<String>) -> Value {
        let (verb, arg) = match text.split_once(char::is_whitespace) {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (text, ""),
        };
        let live_token = self.work.handle().load().api_token.clone();
        if verb == "auth" {
            return match &live_token {
                // Compared in constant time: timing must not tell how much of a guess was right.
                Some(token) if token.matches(arg) => {
                    *authed = Some(arg.to_string());
                    json!({"ok": true})
                }
                Some(_) => json!({"error": "bad token"}),
                None => json!({"ok": true, "note": "no token is configured"}),
            };
        }
        if let Some(token) = &live_token {
            // Re-checked on every command: a rotated token logs every client out.
            if !authed.as_deref().is_some_and(|sent| token.matches(sent)) {
                return json!({"error": "unauthorized: send `auth TOKEN` first"});
            }
        }
        match verb {
            "status" => self.status(),
            "submit" if arg.is_empty() => json!({"error": "usage: submit TYPE"}),
            "submit" => {
                if !self.rate.allow() {
                    return json!({"error": "rate limit: too many submits this second"});
                }
                let (work, loop_type) = (Arc::clone(&self.work), arg.to_string());
                match tokio::task::spawn_blocking(move || work.submit(&loop_type)).await {
                    Ok(Ok(id)) => json!({"queued": id}),
                    Ok(Err(error)) => json!({"error": error}),
                    Err(err) => json!({"error": format!("submit task failed: {err}")}),
                }
            }
            "job" => self.job(arg),
            "reload" => {
                let reloader = self.reloader.clone();
                match tokio::task::spawn_blocking(move || reloader.reload_now()).await {
                    Ok(event) => crate::http::event_json(&event),
                    Err(err) => json!({"error": format!("reload task failed: {err}")}),
                }
            }
            "config" => hotcfg::redacted_json(self.work.handle().load().config()),
            other => json!({
                "error": format!("unknown command `{other}`; commands: auth, status, submit, job, reload, config, quit")
            }),
        }
    }

    /// The `job ID` reply: the job as stored.
    fn job(&self, arg: &str) -> Value {
        let Ok(id) = arg.parse::<u64>() else {
            return json!({"error": "usage: job ID"});
        };
        match self.work.store().job(id) {
            Ok(Some(job)) => json!(job),
            Ok(None) => json!({"error": format!("no job {id}")}),
            Err(err) => json!({"error": err.to_string()}),
        }
    }

    /// The `status` reply.
    pub fn status(&self) -> Value {
        let snapshot = self.work.handle().snapshot();
        let loops: Vec<Value> = self
            .work
            .running_loops()
            .into_iter()
            .map(|(id, state)| {
                json!({
                    "id": id,
                    "type": state.loop_type,
                    "iterations": state.iterations.load(Ordering::SeqCst),
                    "started_generation": state.started_generation,
                })
            })
            .collect();
        let pending: Vec<String> = self
            .reloader
            .pending_restart()
            .into_iter()
            .map(|c| c.path)
            .collect();
        json!({
            "generation": snapshot.generation(),
            "config_sha256": snapshot.source().map(|s| s.sha256.clone()),
            "pending_restart": pending,
            "queue_len": self.work.queue.len(),
            "queue_capacity": self.work.queue.capacity(),
            "max_concurrent": self.work.slots.max(),
            "connections": self.connections.load(Ordering::SeqCst),
            "finished": self.work.store().finished_count().ok(),
            "storage": self.work.store().health(),
            "loops": loops,
        })
    }
}
