//! Unit tests of `ProbationCell`, probation's state machine: what is due and when, how a
//! probation ends (passed, taken for a revert, superseded), confirmation, waiting, and the
//! quarantine. The tests play the engine (`begin`, `take`, `ended`) and, where time matters, the
//! checker thread (`Driver`); every wait on another thread is bounded.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::thread;

use super::*;
use crate::engine::probation::{Checker, Health, ProbationRevert, RevertReason};
use crate::test_support::{bounded, BOUND};

type Cell = ProbationCell<u32>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Probation with a health check (always healthy: the tests note the checks themselves).
fn with_check(window: Duration, interval: Duration) -> ProbationSetup<u32> {
    let healthy = |_: &Probe<u32>| Health::Healthy;
    ProbationSetup {
        window,
        interval: Some(interval),
        check: Some(Checker::Sync(Arc::new(healthy))),
        ..ProbationSetup::default()
    }
}

/// Commit-confirmed alone, as the builder sets it up (no window).
fn confirm_only(within: Duration) -> ProbationSetup<u32> {
    ProbationSetup {
        confirm_within: Some(within),
        ..ProbationSetup::default()
    }
}

fn cell(setup: ProbationSetup<u32>) -> Arc<Cell> {
    Arc::new(ProbationCell::new(setup))
}

/// A cell whose deadlines and checks are far away: for the tests that need no time to pass.
fn confirming() -> Arc<Cell> {
    cell(confirm_only(Duration::from_secs(60)))
}

fn checking() -> Arc<Cell> {
    cell(with_check(Duration::from_secs(60), Duration::from_secs(1)))
}

fn checks_in(status: ProbationStatus) -> u32 {
    match status {
        ProbationStatus::OnProbation { checks, .. } => checks,
        other => panic!("not on probation: {other:?}"),
    }
}

fn assert_after(started: Instant, at_least: Duration, what: &str) {
    let elapsed = started.elapsed();
    assert!(
        elapsed >= at_least,
        "{what} after {elapsed:?}, before {at_least:?}"
    );
}

fn snapshot(generation: u64) -> Arc<Snapshot<u32>> {
    Arc::new(Snapshot::new(generation, None, generation as u32))
}

/// The content key of `generation`'s source content.
fn key(generation: u64) -> String {
    format!("sha-{generation}")
}

/// Commits `generation` while `previous` is live: it goes on probation.
fn begin(cell: &Cell, generation: u64, previous: u64) {
    let target = Target {
        snapshot: snapshot(previous),
        key: Some(key(previous)),
        hashes: Hashes::new(),
        pending: Vec::new(),
    };
    cell.begin(snapshot(generation), key(generation), target);
}

/// The revert of generation 5 to generation 4's version.
fn revert() -> ProbationRevert {
    ProbationRevert {
        reverted: 5,
        restored: 4,
        reason: RevertReason::Unhealthy("5xx".into()),
    }
}

/// How that revert ended: generation 6 is live with generation 4's version.
fn reverted() -> ProbationStatus {
    ProbationStatus::Reverted {
        revert: revert(),
        live: 6,
    }
}

fn quarantined(sha256: &str, generation: u64) -> Quarantined {
    Quarantined {
        sha256: sha256.into(),
        generation,
        reason: RevertReason::Unhealthy("5xx".into()),
    }
}

/// Quarantines each content (key, generation) in turn, as reverts ending do.
fn quarantine_all<'a>(cell: &Cell, contents: impl IntoIterator<Item = (&'a str, u64)>) {
    for (key, generation) in contents {
        cell.ended(reverted(), Some(quarantined(key, generation)));
    }
}

/// The content keys quarantined, oldest first.
fn quarantine_keys(cell: &Cell) -> Vec<String> {
    cell.quarantine().into_iter().map(|q| q.sha256).collect()
}

/// `cell.wait_settled(timeout)`, failing if it has not answered within `BOUND`.
fn wait_settled(cell: &Arc<Cell>, timeout: Duration) -> ProbationStatus {
    let cell = Arc::clone(cell);
    bounded("wait_settled", move || cell.wait_settled(timeout))
}

/// Plays the checker thread: waits for what is due; a check is made (healthy: noted with
/// `checked`) and handed to the test; an expired deadline is handed over and it stops (the
/// engine would take the change then). It ends when the cell shuts down (on drop).
struct Driver {
    cell: Arc<Cell>,
    dues: Receiver<Due<u32>>,
}

impl Driver {
    fn start(cell: &Arc<Cell>) -> Self {
        let (tx, dues) = mpsc::channel();
        let checker = Arc::clone(cell);
        thread::spawn(move || {
            while let Some(due) = checker.next_due() {
                let expired = matches!(due, Due::Expired { .. });
                if let Due::Check { id, .. } = &due {
                    checker.checked(*id);
                }
                if tx.send(due).is_err() || expired {
                    return;
                }
            }
        });
        Driver {
            cell: Arc::clone(cell),
            dues,
        }
    }

    fn next(&self, what: &str) -> Due<u32> {
        self.dues
            .recv_timeout(BOUND)
            .unwrap_or_else(|e| panic!("{what}: nothing due within {BOUND:?} ({e:?})"))
    }

    /// The checks handed over so far, in order (all on probation 1; panics on anything else).
    fn checks(&self) -> Vec<Probe<u32>> {
        let check = |due| match due {
            Due::Check { id: 1, probe } => probe,
            Due::Check { id, .. } => panic!("a check of probation {id}, not 1"),
            Due::Expired { id, after } => panic!("probation {id} expired after {after:?}"),
        };
        self.dues.try_iter().map(check).collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.cell.shutdown();
    }
}

fn expired_of(due: Due<u32>) -> (u64, Duration) {
    match due {
        Due::Expired { id, after } => (id, after),
        Due::Check { id, probe } => panic!("expiry was due, not check {} of {id}", probe.checks),
    }
}

/// What every probation with a health check passing through its window shows: a check every
/// interval (the first one interval after the commit, none before the one due), the last one
/// at the window's end, each seeing the checks before it; and it passes with that many checks.
fn assert_checked_through(cell: &Cell, driver: &Driver, started: Instant) -> Vec<Probe<u32>> {
    let settled = cell.wait_settled(BOUND);
    assert_after(started, cell.setup.window, "passed");
    let probes = driver.checks();
    let (window, interval) = (cell.setup.window, cell.setup.interval());
    let expected = ProbationStatus::Passed {
        generation: 5,
        checks: probes.len() as u32,
    };
    assert_eq!(settled, expected, "passed with every check counted");
    let last = probes.last().expect("at least one check");
    assert!(last.elapsed >= window, "last check at {:?}", last.elapsed);
    let mut due_from = interval.min(window);
    for (made, probe) in probes.iter().enumerate() {
        assert_eq!(probe.checks, made as u32, "checks seen by check {made}");
        assert_eq!(
            (probe.new.generation(), probe.previous.generation()),
            (5, 4)
        );
        assert!(
            probe.elapsed >= due_from,
            "check {made} at {:?}",
            probe.elapsed
        );
        due_from = (probe.elapsed + interval).min(window);
    }
    probes
}

#[test]
fn a_new_change_is_on_probation_with_its_window_and_deadline() {
    let cell = cell(ProbationSetup {
        confirm_within: Some(Duration::from_secs(7)),
        ..with_check(Duration::from_secs(5), Duration::from_secs(1))
    });
    assert_eq!(cell.status(), ProbationStatus::Idle);
    let before = SystemTime::now();
    begin(&cell, 5, 4);
    let ProbationStatus::OnProbation { since, .. } = cell.status() else {
        panic!("not on probation: {:?}", cell.status());
    };
    assert!(before <= since && since <= SystemTime::now());
    let expected = ProbationStatus::OnProbation {
        generation: 5,
        revert_to: 4,
        since,
        window_ends: since + Duration::from_secs(5),
        confirm_by: Some(since + Duration::from_secs(7)),
        confirmed: false,
        checks: 0,
    };
    assert_eq!(cell.status(), expected);
}

#[test]
fn a_newer_change_supersedes_and_keeps_the_first_revert_target() {
    let cell = confirming();
    begin(&cell, 5, 4);
    begin(&cell, 6, 5);
    let status = cell.status();
    let newer = matches!(
        status,
        ProbationStatus::OnProbation {
            generation: 6,
            revert_to: 4,
            checks: 0,
            ..
        }
    );
    assert!(newer, "{status:?}");
    assert!(cell.take(1).is_none(), "the superseded probation is gone");
    let taken = cell.take(2).expect("the newer probation is taken");
    assert_eq!((taken.id, taken.generation), (2, 6));
    assert_eq!((taken.key.as_str(), taken.new.generation()), ("sha-6", 6));
    assert_eq!(taken.target.snapshot.generation(), 4);
    assert_eq!(taken.target.key.as_deref(), Some("sha-4"));
}

#[test]
fn checks_come_every_interval_then_once_at_the_window_end_and_it_passes() {
    let cell = cell(with_check(ms(300), ms(100)));
    let driver = Driver::start(&cell);
    let started = Instant::now();
    begin(&cell, 5, 4);
    assert_checked_through(&cell, &driver, started);
}

/// A check made with less than an interval of the window left is followed by one due at the
/// window's end, not a full interval later (kills dropping the `min` with the window's end).
/// Set up by hand so that no scheduling delay can change the outcome: the interval is an hour,
/// the window ends in half an hour, and the first check is due now.
#[test]
fn the_check_after_the_last_full_interval_is_due_at_the_window_end() {
    let hour = Duration::from_secs(3600);
    let cell = cell(with_check(2 * hour, hour));
    begin(&cell, 5, 4);
    let window_ends = {
        let mut state = cell.lock();
        let active = state.active.as_mut().expect("on probation");
        active.window_ends = Instant::now() + hour / 2;
        active.next_check = Instant::now();
        active.window_ends
    };
    let due = cell.next_due();
    assert!(
        matches!(due, Some(Due::Check { id: 1, .. })),
        "the check is due"
    );
    let state = cell.lock();
    let active = state.active.as_ref().expect("still on probation");
    assert_eq!(active.next_check, window_ends);
}

#[test]
fn checked_counts_only_the_probation_it_names() {
    let cell = checking();
    begin(&cell, 5, 4);
    cell.checked(2);
    assert_eq!(checks_in(cell.status()), 0, "probation 2 does not exist");
    cell.checked(1);
    cell.checked(1);
    assert_eq!(checks_in(cell.status()), 2);
}

#[test]
fn an_unconfirmed_change_expires_at_its_deadline() {
    let within = ms(100);
    let cell = cell(confirm_only(within));
    let driver = Driver::start(&cell);
    let started = Instant::now();
    begin(&cell, 5, 4);
    let expired = expired_of(driver.next("the confirmation deadline"));
    assert_after(started, within, "expired");
    assert_eq!(expired, (1, within));
    let status = cell.status();
    let still_on = matches!(status, ProbationStatus::OnProbation { generation: 5, .. });
    assert!(still_on, "the engine reverts it, not the cell: {status:?}");
}

#[test]
fn an_unconfirmed_change_expires_even_when_its_checks_passed() {
    let within = ms(250);
    let cell = cell(ProbationSetup {
        confirm_within: Some(within),
        ..with_check(ms(60), ms(20))
    });
    let driver = Driver::start(&cell);
    let started = Instant::now();
    begin(&cell, 5, 4);
    let expired = loop {
        match driver.next("checks, then the confirmation deadline") {
            Due::Check { id, probe } => assert!(id == 1 && probe.elapsed < within),
            Due::Expired { id, after } => break (id, after),
        }
    };
    assert_after(started, within, "expired");
    assert_eq!(expired, (1, within));
}

#[test]
fn a_confirmed_change_passes_at_once_without_a_window() {
    let cell = confirming();
    let driver = Driver::start(&cell);
    begin(&cell, 5, 4);
    assert_eq!(cell.confirm(None, 5), Ok(5));
    let passed = ProbationStatus::Passed {
        generation: 5,
        checks: 0,
    };
    assert_eq!(cell.wait_settled(BOUND), passed);
    assert!(matches!(driver.dues.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn a_confirmed_change_with_a_check_passes_once_checked_through_its_window() {
    let cell = cell(ProbationSetup {
        confirm_within: Some(Duration::from_secs(60)),
        ..with_check(ms(150), ms(50))
    });
    let started = Instant::now();
    begin(&cell, 5, 4);
    assert_eq!(cell.confirm(Some(5), 5), Ok(5));
    let status = cell.status();
    let confirmed = matches!(
        status,
        ProbationStatus::OnProbation {
            confirmed: true,
            ..
        }
    );
    assert!(confirmed, "{status:?}");
    let driver = Driver::start(&cell);
    assert_checked_through(&cell, &driver, started);
}

#[test]
fn confirm_is_refused_without_commit_confirmed() {
    let cell = checking();
    begin(&cell, 5, 4);
    assert_eq!(cell.confirm(None, 5), Err(ConfirmError::NotEnabled));
}

#[test]
fn confirm_names_the_generation_awaiting_it() {
    let cell = confirming();
    let nothing = Err(ConfirmError::NothingPending { live: 4 });
    assert_eq!(cell.confirm(None, 4), nothing);
    begin(&cell, 5, 4);
    let (asked, pending) = (4, 5);
    let other = ConfirmError::OtherGeneration { asked, pending };
    assert_eq!(cell.confirm(Some(4), 5), Err(other));
    assert_eq!(cell.confirm(Some(5), 5), Ok(5));
    assert_eq!(cell.confirm(None, 5), Ok(5), "confirming twice is harmless");
}

#[test]
fn confirm_after_the_revert_says_too_late_for_that_generation_only() {
    let cell = confirming();
    begin(&cell, 5, 4);
    cell.take(1).expect("taken for its revert");
    cell.ended(reverted(), None);
    let live = 6;
    let too_late = Err(ConfirmError::AlreadyReverted {
        revert: revert(),
        live,
    });
    assert_eq!(cell.confirm(None, live), too_late);
    assert_eq!(cell.confirm(Some(5), live), too_late);
    let nothing = Err(ConfirmError::NothingPending { live });
    assert_eq!(cell.confirm(Some(7), live), nothing);
    let error = "the handler said no".to_string();
    let failed = ProbationStatus::RevertFailed {
        revert: revert(),
        live,
        error,
    };
    cell.ended(failed, None);
    let answer = cell.confirm(None, live);
    assert_eq!(answer, nothing, "a failed revert left nothing pending");
}

#[test]
fn take_ends_the_named_probation_for_its_revert() {
    let cell = confirming();
    begin(&cell, 5, 4);
    let on_probation = cell.status();
    assert!(cell.take(2).is_none(), "probation 2 does not exist");
    let taken = cell.take(1).expect("probation 1 is taken");
    let what = (taken.id, taken.generation, taken.key.as_str());
    assert_eq!(what, (1, 5, "sha-5"));
    assert!(cell.take(1).is_none(), "taken once");
    let status = cell.status();
    assert_eq!(status, on_probation, "its status holds while it reverts");
    let waiter = Arc::clone(&cell);
    let settled = thread::spawn(move || waiter.wait_settled(BOUND));
    cell.ended(reverted(), Some(quarantined("sha-5", 5)));
    assert_eq!(cell.status(), reverted());
    assert_eq!(settled.join().expect("the waiter ends"), reverted());
    assert_eq!(cell.quarantined("sha-5"), Some(quarantined("sha-5", 5)));
}

#[test]
fn wait_settled_gives_up_after_its_timeout() {
    let cell = confirming();
    begin(&cell, 5, 4);
    let on_probation = cell.status();
    let started = Instant::now();
    assert_eq!(wait_settled(&cell, ms(50)), on_probation);
    assert_after(started, ms(50), "gave up");
    cell.take(1).expect("taken for its revert");
    let reverting = wait_settled(&cell, ms(20));
    assert_eq!(reverting, on_probation, "still reverting");
}

#[test]
fn wait_settled_answers_at_once_when_settled_or_shut_down() {
    let cell = confirming();
    let long = Duration::from_secs(600);
    assert_eq!(wait_settled(&cell, long), ProbationStatus::Idle);
    begin(&cell, 5, 4);
    let on_probation = cell.status();
    let waiter = Arc::clone(&cell);
    let settled = thread::spawn(move || waiter.wait_settled(long));
    cell.shutdown();
    let status = bounded("waiting through a shutdown", move || settled.join());
    assert_eq!(status.expect("the waiter ends"), on_probation);
}

#[test]
fn shutdown_ends_the_checker_waiting_or_due() {
    let cell = cell(confirm_only(ms(1)));
    let driver = Driver::start(&cell);
    cell.shutdown();
    let ended = driver.dues.recv_timeout(BOUND);
    let disconnected = matches!(ended, Err(RecvTimeoutError::Disconnected));
    assert!(disconnected, "the checker ends");
    begin(&cell, 5, 4);
    let due = Arc::clone(&cell);
    let due = bounded("next_due after shutdown", move || due.next_due().is_some());
    assert!(
        !due,
        "nothing is due after shutdown, not even an expired deadline"
    );
}

#[test]
fn subscribers_see_every_change() {
    let cell = checking();
    let mut updates = cell.subscribe();
    assert_eq!(*updates.borrow_and_update(), ProbationStatus::Idle);
    begin(&cell, 5, 4);
    assert!(updates.has_changed().unwrap());
    assert_eq!(*updates.borrow_and_update(), cell.status());
    cell.checked(1);
    assert!(updates.has_changed().unwrap());
    assert_eq!(checks_in(updates.borrow_and_update().clone()), 1);
    cell.take(1).expect("taken for its revert");
    cell.ended(reverted(), None);
    assert_eq!(*updates.borrow_and_update(), reverted());
}

#[test]
fn quarantine_keeps_one_entry_per_content_the_latest_last() {
    let cell = confirming();
    quarantine_all(&cell, [("a", 5), ("b", 7)]);
    cell.ended(reverted(), None);
    quarantine_all(&cell, [("a", 9)]);
    assert_eq!(quarantine_keys(&cell), ["b", "a"]);
    assert_eq!(cell.quarantined("a"), Some(quarantined("a", 9)));
    assert_eq!(cell.quarantined("b"), Some(quarantined("b", 7)));
    assert_eq!(cell.quarantined("c"), None);
}

#[test]
fn quarantine_forgets_the_oldest_beyond_its_cap() {
    let cell = confirming();
    let keys: Vec<_> = (0..=MAX_QUARANTINED as u64)
        .map(|n| format!("k{n}"))
        .collect();
    quarantine_all(&cell, keys.iter().map(String::as_str).zip(0..));
    assert_eq!(quarantine_keys(&cell), keys[1..], "64 kept, k0 forgotten");
    assert_eq!(cell.quarantined("k0"), None);
}

#[test]
fn release_forgets_one_content_or_all() {
    let cell = confirming();
    quarantine_all(&cell, [("a", 5), ("b", 6), ("c", 7)]);
    assert_eq!(cell.release(Some("z")), 0);
    assert_eq!(cell.release(Some("b")), 1);
    assert_eq!(quarantine_keys(&cell), ["a", "c"]);
    assert_eq!(cell.release(None), 2);
    assert_eq!(cell.quarantine(), []);
    assert_eq!(cell.release(None), 0);
}
