//! The order in which the simulator decides a response, as the gateway and
//! the service do: route, authenticate, apply the quota, then the script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::auth::{Authenticator, ReceivedRequest};
use super::clock::{Clock, skewed};
use super::quota::Quota;
use super::reply::Reply;
use super::scenario::{Scenario, ScriptedResponse};
use super::stats::StatsRecorder;

/// Largest request body read for signature checks. The rest is ignored, so
/// a larger signed body fails the check.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The response to one request and how long to wait before sending it.
pub(crate) struct Decision {
    pub(crate) reply: Reply,
    pub(crate) wait: Duration,
}

/// The project and instance ids from a matched API path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Route<'a> {
    pub(crate) project_id: &'a str,
    pub(crate) instance_id: &'a str,
}

impl Route<'_> {
    /// Matches `GET /v3/{project_id}/instances/{instance_id}/backups/encryption`
    /// exactly: no trailing `/`, no empty ids.
    pub(crate) fn parse<'a>(method: &str, path: &'a str) -> Option<Route<'a>> {
        if method != "GET" {
            return None;
        }
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            [
                "",
                "v3",
                project_id,
                "instances",
                instance_id,
                "backups",
                "encryption",
            ] if !project_id.is_empty() && !instance_id.is_empty() => Some(Route {
                project_id,
                instance_id,
            }),
            _ => None,
        }
    }
}

/// The state that all workers share to decide responses.
pub(crate) struct Service {
    scenario: Scenario,
    authenticator: Authenticator,
    quota: Option<Quota>,
    /// How many requests for each listed instance reached the script.
    script_positions: Mutex<HashMap<String, usize>>,
    clock: Arc<dyn Clock>,
    stats: Arc<StatsRecorder>,
}

impl Service {
    pub(crate) fn new(
        scenario: Scenario,
        clock: Arc<dyn Clock>,
        stats: Arc<StatsRecorder>,
    ) -> Service {
        Service {
            authenticator: Authenticator::new(&scenario.tokens, &scenario.keys),
            quota: scenario.quota_per_second.map(Quota::new),
            script_positions: Mutex::new(HashMap::new()),
            scenario,
            clock,
            stats,
        }
    }

    /// Returns the simulator's clock: the injected clock plus the scenario's skew.
    pub(crate) fn now(&self) -> SystemTime {
        skewed(self.clock.now(), self.scenario.clock_skew_seconds)
    }

    /// Decides the response to `request`. It reads the request body, and counts
    /// instances, authentication failures and throttling in the stats.
    pub(crate) fn decide(&self, request: &Incoming, request_id: &str) -> Decision {
        let now = self.now();
        let latency = Duration::from_millis(self.scenario.latency_ms);
        let gateway_response = |reply| Decision {
            reply,
            wait: latency,
        };

        let method = request.method.as_str();
        let target = request.target.as_str();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some(route) = Route::parse(method, path) else {
            return gateway_response(Reply::api_not_found(request_id));
        };
        self.stats.count_instance(route.instance_id);

        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();

        let received = ReceivedRequest {
            method,
            path,
            query,
            headers: &headers,
            body: &request.body,
            project_id: route.project_id,
        };
        let identity = match self.authenticator.check(&received, now) {
            Ok(identity) => identity,
            Err(failure) => {
                log::debug!(
                    "authentication failed for {method} {path}: {}",
                    failure.reason
                );
                self.stats.count_auth_failure();
                return gateway_response(Reply::auth_failed(&failure.reason, request_id));
            }
        };

        if let Some(quota) = &self.quota
            && !quota.admit(&identity.quota_key(), now)
        {
            self.stats.count_throttled();
            let retry_after = self.scenario.quota_retry_after.as_deref();
            return gateway_response(Reply::throttled(quota.limit(), retry_after, request_id));
        }

        let response = self.next_response(route.instance_id);
        Decision {
            reply: Reply::scripted(response, request_id, self.scenario.quota_per_second),
            wait: latency.saturating_add(Duration::from_millis(response.delay_ms)),
        }
    }

    /// Returns the scripted response for the next request to `instance_id`.
    fn next_response(&self, instance_id: &str) -> &ScriptedResponse {
        let Some(responses) = self.scenario.instances.get(instance_id) else {
            return &self.scenario.default_status;
        };
        let mut positions = self
            .script_positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let position = positions.entry(instance_id.to_owned()).or_insert(0);
        let index = (*position).min(responses.len() - 1);
        *position = position.saturating_add(1);
        &responses[index]
    }
}

/// A received request, independent of the HTTP server crate.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) method: String,
    /// Path and query as received.
    pub(crate) target: String,
    /// Header names and values; names are lowercase, as HTTP/1.1 allows.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, cut at `MAX_BODY_BYTES`.
    pub(crate) body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_matches_api_path() {
        let route = Route::parse("GET", "/v3/p1/instances/i1/backups/encryption").unwrap();
        assert_eq!(route.project_id, "p1");
        assert_eq!(route.instance_id, "i1");
    }

    #[test]
    fn route_rejects_other_shapes() {
        let cases = [
            ("POST", "/v3/p1/instances/i1/backups/encryption"),
            ("HEAD", "/v3/p1/instances/i1/backups/encryption"),
            ("GET", "/v3/p1/instances/i1/backups/encryption/"),
            ("GET", "/v3.1/p1/instances/i1/backups/encryption"),
            ("GET", "/v3//instances/i1/backups/encryption"),
            ("GET", "/v3/p1/instances//backups/encryption"),
            ("GET", "/v3/p1/instances/i1/backups"),
            ("GET", "/v3/p1/instances/i1/x/backups/encryption"),
            ("GET", "v3/p1/instances/i1/backups/encryption"),
            ("GET", "/"),
        ];
        for (method, path) in cases {
            assert_eq!(Route::parse(method, path), None, "{method} {path}");
        }
    }
}
