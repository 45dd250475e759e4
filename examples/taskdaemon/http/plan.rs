//! `POST /api/plan` with a candidate file (TOML) as the body: what a reload to it would do,
//! as JSON; nothing is applied.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hotcfg::{Format, Layer, Plan, SourceContent, SourceIdentity};

use super::{blocking, body_text, Api, ApiError};

/// How the candidate is named in errors (`candidate:12: ...`).
const CANDIDATE: &str = "candidate";

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Plan>, ApiError> {
    let text = body_text(body)?;
    let content = SourceContent {
        identity: SourceIdentity::new(CANDIDATE, text.as_bytes()),
        layers: vec![Layer {
            name: CANDIDATE.to_string(),
            format: Format::Toml,
            text,
        }],
    };
    let reloader = api.reloader.clone();
    Ok(Json(
        blocking(move || reloader.plan_content(Ok(content))).await?,
    ))
}
