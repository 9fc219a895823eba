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

/// Shifts `time` by `skew_seconds`, which may be negative. A shift that
/// `SystemTime` cannot represent leaves `time` unchanged.
pub(crate) fn skewed(time: SystemTime, skew_seconds: i64) -> SystemTime {
    let offset = Duration::from_secs(skew_seconds.unsigned_abs());
    let shifted = if skew_seconds >= 0 {
        time.checked_add(offset)
    } else {
        time.checked_sub(offset)
    };
    shifted.unwrap_or(time)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn skewed_shifts_both_ways() {
        let time = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(skewed(time, 60), UNIX_EPOCH + Duration::from_secs(1_060));
        assert_eq!(skewed(time, -60), UNIX_EPOCH + Duration::from_secs(940));
        assert_eq!(skewed(time, 0), time);
    }

    #[test]
    fn skewed_keeps_time_on_overflow() {
        let time = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(skewed(time, i64::MAX), time);
    }
}
