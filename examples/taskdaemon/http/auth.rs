//! `Authorization: Bearer TOKEN`, compared in constant time (`Secret::matches`, on `subtle`)
//! against the live token. Failures are counted per peer address: past a few they are answered
//! slowly, past more the address gets 429 for a while. Each failure is logged with the peer, never with what it sent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::listener::Peer;
use super::{Api, ApiError};
use crate::config::ServerSection;

/// Each delayed failure waits this much longer than the previous one, up to [`MAX_DELAY`].
const DELAY_STEP: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Addresses remembered at most; past this, entries whose failures have expired are dropped.
const MAX_TRACKED: usize = 4096;

/// Failed authentications by peer address.
pub struct Failures {
    before_delay: u32,
    before_lockout: u32,
    lockout: Duration,
    peers: Mutex<HashMap<IpAddr, PeerFailures>>,
}

struct PeerFailures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// What to do with a request after a failed check.
enum Verdict {
    /// Answer 401 after this delay.
    Refuse(Duration),
    /// Answer 429; the client may retry after this long.
    LockedOut(Duration),
}

impl Failures {
    /// The thresholds of `server`.
    pub fn new(server: &ServerSection) -> Self {
        Failures {
            before_delay: server.auth_failures_before_delay,
            before_lockout: server.auth_failures_before_lockout,
            lockout: Duration::from_secs(server.auth_lockout_secs),
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, PeerFailures>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `ip` stays locked out, if it is.
    fn locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let peers = self.peers();
        let until = peers.get(&ip)?.locked_until?;
        until.checked_duration_since(now)
    }

    /// Records a failure of `ip`.
    fn fail(&self, ip: IpAddr, now: Instant) -> (u32, Verdict) {
        let mut peers = self.peers();
        if peers.len() >= MAX_TRACKED {
            let lockout = self.lockout;
            peers.retain(|_, p| now.duration_since(p.last) < lockout);
        }
        let entry = peers.entry(ip).or_insert(PeerFailures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(entry.last) >= self.lockout {
            // Failures older than a lockout period are forgiven.
            entry.count = 0;
            entry.locked_until = None;
        }
        entry.count += 1;
        entry.last = now;
        let count = entry.count;
        if count >= self.before_lockout {
            entry.locked_until = Some(now + self.lockout);
            return (count, Verdict::LockedOut(self.lockout));
        }
        let over = count.saturating_sub(self.before_delay);
        (count, Verdict::Refuse((DELAY_STEP * over).min(MAX_DELAY)))
    }

    fn succeed(&self, ip: IpAddr) {
        self.peers().remove(&ip);
    }
}

/// The middleware in front of every endpoint but the page.
pub async fn require(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let Some(token) = api.work.handle().load().api_token.clone() else {
        return next.run(request).await;
    };
    let peer = request.extensions().get::<Peer>().map(|p| p.0);
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    let now = Instant::now();
    if let Some(left) = api.auth.locked(ip, now) {
        return locked_out(left);
    }
    let sent = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if token.matches(sent) {
        api.auth.succeed(ip);
        return next.run(request).await;
    }
    metrics::counter!(super::metrics::AUTH_FAILURES).increment(1);
    let (count, verdict) = api.auth.fail(ip, now);
    let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    match verdict {
        Verdict::LockedOut(left) => {
            tracing::warn!(%peer, failures = count, "authentication failed; peer locked out");
            locked_out(left)
        }
        Verdict::Refuse(delay) => {
            tracing::warn!(%peer, failures = count, "authentication failed");
            tokio::time::sleep(delay).await;
            let mut answer = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send `Authorization: Bearer TOKEN`",
            )
            .into_response();
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            answer
        }
    }
}

fn locked_out(left: Duration) -> Response {
    let seconds = left.as_secs().max(1);
    let mut answer = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed authentications from this address; retry in {seconds} s"),
    )
    .into_response();
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    answer
}
