//! Accepting connections: a cap on how many are served at once, a backoff when accepting
//! fails (descriptors exhausted), and hyper's HTTP/1.1 limits on each connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::ServerSection;

/// Largest request head (request line and headers) hyper buffers; hyper's minimum is 8 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers a request may have.
const MAX_HEADERS: usize = 64;
/// The accept backoff grows from the first to the last value while accepting keeps failing.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// The address of the client that sent a request (added to every request's extensions).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Serves `app` on `listener` until the task is dropped, counting open connections in
/// `connections`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    server: ServerSection,
    connections: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(server.max_connections));
    let header_timeout = Duration::from_secs(server.header_timeout_secs);
    let mut backoff = BACKOFF.0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = BACKOFF.0;
                accepted
            }
            Err(err) => {
                // EMFILE and friends: wait instead of spinning; log once per backoff step.
                tracing::warn!(%err, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse(&stream, peer);
            continue;
        };
        let app = app.clone();
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let _open = OpenConnection::count(connections);
            serve_connection(stream, peer, app, header_timeout).await;
            drop(slot);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
) {
    let app = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        request
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    if let Err(err) = connection.await {
        tracing::debug!(%peer, %err, "connection ended");
    }
}

/// Answers a connection over the cap with a 503 and closes it, without waiting on the client.
fn refuse(stream: &TcpStream, peer: SocketAddr) {
    const BODY: &str = r#"{"error":"too many connections; try again later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    // A fresh socket's send buffer is empty: this never blocks, and a failure changes nothing.
    let _ = stream.try_write(answer.as_bytes());
    metrics::counter!(super::metrics::CONNECTIONS_REFUSED).increment(1);
    tracing::debug!(%peer, "connection refused: at the connection cap");
}

/// Counts a connection as open until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn count(connections: Arc<AtomicUsize>) -> Self {
        connections.fetch_add(1, Ordering::SeqCst);
        OpenConnection(connections)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
