//! `POST /api/revert` with `{"generation": N, "dry_run": false}`: makes the content generation N
//! applied live again (`Reloader::revert_to`: its snapshot beside the audit log goes through the
//! normal reload, and the configuration file is written back so it stays the source of truth).
//! Answers `200` with the event when it applied; `409` with the event and the reason when today's
//! validation, the policy or a handler refused it (the file keeps what it held); `404` when the
//! generation's content cannot be had (never applied, snapshot pruned or corrupt, no audit log);
//! `400` for a body that is not such an object. With `"dry_run": true`, `200` with the plan of
//! the revert (`{"plan": ...}`), nothing changed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hotcfg::RevertError;
use serde_json::{json, Value};

use super::{blocking, body_text, event_json, json_body, Api, ApiError};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    generation: u64,
    #[serde(default)]
    dry_run: bool,
}

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = body_text(body)?;
    let request: Request = json_body(&text, r#"{"generation": N, "dry_run": false}"#)?;
    let reloader = api.reloader.clone();
    let generation = request.generation;
    if request.dry_run {
        let plan = blocking(move || reloader.plan_revert(generation)).await?;
        let plan = plan.map_err(|err| ApiError::new(StatusCode::NOT_FOUND, err.to_string()))?;
        return Ok((StatusCode::OK, Json(json!({ "plan": plan }))));
    }
    match reloader.revert_to_async(generation).await {
        Ok(event) => Ok((StatusCode::OK, Json(event_json(&event)))),
        Err(RevertError::Refused { reason, event, .. }) => {
            let mut body = event_json(&event);
            body["error"] = Value::String(format!(
                "revert to generation {generation} refused: {reason}"
            ));
            Ok((StatusCode::CONFLICT, Json(body)))
        }
        Err(err @ RevertError::Snapshot(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, err.to_string()))
        }
        Err(err) => Err(ApiError::new(StatusCode::CONFLICT, err.to_string())),
    }
}
