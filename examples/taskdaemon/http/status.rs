//! `GET /api/status`: desired versus running, the last reload, pending restarts, the queue, the
//! loops and the open connections. `200` when the running configuration is the source's
//! current content; `409` with `in_sync: false` and a `drift` sentence when it is not.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, event_json, Api, ApiError};

pub async fn get(State(api): State<Arc<Api>>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let reloader = api.reloader.clone();
    // The source's current content, read as a reload would read it (a file or an etcd key).
    let desired = blocking(move || reloader.source().read()).await?;
    let mut status = status_json(&api);
    let running = status["config_sha256"].as_str().map(str::to_string);
    let (in_sync, drift) = match &desired {
        Ok(content) if Some(&content.identity.sha256) == running.as_ref() => (true, None),
        Ok(content) => (
            false,
            Some(format!(
                "the source {} is not the running configuration; last reload: {}",
                content.identity,
                api.reloader.last_event()
            )),
        ),
        Err(err) => (false, Some(format!("the source cannot be read: {err}"))),
    };
    status["desired_sha256"] = desired
        .as_ref()
        .map_or(Value::Null, |c| c.identity.sha256.clone().into());
    status["in_sync"] = in_sync.into();
    status["drift"] = drift.into();
    let code = if in_sync {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((code, Json(status)))
}

/// What the daemon runs and does now (without reading the source).
pub fn status_json(api: &Api) -> Value {
    let snapshot = api.work.handle().snapshot();
    let loops: Vec<Value> = api
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
    let parked: Vec<Value> = api
        .work
        .parked
        .list()
        .into_iter()
        .map(|(id, loop_type, iterations)| {
            json!({ "id": id, "type": loop_type, "iterations": iterations })
        })
        .collect();
    let pending: Vec<String> = api
        .reloader
        .pending_restart()
        .into_iter()
        .map(|c| c.path)
        .collect();
    json!({
        "generation": snapshot.generation(),
        "config_sha256": snapshot.source().map(|s| s.sha256.clone()),
        "last_reload": event_json(&api.reloader.last_event()),
        "pending_restart": pending,
        "queue_len": api.work.queue.len(),
        "queue_capacity": api.work.queue.capacity(),
        "max_concurrent": api.work.slots.max(),
        "connections": api.connections.load(Ordering::SeqCst),
        "event_streams": api.streams.load(Ordering::SeqCst),
        "finished": api.work.store().finished_count().ok(),
        "storage": api.work.store().health(),
        "loops": loops,
        "parked": parked,
        "probation": crate::probation::status_json(&api.reloader),
        // Started from the last-known-good version (etcd down at start) and not read since.
        "stale": api.reloader.stale().map(|start| start.to_string()),
    })
}
