//! The simulator's time source, replaceable in tests so that quota windows,
//! lockouts and `X-Sdk-Date` checks can be tested without waiting.

use std::time::{Duration, SystemTime};

/// A source of wall-clock time.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Shifts `time` by `skew_seconds`, which may be negative.
pub(crate) fn skewed(time: SystemTime, skew_seconds: i64) -> SystemTime {
    let offset = Duration::from_secs(skew_seconds.unsigned_abs());
    if skew_seconds >= 0 {
        time + offset
    } else {
        time - offset
    }
}

/// A clock that moves only when a test advances it.
#[cfg(test)]
pub(crate) struct ManualClock {
    now: std::sync::Mutex<SystemTime>,
}

#[cfg(test)]
impl ManualClock {
    pub(crate) fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: std::sync::Mutex::new(start),
        }
    }

    pub(crate) fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap();
        *now += by;
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap()
    }
}
