//! A stop request shared by the dispatcher, the workers and the reporter.
//!
//! Only the signal thread in `main` sets it. Every wait in the scan goes
//! through [`Shutdown::sleep`], so a stop cuts backoff and rate-limit waits
//! short while requests in flight finish.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The reason the scan is stopping early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C): exit code 130.
    Interrupt,
    /// SIGTERM: exit code 143.
    Terminate,
    /// A fatal error in the scan itself, such as a full disk.
    Abort,
}

impl Stop {
    pub fn signal_name(self) -> Option<&'static str> {
        match self {
            Stop::Interrupt => Some("SIGINT"),
            Stop::Terminate => Some("SIGTERM"),
            Stop::Abort => None,
        }
    }
}

/// The shared stop flag.
#[derive(Debug, Default)]
pub struct Shutdown {
    reason: Mutex<Option<Stop>>,
    changed: Condvar,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the scan to stop. The first reason given is kept.
    pub fn trigger(&self, stop: Stop) {
        let mut reason = self.reason.lock().expect("shutdown lock");
        if reason.is_none() {
            *reason = Some(stop);
        }
        self.changed.notify_all();
    }

    pub fn reason(&self) -> Option<Stop> {
        *self.reason.lock().expect("shutdown lock")
    }

    pub fn is_triggered(&self) -> bool {
        self.reason().is_some()
    }

    /// Sleeps for `duration` unless a stop comes first. Returns `true` when
    /// the whole duration passed, `false` when the scan is stopping.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut reason = self.reason.lock().expect("shutdown lock");
        loop {
            if reason.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            reason = self
                .changed
                .wait_timeout(reason, deadline - now)
                .expect("shutdown lock")
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sleep_wakes_on_trigger() {
        let shutdown = Arc::new(Shutdown::new());
        let other = Arc::clone(&shutdown);
        let sleeper = std::thread::spawn(move || other.sleep(Duration::from_secs(3600)));
        shutdown.trigger(Stop::Interrupt);
        assert!(!sleeper.join().unwrap());
    }

    #[test]
    fn first_reason_kept() {
        let shutdown = Shutdown::new();
        shutdown.trigger(Stop::Terminate);
        shutdown.trigger(Stop::Interrupt);
        assert_eq!(shutdown.reason(), Some(Stop::Terminate));
    }

    #[test]
    fn zero_sleep_completes() {
        assert!(Shutdown::new().sleep(Duration::ZERO));
    }
}
