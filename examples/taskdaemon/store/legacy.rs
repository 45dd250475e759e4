//! The files earlier versions kept their state in (`queue.json`, `loops/ID.json`): imported into
//! the database once, then renamed `*.migrated` and never written again. A file that does not
//! parse is moved aside under a timestamped name and reported, never deleted.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::Deserialize;

#[derive(Deserialize)]
struct QueuedItem {
    id: u64,
    loop_type: String,
}

#[derive(Deserialize)]
struct Checkpoint {
    id: u64,
    loop_type: String,
    iterations: u64,
}

/// Renames `path` to `PATH.corrupt-TIME` and returns the new name.
pub fn move_aside(path: &Path) -> Result<PathBuf, String> {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let aside = PathBuf::from(format!(
        "{}.corrupt-{}",
        path.display(),
        time.replace(':', "")
    ));
    std::fs::rename(path, &aside)
        .map_err(|e| format!("cannot move damaged {} aside: {e}", path.display()))?;
    Ok(aside)
}

/// The highest id the files in `data_dir` show was handed out: saved queues and checkpoints,
/// and the names of loop logs and finished records (`loops/ID.log`, `finished/ID.txt`).
pub fn highest_id_used(data_dir: &Path) -> u64 {
    let mut highest = 0;
    for dir in ["loops", "finished"] {
        let Ok(entries) = std::fs::read_dir(data_dir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let stem = name.to_string_lossy();
            let digits = stem.split('.').next().unwrap_or_default();
            if let Ok(id) = digits.parse::<u64>() {
                highest = highest.max(id);
            }
        }
    }
    if let Some(items) = read_json::<Vec<QueuedItem>>(&data_dir.join("queue.json")) {
        highest = items.iter().map(|i| i.id).fold(highest, u64::max);
    }
    highest
}

/// Parses a legacy file; `None` when missing or unreadable (migration reports those).
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Imports `queue.json` and `loops/*.json` into the database, once.
pub fn migrate(conn: &mut Connection, data_dir: &Path) -> Result<(), String> {
    let mut queued = Vec::new();
    let mut checkpoints = Vec::new();
    let queue_file = data_dir.join("queue.json");
    if queue_file.exists() {
        match read_json::<Vec<QueuedItem>>(&queue_file) {
            Some(items) => queued.push((queue_file, items)),
            None => report_damaged(&queue_file)?,
        }
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("loops")) {
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".json") {
                match read_json::<Checkpoint>(&path) {
                    Some(checkpoint) => checkpoints.push((path, checkpoint)),
                    None => report_damaged(&path)?,
                }
            } else if name.ends_with(".json.tmp") {
                // A checkpoint write interrupted before its rename: the `.json` beside it (if
                // any) is the last complete one.
                report_damaged(&path)?;
            }
        }
    }
    if queued.is_empty() && checkpoints.is_empty() {
        return Ok(());
    }
    let fail = |e: rusqlite::Error| format!("cannot migrate the saved queue and checkpoints: {e}");
    let tx = conn.transaction().map_err(fail)?;
    let mut imported = 0;
    for item in queued.iter().flat_map(|(_, items)| items) {
        imported += tx
            .execute(
                "INSERT OR IGNORE INTO jobs (id, loop_type) VALUES (?1, ?2)",
                params![item.id as i64, item.loop_type],
            )
            .map_err(fail)?;
    }
    for (_, cp) in &checkpoints {
        imported += tx
            .execute(
                "INSERT OR IGNORE INTO jobs (id, loop_type, state, iterations)
                 VALUES (?1, ?2, 'running', ?3)",
                params![cp.id as i64, cp.loop_type, cp.iterations as i64],
            )
            .map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    let files = queued
        .iter()
        .map(|(p, _)| p)
        .chain(checkpoints.iter().map(|(p, _)| p));
    for path in files {
        let done = PathBuf::from(format!("{}.migrated", path.display()));
        std::fs::rename(path, &done)
            .map_err(|e| format!("cannot rename migrated {}: {e}", path.display()))?;
    }
    tracing::info!(
        imported,
        "migrated the saved queue and checkpoints of an earlier version into the database"
    );
    Ok(())
}

fn report_damaged(path: &Path) -> Result<(), String> {
    let aside = move_aside(path)?;
    tracing::error!(
        damaged = %path.display(),
        moved_to = %aside.display(),
        "saved state does not parse; moved aside, its items are not restored"
    );
    Ok(())
}
