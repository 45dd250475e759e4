//! `GET /api/jobs/{id}`: one job as the state database holds it (type, state, iterations).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, Api, ApiError};

pub async fn get(
    State(api): State<Arc<Api>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let work = Arc::clone(&api.work);
    match blocking(move || work.store().job(id)).await? {
        Ok(Some(job)) => Ok(Json(json!(job))),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}"))),
        Err(err) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            err.to_string(),
        )),
    }
}
