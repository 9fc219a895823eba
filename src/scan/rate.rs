//! The shared request-rate limiter, adaptive below the `--rate` ceiling.
//!
//! Every request, retries included, first takes a permit from one governor
//! limiter. Permits are spaced evenly (a burst of one), so a scan never sends
//! the quota's worth of requests in one instant. When the API responds with 429
//! the rate drops to 70%, at most once per 250 ms, so one burst of 429s from
//! requests already in flight counts once. After each second without a 429
//! it climbs back by 2% of the ceiling (at least 0.5/s), never above it:
//! additive increase, multiplicative decrease, as TCP does for congestion.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::shutdown::Shutdown;

/// Factor applied to the rate on a 429.
const DECREASE_FACTOR: f64 = 0.7;
/// Shortest time between two decreases.
const DECREASE_INTERVAL: Duration = Duration::from_millis(250);
/// Time between two increases while requests succeed.
const INCREASE_INTERVAL: Duration = Duration::from_secs(1);

/// A rate limiter whose rate adapts to throttling, shared by every worker.
pub struct AdaptiveRate {
    ceiling: f64,
    floor: f64,
    step: f64,
    state: Mutex<RateState>,
    limiter: RwLock<Arc<DefaultDirectRateLimiter>>,
    clock: DefaultClock,
}

struct RateState {
    current: f64,
    last_decrease: Instant,
    last_change: Instant,
    decreases: u64,
}

impl AdaptiveRate {
    /// Creates a limiter that starts at, and never exceeds, `ceiling` requests per second.
    pub fn new(ceiling: f64) -> AdaptiveRate {
        let floor = ceiling.min(0.5);
        let now = Instant::now();
        AdaptiveRate {
            ceiling,
            floor,
            step: (ceiling * 0.02).max(0.5),
            state: Mutex::new(RateState {
                current: ceiling,
                last_decrease: now - DECREASE_INTERVAL,
                last_change: now,
                decreases: 0,
            }),
            limiter: RwLock::new(Arc::new(limiter_for(ceiling))),
            clock: DefaultClock::default(),
        }
    }

    /// Waits for a permit. Returns `false` when the scan is stopping instead.
    pub fn acquire(&self, shutdown: &Shutdown) -> bool {
        loop {
            if shutdown.is_triggered() {
                return false;
            }
            let limiter = Arc::clone(&self.limiter.read().expect("rate limiter lock"));
            match limiter.check() {
                Ok(()) => return true,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    log::trace!("waiting {wait:?} for the rate limiter");
                    // Wake at least every 100 ms, so a rate change applies quickly.
                    if !shutdown.sleep(wait.min(Duration::from_millis(100))) {
                        return false;
                    }
                }
            }
        }
    }

    /// Slows down after a 429.
    pub fn on_throttled(&self) {
        let mut state = self.state.lock().expect("rate state lock");
        let now = Instant::now();
        if now.duration_since(state.last_decrease) < DECREASE_INTERVAL {
            return;
        }
        let next = (state.current * DECREASE_FACTOR).max(self.floor);
        state.last_decrease = now;
        state.last_change = now;
        state.decreases += 1;
        if next < state.current {
            log::info!(
                "rate: throttled by the API (429), slowing from {:.1} to {:.1} requests/s",
                state.current,
                next
            );
            state.current = next;
            self.replace(next);
        }
    }

    /// Speeds up again after a response that was not throttled.
    pub fn on_success(&self) {
        let mut state = self.state.lock().expect("rate state lock");
        if state.current >= self.ceiling {
            return;
        }
        let now = Instant::now();
        if now.duration_since(state.last_change) < INCREASE_INTERVAL {
            return;
        }
        let next = (state.current + self.step).min(self.ceiling);
        state.last_change = now;
        log::info!(
            "rate: no throttling for a second, raising from {:.1} to {:.1} requests/s",
            state.current,
            next
        );
        if next >= self.ceiling {
            log::info!(
                "rate: back at the --rate ceiling of {:.1} requests/s",
                self.ceiling
            );
        }
        state.current = next;
        self.replace(next);
    }

    /// Returns the rate now in force, in requests per second.
    pub fn current(&self) -> f64 {
        self.state.lock().expect("rate state lock").current
    }

    /// Returns how many times the rate was lowered.
    pub fn decreases(&self) -> u64 {
        self.state.lock().expect("rate state lock").decreases
    }

    fn replace(&self, rate: f64) {
        *self.limiter.write().expect("rate limiter lock") = Arc::new(limiter_for(rate));
    }
}

fn limiter_for(rate: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let quota = Quota::with_period(period).expect("the period is positive");
    RateLimiter::direct(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_decreases_once_per_interval() {
        let rate = AdaptiveRate::new(100.0);
        rate.on_throttled();
        assert!((rate.current() - 70.0).abs() < 1e-9);
        // A second 429 from the same burst does not lower it again.
        rate.on_throttled();
        assert!((rate.current() - 70.0).abs() < 1e-9);
        assert_eq!(rate.decreases(), 1);
    }

    #[test]
    fn success_never_exceeds_ceiling() {
        let rate = AdaptiveRate::new(10.0);
        rate.on_success();
        assert_eq!(rate.current(), 10.0);
    }

    #[test]
    fn floor_holds() {
        let rate = AdaptiveRate::new(0.2);
        rate.on_throttled();
        assert!(rate.current() >= 0.2 * DECREASE_FACTOR - 1e-9);
        assert!(rate.current() > 0.0);
    }

    #[test]
    fn first_permit_is_immediate() {
        let rate = AdaptiveRate::new(1.0);
        let shutdown = Shutdown::new();
        assert!(rate.acquire(&shutdown));
    }

    #[test]
    fn acquire_returns_false_on_shutdown() {
        let rate = AdaptiveRate::new(0.01);
        let shutdown = Shutdown::new();
        assert!(rate.acquire(&shutdown));
        shutdown.trigger(super::super::shutdown::Stop::Abort);
        assert!(!rate.acquire(&shutdown));
    }
}
