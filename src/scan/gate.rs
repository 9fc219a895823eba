//! The key-lockout guard.
//!
//! Huawei Cloud's gateway locks an AK for 5 minutes after more than 5
//! consecutive authentication failures, which would break every other job
//! that uses the key. So a credential is unproven until the API accepts it,
//! and is gated as a whole for an AK/SK but per project for a token, which
//! is scoped to one project. While it is unproven,
//! at most [`MAX_TRIALS_IN_FLIGHT`] requests with it may be on the wire; other workers wait. The first 401 marks the
//! credential rejected, and its remaining rows are never sent. Once proven,
//! requests go out in parallel. Waits between retries take no slot, so a
//! service that fails with 5xx everywhere still gets more than one row at a
//! time.

use std::collections::HashMap;
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

/// A worker's permission to send with a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// Send; `trial` is true when the credential is unproven and the request
    /// takes one of its slots, to be given back with [`AuthGate::end_trial`].
    Send { trial: bool },
    /// Do not send: the credential was rejected, for this reason.
    Rejected(String),
    /// Do not send: the scan is stopping.
    Stopping,
}

/// The unit the gate keeps state for: a credential's index, with the project
/// for a token and an empty string for an AK/SK.
pub type GateKey = (usize, String);

/// Per-credential state, shared by all workers.
#[derive(Default)]
pub struct AuthGate {
    states: Mutex<HashMap<GateKey, State>>,
    changed: Condvar,
}

const UNPROVEN: State = State::Unproven { in_flight: 0 };

impl AuthGate {
    pub fn new() -> AuthGate {
        AuthGate::default()
    }

    /// Waits until a request with the credential of `key` may be sent.
    pub fn pass(&self, key: &GateKey, shutdown: &Shutdown) -> Pass {
        let mut states = self.states.lock().expect("auth gate lock");
        loop {
            if shutdown.is_triggered() {
                return Pass::Stopping;
            }
            match states.entry(key.clone()).or_insert(UNPROVEN) {
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

    /// Records that the API accepted the credential of `key`.
    pub fn prove(&self, key: &GateKey) {
        let mut states = self.states.lock().expect("auth gate lock");
        let state = states.entry(key.clone()).or_insert(UNPROVEN);
        if matches!(state, State::Unproven { .. }) {
            *state = State::Proven;
            self.changed.notify_all();
        }
    }

    /// Records that the API rejected the credential of `key`, and returns `true` for the first rejection.
    pub fn reject(&self, key: &GateKey, reason: String) -> bool {
        let mut states = self.states.lock().expect("auth gate lock");
        let state = states.entry(key.clone()).or_insert(UNPROVEN);
        if matches!(state, State::Rejected(_)) {
            return false;
        }
        *state = State::Rejected(reason);
        self.changed.notify_all();
        true
    }

    /// Gives back a trial slot once its request has a response, whatever it was.
    pub fn end_trial(&self, key: &GateKey) {
        let mut states = self.states.lock().expect("auth gate lock");
        if let Some(State::Unproven { in_flight }) = states.get_mut(key) {
            *in_flight = in_flight.saturating_sub(1);
            self.changed.notify_all();
        }
    }

    /// Returns the rejection reasons, sorted by credential and project.
    pub fn rejections(&self) -> Vec<String> {
        let states = self.states.lock().expect("auth gate lock");
        let mut rejected: Vec<(&GateKey, &String)> = states
            .iter()
            .filter_map(|(key, state)| match state {
                State::Rejected(reason) => Some((key, reason)),
                _ => None,
            })
            .collect();
        rejected.sort();
        rejected
            .into_iter()
            .map(|(_, reason)| reason.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(index: usize) -> GateKey {
        (index, String::new())
    }

    #[test]
    fn unproven_allows_limited_trials() {
        let gate = AuthGate::new();
        let shutdown = Shutdown::new();
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(&key(0), &shutdown), Pass::Send { trial: true });
        }
        gate.prove(&key(0));
        assert_eq!(gate.pass(&key(0), &shutdown), Pass::Send { trial: false });
    }

    #[test]
    fn waiter_released_by_rejection() {
        let gate = Arc::new(AuthGate::new());
        let shutdown = Arc::new(Shutdown::new());
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(&key(0), &shutdown), Pass::Send { trial: true });
        }
        let (g, s) = (Arc::clone(&gate), Arc::clone(&shutdown));
        let waiter = std::thread::spawn(move || g.pass(&key(0), &s));
        assert!(gate.reject(&key(0), "bad key".into()));
        assert_eq!(waiter.join().unwrap(), Pass::Rejected("bad key".into()));
        assert!(!gate.reject(&key(0), "again".into()));
    }

    #[test]
    fn ended_trial_frees_slot() {
        let gate = AuthGate::new();
        let shutdown = Shutdown::new();
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(&key(1), &shutdown), Pass::Send { trial: true });
        }
        gate.end_trial(&key(1));
        assert_eq!(gate.pass(&key(1), &shutdown), Pass::Send { trial: true });
        // Credentials are independent.
        assert_eq!(gate.pass(&key(0), &shutdown), Pass::Send { trial: true });
    }

    #[test]
    fn stop_releases_waiters() {
        let gate = Arc::new(AuthGate::new());
        let shutdown = Arc::new(Shutdown::new());
        for _ in 0..MAX_TRIALS_IN_FLIGHT {
            assert_eq!(gate.pass(&key(0), &shutdown), Pass::Send { trial: true });
        }
        let (g, s) = (Arc::clone(&gate), Arc::clone(&shutdown));
        let waiter = std::thread::spawn(move || g.pass(&key(0), &s));
        shutdown.trigger(super::super::shutdown::Stop::Interrupt);
        assert_eq!(waiter.join().unwrap(), Pass::Stopping);
    }
}
