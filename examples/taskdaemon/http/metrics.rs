//! `GET /metrics`: Prometheus text exposition of hotcfg's reload metrics and the daemon's own.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{Api, ApiError};

/// Submits, by result (`queued`, `refused`, `rate_limited`).
pub const SUBMITS: &str = "taskdaemon_submits_total";
/// Failed authentications.
pub const AUTH_FAILURES: &str = "taskdaemon_auth_failures_total";
/// Connections answered 503 at the connection cap.
pub const CONNECTIONS_REFUSED: &str = "taskdaemon_connections_refused_total";
const QUEUE_LENGTH: &str = "taskdaemon_queue_length";
const RUNNING_LOOPS: &str = "taskdaemon_running_loops";
const OPEN_CONNECTIONS: &str = "taskdaemon_open_connections";
const OPEN_STREAMS: &str = "taskdaemon_open_event_streams";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, once. Before the engine
/// starts, so its first reload is counted.
pub fn install_recorder() {
    HANDLE.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            for (name, help) in [
                (SUBMITS, "Submits by result."),
                (AUTH_FAILURES, "Failed authentications."),
                (
                    CONNECTIONS_REFUSED,
                    "Connections refused at the connection cap.",
                ),
            ] {
                metrics::describe_counter!(name, help);
            }
            Some(handle)
        }
        Err(err) => {
            tracing::warn!(%err, "metrics are not exported: another recorder is installed");
            None
        }
    });
}

pub(super) fn handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned().flatten()
}

pub async fn get(State(api): State<Arc<Api>>) -> Result<impl IntoResponse, ApiError> {
    let Some(handle) = &api.metrics else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are not exported by this process",
        ));
    };
    // Levels are read now rather than tracked at every change.
    metrics::gauge!(QUEUE_LENGTH).set(api.work.queue.len() as f64);
    metrics::gauge!(RUNNING_LOOPS).set(api.work.running_loops().len() as f64);
    metrics::gauge!(OPEN_CONNECTIONS).set(api.connections.load(Ordering::SeqCst) as f64);
    metrics::gauge!(OPEN_STREAMS).set(api.streams.load(Ordering::SeqCst) as f64);
    handle.run_upkeep();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    ))
}
