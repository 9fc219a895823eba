//! The shared request-rate limiter, adaptive below the `--rate` ceiling.
//!
//! Every request, retries included, first takes a permit from one governor
//! limiter. Permits are spaced evenly (a burst of one), so a scan never sends
//! the quota's worth of requests in one instant.
//!
//! When the API responds with 429, the quota is below the current rate. The
//! rate drops to 95% of the requests the API accepted in the last full
//! second, at least 5% below the current rate but never below half of it.
//! Before a full second has been counted it drops to 85%. A decrease happens
//! at most once per 250 ms, so one burst of 429s from requests already in
//! flight counts once. After each second without a 429 the rate climbs back
//! by 4% (at least 0.5/s), never above the ceiling: multiplicative decrease
//! and gradual increase, as TCP does for congestion.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::shutdown::Shutdown;

/// Factor applied to the rate on a 429 before a full second has been counted.
const DECREASE_FACTOR: f64 = 0.85;
/// Share of the last second's accepted requests (and of the current rate) that a 429 lowers the rate to.
const ACCEPTED_SHARE: f64 = 0.95;
/// The largest single decrease: to half the rate.
const MAX_DECREASE_FACTOR: f64 = 0.5;
/// Shortest time between two decreases.
const DECREASE_INTERVAL: Duration = Duration::from_millis(250);
/// Time between two increases while requests succeed.
const INCREASE_INTERVAL: Duration = Duration::from_secs(1);
/// Growth per increase, as a share of the current rate.
const INCREASE_SHARE: f64 = 0.04;
/// The window over which accepted requests are counted.
const WINDOW: Duration = Duration::from_secs(1);

/// A rate limiter whose rate adapts to throttling, shared by every worker.
pub struct AdaptiveRate {
    ceiling: f64,
    floor: f64,
    state: Mutex<RateState>,
    limiter: RwLock<Arc<DefaultDirectRateLimiter>>,
    clock: DefaultClock,
    queue: TicketQueue,
}

/// A first-come, first-served line for permits.
#[derive(Default)]
struct TicketQueue {
    next_ticket: AtomicU64,
    serving: Mutex<u64>,
    turn: Condvar,
}

struct RateState {
    current: f64,
    /// The last 429, whether or not it lowered the rate.
    last_throttled: Instant,
    last_decrease: Instant,
    last_change: Instant,
    decreases: u64,
    window_start: Instant,
    window_accepted: u64,
    /// Requests accepted in the last full window, once one has passed.
    last_window_accepted: Option<u64>,
}

impl RateState {
    /// Moves the counting window forward to `now`.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.window_start);
        if elapsed < WINDOW {
            return;
        }
        // A window followed by a quiet one tells nothing about the quota.
        self.last_window_accepted = if elapsed < WINDOW * 2 {
            Some(self.window_accepted)
        } else {
            None
        };
        self.window_start = now;
        self.window_accepted = 0;
    }
}

impl AdaptiveRate {
    /// Creates a limiter that starts at, and never exceeds, `ceiling` requests per second.
    pub fn new(ceiling: f64) -> AdaptiveRate {
        let floor = ceiling.min(0.5);
        let now = Instant::now();
        AdaptiveRate {
            ceiling,
            floor,
            state: Mutex::new(RateState {
                current: ceiling,
                last_throttled: now - INCREASE_INTERVAL,
                last_decrease: now - DECREASE_INTERVAL,
                last_change: now,
                decreases: 0,
                window_start: now,
                window_accepted: 0,
                last_window_accepted: None,
            }),
            limiter: RwLock::new(Arc::new(limiter_for(ceiling))),
            clock: DefaultClock::default(),
            queue: TicketQueue::default(),
        }
    }

    /// Waits for a permit. Returns `false` when the scan is stopping instead.
    ///
    /// Workers take permits in the order they asked: only the first in line
    /// polls the limiter. Without the queue, a worker could lose every race
    /// for a permit while the others finish row after row, and the reporter
    /// would buffer every finding that completed behind its row.
    pub fn acquire(&self, shutdown: &Shutdown) -> bool {
        let ticket = self.queue.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut serving = self.queue.serving.lock().expect("rate queue lock");
        while *serving != ticket {
            if shutdown.is_triggered() {
                return false;
            }
            // The timeout only lets a stop be noticed.
            serving = self
                .queue
                .turn
                .wait_timeout(serving, Duration::from_millis(100))
                .expect("rate queue lock")
                .0;
        }
        let granted = self.wait_for_permit(shutdown);
        *serving += 1;
        self.queue.turn.notify_all();
        granted
    }

    fn wait_for_permit(&self, shutdown: &Shutdown) -> bool {
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
        self.throttled_at(Instant::now());
    }

    /// Speeds up again after a response that was not throttled.
    pub fn on_success(&self) {
        self.succeeded_at(Instant::now());
    }

    fn throttled_at(&self, now: Instant) {
        let mut state = self.state.lock().expect("rate state lock");
        state.roll(now);
        state.last_throttled = now;
        if now.duration_since(state.last_decrease) < DECREASE_INTERVAL {
            return;
        }
        // The throttle proves the quota is below the current rate. The last full
        // second's accepted requests estimate it; without one, take a fixed step.
        let next = match state.last_window_accepted {
            Some(accepted) => (accepted as f64 * ACCEPTED_SHARE)
                .min(state.current * ACCEPTED_SHARE)
                .max(state.current * MAX_DECREASE_FACTOR),
            None => state.current * DECREASE_FACTOR,
        };
        let next = next.max(self.floor);
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

    fn succeeded_at(&self, now: Instant) {
        let mut state = self.state.lock().expect("rate state lock");
        state.roll(now);
        state.window_accepted += 1;
        let quiet_for = now.duration_since(state.last_change.max(state.last_throttled));
        if state.current >= self.ceiling || quiet_for < INCREASE_INTERVAL {
            return;
        }
        let next = (state.current * (1.0 + INCREASE_SHARE))
            .max(state.current + 0.5)
            .min(self.ceiling);
        state.last_change = now;
        log::info!(
            "rate: no throttling for a second, raising from {:.1} to {:.1} requests/s",
            state.current,
            next
        );
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

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn throttle_decreases_once_per_interval() {
        let rate = AdaptiveRate::new(100.0);
        let start = Instant::now();
        rate.throttled_at(start);
        assert!((rate.current() - 85.0).abs() < 1e-9);
        // A second 429 from the same burst does not lower it again.
        rate.throttled_at(start + 100 * MS);
        assert!((rate.current() - 85.0).abs() < 1e-9);
        assert_eq!(rate.decreases(), 1);
        rate.throttled_at(start + 300 * MS);
        assert!((rate.current() - 85.0 * 0.85).abs() < 1e-9);
    }

    #[test]
    fn throttle_follows_accepted_rate() {
        let rate = AdaptiveRate::new(200.0);
        let start = Instant::now();
        // 50 requests accepted in the first second, then a 429.
        for i in 0..50 {
            rate.succeeded_at(start + i * 20 * MS);
        }
        rate.throttled_at(start + 1100 * MS);
        // Halved at most in one step, though the API accepted far fewer.
        assert!((rate.current() - 100.0).abs() < 1e-9, "{}", rate.current());
        for i in 0..50 {
            rate.succeeded_at(start + 1100 * MS + i * 20 * MS);
        }
        rate.throttled_at(start + 2200 * MS);
        assert!((rate.current() - 50.0).abs() < 1e-9, "{}", rate.current());
        // Near what the API accepts, the rate settles just below it.
        for i in 0..50 {
            rate.succeeded_at(start + 2200 * MS + i * 20 * MS);
        }
        rate.throttled_at(start + 3300 * MS);
        assert!((rate.current() - 47.5).abs() < 1e-9, "{}", rate.current());
    }

    #[test]
    fn success_climbs_back_to_ceiling_only() {
        let rate = AdaptiveRate::new(10.0);
        let start = Instant::now();
        rate.throttled_at(start);
        let lowered = rate.current();
        rate.succeeded_at(start + 500 * MS);
        assert_eq!(
            rate.current(),
            lowered,
            "no increase within a second of a change"
        );
        for second in 1..100 {
            rate.succeeded_at(start + second * 1001 * MS);
        }
        assert_eq!(rate.current(), 10.0);
    }

    #[test]
    fn floor_holds() {
        let rate = AdaptiveRate::new(0.2);
        rate.on_throttled();
        assert!(rate.current() > 0.0);
        assert!(rate.current() >= 0.2 * MAX_DECREASE_FACTOR - 1e-9);
    }

    #[test]
    fn permits_granted_in_order() {
        let rate = Arc::new(AdaptiveRate::new(1000.0));
        let shutdown = Arc::new(Shutdown::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (rate, shutdown) = (Arc::clone(&rate), Arc::clone(&shutdown));
                std::thread::spawn(move || (0..50).all(|_| rate.acquire(&shutdown)))
            })
            .collect();
        for handle in handles {
            assert!(handle.join().unwrap());
        }
        assert_eq!(rate.queue.next_ticket.load(Ordering::Relaxed), 400);
        assert_eq!(*rate.queue.serving.lock().unwrap(), 400);
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
