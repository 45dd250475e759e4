//! A state database SQLite reports as damaged: moved aside under a timestamped name (never
//! deleted), and read once more, on a copy, for the highest id it handed out, so that the new
//! database never hands out an id a client may still hold (a job that was only queued leaves no
//! other trace).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::legacy::move_aside;

/// Moves the damaged database at `path` (with its `-wal` and `-shm` files) aside, logs where,
/// and returns the highest job id that can still be read from it (0 if none).
pub fn set_aside(path: &Path, err: &rusqlite::Error) -> Result<u64, String> {
    let aside = move_aside(path)?;
    let mut wal = None;
    for suffix in ["-wal", "-shm"] {
        let companion = PathBuf::from(format!("{}{suffix}", path.display()));
        if companion.exists() {
            let moved = move_aside(&companion)?;
            if suffix == "-wal" {
                wal = Some(moved);
            }
        }
    }
    let salvaged = highest_id_in(&aside, wal.as_deref());
    tracing::error!(
        damaged = %path.display(),
        moved_to = %aside.display(),
        highest_id_readable = salvaged,
        %err,
        "the state database is damaged; moved aside, starting with an empty one"
    );
    Ok(salvaged)
}

/// The highest id the damaged database at `db` (with its write-ahead log `wal`) shows was handed
/// out: its id counter and its highest row, whichever can be read. Works on a copy in a
/// temporary directory, so the files kept as evidence are never changed (opening a database
/// replays and may delete its write-ahead log).
fn highest_id_in(db: &Path, wal: Option<&Path>) -> u64 {
    let copy = || -> std::io::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir_in(db.parent().unwrap_or(Path::new(".")))?;
        let copied = dir.path().join("damaged.db");
        std::fs::copy(db, &copied)?;
        if let Some(wal) = wal {
            std::fs::copy(wal, dir.path().join("damaged.db-wal"))?;
        }
        Ok((dir, copied))
    };
    let Ok((_dir, copied)) = copy() else {
        return 0;
    };
    let Ok(conn) = Connection::open(&copied) else {
        return 0;
    };
    let read = |sql: &str| -> u64 {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .ok()
            .flatten()
            .map_or(0, |n| n.max(0) as u64)
    };
    read("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'")
        .max(read("SELECT max(id) FROM jobs"))
}
