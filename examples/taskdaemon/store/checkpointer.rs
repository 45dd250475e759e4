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
//! the storage's health, and the next one retries. A checkpoint SQLite answers "busy" is not a
//! failure: a `PASSIVE` checkpoint that reads the log's index while a commit rewrites it is
//! told so (SQLite then wants the writer's lock, which the commit holds). The bulk copy goes on
//! to its second step, which holds the database and so cannot meet a commit; a step that is
//! still busy is counted and left to the next commit, which asks again.

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
    /// Checkpoints that copied nothing because SQLite was busy (retried at the next commit).
    pub busy: u64,
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

    fn note(&self, outcome: Result<Copied, String>, by_commit: bool) {
        let mut state = self.lock();
        let health = &mut state.health;
        if by_commit {
            health.by_commits += 1;
        } else {
            health.runs += 1;
        }
        match outcome {
            Ok(Copied::All) => health.last_error = None,
            Ok(Copied::Busy) => {
                tracing::debug!(
                    "a checkpoint of the state database was busy; the next commit asks again"
                );
                health.busy += 1;
            }
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
        // Busy in the bulk step (a commit was rewriting the log's index) is fine: the second
        // step holds the database.
        let outcome = bulk.and_then(|_| {
            let _db = db.lock().unwrap_or_else(PoisonError::into_inner);
            let _checkpointing = shared.checkpointing();
            checkpoint(conn)
        });
        shared.note(outcome, false);
    }
}

/// What a checkpoint that did not fail came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copied {
    /// Every frame it could reach was copied.
    All,
    /// SQLite answered busy: another checkpoint, or a commit rewriting the log's index.
    Busy,
}

/// One `PASSIVE` checkpoint: copies what it can without waiting for anyone (everything, when
/// the caller holds the database and the checkpoint lock).
fn checkpoint(conn: &Connection) -> Result<Copied, String> {
    // Its row: busy, frames in the log, frames copied.
    let busy = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(|err| err.to_string())?;
    Ok(if busy == 0 { Copied::All } else { Copied::Busy })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A store in a new directory checkpointing at `soft_kib` and `hard_kib`, with one job: the
    /// directory (kept alive), the store, the job's id and the path of the database's log.
    fn store_with(
        soft_kib: u64,
        hard_kib: u64,
    ) -> (tempfile::TempDir, Store, u64, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            soft_bytes: soft_kib << 10,
            hard_bytes: hard_kib << 10,
            in_commit: false,
        };
        let store = Store::open_with(dir.path(), policy).unwrap();
        let id = store.submit("build").unwrap();
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        (dir, store, id, wal)
    }

    /// Progress checkpoints (a page of log each, no fsync) as fast as one thread can commit:
    /// the log never grows past the hard limit and one commit's pages, and the database holds
    /// everything once reopened.
    #[test]
    fn the_log_stays_bounded_however_fast_commits_come() {
        let (dir, store, id, wal) = store_with(64, 256);
        let mut largest = 0;
        for iteration in 1..=3_000 {
            store.checkpoint(id, iteration).unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let health = store.health().checkpoints;
        assert!(
            largest <= (256 << 10) + (16 << 10),
            "the log reached {largest} bytes; {health:?}"
        );
        assert!(health.runs > 0, "{health:?}");
        assert_eq!((health.failures, health.last_error), (0, None));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.job(id).unwrap().unwrap().iterations, 3_000);
    }

    /// Set by [`wait_for_release`] once a checkpoint waits in it.
    static WAITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    /// Tells [`wait_for_release`] to give up.
    static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// A busy handler that keeps its checkpoint waiting (holding SQLite's checkpoint lock) until
    /// the test releases it, for 10 s at most.
    fn wait_for_release(calls: i32) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        WAITING.store(true, SeqCst);
        if RELEASE.load(SeqCst) || calls > 2_000 {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
        true
    }

    /// A checkpoint that finds another one under way (here another connection's `RESTART`,
    /// waiting for a reader while it holds SQLite's checkpoint lock) copies nothing and is
    /// counted as busy, not as a failure: nothing is wrong and the next commit asks again.
    /// (Before, it was a failure in the health: the checkpoint thread's copy met a commit
    /// rewriting the log's index under load and reported "failures: 1".)
    #[test]
    fn a_checkpoint_that_meets_another_one_is_busy_not_failed() {
        use std::sync::atomic::Ordering::SeqCst;
        let (dir, store, id, _) = store_with(32, 32);
        store.checkpoint(id, 1).unwrap();
        let path = dir.path().join(crate::store::DB_FILE);
        // A reader of the log's newest frames, which a RESTART checkpoint must wait for.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        let other = std::thread::spawn(move || {
            let conn = Connection::open(&path).unwrap();
            conn.busy_handler(Some(wait_for_release)).unwrap();
            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
                .unwrap()
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !WAITING.load(SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the other connection's RESTART checkpoint never waited for the reader"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // A commit that found the log at its hard limit.
        let before = store.health().checkpoints;
        LOG_FRAMES.with(|frames| frames.set(1_000));
        store.checkpointer.after_commit(&store.db().conn);
        RELEASE.store(true, SeqCst);
        assert_eq!(other.join().unwrap(), 1, "the RESTART gave up (busy)");
        drop(reader);
        let health = store.health().checkpoints;
        assert_eq!(
            (
                health.by_commits,
                health.busy,
                health.failures,
                health.last_error.clone()
            ),
            (before.by_commits + 1, before.busy + 1, 0, None),
            "{health:?}"
        );
    }

    /// With the soft limit at the hard one, every commit that finds the log at the limit copies
    /// it itself (the thread is never asked), and the next commit starts the log again.
    #[test]
    fn a_commit_that_finds_the_log_at_its_hard_limit_checkpoints_it_itself() {
        let (_dir, store, id, wal) = store_with(32, 32);
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
