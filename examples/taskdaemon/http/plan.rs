//! `POST /api/plan` with a candidate file (TOML) as the body: what a reload to it would do,
//! as JSON; nothing is applied. `prepare` lists each handler that would run with its verdict:
//! the `loops` handler's veto (a loop type in use) is asked without applying anything; the
//! other handlers' `prepare` needs a library option to run it alone, which does not exist yet
//! (`"not checked"`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use hotcfg::{Format, Layer, Plan, SourceContent, SourceIdentity};
use serde_json::{json, Value};

use super::{blocking, body_text, Api, ApiError};
use crate::config::TaskDaemonConfig;
use crate::handlers::LoopsHandler;

/// How the candidate is named in errors (`candidate:12: ...`).
const CANDIDATE: &str = "candidate";

pub async fn post(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let text = body_text(body)?;
    let content = SourceContent {
        identity: SourceIdentity::new(CANDIDATE, text.as_bytes()),
        layers: vec![Layer {
            name: CANDIDATE.to_string(),
            format: Format::Toml,
            text: text.clone(),
        }],
    };
    let reloader = api.reloader.clone();
    let plan = blocking(move || reloader.plan_content(Ok(content))).await?;
    let verdicts = prepare_verdicts(&api, &plan, &text);
    let mut answer = serde_json::to_value(&plan).unwrap_or(Value::Null);
    answer["prepare"] = verdicts.into();
    Ok(Json(answer))
}

/// Each handler the plan would run, with what its `prepare` says where the daemon can ask it.
fn prepare_verdicts(api: &Api, plan: &Plan, text: &str) -> Vec<Value> {
    // Only a valid candidate has handlers to run, and a valid candidate parses.
    let candidate = toml::from_str::<TaskDaemonConfig>(text).ok();
    plan.handlers
        .iter()
        .map(|scope| match (scope.as_str(), &candidate) {
            ("loops", Some(candidate)) => {
                let live = api.work.handle().snapshot();
                match LoopsHandler::removal_veto(&api.work, live.config(), candidate) {
                    Ok(()) => json!({ "scope": scope, "verdict": "ok" }),
                    Err(error) => json!({ "scope": scope, "verdict": "veto", "error": error }),
                }
            }
            _ => json!({ "scope": scope, "verdict": "not checked" }),
        })
        .collect()
}
