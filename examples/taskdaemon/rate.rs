//! The submit rate limit, changed live by the `limits` handler.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Submits allowed per second, changed live by the `limits` handler.
pub struct RateLimiter {
    per_second: AtomicU32,
    window: Mutex<(Instant, u32)>,
}

impl RateLimiter {
    /// `per_second` submits per second.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: AtomicU32::new(per_second),
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Changes the rate.
    pub fn set_per_second(&self, per_second: u32) {
        self.per_second.store(per_second, Ordering::SeqCst);
    }

    /// Takes one submit from the current one-second window, if any is left.
    pub fn allow(&self) -> bool {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        if window.1 < self.per_second.load(Ordering::SeqCst) {
            window.1 += 1;
            true
        } else {
            false
        }
    }
}
