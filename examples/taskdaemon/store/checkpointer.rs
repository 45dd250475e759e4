//! WAL checkpoints off the committing thread.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, so one
//! submit in a thousand paid for copying the whole log into the database and syncing it. The
//! store turns that off (`wal_autocheckpoint = 0`) and this thread, with a connection of its own,
//! copies the log back instead:
//!
//! - after a commit leaves the log at `soft_bytes` or more, a `PASSIVE` checkpoint: it never
//!   blocks a writer, and once it has copied every frame the next commit starts the log again
//!   from its beginning (`journal_size_limit` then trims the file to half of `soft_bytes`, so
//!   its size tells how far the log has grown since);
//! - should the log still reach `hard_bytes` (the thread fell behind), the commit that sees it
//!   waits for a `TRUNCATE` checkpoint before it returns, so the log never grows without bound;
//! - at most one look every `spacing`, and one every `idle` even without commits.
//!
//! A failed checkpoint loses nothing (the log keeps every frame); it is logged and counted in
//! the storage's health, and the next one retries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

/// When to checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointPolicy {
    /// A log this large is checkpointed (`PASSIVE`) by the thread.
    pub soft_bytes: u64,
    /// A log this large makes the commit that sees it wait for a full (`TRUNCATE`) checkpoint.
    pub hard_bytes: u64,
    /// The shortest time between two looks at the log.
    pub spacing: Duration,
    /// The longest time between two looks at the log.
    pub idle: Duration,
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
    /// 4 MiB (about SQLite's own threshold of 1,000 pages), 64 MiB, 10 ms, 1 s.
    fn default() -> Self {
        CheckpointPolicy {
            soft_bytes: 4 << 20,
            hard_bytes: 64 << 20,
            spacing: Duration::from_millis(10),
            idle: Duration::from_secs(1),
            in_commit: false,
        }
    }
}

/// What the checkpoints came to, for `status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckpointHealth {
    /// Checkpoints run by the thread.
    pub runs: u64,
    /// Checkpoints that failed.
    pub failures: u64,
    /// The last failure, until a checkpoint succeeds again.
    pub last_error: Option<String>,
    /// Commits that waited for a checkpoint because the log reached `hard_bytes`.
    pub waits: u64,
    /// The size of the log file at the last look.
    pub wal_bytes: u64,
}

#[derive(Default)]
struct State {
    /// A commit left the log at `soft_bytes` or more.
    kicked: bool,
    /// A commit waits: checkpoint fully now.
    urgent: bool,
    stop: bool,
    /// Checkpoints finished (successful or not), so a waiting commit knows when one did.
    finished: u64,
    health: CheckpointHealth,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the thread.
    wake: Condvar,
    /// Wakes commits waiting for a checkpoint.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The checkpointing thread of one database; stopped and joined on drop.
pub struct Checkpointer {
    shared: Arc<Shared>,
    wal: PathBuf,
    policy: CheckpointPolicy,
    thread: Option<JoinHandle<()>>,
}

/// How long a commit waits for a checkpoint before it gives up waiting (and says so).
const LONGEST_WAIT: Duration = Duration::from_secs(10);

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `db`.
    pub fn start(db: &Path, policy: CheckpointPolicy) -> Result<Checkpointer, String> {
        let conn = Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| format!("{}: {e}", db.display()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        let thread = if policy.in_commit {
            None
        } else {
            let (shared, wal) = (Arc::clone(&shared), wal.clone());
            let thread = std::thread::Builder::new()
                .name("state-checkpoint".into())
                .spawn(move || run(&shared, &conn, &wal, policy))
                .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
            Some(thread)
        };
        Ok(Checkpointer {
            shared,
            wal,
            policy,
            thread,
        })
    }

    /// Called by a committing thread after its commit: tells the thread when the log is due,
    /// and waits for a checkpoint only when the log reached `hard_bytes`.
    pub fn after_commit(&self) {
        if self.thread.is_none() {
            return;
        }
        let size = file_size(&self.wal);
        if size < self.policy.soft_bytes {
            return;
        }
        let mut state = self.shared.lock();
        state.kicked = true;
        if size < self.policy.hard_bytes {
            drop(state);
            self.shared.wake.notify_one();
            return;
        }
        state.urgent = true;
        state.health.waits += 1;
        let seen = state.finished;
        self.shared.wake.notify_one();
        let (state, waited) = self
            .shared
            .done
            .wait_timeout_while(state, LONGEST_WAIT, |s| s.finished == seen && !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        drop(state);
        if waited.timed_out() {
            tracing::warn!(
                wal_bytes = size,
                "the write-ahead log is over its limit and no checkpoint finished within {LONGEST_WAIT:?}"
            );
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
        self.shared.done.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The thread: wait for a kick (or `idle`), checkpoint if the log is due, rest `spacing`.
fn run(shared: &Shared, conn: &Connection, wal: &Path, policy: CheckpointPolicy) {
    loop {
        let urgent = {
            let state = shared.lock();
            let (mut state, _) = shared
                .wake
                .wait_timeout_while(state, policy.idle, |s| !s.kicked && !s.stop)
                .unwrap_or_else(PoisonError::into_inner);
            if state.stop {
                return;
            }
            state.kicked = false;
            std::mem::take(&mut state.urgent)
        };
        let size = file_size(wal);
        if urgent || size >= policy.soft_bytes {
            let full = urgent || size >= policy.hard_bytes;
            let outcome = checkpoint(conn, full);
            let mut state = shared.lock();
            note(&mut state.health, outcome, file_size(wal));
            state.finished += 1;
            drop(state);
            shared.done.notify_all();
        } else {
            shared.lock().health.wal_bytes = size;
        }
        let state = shared.lock();
        let _ = shared
            .wake
            .wait_timeout_while(state, policy.spacing, |s| !s.stop && !s.urgent);
    }
}

/// One checkpoint: `PASSIVE`, or `TRUNCATE` when `full` (waits for the writer, copies every
/// frame and empties the log file).
fn checkpoint(conn: &Connection, full: bool) -> Result<(), String> {
    let mode = if full { "TRUNCATE" } else { "PASSIVE" };
    // Its row: busy (a full checkpoint was blocked), frames in the log, frames copied.
    let busy = conn
        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(|err| err.to_string())?;
    if full && busy != 0 {
        return Err("a full checkpoint was blocked by another connection".to_string());
    }
    Ok(())
}

fn note(health: &mut CheckpointHealth, outcome: Result<(), String>, wal_bytes: u64) {
    health.runs += 1;
    health.wal_bytes = wal_bytes;
    match outcome {
        Ok(()) => health.last_error = None,
        Err(err) => {
            tracing::warn!(%err, "checkpoint of the state database failed; its log keeps every change");
            health.failures += 1;
            health.last_error = Some(err);
        }
    }
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
            spacing: Duration::from_millis(1),
            idle: Duration::from_secs(1),
            in_commit: false,
        };
        let store = Store::open_with(dir.path(), policy).unwrap();
        let id = store.submit("build").unwrap();
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        let mut largest = 0;
        for iteration in 1..=3_000 {
            store.checkpoint(id, iteration).unwrap();
            largest = largest.max(file_size(&wal));
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

    /// With the soft limit at the hard one, every commit that finds the log at the limit waits
    /// for a full checkpoint, which empties the log file.
    #[test]
    fn a_commit_that_finds_the_log_at_its_hard_limit_waits_for_a_full_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            soft_bytes: 32 << 10,
            hard_bytes: 32 << 10,
            spacing: Duration::from_secs(1),
            idle: Duration::from_secs(1),
            in_commit: false,
        };
        let store = Store::open_with(dir.path(), policy).unwrap();
        let id = store.submit("build").unwrap();
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        for iteration in 1..=100 {
            store.checkpoint(id, iteration).unwrap();
            let size = file_size(&wal);
            assert!(
                size < (32 << 10) + (16 << 10),
                "{size} bytes after commit {iteration}"
            );
        }
        let health = store.health().checkpoints;
        assert!(
            health.waits > 0 && health.runs >= health.waits,
            "{health:?}"
        );
    }
}
