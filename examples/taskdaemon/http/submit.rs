//! `POST /api/submit` with `{"type": "build"}`: `202` and `{"queued": ID}`, the new work's id,
//! once the job is committed to the state database (`503` when it cannot be stored).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{body_text, json_body, Api, ApiError};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    #[serde(rename = "type")]
    loop_type: String,
}

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = body_text(body)?;
    let submit: Submit = json_body(&text, r#"{"type": "LOOP TYPE"}"#)?;
    if !api.rate.allow() {
        metrics::counter!(super::metrics::SUBMITS, "result" => "rate_limited").increment(1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit: too many submits this second",
        ));
    }
    // The reply comes after the commit, which waits for the disk: off the async workers.
    let work = Arc::clone(&api.work);
    let submitted = tokio::task::spawn_blocking(move || work.submit(&submit.loop_type))
        .await
        .unwrap_or_else(|err| Err(format!("submit task failed: {err}")));
    match submitted {
        Ok(id) => {
            metrics::counter!(super::metrics::SUBMITS, "result" => "queued").increment(1);
            Ok((StatusCode::ACCEPTED, Json(json!({ "queued": id }))))
        }
        Err(error) => {
            metrics::counter!(super::metrics::SUBMITS, "result" => "refused").increment(1);
            let status = if error.starts_with("unknown loop type") {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Err(ApiError::new(status, error))
        }
    }
}
