//! The retry policy: which responses are tried again, and how long to wait.
//!
//! Retried: 429, 500, 502, 503 and 504, connection failures (refused, reset,
//! closed early) and timeouts. Final: every other response, including other
//! 4xx and unexpected bodies, which another try would only repeat.
//! Waits use exponential backoff with full jitter (a random wait between zero
//! and `base * 2^(attempt-1)`, capped), so workers that failed together do not
//! retry together. A 429 waits at least its `Retry-After`, or, without one,
//! a random 2 to 5 seconds as Huawei Cloud advises for throttling.

use std::time::Duration;

use rand::RngExt;

use crate::api::classify::Retry;

/// Wait after a 429 without `Retry-After`: Huawei Cloud advises 2 to 5 seconds.
const THROTTLE_WAIT_MIN: Duration = Duration::from_secs(2);
const THROTTLE_WAIT_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Requests per row at most, the first included.
    pub max_attempts: u32,
    /// Time per row at most, from its first request; no wait may cross it.
    pub row_budget: Duration,
    /// First backoff ceiling; doubles with each attempt.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Multiplies every computed wait except `Retry-After`; 1 in real use.
    /// Tests lower it to keep backoff short without changing its shape.
    pub delay_scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            row_budget: Duration::from_secs(300),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            delay_scale: 1.0,
        }
    }
}

/// The policy's decision after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop: the response is final.
    Final,
    /// Stop: `--max-attempts` is reached.
    AttemptsExhausted,
    /// Stop: the next wait would cross the row's time budget.
    BudgetExhausted,
}

impl RetryPolicy {
    /// Decides what follows attempt number `attempts` (1-based) of a row that
    /// started `elapsed` ago.
    pub fn decide(
        &self,
        retry: Retry,
        attempts: u32,
        elapsed: Duration,
        rng: &mut impl rand::Rng,
    ) -> Decision {
        if retry == Retry::No {
            return Decision::Final;
        }
        if attempts >= self.max_attempts {
            return Decision::AttemptsExhausted;
        }
        let wait = match retry {
            Retry::No => return Decision::Final,
            Retry::Backoff => {
                let exponent = attempts.saturating_sub(1).min(20);
                let ceiling = self
                    .base_delay
                    .saturating_mul(1u32 << exponent)
                    .min(self.max_delay);
                ceiling.mul_f64(rng.random_range(0.0..=1.0) * self.delay_scale)
            }
            Retry::Throttled(Some(retry_after)) => {
                // At least what the server asked for; a little jitter spreads the retries.
                retry_after
                    + Duration::from_millis(rng.random_range(0..=250)).mul_f64(self.delay_scale)
            }
            Retry::Throttled(None) => {
                let seconds = rng.random_range(
                    THROTTLE_WAIT_MIN.as_secs_f64()..=THROTTLE_WAIT_MAX.as_secs_f64(),
                );
                Duration::from_secs_f64(seconds * self.delay_scale)
            }
        };
        if elapsed + wait > self.row_budget {
            return Decision::BudgetExhausted;
        }
        Decision::RetryAfter(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn final_answers_not_retried() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(Retry::No, 1, Duration::ZERO, &mut rng()),
            Decision::Final
        );
    }

    #[test]
    fn attempts_cap() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            policy.decide(Retry::Backoff, 2, Duration::ZERO, &mut rng()),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            policy.decide(Retry::Backoff, 3, Duration::ZERO, &mut rng()),
            Decision::AttemptsExhausted
        );
    }

    #[test]
    fn backoff_within_exponential_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = rng();
        for attempt in 1..=4u32 {
            for _ in 0..200 {
                let Decision::RetryAfter(wait) =
                    policy.decide(Retry::Backoff, attempt, Duration::ZERO, &mut rng)
                else {
                    panic!("expected a retry");
                };
                assert!(
                    wait <= Duration::from_secs(1 << (attempt - 1)),
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
        let Decision::RetryAfter(wait) = policy.decide(Retry::Backoff, 4, Duration::ZERO, &mut rng)
        else {
            panic!()
        };
        assert!(wait <= policy.max_delay);
    }

    #[test]
    fn retry_after_is_a_minimum() {
        let policy = RetryPolicy::default();
        let mut rng = rng();
        for _ in 0..100 {
            let decision = policy.decide(
                Retry::Throttled(Some(Duration::from_secs(3))),
                1,
                Duration::ZERO,
                &mut rng,
            );
            let Decision::RetryAfter(wait) = decision else {
                panic!("expected a retry")
            };
            assert!(wait >= Duration::from_secs(3), "{wait:?}");
        }
    }

    #[test]
    fn throttle_without_header_waits_two_to_five_seconds() {
        let policy = RetryPolicy::default();
        let mut rng = rng();
        for _ in 0..100 {
            let Decision::RetryAfter(wait) =
                policy.decide(Retry::Throttled(None), 1, Duration::ZERO, &mut rng)
            else {
                panic!("expected a retry");
            };
            assert!(
                wait >= THROTTLE_WAIT_MIN && wait <= THROTTLE_WAIT_MAX,
                "{wait:?}"
            );
        }
    }

    #[test]
    fn budget_stops_long_waits() {
        let policy = RetryPolicy {
            row_budget: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let decision = policy.decide(
            Retry::Throttled(Some(Duration::from_secs(60))),
            1,
            Duration::ZERO,
            &mut rng(),
        );
        assert_eq!(decision, Decision::BudgetExhausted);
    }
}
