//! `POST /api/confirm`: commit-confirmed (`--confirm-within SECS`): keeps the change awaiting
//! confirmation. The body is empty (whatever awaits confirmation) or `{"generation": N}` (only
//! that one). `200 {"confirmed": N}`; `409` with the reason when it was already reverted, when
//! nothing awaits confirmation, or when another generation does; `404` without commit-confirmed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hotcfg::ConfirmError;
use serde_json::{json, Value};

use super::{body_text, json_body, Api, ApiError};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    generation: u64,
}

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let text = body_text(body)?;
    let asked = match text.trim() {
        "" => None,
        text => {
            Some(json_body::<Confirm>(text, r#"an empty body or {"generation": N}"#)?.generation)
        }
    };
    let confirmed = match asked {
        Some(generation) => api.reloader.confirm_generation(generation),
        None => api.reloader.confirm(),
    };
    match confirmed {
        Ok(generation) => Ok(Json(json!({ "confirmed": generation }))),
        Err(err @ ConfirmError::NotEnabled) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, err.to_string()))
        }
        Err(err) => Err(ApiError::new(StatusCode::CONFLICT, err.to_string())),
    }
}
