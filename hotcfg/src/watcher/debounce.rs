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
mod tests;
