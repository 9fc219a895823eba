//! The key-lockout guard.
//!
//! Huawei Cloud's gateway locks an AK for 5 minutes after more than 5
//! consecutive authentication failures, which would break every other job
//! that uses the key. So a credential is unproven until the API accepts it,
//! and while it is unproven at most [`MAX_TRIALS_IN_FLIGHT`] requests with it
//! may be on the wire; other workers wait. The first 401 marks the
//! credential rejected, and its remaining rows are never sent. Once proven,
//! requests go out in parallel. Waits between retries hold no slot, so a
//! service that fails with 5xx everywhere still sees more than one row at a
//! time.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::shutdown::Shutdown;

/// Requests with an unproven credential that may be in flight at once. A
/// wrong credential therefore costs at most this many failures, well under
/// the gateway's lockout threshold of more than 5.
pub const MAX_TRIALS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Unproven { in_flight: usize },
    Proven,
    Rejected(String),
}

/// What a worker may do with a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// Send; `trial` is true when the credential is unproven and the request
    /// holds one of its slots, to be given back with [`AuthGate::end_trial`].
    Send { trial: bool },
    /// Do not send: the credential was rejected, for this reason.
    Rejected(String),
    /// Do not send: the scan is stopping.
    Stopping,
}

/// Per-credential state, shared by all workers.
pub struct AuthGate {
    states: Mutex<Vec<State>>,
    changed: Condvar,
}

impl AuthGate {
    pub fn new(credentials: usize) -> AuthGate {
        AuthGate {
            states: Mutex::new(vec![State::Unproven { in_flight: 0 }; credentials]),
            changed: Condvar::new(),
        }
    }

    /// Waits until a request with credential `index` may be sent.
    pub fn pass(&self, index: usize, shutdown: &Shutdown) -> Pass {
        let mut states = self.states.lock().expect("auth gate lock");
        loop {
            if shutdown.is_triggered() {
                return Pass::Stopping;
            }
            match &mut states[index] {
                State::Proven => return Pass::Send { trial: false },
                State::Rejected(reason) => return Pass::Rejected(reason.clone()),
                State::Unproven { in_flight } if *in_flight < MAX_TRIALS_IN_FLIGHT => {
                    *in_flight += 1;
                    return Pass::Send { trial: true };
                }
                State::Unproven { .. } => {
                    // Woken by any change; the timeout only lets a stop be noticed.
                    states = self
                        .changed
                        .wait_timeout(states, Duration::from_millis(100))
                        .expect("auth gate lock")
                        .0;
                }
            }
        }
    }

    /// Records that the API accepted credential `index`.
    pub fn prove(&self, index: usize) {
        let mut states = self.states.lock().expect("auth gate lock");
        if matches!(states[index], State::Unproven { .. }) {
            states[index] = State::Proven;
            self.changed.notify_all();
        }
    }

    /// Records that the API rejected credential `index`; returns `true` for the first rejection.
    pub fn reject(&self, index: usize, reason: String) -> bool {
        let mut states = self.states.lock().expect("auth gate lock");
        if matches!(states[index], State::Rejected(_)) {
            return false;
        }
        states[index] = State::Rejected(reason);
        self.changed.notify_all();
        true
    }

    /// Gives back a trial slot once its request has a response, whatever it was.
    pub fn end_trial(&self, index: usize) {
        let mut states = self.states.lock().expect("auth gate lock");
        if let State::Unproven { in_flight } = &mut states[index] {
            *in_flight = in_flight.saturating_sub(1);
            self.changed.notify_all();
        }
    }

    /// Returns the rejection reason of each rejected credential, by index.
    pub fn rejections(&self) -> Vec<(usize, String)> {
        let states = self.states.lock().expect("auth gate lock");
        states
            .iter()
            .enumerate()
            .filter_map(|(index, state)| match state {
                State::Rejected(reason) => Some((index, reason.clone())),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn unproven_allows_limited_trials() {
        let gate = AuthGate::new(1);
        let shutdown = Shutdown::new();
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(0, &shutdown), Pass::Send { trial: true });
        }
        gate.prove(0);
        assert_eq!(gate.pass(0, &shutdown), Pass::Send { trial: false });
    }

    #[test]
    fn waiter_released_by_rejection() {
        let gate = Arc::new(AuthGate::new(1));
        let shutdown = Arc::new(Shutdown::new());
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(0, &shutdown), Pass::Send { trial: true });
        }
        let (g, s) = (Arc::clone(&gate), Arc::clone(&shutdown));
        let waiter = std::thread::spawn(move || g.pass(0, &s));
        assert!(gate.reject(0, "bad key".into()));
        assert_eq!(waiter.join().unwrap(), Pass::Rejected("bad key".into()));
        assert!(!gate.reject(0, "again".into()));
    }

    #[test]
    fn ended_trial_frees_slot() {
        let gate = AuthGate::new(2);
        let shutdown = Shutdown::new();
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(1, &shutdown), Pass::Send { trial: true });
        }
        gate.end_trial(1);
        assert_eq!(gate.pass(1, &shutdown), Pass::Send { trial: true });
        // Credentials are independent.
        assert_eq!(gate.pass(0, &shutdown), Pass::Send { trial: true });
    }

    #[test]
    fn stop_releases_waiters() {
        let gate = Arc::new(AuthGate::new(1));
        let shutdown = Arc::new(Shutdown::new());
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(0, &shutdown), Pass::Send { trial: true });
        }
        let (g, s) = (Arc::clone(&gate), Arc::clone(&shutdown));
        let waiter = std::thread::spawn(move || g.pass(0, &s));
        shutdown.trigger(super::super::shutdown::Stop::Interrupt);
        assert_eq!(waiter.join().unwrap(), Pass::Stopping);
    }
}
