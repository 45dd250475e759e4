//! Group commit: submits that wait at the same time share one transaction and one fsync.
//!
//! A submit joins the waiting list. If no commit is under way, it becomes the leader: it takes
//! the whole list, commits it in one go and hands every waiter its own outcome. Submits that
//! arrive during that commit wait for it to end, then the first of them leads the next one. So
//! under load one fsync acknowledges many submits, with one client nothing waits for anyone,
//! and every reply still comes only after the commit that stored it.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What one waiter gets back: its id, or why nothing was stored.
pub type Outcome = Result<u64, String>;

/// The waiting submits and the outcomes not yet collected.
#[derive(Default)]
struct State {
    /// Tickets and loop types waiting for the next commit, in arrival order.
    waiting: Vec<(u64, String)>,
    /// Outcomes of a finished commit, by ticket, until their waiter takes them.
    outcomes: HashMap<u64, Outcome>,
    /// Whether a leader is committing.
    committing: bool,
    next_ticket: u64,
}

/// Batches concurrent submits into shared commits.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    committed: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `loop_type` with the others waiting now, through `commit`, and returns its
    /// outcome once that commit has ended. `commit` gets the loop types of one batch, in order,
    /// and returns their ids in the same order, or the error that stored none of them.
    pub fn submit(
        &self,
        loop_type: &str,
        commit: impl Fn(&[String]) -> Result<Vec<u64>, String>,
    ) -> Outcome {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, loop_type.to_string()));
        loop {
            if let Some(outcome) = state.outcomes.remove(&ticket) {
                return outcome;
            }
            if !state.committing {
                state.committing = true;
                let batch = std::mem::take(&mut state.waiting);
                drop(state);
                let leading = Leading { group: self, batch };
                let outcomes = leading.commit(&commit);
                state = leading.finish(outcomes);
                continue;
            }
            state = self
                .committed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How many submits wait for the next commit (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// A leader's batch. Dropped without [`finish`](Leading::finish) (the commit panicked), it
/// still answers every waiter and frees the leadership, so nobody waits forever.
struct Leading<'a> {
    group: &'a GroupCommit,
    batch: Vec<(u64, String)>,
}

impl<'a> Leading<'a> {
    fn commit(&self, commit: impl Fn(&[String]) -> Result<Vec<u64>, String>) -> Vec<Outcome> {
        let types: Vec<String> = self.batch.iter().map(|(_, t)| t.clone()).collect();
        match commit(&types) {
            Ok(ids) if ids.len() == types.len() => ids.into_iter().map(Ok).collect(),
            Ok(ids) => {
                let error = format!("{} ids for {} submits", ids.len(), types.len());
                vec![Err(error); types.len()]
            }
            Err(error) => vec![Err(error); types.len()],
        }
    }

    /// Publishes `outcomes` (one per batch entry), ends the leadership and wakes the waiters.
    fn finish(mut self, outcomes: Vec<Outcome>) -> MutexGuard<'a, State> {
        let batch = std::mem::take(&mut self.batch);
        let mut state = self.group.lock();
        for ((ticket, _), outcome) in batch.into_iter().zip(outcomes) {
            state.outcomes.insert(ticket, outcome);
        }
        state.committing = false;
        self.group.committed.notify_all();
        state
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut state = self.group.lock();
        for (ticket, _) in self.batch.drain(..) {
            let error = "the commit was interrupted; the item was not queued".to_string();
            state.outcomes.insert(ticket, Err(error));
        }
        state.committing = false;
        self.group.committed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    use super::*;

    const LIMIT: Duration = Duration::from_secs(20);

    /// A commit that hands out consecutive ids and records its batch sizes; the first commit
    /// waits for `release` so that others can queue up behind it.
    struct Recorder {
        next_id: AtomicU64,
        batches: Mutex<Vec<usize>>,
        entered: mpsc::SyncSender<()>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Recorder {
        fn commit(&self, types: &[String]) -> Result<Vec<u64>, String> {
            let first = self.batches.lock().unwrap().is_empty();
            self.batches.lock().unwrap().push(types.len());
            if first {
                self.entered.send(()).unwrap();
                let release = self.release.lock().unwrap();
                release
                    .recv_timeout(LIMIT)
                    .expect("the test releases the first commit");
            }
            if types.iter().any(|t| t == "refused") {
                return Err("disk full".to_string());
            }
            let start = self.next_id.fetch_add(types.len() as u64, Ordering::SeqCst);
            Ok((start..start + types.len() as u64).collect())
        }
    }

    fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
        let began = Instant::now();
        while !condition() {
            assert!(began.elapsed() < LIMIT, "waited {LIMIT:?} for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// One leader committing, then the three who arrived meanwhile share the next commit;
    /// everyone gets its own outcome, and a failed batch refuses all of its submits.
    fn run(types: [&'static str; 4]) -> (Vec<Outcome>, Vec<usize>) {
        let (entered, entered_rx) = mpsc::sync_channel(1);
        let (release_tx, release) = mpsc::channel();
        let recorder = Arc::new(Recorder {
            next_id: AtomicU64::new(1),
            batches: Mutex::new(Vec::new()),
            entered,
            release: Mutex::new(release),
        });
        let group = Arc::new(GroupCommit::default());
        let spawn = |loop_type: &'static str| {
            let (group, recorder) = (Arc::clone(&group), Arc::clone(&recorder));
            std::thread::spawn(move || group.submit(loop_type, |t| recorder.commit(t)))
        };
        let first = spawn(types[0]);
        entered_rx
            .recv_timeout(LIMIT)
            .expect("the first commit began");
        let others: Vec<_> = types[1..].iter().map(|t| spawn(t)).collect();
        wait_for("three submits waiting", || group.waiting() == 3);
        release_tx.send(()).unwrap();
        let outcomes = std::iter::once(first)
            .chain(others)
            .map(|t| t.join().unwrap())
            .collect();
        let batches = recorder.batches.lock().unwrap().clone();
        (outcomes, batches)
    }

    #[test]
    fn submits_waiting_together_share_one_commit() {
        let (outcomes, batches) = run(["build"; 4]);
        assert_eq!(batches, vec![1, 3]);
        assert_eq!(outcomes[0], Ok(1));
        let mut later: Vec<u64> = outcomes[1..].iter().map(|o| *o.as_ref().unwrap()).collect();
        later.sort();
        assert_eq!(later, vec![2, 3, 4]);
    }

    #[test]
    fn a_failed_commit_refuses_every_submit_of_its_batch_and_no_other() {
        let (outcomes, batches) = run(["build", "build", "refused", "build"]);
        assert_eq!(batches, vec![1, 3]);
        assert_eq!(outcomes[0], Ok(1));
        for outcome in &outcomes[1..] {
            assert_eq!(outcome, &Err("disk full".to_string()));
        }
    }

    #[test]
    fn a_panicking_commit_answers_its_waiters_and_frees_the_next_leader() {
        let group = GroupCommit::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            group.submit("build", |_| panic!("bug in the commit"))
        }));
        assert!(panicked.is_err());
        assert_eq!(group.submit("build", |_| Ok(vec![7])), Ok(7));
    }
}
