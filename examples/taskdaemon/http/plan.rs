//! `POST /api/plan` with a candidate file (TOML) as the body: what a reload to it would do,
//! as JSON; nothing is applied. The dry run also asks every handler the reload would run
//! (`prepare` only: in this daemon it checks and changes nothing), so `prepare` lists each
//! scope's verdict (`accepted`, or `vetoed` with its message), and a veto such as "loop type in
//! use" or an unreadable template file makes the decision the rejection the reload would give.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hotcfg::{Format, PlanOptions, SourceContent};
use serde_json::Value;

use super::{body_text, Api, ApiError};

/// How the candidate is named in errors (`candidate:12: ...`).
const CANDIDATE: &str = "candidate";

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let text = body_text(body)?;
    let content = SourceContent::single(CANDIDATE, Format::Toml, text);
    let plan = api
        .reloader
        .plan_async(Ok(content), PlanOptions::new().run_prepare())
        .await;
    Ok(Json(serde_json::to_value(&plan).unwrap_or(Value::Null)))
}
