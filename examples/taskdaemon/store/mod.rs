//! The daemon's durable state: queue, ids, loop checkpoints and completion records in one SQLite
//! database (`state.db` in the data directory, WAL mode).
//!
//! - A submit is committed with `synchronous = FULL` before its id is handed out; ids come from
//!   an `AUTOINCREMENT` key, so they are never reused, even after a crash or a deleted row.
//!   Submits waiting at the same time share one transaction and one fsync ([`group`]).
//! - A job's checkpoint is its row; finishing it (state, final iterations, completion count) is
//!   one `UPDATE`, also `FULL`, so a job is finished exactly once.
//! - Checkpoints are committed with `synchronous = NORMAL`: they survive a crash of the process;
//!   after a power loss a loop may repeat the iterations since an earlier checkpoint.
//! - The log is copied back into the database by a thread of its own ([`checkpointer`]), not
//!   by a commit (unless the log reaches its hard limit).
//! - Every failed write is logged and kept as the storage's health until a write succeeds again.
//! - A database that SQLite reports as damaged is moved aside under a timestamped name, never
//!   deleted, and its highest id still readable is never handed out again ([`damaged`]; see
//!   [`legacy`] for the files of earlier versions).

mod checkpointer;
mod damaged;
mod group;
mod legacy;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use serde::Serialize;

pub use checkpointer::{CheckpointHealth, CheckpointPolicy};

/// The database's file name inside the data directory.
pub const DB_FILE: &str = "state.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    loop_type   TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'finished')),
    iterations  INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (state) WHERE state <> 'finished';
";

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: u64,
    #[serde(rename = "type")]
    pub loop_type: String,
    /// `queued`, `running` (has a checkpoint) or `finished`.
    pub state: String,
    /// Iterations checkpointed (the final count once finished).
    pub iterations: u64,
    /// How many completion records were written for it: 1 once finished, never more.
    pub completions: u64,
}

/// Whether the last write succeeded, for `status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Health {
    /// `ok` or `degraded` (the last write failed).
    pub state: &'static str,
    /// The last write error, kept until a write succeeds.
    pub last_error: Option<String>,
    /// Writes that failed since the daemon started.
    pub failed_writes: u64,
    /// Submits stored since the daemon started, and the commits that stored them: fewer
    /// commits than submits when submits arrived together and shared one.
    pub submits_stored: u64,
    pub submit_commits: u64,
    /// The write-ahead log's checkpoints (run off the committing threads).
    pub checkpoints: CheckpointHealth,
}

/// How far a write is pushed before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sync {
    /// Survives a power loss: acknowledged submits and completions.
    Full,
    /// Survives a crash of the process: checkpoints.
    Normal,
}

struct Db {
    conn: Connection,
    sync: Sync,
}

/// The open database.
pub struct Store {
    db: Arc<Mutex<Db>>,
    health: Mutex<Health>,
    submits: group::GroupCommit,
    checkpointer: checkpointer::Checkpointer,
}

/// Something the store could not do, said for a client.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(String);

impl StoreError {
    /// An error with this text.
    pub fn new(text: String) -> Self {
        StoreError(text)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError(err.to_string())
    }
}

impl Store {
    /// Opens (or creates) the database in `data_dir`, moving a damaged one aside, and migrates
    /// the files of earlier versions once. Errors say which file and why.
    pub fn open(data_dir: &Path) -> Result<Store, String> {
        Store::open_with(data_dir, CheckpointPolicy::default())
    }

    /// [`open`](Store::open), checkpointing the log as `policy` says.
    pub fn open_with(data_dir: &Path, policy: CheckpointPolicy) -> Result<Store, String> {
        let path = data_dir.join(DB_FILE);
        let mut created = !path.exists();
        // The highest id a damaged database moved aside still shows.
        let mut damaged_floor = 0;
        let conn = match open_checked(&path, policy) {
            Ok(conn) => conn,
            Err(err) if is_damage(&err) => {
                damaged_floor = damaged::set_aside(&path, &err)?;
                created = true;
                open_checked(&path, policy).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(err) => return Err(format!("{}: {err}", path.display())),
        };
        let db = Arc::new(Mutex::new(Db {
            conn,
            sync: Sync::Full,
        }));
        let store = Store {
            checkpointer: checkpointer::Checkpointer::start(&path, Arc::clone(&db), policy)?,
            db,
            health: Mutex::new(Health {
                state: "ok",
                ..Health::default()
            }),
            submits: group::GroupCommit::default(),
        };
        let mut db = store.db();
        if created {
            // Ids handed out by earlier versions (or by a database moved aside) are never reused.
            let floor = legacy::highest_id_used(data_dir).max(damaged_floor);
            db.conn
                .execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs', ?1
                     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs')",
                    params![floor as i64],
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        legacy::migrate(&mut db.conn, data_dir)?;
        drop(db);
        Ok(store)
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one write at `sync`, recording its outcome in the health.
    fn write<T>(
        &self,
        what: &str,
        sync: Sync,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut db = self.db();
        let result = db.transaction(sync, f);
        // Noted before the database is free again: whoever writes next sees this health.
        self.note(what, &result);
        if result.is_ok() {
            self.checkpointer.after_commit(&db.conn);
        }
        drop(db);
        result.map_err(StoreError::from)
    }

    /// Keeps the outcome of a write as the storage's health; logs a failure.
    fn note<T>(&self, what: &str, result: &rusqlite::Result<T>) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) if health.state != "ok" => {
                tracing::info!(what, "storage writes succeed again");
                health.state = "ok";
                health.last_error = None;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(what, %err, "storage write failed");
                health.state = "degraded";
                health.last_error = Some(format!("{what}: {err}"));
                health.failed_writes += 1;
            }
        }
    }

    /// Stores a new queued job and returns its id once committed (`FULL`), in one transaction
    /// with the other submits waiting at the same time. If that transaction fails, none of its
    /// submits is stored and each gets the error.
    pub fn submit(&self, loop_type: &str) -> Result<u64, StoreError> {
        self.submits
            .submit(loop_type, |types| {
                let ids = self.write("submit", Sync::Full, |tx| {
                    let mut insert =
                        tx.prepare_cached("INSERT INTO jobs (loop_type) VALUES (?1)")?;
                    types
                        .iter()
                        .map(|loop_type| {
                            insert.execute([loop_type])?;
                            Ok(tx.last_insert_rowid() as u64)
                        })
                        .collect::<rusqlite::Result<Vec<u64>>>()
                });
                if ids.is_ok() {
                    let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                    health.submits_stored += types.len() as u64;
                    health.submit_commits += 1;
                }
                ids.map_err(|err| err.0)
            })
            .map_err(StoreError)
    }

    /// Records a loop's progress (`NORMAL`).
    pub fn checkpoint(&self, id: u64, iterations: u64) -> Result<(), StoreError> {
        self.write("checkpoint", Sync::Normal, |tx| {
            tx.execute(
                "UPDATE jobs SET state = 'running', iterations = ?2
                 WHERE id = ?1 AND state <> 'finished'",
                params![id as i64, iterations as i64],
            )
            .map(drop)
        })
    }

    /// Finishes a job: its completion record and the end of its checkpoint in one statement
    /// (`FULL`).
    pub fn finish(&self, id: u64, iterations: u64) -> Result<(), StoreError> {
        self.write("completion", Sync::Full, |tx| {
            tx.execute(
                "UPDATE jobs SET state = 'finished', iterations = ?2, completions = completions + 1
                 WHERE id = ?1",
                params![id as i64, iterations as i64],
            )
            .map(drop)
        })
    }

    /// Jobs not finished, by id: what a start resumes.
    pub fn unfinished(&self) -> Result<Vec<Job>, StoreError> {
        self.query(
            "SELECT id, loop_type, state, iterations, completions FROM jobs
             WHERE state <> 'finished' ORDER BY id",
            [],
        )
    }

    /// One job, if that id was ever handed out.
    pub fn job(&self, id: u64) -> Result<Option<Job>, StoreError> {
        Ok(self
            .query(
                "SELECT id, loop_type, state, iterations, completions FROM jobs WHERE id = ?1",
                [id as i64],
            )?
            .pop())
    }

    /// How many jobs have finished, ever.
    pub fn finished_count(&self) -> Result<u64, StoreError> {
        let db = self.db();
        let count: i64 = db
            .conn
            .query_row(
                "SELECT count(*) FROM jobs WHERE state = 'finished'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(count as u64)
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Job>, StoreError> {
        let db = self.db();
        let mut statement = db.conn.prepare_cached(sql)?;
        let rows = statement.query_map(params, |r| {
            Ok(Job {
                id: r.get::<_, i64>(0)? as u64,
                loop_type: r.get(1)?,
                state: r.get(2)?,
                iterations: r.get::<_, i64>(3)? as u64,
                completions: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<Job>>>()?)
    }

    /// Holds every write back until the returned guard is dropped (for tests: a commit that
    /// waits for the disk).
    #[cfg(test)]
    pub fn hold_writes(&self) -> impl Sized + '_ {
        self.db()
    }

    /// The storage's health, for `status`.
    pub fn health(&self) -> Health {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        health.checkpoints = self.checkpointer.health();
        health
    }
}

impl Db {
    /// Runs `f` in one transaction committed at `sync`.
    fn transaction<T>(
        &mut self,
        sync: Sync,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.set_sync(sync)?;
        let tx = self.conn.unchecked_transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn set_sync(&mut self, sync: Sync) -> rusqlite::Result<()> {
        if self.sync != sync {
            let level = match sync {
                Sync::Full => "FULL",
                Sync::Normal => "NORMAL",
            };
            self.conn.pragma_update(None, "synchronous", level)?;
            self.sync = sync;
        }
        Ok(())
    }
}

/// Opens the database in WAL mode, checks it and creates the schema. Its commits never
/// checkpoint themselves below `policy.hard_bytes` (the [`checkpointer`] does).
fn open_checked(path: &Path, policy: CheckpointPolicy) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("quick_check: {check}")),
        ));
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if !policy.in_commit {
        // A log restarted after a spike is trimmed back to the hard limit.
        let limit = policy.hard_bytes.min(i64::MAX as u64) as i64;
        conn.pragma_update(None, "journal_size_limit", limit)?;
        // Replaces SQLite's automatic checkpoint (which is itself a WAL hook).
        checkpointer::hook(&conn);
    }
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Whether SQLite says the file is not a (sound) database, as opposed to an I/O problem.
fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_reopening_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.submit("build").unwrap();
        let second = store.submit("build").unwrap();
        store.finish(second, 3).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.submit("build").unwrap() > second);
        let unfinished = store.unfinished().unwrap();
        assert_eq!(unfinished.len(), 2);
        assert_eq!(unfinished[0].id, first);
        assert_eq!(store.job(second).unwrap().unwrap().completions, 1);
        assert_eq!(store.finished_count().unwrap(), 1);
    }

    #[test]
    fn concurrent_submits_each_get_their_own_committed_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                std::thread::spawn(move || {
                    (0..50)
                        .map(|_| store.submit("build").unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids, (1..=200).collect::<Vec<u64>>());
        let stored: Vec<u64> = store.unfinished().unwrap().iter().map(|j| j.id).collect();
        assert_eq!(stored, ids);
        let health = store.health();
        assert_eq!(health.submits_stored, 200);
        assert!((1..=200).contains(&health.submit_commits), "{health:?}");
    }

    /// SQLite's automatic checkpoint copied the log into the database inside the commit that
    /// crossed 1,000 pages: the committing thread paid for it.
    #[test]
    fn commits_never_copy_the_log_into_the_database_themselves() {
        let dir = tempfile::tempdir().unwrap();
        // The checkpoint thread never finds the log due.
        let never = CheckpointPolicy {
            soft_bytes: u64::MAX,
            hard_bytes: u64::MAX,
            ..CheckpointPolicy::default()
        };
        let store = Store::open_with(dir.path(), never).unwrap();
        let id = store.submit("build").unwrap();
        let db = std::fs::read(dir.path().join(DB_FILE)).unwrap();
        // About one page of log per progress checkpoint: well over SQLite's 1,000.
        for iteration in 1..=1_500 {
            store.checkpoint(id, iteration).unwrap();
        }
        let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
            .unwrap()
            .len();
        assert!(wal > 1_200 * 4096, "the log holds {wal} bytes");
        assert!(
            std::fs::read(dir.path().join(DB_FILE)).unwrap() == db,
            "a commit copied the log into the database"
        );
    }

    /// The bench's comparison: with `in_commit`, SQLite checkpoints inside the commit again.
    #[test]
    fn the_in_commit_policy_checkpoints_inside_the_commit_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), CheckpointPolicy::in_commit()).unwrap();
        let id = store.submit("build").unwrap();
        let db = std::fs::read(dir.path().join(DB_FILE)).unwrap();
        for iteration in 1..=1_500 {
            store.checkpoint(id, iteration).unwrap();
        }
        assert!(std::fs::read(dir.path().join(DB_FILE)).unwrap() != db);
        assert_eq!(store.health().checkpoints.runs, 0);
    }

    #[test]
    fn a_checkpoint_never_reopens_a_finished_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.submit("build").unwrap();
        store.checkpoint(id, 2).unwrap();
        assert_eq!(store.job(id).unwrap().unwrap().state, "running");
        store.finish(id, 3).unwrap();
        store.checkpoint(id, 1).unwrap();
        let job = store.job(id).unwrap().unwrap();
        assert_eq!((job.state.as_str(), job.iterations), ("finished", 3));
        assert!(store.unfinished().unwrap().is_empty());
    }

    #[test]
    fn ids_only_queued_in_a_damaged_database_are_not_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for _ in 0..5 {
            store.submit("build").unwrap();
        }
        drop(store); // the last connection checkpoints: all in the main file now
                     // Garbage over page 4 (the index of unfinished jobs, created after the table and its
                     // id counter): quick_check fails, the id counter can still be read.
        let path = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() >= 4 * 4096, "{} bytes", bytes.len());
        bytes[3 * 4096..4 * 4096].fill(0x5a);
        std::fs::write(&path, bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.submit("build").unwrap(), 6);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("state.db.corrupt-")),
            "{names:?}"
        );
        // The copy it read the id from is gone; the kept files are as they were.
        assert!(!names.iter().any(|n| n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn a_damaged_database_is_moved_aside_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.submit("build").unwrap(), 1);
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("state.db.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&aside[0])).unwrap(),
            vec![0x5a; 8192]
        );
    }
}
