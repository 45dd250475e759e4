//! Tests of [`super`].

use super::*;
use std::cell::Cell;
use std::rc::Rc;

/// A clock that only moves when told to.
#[derive(Clone)]
struct FakeClock(Rc<Cell<Instant>>);

impl FakeClock {
    fn new() -> Self {
        FakeClock(Rc::new(Cell::new(Instant::now())))
    }
    fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + Duration::from_millis(ms));
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.0.get()
    }
}

const TIMING: Timing = Timing {
    window: Duration::from_millis(100),
    max_delay: Duration::from_millis(1000),
    retry_delay: Duration::from_millis(50),
    retries: 3,
};

/// The look is due exactly one window (100 ms) from now, not a moment earlier.
fn assert_due_one_window_from_now(clock: &FakeClock, d: &mut Debouncer<FakeClock>) {
    assert_eq!(d.deadline(), Some(clock.now() + Duration::from_millis(100)));
    clock.advance(99);
    assert!(!d.due(), "due before the window ended");
    clock.advance(1);
    assert!(d.due(), "not due when the window ended");
}

fn setup() -> (FakeClock, Debouncer<FakeClock>) {
    let clock = FakeClock::new();
    (clock.clone(), Debouncer::new(clock, TIMING))
}

#[test]
fn idle_has_nothing_due() {
    let (clock, mut d) = setup();
    assert_eq!(d.deadline(), None);
    assert!(!d.is_pending());
    clock.advance(10_000);
    assert!(!d.due());
}

#[test]
fn one_change_is_due_exactly_one_window_later_and_only_once() {
    let (clock, mut d) = setup();
    let start = clock.now();
    d.change();
    assert_eq!(d.deadline(), Some(start + Duration::from_millis(100)));
    clock.advance(99);
    assert!(!d.due());
    clock.advance(1);
    assert!(d.due());
    assert!(!d.due(), "a look is due once per burst");
    assert!(!d.is_pending());
}

#[test]
fn each_change_pushes_the_window_out() {
    let (clock, mut d) = setup();
    d.change();
    for _ in 0..5 {
        clock.advance(60);
        assert!(!d.due());
        d.change();
    }
    assert_due_one_window_from_now(&clock, &mut d);
}

#[test]
fn a_steady_stream_is_looked_at_after_max_delay() {
    let (clock, mut d) = setup();
    let start = clock.now();
    d.change();
    let mut looks = Vec::new();
    // A change every 10 ms for 2.5 s: never a quiet window.
    for _ in 0..250 {
        clock.advance(10);
        if d.due() {
            looks.push(clock.now() - start);
        }
        d.change();
    }
    assert_eq!(
        looks,
        vec![Duration::from_millis(1000), Duration::from_millis(2000)]
    );
}

#[test]
fn a_burst_gives_one_look() {
    let (clock, mut d) = setup();
    let mut looks = 0;
    for _ in 0..500 {
        d.change();
        if d.due() {
            looks += 1;
        }
    }
    clock.advance(100);
    looks += usize::from(d.due());
    clock.advance(10_000);
    looks += usize::from(d.due());
    assert_eq!(looks, 1);
}

#[test]
fn incomplete_content_is_looked_at_again_within_the_budget() {
    let (clock, mut d) = setup();
    d.change();
    clock.advance(100);
    assert!(d.due());
    for attempt in 1..=3 {
        assert!(d.retry(), "attempt {attempt} is within the budget");
        assert_eq!(d.attempts(), attempt);
        clock.advance(49);
        assert!(!d.due());
        clock.advance(1);
        assert!(d.due());
    }
    assert!(!d.retry(), "the budget is spent: report the error");
    assert!(!d.is_pending());
    d.settled();
    assert_eq!(d.attempts(), 0);
    d.change();
    clock.advance(100);
    assert!(d.due());
    assert!(d.retry(), "settling refills the budget");
}

#[test]
fn a_change_during_a_retry_restarts_the_window_and_keeps_the_count() {
    let (clock, mut d) = setup();
    d.change();
    clock.advance(100);
    assert!(d.due());
    assert!(d.retry());
    clock.advance(20);
    d.change();
    // The retry (due at +50) is replaced by the window (due at +100 from the change).
    clock.advance(30);
    assert!(!d.due());
    clock.advance(70);
    assert!(d.due());
    assert_eq!(d.attempts(), 1);
    assert!(d.retry());
    assert!(d.retry());
    assert!(!d.retry());
}

#[test]
fn polling_windows_last_at_least_one_interval() {
    let slow = TIMING.for_polling(Duration::from_millis(250));
    assert_eq!(slow.window, Duration::from_millis(250));
    assert_eq!(slow.retry_delay, TIMING.retry_delay);
    assert_eq!(slow.max_delay, Duration::from_millis(1000));
    assert_eq!(TIMING.for_polling(Duration::from_millis(10)), TIMING);

    let (clock, mut d) = setup();
    d.set_timing(slow);
    d.change();
    clock.advance(249);
    assert!(
        !d.due(),
        "a poll 100 ms later could still see the burst going on"
    );
    clock.advance(1);
    assert!(d.due());
}

#[test]
fn a_completed_save_after_quiet_is_due_at_once() {
    let (clock, mut d) = setup();
    let start = clock.now();
    d.complete();
    assert_eq!(d.deadline(), Some(start));
    assert!(d.due(), "no window to wait for");
    assert!(!d.due());
}

#[test]
fn a_write_closed_at_once_is_due_at_the_close() {
    // An in-place write: its data events, then the close a moment later.
    let (clock, mut d) = setup();
    d.change();
    clock.advance(1);
    assert!(!d.due(), "a write in progress waits");
    d.change();
    clock.advance(1);
    d.complete();
    assert!(d.due(), "the close ends the save");
}

#[test]
fn a_write_after_a_completion_waits_for_quiet_again() {
    let (clock, mut d) = setup();
    d.complete();
    d.change();
    assert_due_one_window_from_now(&clock, &mut d);
}

#[test]
fn a_new_watch_after_a_completed_save_does_not_delay_its_look() {
    // A ConfigMap update: the `..data` rename completes the save, and following the new
    // `..data` target needs a new watch, after which missed changes must be looked for.
    let (clock, mut d) = setup();
    d.complete();
    d.missed();
    assert!(
        d.due(),
        "the look at the completed save covers missed changes"
    );
    clock.advance(500);
    d.missed();
    assert!(!d.due(), "otherwise a new watch is a change like any other");
    clock.advance(100);
    assert!(d.due());
}

#[test]
fn a_completion_soon_after_other_activity_is_debounced() {
    let (clock, mut d) = setup();
    d.complete();
    assert!(d.due());
    // The next save comes 99 ms after the first: not after a quiet window.
    clock.advance(99);
    d.complete();
    assert!(!d.due(), "a save in a burst waits for the burst to end");
    clock.advance(99);
    assert!(!d.due());
    clock.advance(1);
    assert!(d.due());
    // After a quiet window, at once again.
    clock.advance(100);
    d.complete();
    assert!(d.due());
}

#[test]
fn a_burst_of_completed_saves_gives_at_most_three_looks() {
    // 1,500 in-place writes 1 ms apart, each closed at once: one look at the first close,
    // one when the burst reaches max_delay, one after the last write.
    let (clock, mut d) = setup();
    let start = clock.now();
    let mut looks = Vec::new();
    for _ in 0..1500 {
        d.change();
        d.complete();
        if d.due() {
            looks.push(clock.now() - start);
        }
        clock.advance(1);
    }
    clock.advance(10_000);
    if d.due() {
        looks.push(Duration::MAX);
    }
    assert_eq!(
        looks,
        vec![Duration::ZERO, Duration::from_millis(1001), Duration::MAX]
    );
}

#[test]
fn a_completion_during_a_retry_is_due_at_once() {
    // Truncated and closed (an empty file: incomplete), then written and closed a while later.
    let (clock, mut d) = setup();
    d.complete();
    assert!(d.due());
    assert!(d.retry());
    clock.advance(150);
    d.complete();
    assert!(
        d.due(),
        "the second step completes the save after a quiet window"
    );
    assert_eq!(
        d.attempts(),
        1,
        "the retry count is kept until the content settles"
    );
}

#[test]
fn back_off_doubles_up_to_the_cap_and_spends_no_retries() {
    let (clock, mut d) = setup();
    let mut delays = Vec::new();
    for _ in 0..8 {
        let now = clock.now();
        d.back_off();
        let at = d.deadline().expect("a look is scheduled");
        delays.push((at - now).as_millis());
        clock.advance((at - now).as_millis() as u64);
        assert!(d.due());
    }
    assert_eq!(delays, vec![50, 100, 200, 400, 800, 1600, 2000, 2000]);
    assert_eq!(d.attempts(), 0);
    d.settled();
    let now = clock.now();
    d.back_off();
    assert_eq!(d.deadline(), Some(now + Duration::from_millis(50)));
}

#[test]
fn a_change_during_a_back_off_is_debounced_and_the_back_off_goes_on() {
    let (clock, mut d) = setup();
    d.back_off();
    d.back_off();
    clock.advance(10);
    d.change();
    clock.advance(100);
    assert!(d.due());
    let now = clock.now();
    d.back_off();
    assert_eq!(d.deadline(), Some(now + Duration::from_millis(200)));
}

#[test]
fn a_zero_window_is_due_at_once() {
    let clock = FakeClock::new();
    let mut d = Debouncer::new(
        clock,
        Timing {
            window: Duration::ZERO,
            ..TIMING
        },
    );
    d.change();
    assert!(d.due());
}

#[test]
fn a_huge_max_delay_does_not_overflow() {
    let clock = FakeClock::new();
    let mut d = Debouncer::new(
        clock.clone(),
        Timing {
            max_delay: Duration::MAX,
            retry_delay: Duration::MAX,
            ..TIMING
        },
    );
    d.change();
    clock.advance(100);
    assert!(d.due());
    assert!(d.retry());
    assert!(d.deadline().is_some());
}
