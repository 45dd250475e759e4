//! Reconnection delays: exponential, with jitter, never above the cap.

use std::time::Duration;

use tokio::sync::watch;

/// Exponential backoff with jitter below each step, so the cap holds jitter included and a fleet
/// does not reconnect in lockstep.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    /// Source of the jitter (the clock's nanoseconds; a fixed sequence in tests).
    spread: fn() -> u32,
}

impl Backoff {
    pub(crate) fn new((min, max): (Duration, Duration)) -> Self {
        Backoff {
            min,
            max,
            next: min,
            spread: clock_nanos,
        }
    }

    /// The longest delay [`step`](Backoff::step) ever returns.
    pub(crate) fn cap(&self) -> Duration {
        self.max
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The delay to wait now: between 3/4 of the current step and the step itself, the step
    /// doubling from `min` up to `max`.
    pub(crate) fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // A cheap spread in [0.75, 1.0].
        let factor = 0.75 + f64::from((self.spread)() % 1001) / 4000.0;
        base.mul_f64(factor).min(self.max)
    }
}

fn clock_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// Sleeps `delay` unless `stop` turns true first; returns `true` when stopped.
pub(crate) async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_never_passes_the_cap() {
        for spread in [(|| 0) as fn() -> u32, || 1000, || 999_999_999, || 500] {
            let mut backoff = Backoff::new((Duration::from_millis(100), Duration::from_secs(5)));
            backoff.spread = spread;
            let steps: Vec<Duration> = (0..12).map(|_| backoff.step()).collect();
            let bases = [
                100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000, 5000,
            ];
            for (step, base) in steps.iter().zip(bases) {
                let base = Duration::from_millis(base);
                assert!(*step >= base.mul_f64(0.75) && *step <= base, "{steps:?}");
                assert!(*step <= backoff.cap(), "{steps:?}");
            }
            backoff.reset();
            assert!(backoff.step() <= Duration::from_millis(100));
        }
        // The real clock's jitter too, over many steps.
        let mut backoff = Backoff::new((Duration::from_millis(1), Duration::from_millis(8)));
        for _ in 0..1000 {
            assert!(backoff.step() <= Duration::from_millis(8));
        }
    }
}
