//! The gateway's per-identity request quota: at most N requests in each
//! fixed one-second window of the clock, counted per token or access key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Request counters for the current window of each identity.
pub(crate) struct Quota {
    limit: u32,
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    /// Whole seconds since the Unix epoch that this window covers.
    second: u64,
    requests: u64,
}

impl Quota {
    pub(crate) fn new(limit: u32) -> Quota {
        Quota {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one request by `identity` at `now` and returns whether it is
    /// within the quota. Rejected requests count too, as they do at the gateway.
    pub(crate) fn admit(&self, identity: &str, now: SystemTime) -> bool {
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|since_epoch| since_epoch.as_secs())
            .unwrap_or(0);

        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.entry(identity.to_owned()).or_insert(Window {
            second,
            requests: 0,
        });
        if window.second != second {
            window.second = second;
            window.requests = 0;
        }
        window.requests += 1;
        window.requests <= u64::from(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    #[test]
    fn quota_admits_limit_then_rejects() {
        let quota = Quota::new(3);
        for millis in [0, 100, 200] {
            assert!(
                quota.admit("t1", at(1_000, millis)),
                "request at {millis} ms"
            );
        }
        assert!(!quota.admit("t1", at(1_000, 300)));
        assert!(!quota.admit("t1", at(1_000, 999)));
    }

    #[test]
    fn quota_resets_in_next_window() {
        let quota = Quota::new(1);
        assert!(quota.admit("t1", at(1_000, 900)));
        assert!(!quota.admit("t1", at(1_000, 950)));
        assert!(quota.admit("t1", at(1_001, 0)));
        assert!(!quota.admit("t1", at(1_001, 10)));
    }

    #[test]
    fn quota_windows_are_fixed_not_sliding() {
        // Two requests 100 ms apart but in different seconds both pass.
        let quota = Quota::new(1);
        assert!(quota.admit("t1", at(1_000, 950)));
        assert!(quota.admit("t1", at(1_001, 50)));
    }

    #[test]
    fn quota_counts_identities_apart() {
        let quota = Quota::new(1);
        assert!(quota.admit("token:a", at(1_000, 0)));
        assert!(quota.admit("token:b", at(1_000, 0)));
        assert!(!quota.admit("token:a", at(1_000, 1)));
        assert!(!quota.admit("token:b", at(1_000, 1)));
    }

    #[test]
    fn quota_zero_rejects_every_request() {
        let quota = Quota::new(0);
        assert!(!quota.admit("t1", at(1_000, 0)));
        assert!(!quota.admit("t1", at(1_001, 0)));
    }
}
