//! When to look at the files: the debounce state machine, pure, with time read through a
//! [`Clock`] so that its tests move time forward instead of sleeping.
//!
//! - A change opens a window; every further change pushes its end out to `window` after the
//!   latest change (a trailing debounce: a burst of writes gives one look, after the last write).
//! - A steady stream of changes is still looked at `max_delay` after the first one, so a file
//!   rewritten forever cannot starve reloads.
//! - A completed save (a rename into place, a close after writing, a symlink swap: see
//!   [`Debouncer::complete`]) is looked at at once, when it starts a burst: the files were quiet
//!   for a window before it. A completion in the middle of a burst (the 500th of 1,000 writes)
//!   is one more change: the burst still gives one look after its end. A change after a completion
//!   (a new write started) takes the burst back to waiting for quiet.
//! - A look that finds incomplete content (a torn write: a read or parse error) asks for another
//!   look `retry_delay` later, at most `retries` times; a change in between restarts the window
//!   but keeps the count, so a writer that never finishes is eventually reported.
//! - A look that cannot read for a passing reason (descriptors ran out) asks for another look
//!   with a growing delay ([`Debouncer::back_off`]), for as long as the reason lasts.

use std::time::{Duration, Instant};

/// A source of the current time.
pub(crate) trait Clock {
    /// Now.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The durations the state machine works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Quiet time after the last change before looking.
    pub window: Duration,
    /// Longest time from the first change of a burst to a look.
    pub max_delay: Duration,
    /// Wait before looking again at incomplete content.
    pub retry_delay: Duration,
    /// Looks again at most this many times.
    pub retries: u32,
}

impl Timing {
    /// The timing for a poller that samples every `interval`: quiet can only be seen by a poll,
    /// so the window lasts at least one interval (a shorter one would look after every poll that
    /// saw activity, in the middle of a burst).
    pub fn for_polling(self, interval: Duration) -> Timing {
        let window = self.window.max(interval);
        Timing {
            window,
            max_delay: self.max_delay.max(window),
            retry_delay: self.retry_delay,
            retries: self.retries,
        }
    }
}

/// Longest wait between two looks at files that cannot be read for a passing reason.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The changes being debounced.
#[derive(Clone, Copy, Debug)]
struct Burst {
    first: Instant,
    last: Instant,
    /// It began after a quiet window: a completed save in it is looked at at once.
    fresh: bool,
    /// The latest event was a completed save of a fresh burst: the look is due now.
    complete: bool,
}

/// The debounce state machine.
#[derive(Debug)]
pub(crate) struct Debouncer<K> {
    clock: K,
    timing: Timing,
    burst: Option<Burst>,
    /// The latest change or completion, kept after the look: what "quiet before" is measured from.
    latest: Option<Instant>,
    /// A look again scheduled for incomplete content.
    retry_at: Option<Instant>,
    /// Looks again used since content was last settled.
    attempts: u32,
    /// Back-offs in a row since content was last settled.
    backoffs: u32,
}

fn later(at: Instant, by: Duration) -> Instant {
    // A huge duration means "never": cap it rather than overflow.
    at.checked_add(by)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365))
}

impl<K: Clock> Debouncer<K> {
    pub fn new(clock: K, timing: Timing) -> Self {
        Debouncer {
            clock,
            timing,
            burst: None,
            latest: None,
            retry_at: None,
            attempts: 0,
            backoffs: 0,
        }
    }

    /// Changes the durations (when the backend changes); a running window keeps its start.
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// Something changed now, and the writer may not be done (a write, a truncation, a removal).
    pub fn change(&mut self) {
        self.event(false);
    }

    /// A save was completed now: a rename into place, a close after writing, a symlink swap.
    /// When it starts a burst, the look is due at once.
    pub fn complete(&mut self) {
        self.event(true);
    }

    /// Changes may have gone unseen (a directory got a new watch): look at the content, at once
    /// if a completed save is being looked at anyway, else after a window.
    pub fn missed(&mut self) {
        if !self.burst.is_some_and(|burst| burst.complete) {
            self.change();
        }
    }

    fn event(&mut self, complete: bool) {
        let now = self.clock.now();
        self.retry_at = None;
        let quiet_before = self
            .latest
            .is_none_or(|latest| now.saturating_duration_since(latest) >= self.timing.window);
        self.latest = Some(now);
        let burst = self.burst.get_or_insert(Burst {
            first: now,
            last: now,
            fresh: quiet_before,
            complete: false,
        });
        burst.last = now;
        burst.complete = complete && burst.fresh;
    }

    /// When the next look is due, if one is.
    pub fn deadline(&self) -> Option<Instant> {
        match self.burst {
            Some(burst) if burst.complete => Some(burst.last),
            Some(burst) => Some(
                later(burst.last, self.timing.window)
                    .min(later(burst.first, self.timing.max_delay)),
            ),
            None => self.retry_at,
        }
    }

    /// Whether a look is waiting to happen.
    pub fn is_pending(&self) -> bool {
        self.burst.is_some() || self.retry_at.is_some()
    }

    /// `true` (once) when a look is due now.
    pub fn due(&mut self) -> bool {
        match self.deadline() {
            Some(deadline) if self.clock.now() >= deadline => {
                self.burst = None;
                self.retry_at = None;
                true
            }
            _ => false,
        }
    }

    /// The look found incomplete content: schedules another look and returns `true`, or returns
    /// `false` when the budget is spent (report the error now).
    pub fn retry(&mut self) -> bool {
        if self.attempts >= self.timing.retries {
            return false;
        }
        self.attempts += 1;
        self.retry_at = Some(later(self.clock.now(), self.timing.retry_delay));
        true
    }

    /// The look could not read the files for a passing reason (descriptors ran out): schedules
    /// another look, `retry_delay` after the first such look and twice as long after each
    /// further one, up to [`MAX_BACKOFF`]. Uses nothing of the retry budget.
    pub fn back_off(&mut self) {
        let factor = 1u32 << self.backoffs.min(16);
        let delay = self
            .timing
            .retry_delay
            .saturating_mul(factor)
            .min(MAX_BACKOFF.max(self.timing.retry_delay));
        self.backoffs = self.backoffs.saturating_add(1);
        self.retry_at = Some(later(self.clock.now(), delay));
    }

    /// The look is over (content complete, or reported): the retry budget is full again and
    /// the back-off starts over.
    pub fn settled(&mut self) {
        self.attempts = 0;
        self.backoffs = 0;
    }

    /// Looks again used since the content was last settled.
    #[cfg(test)]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
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
}
