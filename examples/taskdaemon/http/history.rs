//! `GET /api/history`: the recent reload events, oldest first, the audit log's verification, and
//! the generations `POST /api/revert` can restore.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, event_json, Api, ApiError};

pub async fn get(State(api): State<Arc<Api>>) -> Result<Json<Value>, ApiError> {
    let events: Vec<Value> = api
        .reloader
        .history()
        .iter()
        .map(|e| event_json(e))
        .collect();
    let audit = match api.audit_log.clone() {
        None => json!({ "configured": false }),
        Some(path) => {
            let shown = path.display().to_string();
            match blocking(move || hotcfg::verify_audit_log(&path)).await? {
                Ok(records) => json!({
                    "configured": true,
                    "path": shown,
                    "verified": true,
                    "records": records.len(),
                }),
                Err(err) => json!({
                    "configured": true,
                    "path": shown,
                    "verified": false,
                    "error": err.to_string(),
                }),
            }
        }
    };
    // The generations `POST /api/revert` can restore (none without an audit log).
    let reloader = api.reloader.clone();
    let restorable: Vec<u64> = blocking(move || reloader.restorable())
        .await?
        .map(|generations| {
            let kept = generations.into_iter().filter(|(_, state)| state.is_ok());
            kept.map(|(generation, _)| generation).collect()
        })
        .unwrap_or_default();
    Ok(Json(
        json!({ "events": events, "audit": audit, "restorable": restorable }),
    ))
}
