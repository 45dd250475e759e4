//! `POST /api/reload`: reloads now and answers with the event: `200` when it applied (or found
//! nothing to change), `409` when it was rejected or failed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::{event_json, Api, ApiError};

pub async fn post(State(api): State<Arc<Api>>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let event = api.reloader.reload().await;
    let code = if event.result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((code, Json(event_json(&event))))
}
