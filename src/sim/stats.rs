//! Counters that tests and benchmarks read back from a running simulator.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// How many received requests [`Stats::recent`] keeps.
pub const RECENT_REQUESTS: usize = 1000;

/// Header names whose values are credentials, and which `Debug` output hides.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-auth-token", "x-security-token"];

/// A snapshot of the simulator's counters since it started.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Every HTTP request received.
    pub requests: u64,
    /// Responses per HTTP status code. A `reset` counts under 0.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests per instance id, for requests whose path matched the API.
    pub per_instance: BTreeMap<String, u64>,
    /// 429 responses from the quota. Scripted 429s do not count.
    pub throttled: u64,
    /// 401 responses from the token or AK/SK check.
    pub auth_failures: u64,
    /// The last [`RECENT_REQUESTS`] requests, oldest first.
    pub recent: Vec<RecordedRequest>,
    /// The largest number of requests that were being handled at once.
    pub max_in_flight: u64,
}

/// A request as the simulator received it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target: the path and, if any, `?` and the query.
    pub path: String,
    /// Header names and values, in the order and case received.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// Returns the value of the first header named `name`, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Debug for RecordedRequest {
    /// Shows credential headers as `<redacted>`, so that printing stats never
    /// reveals a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let is_credential = CREDENTIAL_HEADERS
                    .iter()
                    .any(|credential| name.eq_ignore_ascii_case(credential));
                let displayed_value = if is_credential {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (name.as_str(), displayed_value)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .finish()
    }
}

/// The live counters behind [`Stats`], shared by the worker threads.
#[derive(Default)]
pub(crate) struct StatsRecorder {
    counters: Mutex<Counters>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

#[derive(Default)]
struct Counters {
    requests: u64,
    by_status: BTreeMap<u16, u64>,
    per_instance: BTreeMap<String, u64>,
    throttled: u64,
    auth_failures: u64,
    recent: VecDeque<RecordedRequest>,
}

impl StatsRecorder {
    /// Records a received request and counts it as in flight until
    /// [`StatsRecorder::finish`].
    pub(crate) fn begin(&self, request: RecordedRequest) {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);

        let mut counters = self.lock();
        counters.requests += 1;
        if counters.recent.len() == RECENT_REQUESTS {
            counters.recent.pop_front();
        }
        counters.recent.push_back(request);
    }

    /// Counts the response to a request that [`StatsRecorder::begin`] recorded.
    pub(crate) fn finish(&self, status: u16) {
        *self.lock().by_status.entry(status).or_insert(0) += 1;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn count_instance(&self, instance_id: &str) {
        let mut counters = self.lock();
        *counters
            .per_instance
            .entry(instance_id.to_owned())
            .or_insert(0) += 1;
    }

    pub(crate) fn count_throttled(&self) {
        self.lock().throttled += 1;
    }

    pub(crate) fn count_auth_failure(&self) {
        self.lock().auth_failures += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let counters = self.lock();
        Stats {
            requests: counters.requests,
            by_status: counters.by_status.clone(),
            per_instance: counters.per_instance.clone(),
            throttled: counters.throttled,
            auth_failures: counters.auth_failures,
            recent: counters.recent.iter().cloned().collect(),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while the lock is held leaves the counters consistent
        // enough to keep counting.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, headers: &[(&str, &str)]) -> RecordedRequest {
        RecordedRequest {
            method: "GET".to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    #[test]
    fn recorder_keeps_last_thousand_requests() {
        let recorder = StatsRecorder::default();
        for n in 0..RECENT_REQUESTS + 5 {
            recorder.begin(request(&format!("/{n}"), &[]));
            recorder.finish(200);
        }

        let stats = recorder.snapshot();
        assert_eq!(stats.requests, (RECENT_REQUESTS + 5) as u64);
        assert_eq!(stats.recent.len(), RECENT_REQUESTS);
        assert_eq!(stats.recent[0].path, "/5");
        assert_eq!(stats.recent[RECENT_REQUESTS - 1].path, "/1004");
    }

    #[test]
    fn recorder_tracks_max_in_flight() {
        let recorder = StatsRecorder::default();
        recorder.begin(request("/a", &[]));
        recorder.begin(request("/b", &[]));
        recorder.finish(200);
        recorder.begin(request("/c", &[]));
        recorder.finish(200);
        recorder.finish(0);

        let stats = recorder.snapshot();
        assert_eq!(stats.max_in_flight, 2);
        assert_eq!(stats.by_status.get(&200), Some(&2));
        assert_eq!(stats.by_status.get(&0), Some(&1));
    }

    #[test]
    fn recorded_request_debug_hides_credentials() {
        let recorded = request(
            "/v3/p/instances/i/backups/encryption",
            &[
                ("X-Auth-Token", "secret-token-value"),
                ("authorization", "SDK-HMAC-SHA256 Access=AK, Signature=abc"),
                ("X-Security-Token", "secret-security-token"),
                ("Accept", "application/json"),
            ],
        );

        let output = format!("{recorded:?}");
        assert!(!output.contains("secret-token-value"), "{output}");
        assert!(!output.contains("Signature=abc"), "{output}");
        assert!(!output.contains("secret-security-token"), "{output}");
        assert!(output.contains("application/json"), "{output}");
        assert_eq!(recorded.header("x-auth-token"), Some("secret-token-value"));
    }
}
