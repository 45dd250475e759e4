//! When to look at the files: the debounce state machine, pure, with time read through a
//! [`Clock`] so that its tests move time forward instead of sleeping.
//!
//! - A change opens a window; every further change pushes its end out to `window` after the
//!   latest change (a trailing debounce: a burst of writes gives one look, after the last write).
//! - A steady stream of changes is still looked at `max_delay` after the first one, so a file
//!   rewritten forever cannot starve reloads.
//! - A look that finds incomplete content (a torn write: a read or parse error) asks for another
//!   look `retry_delay` later, at most `retries` times; a change in between restarts the window
//!   but keeps the count, so a writer that never finishes is eventually reported.

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

/// The debounce state machine.
#[derive(Debug)]
pub(crate) struct Debouncer<K> {
    clock: K,
    timing: Timing,
    /// First and latest change of the burst being debounced.
    burst: Option<(Instant, Instant)>,
    /// A look again scheduled for incomplete content.
    retry_at: Option<Instant>,
    /// Looks again used since content was last settled.
    attempts: u32,
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
            retry_at: None,
            attempts: 0,
        }
    }

    /// Changes the durations (when the backend changes); a running window keeps its start.
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// Something changed now.
    pub fn change(&mut self) {
        let now = self.clock.now();
        self.retry_at = None;
        match &mut self.burst {
            Some((_, last)) => *last = now,
            None => self.burst = Some((now, now)),
        }
    }

    /// When the next look is due, if one is.
    pub fn deadline(&self) -> Option<Instant> {
        match self.burst {
            Some((first, last)) => {
                Some(later(last, self.timing.window).min(later(first, self.timing.max_delay)))
            }
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

    /// The look is over (content complete, or reported): the retry budget is full again.
    pub fn settled(&mut self) {
        self.attempts = 0;
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
        let last = clock.now();
        assert_eq!(d.deadline(), Some(last + Duration::from_millis(100)));
        clock.advance(99);
        assert!(!d.due());
        clock.advance(1);
        assert!(d.due());
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
