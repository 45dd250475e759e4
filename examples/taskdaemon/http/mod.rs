//! The HTTP API and the status page. JSON in and out; every error is a JSON object
//! `{"error": "..."}` with a status code that says what kind of error it is.
//!
//! Framing, header and body limits and timeouts come from hyper, axum and tower-http; the
//! connection cap and the accept backoff from [`listener`]; authentication from [`auth`].
//! One module per endpoint.

mod auth;
mod config;
mod confirm;
mod events;
mod fields;
mod history;
mod jobs;
mod listener;
mod metrics;
mod page;
mod plan;
mod reload;
mod revert;
mod status;
mod submit;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use hotcfg::Reloader;
use tower_http::timeout::TimeoutLayer;

use crate::config::{ServerSection, TaskDaemonConfig};
use crate::rate::RateLimiter;
use crate::work::Work;

pub use events::{event_json, EventLog};
pub use listener::serve;
pub use metrics::install_recorder;
pub use status::status_json;

/// What every endpoint shares.
pub struct Api {
    pub reloader: Reloader<TaskDaemonConfig>,
    pub work: Arc<Work>,
    pub rate: Arc<RateLimiter>,
    /// Reload events, numbered for the event stream.
    pub events: Arc<EventLog>,
    /// Renders `/metrics`; none when another recorder was installed first.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub audit_log: Option<PathBuf>,
    /// Failed authentications by peer address.
    pub auth: auth::Failures,
    /// HTTP connections open now.
    pub connections: Arc<AtomicUsize>,
    /// Event streams open now.
    pub streams: AtomicUsize,
}

impl Api {
    /// The shared state of the HTTP endpoints, with the limits of `server`.
    pub fn new(
        reloader: Reloader<TaskDaemonConfig>,
        work: Arc<Work>,
        rate: Arc<RateLimiter>,
        events: Arc<EventLog>,
        audit_log: Option<PathBuf>,
        server: &ServerSection,
    ) -> Self {
        Api {
            reloader,
            work,
            rate,
            events,
            metrics: metrics::handle(),
            audit_log,
            auth: auth::Failures::new(server),
            connections: Arc::new(AtomicUsize::new(0)),
            streams: AtomicUsize::new(0),
        }
    }
}

/// Every route, with the body limit and request timeout of `server`. The page at `/` is public
/// (it holds no data); everything else needs the token when one is configured.
pub fn router(api: Arc<Api>, server: &ServerSection) -> Router {
    let timeout = Duration::from_secs(server.request_timeout_secs);
    let guarded = Router::new()
        .route("/api/status", get(status::get))
        .route("/api/submit", post(submit::post))
        .route("/api/reload", post(reload::post))
        .route("/api/config", get(config::get))
        .route("/api/fields", get(fields::get))
        .route("/api/history", get(history::get))
        .route("/api/jobs/{id}", get(jobs::get))
        .route("/api/plan", post(plan::post))
        .route("/api/revert", post(revert::post))
        .route("/api/confirm", post(confirm::post))
        .route("/metrics", get(metrics::get))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // Added after the timeout layer: a stream lasts as long as its client wants.
        .route("/api/events", get(events::get))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&api),
            auth::require,
        ));
    Router::new()
        .route("/", get(page::get))
        .merge(guarded)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .with_state(api)
}

/// An error answer: a status code and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

/// Runs blocking engine work (a reload, a read of the source) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {err}"),
        )
    })
}

/// A request body as UTF-8 text, or the error that says why it is not.
fn body_text(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<String, ApiError> {
    let bytes =
        body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
}

/// A JSON body of type `T`, or `400` with `expected` (the shape wanted, for the person reading
/// the error) and serde's reason.
fn json_body<T: serde::de::DeserializeOwned>(text: &str, expected: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {expected}: {err}"),
        )
    })
}
