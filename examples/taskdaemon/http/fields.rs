//! `GET /api/fields`: every setting, its class (a scope or restart), its doc and whether it is
//! secret.

use axum::Json;
use hotcfg::{FieldInfo, HotReload};

use crate::config::TaskDaemonConfig;

pub async fn get() -> Json<Vec<FieldInfo>> {
    Json(TaskDaemonConfig::schema().to_vec())
}
