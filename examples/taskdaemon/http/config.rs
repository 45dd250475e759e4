//! `GET /api/config`: the live configuration, secrets redacted.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::Api;

pub async fn get(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(hotcfg::redacted_json(api.work.handle().load().config()))
}
