//! Probation's state: the change on probation (if any), how the last one ended, and the
//! quarantined contents. Shared by the engine (which starts a probation after a commit and
//! reverts under its own lock), the checker thread (which waits here for the next thing due) and
//! the status calls. Lock order: the engine's lock, then this one; never the other way round.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::probation::{ConfirmError, ProbationSetup, ProbationStatus, Probe, Quarantined};
use super::referenced::Hashes;
use crate::diff::Change;
use crate::handle::Snapshot;

/// Quarantined contents kept (the oldest is forgotten first).
pub(super) const MAX_QUARANTINED: usize = 64;

/// The version a revert restores, with what the engine knew about it.
pub(super) struct Target<C> {
    pub(super) snapshot: Arc<Snapshot<C>>,
    /// Its content key (`None`: never read from the source).
    pub(super) key: Option<String>,
    pub(super) hashes: Hashes,
    pub(super) pending: Vec<Change>,
}

/// The change on probation.
pub(super) struct OnProbation<C> {
    pub(super) id: u64,
    pub(super) generation: u64,
    /// Its content key: quarantined if it is reverted.
    pub(super) key: String,
    pub(super) new: Arc<Snapshot<C>>,
    pub(super) target: Target<C>,
    started: Instant,
    since: SystemTime,
    window_ends: Instant,
    confirm_by: Option<Instant>,
    confirmed: bool,
    checks: u32,
    next_check: Instant,
    last_check: Option<Instant>,
}

/// What the checker thread is to do next.
pub(super) enum Due<C> {
    /// Run the health check on this probe.
    Check { id: u64, probe: Probe<C> },
    /// Commit-confirmed: the deadline passed unconfirmed.
    Expired { id: u64, after: Duration },
}

struct CellState<C> {
    active: Option<OnProbation<C>>,
    /// A revert of the change that was on probation runs: its status until it ends.
    reverting: Option<ProbationStatus>,
    ended: ProbationStatus,
    quarantine: VecDeque<Quarantined>,
    next_id: u64,
    shutdown: bool,
}

/// See the module docs.
pub(super) struct ProbationCell<C> {
    pub(super) setup: ProbationSetup<C>,
    state: Mutex<CellState<C>>,
    /// Told of every change of `state` (a new probation, a confirmation, an end, shutdown).
    wake: Condvar,
    updates: watch::Sender<ProbationStatus>,
}

impl<C> ProbationCell<C> {
    pub(super) fn new(setup: ProbationSetup<C>) -> Self {
        ProbationCell {
            setup,
            state: Mutex::new(CellState {
                active: None,
                reverting: None,
                ended: ProbationStatus::Idle,
                quarantine: VecDeque::new(),
                next_id: 1,
                shutdown: false,
            }),
            wake: Condvar::new(),
            updates: watch::channel(ProbationStatus::Idle).0,
        }
    }

    /// Puts the just-committed generation on probation. A change already on probation is
    /// superseded: it ends unjudged, and its revert target (the last trusted version) is kept,
    /// so a revert never restores an untrusted version. `target` is used only when nothing was
    /// on probation: the version live before this commit.
    pub(super) fn begin(&self, new: Arc<Snapshot<C>>, key: String, target: Target<C>) {
        let mut state = self.lock();
        let target = match state.active.take() {
            Some(superseded) => {
                tracing::info!(
                    generation = superseded.generation,
                    "probation superseded by a newer change"
                );
                superseded.target
            }
            None => target,
        };
        let started = Instant::now();
        let id = state.next_id;
        state.next_id += 1;
        let confirm_by = self.setup.confirm_within.map(|within| started + within);
        state.active = Some(OnProbation {
            id,
            generation: new.generation(),
            key,
            new,
            target,
            started,
            since: SystemTime::now(),
            window_ends: started + self.setup.window,
            confirm_by,
            confirmed: false,
            checks: 0,
            next_check: started + self.setup.interval().min(self.setup.window),
            last_check: None,
        });
        self.changed(&state);
    }

    /// Waits for the next thing due; `None` once the engine is gone. A probation that finished
    /// (checked through its window, confirmed if required) passes here.
    pub(super) fn next_due(&self) -> Option<Due<C>> {
        let has_check = self.setup.check.is_some();
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return None;
            }
            let Some(active) = state.active.as_mut() else {
                state = self.wait(state, None);
                continue;
            };
            let now = Instant::now();
            let awaiting_confirm = active.confirm_by.filter(|_| !active.confirmed);
            if awaiting_confirm.is_some_and(|by| now >= by) {
                let after = self.setup.confirm_within.unwrap_or_default();
                return Some(Due::Expired {
                    id: active.id,
                    after,
                });
            }
            let checked_through = !has_check
                || active
                    .last_check
                    .is_some_and(|last| last >= active.window_ends);
            if checked_through && awaiting_confirm.is_none() && now >= active.window_ends {
                let (generation, checks) = (active.generation, active.checks);
                tracing::info!(generation, checks, "probation passed");
                state.active = None;
                state.ended = ProbationStatus::Passed { generation, checks };
                self.changed(&state);
                continue;
            }
            if !checked_through && now >= active.next_check {
                let next = now + self.setup.interval();
                active.next_check = if now < active.window_ends {
                    next.min(active.window_ends)
                } else {
                    next
                };
                return Some(Due::Check {
                    id: active.id,
                    probe: active.probe(now),
                });
            }
            let check_at = (!checked_through).then_some(active.next_check);
            let until = [check_at, awaiting_confirm].into_iter().flatten().min();
            state = self.wait(state, until);
        }
    }

    /// Notes a check made on probation `id` (whatever it said).
    pub(super) fn checked(&self, id: u64) {
        let mut state = self.lock();
        if let Some(active) = state.active.as_mut().filter(|a| a.id == id) {
            active.checks += 1;
            active.last_check = Some(Instant::now());
            self.changed(&state);
        }
    }

    /// Ends probation `id` for a revert: `None` if it ended meanwhile (superseded, passed).
    pub(super) fn take(&self, id: u64) -> Option<OnProbation<C>> {
        let mut state = self.lock();
        let status = status_of(&state);
        let taken = state.active.take_if(|active| active.id == id);
        if taken.is_some() {
            state.reverting = Some(status);
        }
        taken
    }

    /// How the revert of a taken probation ended; `quarantine` the content reverted.
    pub(super) fn ended(&self, status: ProbationStatus, quarantine: Option<Quarantined>) {
        let mut state = self.lock();
        if let Some(entry) = quarantine {
            state.quarantine.retain(|q| q.sha256 != entry.sha256);
            if state.quarantine.len() >= MAX_QUARANTINED {
                state.quarantine.pop_front();
            }
            state.quarantine.push_back(entry);
        }
        state.ended = status;
        state.reverting = None;
        self.changed(&state);
    }

    /// Commit-confirmed: confirms the change awaiting it (`asked`: only if it is that
    /// generation). Returns its generation.
    pub(super) fn confirm(&self, asked: Option<u64>, live: u64) -> Result<u64, ConfirmError> {
        if self.setup.confirm_within.is_none() {
            return Err(ConfirmError::NotEnabled);
        }
        let mut state = self.lock();
        if let Some(active) = state.active.as_mut() {
            if let Some(asked) = asked.filter(|asked| *asked != active.generation) {
                let pending = active.generation;
                return Err(ConfirmError::OtherGeneration { asked, pending });
            }
            active.confirmed = true;
            let generation = active.generation;
            tracing::info!(generation, "change confirmed");
            self.changed(&state);
            return Ok(generation);
        }
        match &state.ended {
            ProbationStatus::Reverted { revert, live }
                if asked.is_none_or(|asked| asked == revert.reverted) =>
            {
                Err(ConfirmError::AlreadyReverted {
                    revert: revert.clone(),
                    live: *live,
                })
            }
            _ => Err(ConfirmError::NothingPending { live }),
        }
    }

    pub(super) fn status(&self) -> ProbationStatus {
        status_of(&self.lock())
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<ProbationStatus> {
        self.updates.subscribe()
    }

    /// Waits until no change is on probation, at most `timeout`; the status then.
    pub(super) fn wait_settled(&self, timeout: Duration) -> ProbationStatus {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let unsettled = |state: &CellState<C>| state.active.is_some() || state.reverting.is_some();
        while unsettled(&state) && !state.shutdown && Instant::now() < deadline {
            state = self.wait(state, Some(deadline));
        }
        status_of(&state)
    }

    /// The quarantine entry for content `key`, if it is quarantined.
    pub(super) fn quarantined(&self, key: &str) -> Option<Quarantined> {
        let state = self.lock();
        state.quarantine.iter().find(|q| q.sha256 == key).cloned()
    }

    pub(super) fn quarantine(&self) -> Vec<Quarantined> {
        self.lock().quarantine.iter().cloned().collect()
    }

    /// Forgets the quarantine (all of it, or one content); returns how many were released.
    pub(super) fn release(&self, key: Option<&str>) -> usize {
        let mut state = self.lock();
        let before = state.quarantine.len();
        state
            .quarantine
            .retain(|q| key.is_some_and(|key| q.sha256 != key));
        before - state.quarantine.len()
    }

    /// The engine is gone: the checker thread ends.
    pub(super) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_all();
    }

    fn changed(&self, state: &CellState<C>) {
        self.updates.send_replace(status_of(state));
        self.wake.notify_all();
    }

    fn wait<'a>(
        &self,
        state: MutexGuard<'a, CellState<C>>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, CellState<C>> {
        match until {
            None => self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
            Some(until) => {
                let timeout = until.saturating_duration_since(Instant::now());
                match self.wake.wait_timeout(state, timeout) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, CellState<C>> {
        // Nothing panics while holding it; poisoning would be a bug here, the state still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C> OnProbation<C> {
    fn probe(&self, now: Instant) -> Probe<C> {
        Probe {
            new: Arc::clone(&self.new),
            previous: Arc::clone(&self.target.snapshot),
            elapsed: now.saturating_duration_since(self.started),
            checks: self.checks,
        }
    }

    /// `at` as wall-clock time.
    fn wall(&self, at: Instant) -> SystemTime {
        self.since + at.saturating_duration_since(self.started)
    }
}

fn status_of<C>(state: &CellState<C>) -> ProbationStatus {
    if let Some(reverting) = &state.reverting {
        return reverting.clone();
    }
    match &state.active {
        Some(active) => ProbationStatus::OnProbation {
            generation: active.generation,
            revert_to: active.target.snapshot.generation(),
            since: active.since,
            window_ends: active.wall(active.window_ends),
            confirm_by: active.confirm_by.map(|by| active.wall(by)),
            confirmed: active.confirmed,
            checks: active.checks,
        },
        None => state.ended.clone(),
    }
}

#[cfg(test)]
mod tests;
