//! WAL checkpoints off the committing thread.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, so one
//! submit in a few hundred paid for copying a thousand pages into the database and syncing them.
//! The store turns that off and this thread, with a connection of its own, copies the log back:
//!
//! - a commit that leaves `soft_bytes` or more in the log (SQLite's WAL hook says how many frames)
//!   wakes the thread, which copies the log with a `PASSIVE` checkpoint while commits go on, then
//!   holds the database for a second `PASSIVE` that copies the few frames committed meanwhile.
//!   With every frame copied and no commit running, the next commit starts the log again from its
//!   beginning, so commits wait at most for that short second step, never for the bulk copy;
//! - should a commit find `hard_bytes` in the log (the commits outran the thread's copy, or it
//!   is failing), that commit waits for a copy under way to end and copies the rest itself,
//!   still holding the database, so the next commit starts the log again: the log never grows
//!   past `hard_bytes` and one commit's frames.
//!
//! Locks are taken in one order, the database before the checkpoint lock (SQLite refuses a
//! second checkpoint at once rather than wait for it, so ours wait on that lock instead).
//!
//! A failed checkpoint loses nothing (the log keeps every frame); it is logged and counted in
//! the storage's health, and the next one retries.

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::Db;

/// When to checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointPolicy {
    /// A log this large is checkpointed by the thread.
    pub soft_bytes: u64,
    /// A log this large is checkpointed by the commit that finds it.
    pub hard_bytes: u64,
    /// No thread: SQLite's own checkpoint inside the commit that crosses 1,000 pages, as
    /// before (to compare, in the `durable_submit` bench).
    pub in_commit: bool,
}

impl CheckpointPolicy {
    /// SQLite's automatic checkpoint, run by the committing thread.
    #[cfg_attr(not(test), allow(dead_code))] // the daemon never uses it; the bench does
    pub fn in_commit() -> Self {
        CheckpointPolicy {
            in_commit: true,
            ..CheckpointPolicy::default()
        }
    }
}

impl Default for CheckpointPolicy {
    /// 4 MiB (about SQLite's own threshold of 1,000 pages) and 64 MiB.
    fn default() -> Self {
        CheckpointPolicy {
            soft_bytes: 4 << 20,
            hard_bytes: 64 << 20,
            in_commit: false,
        }
    }
}

/// What the checkpoints came to, for `status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckpointHealth {
    /// Checkpoints run by the thread.
    pub runs: u64,
    /// Checkpoints that failed (the thread's or a commit's).
    pub failures: u64,
    /// The last failure, until a checkpoint succeeds again.
    pub last_error: Option<String>,
    /// Checkpoints a commit ran itself, having found `hard_bytes` in the log.
    pub by_commits: u64,
    /// Bytes in the log after the last commit.
    pub log_bytes: u64,
}

/// A log frame: a page and its 24-byte header.
const FRAME_BYTES: u64 = 4096 + 24;

thread_local! {
    /// Frames in the log after this thread's last commit, from SQLite's WAL hook.
    static LOG_FRAMES: Cell<u64> = const { Cell::new(0) };
}

fn note_log_frames(
    _wal: &rusqlite::hooks::Wal,
    frames: std::os::raw::c_int,
) -> rusqlite::Result<()> {
    LOG_FRAMES.with(|f| f.set(frames.max(0) as u64));
    Ok(())
}

/// Makes `conn`'s commits report the log's length instead of checkpointing (the hook replaces
/// SQLite's automatic checkpoint).
pub fn hook(conn: &Connection) {
    conn.wal_hook(Some(note_log_frames));
}

#[derive(Default)]
struct State {
    /// A commit left `soft_bytes` or more in the log.
    due: bool,
    stop: bool,
    health: CheckpointHealth,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held by whoever checkpoints.
    checkpointing: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkpointing(&self) -> MutexGuard<'_, ()> {
        self.checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, outcome: Result<(), String>, by_commit: bool) {
        let mut state = self.lock();
        let health = &mut state.health;
        if by_commit {
            health.by_commits += 1;
        } else {
            health.runs += 1;
        }
        match outcome {
            Ok(()) => health.last_error = None,
            Err(err) => {
                tracing::warn!(%err, "checkpoint of the state database failed; its log keeps every change");
                health.failures += 1;
                health.last_error = Some(err);
            }
        }
    }
}

/// The checkpointing thread of one database; stopped and joined on drop.
pub struct Checkpointer {
    shared: Arc<Shared>,
    policy: CheckpointPolicy,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`, whose store holds
    /// `db` while it commits.
    pub fn start(
        path: &Path,
        db: Arc<Mutex<Db>>,
        policy: CheckpointPolicy,
    ) -> Result<Checkpointer, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            checkpointing: Mutex::new(()),
        });
        let thread = if policy.in_commit {
            None
        } else {
            let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("state-checkpoint".into())
                .spawn(move || run(&shared, &conn, &db))
                .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
            Some(thread)
        };
        Ok(Checkpointer {
            shared,
            policy,
            thread,
        })
    }

    /// Called by a committing thread right after its commit on `conn`, still holding the
    /// database: wakes the thread when the log is due, or checkpoints it here past `hard_bytes`.
    pub fn after_commit(&self, conn: &Connection) {
        if self.thread.is_none() {
            return;
        }
        let bytes = LOG_FRAMES.with(Cell::get) * FRAME_BYTES;
        let mut state = self.shared.lock();
        state.health.log_bytes = bytes;
        if bytes >= self.policy.hard_bytes {
            drop(state);
            let _checkpointing = self.shared.checkpointing();
            self.shared.note(checkpoint(conn), true);
        } else if bytes >= self.policy.soft_bytes && !state.due {
            state.due = true;
            drop(state);
            self.shared.wake.notify_one();
        }
    }

    /// The checkpoints' health.
    pub fn health(&self) -> CheckpointHealth {
        self.shared.lock().health.clone()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: wait until the log is due, copy it while commits go on, then finish the copy
/// holding the database.
fn run(shared: &Shared, conn: &Connection, db: &Mutex<Db>) {
    loop {
        {
            let state = shared.lock();
            let mut state = shared
                .wake
                .wait_while(state, |s| !s.due && !s.stop)
                .unwrap_or_else(PoisonError::into_inner);
            if state.stop {
                return;
            }
            state.due = false;
        }
        let bulk = {
            let _checkpointing = shared.checkpointing();
            checkpoint(conn)
        };
        let outcome = bulk.and_then(|()| {
            let _db = db.lock().unwrap_or_else(PoisonError::into_inner);
            let _checkpointing = shared.checkpointing();
            checkpoint(conn)
        });
        shared.note(outcome, false);
    }
}

/// One `PASSIVE` checkpoint: copies what it can without waiting for anyone (everything, when
/// the caller holds the database and the checkpoint lock).
fn checkpoint(conn: &Connection) -> Result<(), String> {
    // Its row: busy, frames in the log, frames copied.
    let busy = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(|err| err.to_string())?;
    if busy != 0 {
        return Err("the checkpoint was refused: another one was running".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Progress checkpoints (a page of log each, no fsync) as fast as one thread can commit:
    /// the log never grows past the hard limit and one commit's pages, and the database holds
    /// everything once reopened.
    #[test]
    fn the_log_stays_bounded_however_fast_commits_come() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            soft_bytes: 64 << 10,
            hard_bytes: 256 << 10,
            in_commit: false,
        };
        let store = Store::open_with(dir.path(), policy).unwrap();
        let id = store.submit("build").unwrap();
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        let mut largest = 0;
        for iteration in 1..=3_000 {
            store.checkpoint(id, iteration).unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let health = store.health().checkpoints;
        assert!(
            largest <= policy.hard_bytes + (16 << 10),
            "the log reached {largest} bytes; {health:?}"
        );
        assert!(health.runs > 0, "{health:?}");
        assert_eq!((health.failures, health.last_error), (0, None));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.job(id).unwrap().unwrap().iterations, 3_000);
    }

    /// With the soft limit at the hard one, every commit that finds the log at the limit copies
    /// it itself (the thread is never asked), and the next commit starts the log again.
    #[test]
    fn a_commit_that_finds_the_log_at_its_hard_limit_checkpoints_it_itself() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            soft_bytes: 32 << 10,
            hard_bytes: 32 << 10,
            in_commit: false,
        };
        let store = Store::open_with(dir.path(), policy).unwrap();
        let id = store.submit("build").unwrap();
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        for iteration in 1..=100 {
            store.checkpoint(id, iteration).unwrap();
            let size = std::fs::metadata(&wal).unwrap().len();
            assert!(
                size < (32 << 10) + (16 << 10),
                "{size} bytes after commit {iteration}"
            );
        }
        let health = store.health().checkpoints;
        assert!(health.by_commits > 0 && health.runs == 0, "{health:?}");
        assert_eq!((health.failures, health.last_error), (0, None));
    }
}
