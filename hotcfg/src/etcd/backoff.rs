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

    /// The delays `spread` gives over `steps` steps from 100 ms up to 5 s, in microseconds.
    fn delays_us(spread: fn() -> u32, steps: usize) -> Vec<u128> {
        let mut backoff = Backoff::new((Duration::from_millis(100), Duration::from_secs(5)));
        backoff.spread = spread;
        (0..steps).map(|_| backoff.step().as_micros()).collect()
    }

    #[test]
    fn each_delay_is_its_step_shortened_by_the_jitter_exactly() {
        // No spread: three quarters of each step (the wrap at 1001 included).
        let quarter_off = [
            75_000, 150_000, 300_000, 600_000, 1_200_000, 2_400_000, 3_750_000,
        ];
        assert_eq!(delays_us(|| 0, 7), quarter_off);
        assert_eq!(delays_us(|| 1001, 7), quarter_off);
        // The widest spread: the step itself, never above the cap.
        let full = [
            100_000, 200_000, 400_000, 800_000, 1_600_000, 3_200_000, 5_000_000, 5_000_000,
        ];
        assert_eq!(delays_us(|| 1000, 8), full);
        // Half way: seven eighths.
        let seven_eighths = [
            87_500, 175_000, 350_000, 700_000, 1_400_000, 2_800_000, 4_375_000,
        ];
        assert_eq!(delays_us(|| 500, 7), seven_eighths);
    }

    #[test]
    fn a_reset_starts_the_delays_again_from_the_shortest() {
        let mut backoff = Backoff::new((Duration::from_millis(100), Duration::from_secs(5)));
        backoff.spread = || 1000;
        for _ in 0..10 {
            backoff.step();
        }
        assert_eq!(backoff.step(), Duration::from_secs(5));
        backoff.reset();
        let again: Vec<Duration> = (0..3).map(|_| backoff.step()).collect();
        let expected = [100, 200, 400].map(Duration::from_millis);
        assert_eq!(again, expected);
    }

    #[test]
    fn a_fresh_backoff_takes_its_jitter_from_the_clock() {
        // Nodes starting together must not retry in lockstep: the first delays of fresh backoffs
        // differ (the clock's nanoseconds move between two calls), and all lie in [75, 100] ms.
        let first = || Backoff::new((Duration::from_millis(100), Duration::from_secs(5))).step();
        let one = first();
        let mut other = one;
        for _ in 0..100_000 {
            other = first();
            if other != one {
                break;
            }
        }
        assert_ne!(
            one, other,
            "100000 fresh backoffs all waited {one:?}: no jitter"
        );
        for delay in [one, other] {
            let range = Duration::from_millis(75)..=Duration::from_millis(100);
            assert!(range.contains(&delay), "{delay:?}");
        }
        assert!(clock_nanos() < 1_000_000_000);
    }

    /// Runs `future` on a runtime of its own, failing after 10 s.
    fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let bound = Duration::from_secs(10);
            tokio::time::timeout(bound, future)
                .await
                .unwrap_or_else(|_| panic!("sleep_or_stop did not return within {bound:?}"))
        })
    }

    #[test]
    fn sleep_or_stop_sleeps_its_delay_unless_stopped() {
        let hour = Duration::from_secs(3600);
        let (stop, mut stopped) = watch::channel(false);
        // Not stopped: the delay runs out.
        assert!(!bounded(sleep_or_stop(
            Duration::from_millis(1),
            &mut stopped
        )));
        // Stopped while sleeping: returns at once.
        let stopping = async {
            tokio::task::yield_now().await;
            stop.send(true).unwrap();
        };
        let (was_stopped, ()) =
            bounded(async { tokio::join!(sleep_or_stop(hour, &mut stopped), stopping) });
        assert!(was_stopped);
        // Stopped before: does not sleep at all (the change was already seen).
        assert!(bounded(sleep_or_stop(hour, &mut stopped)));
        // Nobody left to stop it: counts as stopped.
        let (stop, mut orphan) = watch::channel(false);
        drop(stop);
        assert!(bounded(sleep_or_stop(hour, &mut orphan)));
    }
}
