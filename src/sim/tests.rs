//! Tests that send real HTTP requests with ureq to a simulator on loopback.
//! Most use a manual clock, so that quota windows, lockouts and signature
//! dates do not depend on when the test runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::clock::{Clock, ManualClock};
use super::*;
use crate::api::signer::{self, SigningRequest};

const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const OTHER_PROJECT: &str = "ffffffffffffffffffffffffffffffff";
const INSTANCE: &str = "61a4ea66210545909d74a05c27a7179ein07";
const OTHER_INSTANCE: &str = "7033e7c3cf93438797d44ad7ae0a7d95in07";
const TOKEN: &str = "token-for-tests";
const OTHER_TOKEN: &str = "second-token-for-tests";
const AK: &str = "HPUAEXAMPLEAK0000001";
const SK: &str = "ExampleSecretKey0123456789abcdefghijABCD";
const TEMP_AK: &str = "HPUAEXAMPLETEMP00001";
const TEMP_SK: &str = "TemporarySecretKey0123456789abcdefghijAB";
const SECURITY_TOKEN: &str = "ExampleSecurityToken+/=";

/// The manual clock's start, and its `Date` header form.
const START: OffsetDateTime = datetime!(2024-01-15 08:09:10 UTC);
const START_HTTP_DATE: &str = "Mon, 15 Jan 2024 08:09:10 GMT";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Builds a scenario that accepts `TOKEN`, `OTHER_TOKEN`, `AK` and the
/// temporary `TEMP_AK`, with the keys of `extra` added or replaced.
fn scenario(extra: Value) -> Scenario {
    let mut base = json!({
        "tokens": [{"token": TOKEN}, {"token": OTHER_TOKEN}],
        "keys": [
            {"ak": AK, "sk": SK},
            {"ak": TEMP_AK, "sk": TEMP_SK, "security_token": SECURITY_TOKEN}
        ]
    });
    for (key, value) in extra
        .as_object()
        .expect("extra scenario keys are an object")
    {
        base[key] = value.clone();
    }
    Scenario::from_json(&base.to_string()).unwrap()
}

/// Starts a simulator whose clock stays at `START` until a test advances it.
fn start(extra: Value) -> (Simulator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemTime::from(START)));
    let simulator =
        Simulator::start_with_clock(loopback(), scenario(extra), Arc::clone(&clock) as _).unwrap();
    (simulator, clock)
}

/// Builds a client that reports every status as a response, follows no
/// redirect, and gives up after 10 s so that a simulator bug fails the test
/// instead of hanging it.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body {:?} is not JSON: {error}", self.body))
    }
}

fn api_path(project_id: &str, instance_id: &str) -> String {
    format!("/v3/{project_id}/instances/{instance_id}/backups/encryption")
}

fn try_get(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, ureq::Error> {
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call()?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = response.body_mut().read_to_string()?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_get(agent, url, headers).unwrap_or_else(|error| panic!("GET {url} failed: {error}"))
}

/// Sends a GET for `instance_id` in `PROJECT` with `token`.
fn get_with_token(simulator: &Simulator, token: &str, instance_id: &str) -> HttpResponse {
    let url = format!("{}{}", simulator.url(), api_path(PROJECT, instance_id));
    get(&agent(), &url, &[("X-Auth-Token", token)])
}

/// Asserts the gateway's 401 for a failed authentication, and that the
/// response's message contains `reason`.
fn assert_auth_failed(response: &HttpResponse, reason: &str) {
    assert_eq!(response.status, 401, "body {}", response.body);
    let body = response.json();
    assert_eq!(body["error_code"], "APIGW.0301");
    let message = body["error_msg"].as_str().unwrap();
    assert!(
        message.starts_with("Incorrect IAM authentication information: "),
        "{message}"
    );
    assert!(
        message.contains(reason),
        "expected {reason:?} in {message:?}"
    );
    assert_eq!(body["request_id"].as_str(), response.header("x-request-id"));
    for secret in [TOKEN, OTHER_TOKEN, SK, TEMP_SK, SECURITY_TOKEN] {
        assert!(
            !response.body.contains(secret),
            "a secret is in {}",
            response.body
        );
    }
}

/// A request to sign with an access key: which headers to send, and which
/// of them to change after signing.
struct SignedGet<'a> {
    ak: &'a str,
    sk: &'a str,
    project_id: &'a str,
    instance_id: &'a str,
    signed_at: SystemTime,
    /// Headers besides `Content-Type` and `X-Sdk-Date`, by default `X-Project-Id`.
    headers: Vec<(&'a str, String)>,
}

impl<'a> SignedGet<'a> {
    fn new(ak: &'a str, sk: &'a str, signed_at: SystemTime) -> SignedGet<'a> {
        SignedGet {
            ak,
            sk,
            project_id: PROJECT,
            instance_id: INSTANCE,
            signed_at,
            headers: vec![("X-Project-Id", PROJECT.to_owned())],
        }
    }

    fn with_header(mut self, name: &'a str, value: &str) -> SignedGet<'a> {
        self.headers.retain(|(header_name, _)| *header_name != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    fn without_header(mut self, name: &str) -> SignedGet<'a> {
        self.headers.retain(|(header_name, _)| *header_name != name);
        self
    }

    /// Returns the headers to send, `Authorization` included. The signature
    /// covers `Host` as ureq sends it, `127.0.0.1:PORT`.
    fn signed_headers(&self, simulator: &Simulator) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "X-Sdk-Date".to_owned(),
                signer::format_sdk_date(OffsetDateTime::from(self.signed_at)),
            ),
        ];
        headers.extend(
            self.headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone())),
        );

        let host = simulator.addr().to_string();
        let mut to_sign: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        to_sign.push(("Host", &host));
        let path = api_path(self.project_id, self.instance_id);
        let authorization = signer::authorization(
            self.ak,
            self.sk.as_bytes(),
            &SigningRequest {
                method: "GET",
                path: &path,
                query: &[],
                headers: &to_sign,
                body: b"",
            },
        );
        headers.push(("Authorization".to_owned(), authorization));
        headers
    }

    fn send(&self, simulator: &Simulator) -> HttpResponse {
        self.send_with(simulator, |_| {})
    }

    /// Signs, lets `change` alter the headers, then sends.
    fn send_with(
        &self,
        simulator: &Simulator,
        change: impl FnOnce(&mut Vec<(String, String)>),
    ) -> HttpResponse {
        let mut headers = self.signed_headers(simulator);
        change(&mut headers);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let url = format!(
            "{}{}",
            simulator.url(),
            api_path(self.project_id, self.instance_id)
        );
        get(&agent(), &url, &headers)
    }
}

fn is_request_id(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[test]
fn random_request_id_is_32_lowercase_hex() {
    let first = random_request_id();
    assert!(is_request_id(&first), "{first}");
    assert_ne!(first, random_request_id());
}

#[test]
fn token_accepted_with_standard_headers() {
    let (simulator, _clock) = start(json!({}));

    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"encryption_status": "on"}));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("date"), Some(START_HTTP_DATE));
    let request_id = response.header("x-request-id").unwrap();
    assert!(is_request_id(request_id), "{request_id}");
}

#[test]
fn token_unknown_rejected() {
    let (simulator, _clock) = start(json!({}));

    let response = get_with_token(&simulator, "not-a-configured-token", INSTANCE);

    assert_auth_failed(&response, "the token is not valid");
    assert!(!response.body.contains("not-a-configured-token"));
    assert_eq!(simulator.stats().auth_failures, 1);
}

#[test]
fn request_without_credentials_rejected() {
    let (simulator, _clock) = start(json!({}));
    let url = format!("{}{}", simulator.url(), api_path(PROJECT, INSTANCE));

    let response = get(&agent(), &url, &[]);

    assert_auth_failed(
        &response,
        "neither an X-Auth-Token nor an Authorization header",
    );
}

#[test]
fn token_checked_against_its_projects() {
    let (simulator, _clock) = start(json!({"tokens": [{"token": TOKEN, "projects": [PROJECT]}]}));
    let agent = agent();
    let headers = [("X-Auth-Token", TOKEN)];

    let own = get(
        &agent,
        &format!("{}{}", simulator.url(), api_path(PROJECT, INSTANCE)),
        &headers,
    );
    let other = get(
        &agent,
        &format!("{}{}", simulator.url(), api_path(OTHER_PROJECT, INSTANCE)),
        &headers,
    );

    assert_eq!(own.status, 200);
    assert_auth_failed(&other, &format!("not scoped to project {OTHER_PROJECT}"));
}

#[test]
fn unknown_api_returns_apigw_0101() {
    let (simulator, _clock) = start(json!({}));
    let agent = agent();
    let headers = [("X-Auth-Token", TOKEN)];
    let api = api_path(PROJECT, INSTANCE);
    let unknown_paths = [
        format!("/v3/{PROJECT}/instances"),
        format!("{api}/"),
        "/".to_owned(),
    ];

    let mut responses: Vec<HttpResponse> = unknown_paths
        .iter()
        .map(|path| get(&agent, &format!("{}{path}", simulator.url()), &headers))
        .collect();
    let mut post = agent
        .post(format!("{}{api}", simulator.url()))
        .header("X-Auth-Token", TOKEN)
        .send_empty()
        .unwrap();
    responses.push(HttpResponse {
        status: post.status().as_u16(),
        headers: vec![],
        body: post.body_mut().read_to_string().unwrap(),
    });

    for response in &responses {
        assert_eq!(response.status, 404, "body {}", response.body);
        let body = response.json();
        assert_eq!(body["error_code"], "APIGW.0101");
        assert_eq!(
            body["error_msg"],
            "The API does not exist or has not been published in the environment."
        );
        assert!(is_request_id(body["request_id"].as_str().unwrap()));
    }
    assert_eq!(
        responses[0].json()["request_id"].as_str(),
        responses[0].header("x-request-id")
    );
    assert!(simulator.stats().per_instance.is_empty());
}

#[test]
fn query_string_does_not_change_route() {
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: "off"}}));
    let url = format!("{}{}?lang=en", simulator.url(), api_path(PROJECT, INSTANCE));

    let response = get(&agent(), &url, &[("X-Auth-Token", TOKEN)]);

    assert_eq!(response.json(), json!({"encryption_status": "off"}));
}

#[test]
fn encryption_status_values_pass_through() {
    let cases = [
        (json!("off"), json!({"encryption_status": "off"})),
        (json!("ON"), json!({"encryption_status": "ON"})),
        (
            json!({"encryption_status": null}),
            json!({"encryption_status": null}),
        ),
        (
            json!({"encryption_status": 1}),
            json!({"encryption_status": 1}),
        ),
        (
            json!({"encryption_status": {"nested": true}}),
            json!({"encryption_status": {"nested": true}}),
        ),
        (json!({}), json!({})),
    ];
    let instances: serde_json::Map<String, Value> = cases
        .iter()
        .enumerate()
        .map(|(index, (scripted, _))| (format!("i{index}"), scripted.clone()))
        .collect();
    let (simulator, _clock) = start(json!({"instances": instances}));

    for (index, (scripted, expected)) in cases.iter().enumerate() {
        let response = get_with_token(&simulator, TOKEN, &format!("i{index}"));
        assert_eq!(response.status, 200, "scripted {scripted}");
        assert_eq!(response.json(), *expected, "scripted {scripted}");
    }
}

#[test]
fn scripted_error_has_status_and_fields() {
    let (simulator, _clock) = start(json!({"instances": {
        "dbs": {"status": 403, "error_code": "DBS.280001", "error_msg": "No permission."},
        "gateway": {"status": 502, "error_code": "APIGW.0103", "error_msg": "Backend unavailable."},
        "bare": {"status": 500}
    }}));

    let dbs = get_with_token(&simulator, TOKEN, "dbs");
    let gateway = get_with_token(&simulator, TOKEN, "gateway");
    let bare = get_with_token(&simulator, TOKEN, "bare");

    assert_eq!(dbs.status, 403);
    assert_eq!(
        dbs.json(),
        json!({"error_code": "DBS.280001", "error_msg": "No permission."})
    );
    assert_eq!(gateway.status, 502);
    assert_eq!(
        gateway.json(),
        json!({
            "error_code": "APIGW.0103",
            "error_msg": "Backend unavailable.",
            "request_id": gateway.header("x-request-id").unwrap()
        })
    );
    assert_eq!(bare.status, 500);
    assert_eq!(bare.json()["error_code"], "SIM.500");
}

#[test]
fn not_found_shorthand_returns_dbs_404() {
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: "not_found"}}));

    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(response.status, 404);
    assert_eq!(
        response.json(),
        json!({"error_code": "DBS.200823", "error_msg": NOT_FOUND_MESSAGE})
    );
}

#[test]
fn retry_after_passes_through() {
    let (simulator, _clock) = start(json!({"instances": {
        "seconds": {"status": 503, "retry_after": "2"},
        "date": {"status": 429, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"},
        "none": {"status": 503}
    }}));

    let seconds = get_with_token(&simulator, TOKEN, "seconds");
    let date = get_with_token(&simulator, TOKEN, "date");
    let none = get_with_token(&simulator, TOKEN, "none");

    assert_eq!(seconds.header("retry-after"), Some("2"));
    assert_eq!(date.status, 429);
    assert_eq!(
        date.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(none.header("retry-after"), None);
}

#[test]
fn raw_body_replaces_json() {
    let html = "<html><body>502 Bad Gateway</body></html>";
    let (simulator, _clock) = start(json!({"instances": {
        "html": {"status": 502, "body": html, "content_type": "text/html"},
        "truncated": {"body": "{\"encryption_status\": \"o"},
        "empty": {"body": ""}
    }}));

    let html_response = get_with_token(&simulator, TOKEN, "html");
    let truncated = get_with_token(&simulator, TOKEN, "truncated");
    let empty = get_with_token(&simulator, TOKEN, "empty");

    assert_eq!(html_response.status, 502);
    assert_eq!(html_response.body, html);
    assert_eq!(html_response.header("content-type"), Some("text/html"));
    assert_eq!(truncated.status, 200);
    assert_eq!(truncated.body, "{\"encryption_status\": \"o");
    assert_eq!(truncated.header("content-type"), Some("application/json"));
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, "");
    assert_eq!(empty.header("content-length"), Some("0"));
}

#[test]
fn redirect_carries_location() {
    let (simulator, _clock) = start(json!({"instances": {
        INSTANCE: {"status": 302, "location": "https://elsewhere.example/x"}
    }}));

    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("https://elsewhere.example/x")
    );
}

#[test]
fn oversized_body_exceeds_size() {
    let (simulator, _clock) = start(json!({"instances": {
        INSTANCE: {"encryption_status": "on", "oversized_bytes": 65536}
    }}));

    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(response.status, 200);
    assert!(response.body.len() > 65536, "{} bytes", response.body.len());
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str())
    );
    let body = response.json();
    assert_eq!(body["encryption_status"], "on");
    assert!(body["padding"].as_str().unwrap().len() > 65000);
}

#[test]
fn delay_postpones_response() {
    let (simulator, _clock) =
        start(json!({"instances": {INSTANCE: {"encryption_status": "on", "delay_ms": 60}}}));

    let started = Instant::now();
    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn latency_precedes_every_response() {
    let (simulator, _clock) = start(json!({"latency_ms": 40}));

    for token in [TOKEN, "wrong-token"] {
        let started = Instant::now();
        let response = get_with_token(&simulator, token, INSTANCE);
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(40),
            "{elapsed:?} for status {}",
            response.status
        );
    }
}

#[test]
fn long_delay_times_out_client() {
    // Shutdown cuts the 10-second delay short, so the test stays fast.
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: {"delay_ms": 10_000}}}));
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(100)))
        .build()
        .into();
    let url = format!("{}{}", simulator.url(), api_path(PROJECT, INSTANCE));

    let result = try_get(&impatient, &url, &[("X-Auth-Token", TOKEN)]);

    assert!(
        matches!(result, Err(ureq::Error::Timeout(_))),
        "{:?}",
        result.err()
    );
    simulator.shutdown();
}

#[test]
fn reset_fails_client_and_connection_recovers() {
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: {"reset": true}}}));
    let agent = agent();
    let headers = [("X-Auth-Token", TOKEN)];

    let reset = try_get(
        &agent,
        &format!("{}{}", simulator.url(), api_path(PROJECT, INSTANCE)),
        &headers,
    );
    // The same agent must get a valid response next, on a new connection.
    let next = get(
        &agent,
        &format!("{}{}", simulator.url(), api_path(PROJECT, OTHER_INSTANCE)),
        &headers,
    );

    // The connection closes without a status line, which ureq reports as an
    // I/O or protocol error, never as a response.
    match reset {
        Err(ureq::Error::Io(_)) | Err(ureq::Error::Protocol(_)) => {}
        other => panic!(
            "expected the connection to close without a response, got {:?}",
            other.map(|response| response.status)
        ),
    }
    assert_eq!(next.status, 200);
    assert_eq!(next.json(), json!({"encryption_status": "on"}));
    let stats = simulator.stats();
    assert_eq!(stats.by_status.get(&0), Some(&1));
    assert_eq!(stats.by_status.get(&200), Some(&1));
}

#[test]
fn responses_follow_script_order() {
    let (simulator, _clock) = start(json!({"instances": {
        INSTANCE: [{"status": 503}, "off", "on"]
    }}));

    let statuses: Vec<(u16, Value)> = (0..5)
        .map(|_| {
            let response = get_with_token(&simulator, TOKEN, INSTANCE);
            (response.status, response.json())
        })
        .collect();

    assert_eq!(statuses[0].0, 503);
    assert_eq!(statuses[1], (200, json!({"encryption_status": "off"})));
    assert_eq!(statuses[2], (200, json!({"encryption_status": "on"})));
    assert_eq!(statuses[3], (200, json!({"encryption_status": "on"})));
    assert_eq!(statuses[4], (200, json!({"encryption_status": "on"})));
}

#[test]
fn script_skips_rejected_requests() {
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: ["off", "on"]}}));

    let rejected = get_with_token(&simulator, "wrong-token", INSTANCE);
    let first = get_with_token(&simulator, TOKEN, INSTANCE);
    let other = get_with_token(&simulator, TOKEN, OTHER_INSTANCE);
    let second = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(rejected.status, 401);
    assert_eq!(first.json(), json!({"encryption_status": "off"}));
    assert_eq!(other.json(), json!({"encryption_status": "on"}));
    assert_eq!(second.json(), json!({"encryption_status": "on"}));
}

#[test]
fn default_status_covers_unlisted_instances() {
    let (off, _clock) = start(json!({"default_status": "off", "instances": {INSTANCE: "on"}}));
    let (missing, _clock) = start(json!({"default_status": "not_found"}));

    assert_eq!(
        get_with_token(&off, TOKEN, INSTANCE).json(),
        json!({"encryption_status": "on"})
    );
    assert_eq!(
        get_with_token(&off, TOKEN, OTHER_INSTANCE).json(),
        json!({"encryption_status": "off"})
    );
    assert_eq!(get_with_token(&missing, TOKEN, OTHER_INSTANCE).status, 404);
}

#[test]
fn quota_throttles_within_one_window() {
    let (simulator, clock) = start(json!({
        "quota_per_second": 2,
        "quota_retry_after": "1",
        "instances": {INSTANCE: ["off", "on"]}
    }));

    let first = get_with_token(&simulator, TOKEN, INSTANCE);
    let second = get_with_token(&simulator, TOKEN, INSTANCE);
    let third = get_with_token(&simulator, TOKEN, INSTANCE);
    let other_identity = get_with_token(&simulator, OTHER_TOKEN, INSTANCE);
    clock.advance(Duration::from_secs(1));
    let next_window = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(third.status, 429);
    assert_eq!(
        third.json(),
        json!({
            "error_code": "APIGW.0308",
            "error_msg": "The throttling threshold has been reached: policy user over ratelimit,limit:2,time:1 second",
            "request_id": third.header("x-request-id").unwrap()
        })
    );
    assert_eq!(third.header("retry-after"), Some("1"));
    assert_eq!(other_identity.status, 200);
    assert_eq!(next_window.status, 200);
    assert_eq!(simulator.stats().throttled, 1);
}

#[test]
fn quota_429_omits_retry_after() {
    let (simulator, _clock) = start(json!({"quota_per_second": 1}));

    let first = get_with_token(&simulator, TOKEN, INSTANCE);
    let second = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(first.status, 200);
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), None);
}

#[test]
fn quota_throttles_on_system_clock() {
    // With the real clock, a window boundary can fall between any two
    // requests. With a quota of 1, two requests in one window are enough,
    // and 50 requests can only all pass if they span 50 windows (50 s).
    let simulator = Simulator::start(loopback(), scenario(json!({"quota_per_second": 1}))).unwrap();

    let throttled = (0..50)
        .map(|_| get_with_token(&simulator, TOKEN, INSTANCE))
        .find(|response| response.status == 429);

    let response = throttled.expect("no 429 in 50 requests");
    assert_eq!(response.json()["error_code"], "APIGW.0308");
    assert!(simulator.stats().throttled >= 1);
}

#[test]
fn date_header_follows_clock_skew() {
    let (simulator, _clock) = start(json!({"clock_skew_seconds": 3600}));

    let response = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(
        response.header("date"),
        Some("Mon, 15 Jan 2024 09:09:10 GMT")
    );
}

#[test]
fn slow_response_does_not_block_others() {
    let (simulator, _clock) = start(json!({"instances": {"slow": {"delay_ms": 10_000}}}));
    let slow_url = format!("{}{}", simulator.url(), api_path(PROJECT, "slow"));
    let slow = thread::spawn(move || try_get(&agent(), &slow_url, &[("X-Auth-Token", TOKEN)]));
    // Wait until a worker has taken the slow request. The loop waits for an
    // event, not for a time, because it ends once the simulator counts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while simulator.stats().requests == 0 {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        thread::yield_now();
    }

    let fast = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(fast.status, 200);
    assert!(
        !slow.is_finished(),
        "the slow response arrived before the fast one"
    );
    assert_eq!(simulator.stats().max_in_flight, 2);
    simulator.shutdown();
    let slow_response = slow.join().unwrap().unwrap();
    assert_eq!(slow_response.status, 200);
}

#[test]
fn non_loopback_listen_rejected() {
    for listen in [
        "0.0.0.0:0",
        "[::]:0",
        "192.0.2.10:0",
        "[::ffff:127.0.0.1]:0",
    ] {
        let address: SocketAddr = listen.parse().unwrap();
        let error = Simulator::start(address, Scenario::default())
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("is not a loopback address"),
            "{listen}: {error}"
        );
    }
}

#[test]
fn invalid_scenario_rejected_by_start() {
    let mut scenario = Scenario::default();
    scenario.instances.insert(
        INSTANCE.to_owned(),
        vec![ScriptedResponse {
            status: Some(1000),
            ..ScriptedResponse::default()
        }],
    );

    let error = Simulator::start(loopback(), scenario).err().unwrap();

    assert!(
        error
            .to_string()
            .contains("status 1000 is outside 200 to 599"),
        "{error}"
    );
}

#[test]
fn stats_count_requests() {
    let (simulator, _clock) = start(json!({"instances": {OTHER_INSTANCE: "not_found"}}));

    get_with_token(&simulator, TOKEN, INSTANCE);
    get_with_token(&simulator, TOKEN, INSTANCE);
    get_with_token(&simulator, "wrong-token", INSTANCE);
    get_with_token(&simulator, TOKEN, OTHER_INSTANCE);
    get(
        &agent(),
        &format!("{}/v3/{PROJECT}/instances", simulator.url()),
        &[],
    );

    let stats = simulator.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.by_status.get(&200), Some(&2));
    assert_eq!(stats.by_status.get(&401), Some(&1));
    assert_eq!(stats.by_status.get(&404), Some(&2));
    assert_eq!(stats.per_instance.get(INSTANCE), Some(&3));
    assert_eq!(stats.per_instance.get(OTHER_INSTANCE), Some(&1));
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(stats.throttled, 0);
    assert_eq!(stats.max_in_flight, 1);
    assert_eq!(stats.recent.len(), 5);
    let first = &stats.recent[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, api_path(PROJECT, INSTANCE));
    assert_eq!(first.header("x-auth-token"), Some(TOKEN));
    assert_eq!(stats.recent[4].path, format!("/v3/{PROJECT}/instances"));
}

#[test]
fn signed_request_accepted() {
    let (simulator, _clock) = start(json!({"instances": {INSTANCE: "off"}}));

    let response = SignedGet::new(AK, SK, SystemTime::from(START)).send(&simulator);

    assert_eq!(response.status, 200, "body {}", response.body);
    assert_eq!(response.json(), json!({"encryption_status": "off"}));
    let stats = simulator.stats();
    let authorization = stats.recent[0].header("authorization").unwrap();
    assert!(authorization.starts_with(&format!("SDK-HMAC-SHA256 Access={AK}, ")));
}

#[test]
fn signed_request_wrong_secret_rejected() {
    let (simulator, _clock) = start(json!({}));

    let response =
        SignedGet::new(AK, "not-the-secret-key", SystemTime::from(START)).send(&simulator);

    assert_auth_failed(&response, "the signature does not match the request");
}

#[test]
fn signed_request_changed_after_signing_rejected() {
    let (simulator, _clock) = start(json!({}));

    let response =
        SignedGet::new(AK, SK, SystemTime::from(START)).send_with(&simulator, |headers| {
            for (name, value) in headers.iter_mut() {
                if name == "Content-Type" {
                    *value = "text/plain".to_owned();
                }
            }
        });

    assert_auth_failed(&response, "the signature does not match the request");
}

#[test]
fn signed_request_unknown_access_key_rejected() {
    let (simulator, _clock) = start(json!({}));

    let response =
        SignedGet::new("HPUAUNKNOWNAK0000000", SK, SystemTime::from(START)).send(&simulator);

    assert_auth_failed(&response, "access key HPUAUNKNOWNAK0000000 does not exist");
}

#[test]
fn signed_request_malformed_authorization_rejected() {
    let (simulator, _clock) = start(json!({}));
    let url = format!("{}{}", simulator.url(), api_path(PROJECT, INSTANCE));

    let response = get(&agent(), &url, &[("Authorization", "Basic dXNlcjpwYXNz")]);

    assert_auth_failed(&response, "not a valid SDK-HMAC-SHA256 signature header");
}

#[test]
fn signed_request_date_window_is_15_minutes() {
    let (simulator, _clock) = start(json!({}));
    let now = SystemTime::from(START);
    let limit = Duration::from_secs(15 * 60);
    let second = Duration::from_secs(1);

    let oldest_accepted = SignedGet::new(AK, SK, now - limit).send(&simulator);
    let newest_accepted = SignedGet::new(AK, SK, now + limit).send(&simulator);
    let stale = SignedGet::new(AK, SK, now - limit - second).send(&simulator);
    let future = SignedGet::new(AK, SK, now + limit + second).send(&simulator);

    assert_eq!(oldest_accepted.status, 200, "body {}", oldest_accepted.body);
    assert_eq!(newest_accepted.status, 200, "body {}", newest_accepted.body);
    assert_auth_failed(
        &stale,
        "is more than 15 minutes from the server time 20240115T080910Z",
    );
    assert_auth_failed(&future, "is more than 15 minutes from the server time");
}

#[test]
fn signed_request_bad_date_rejected() {
    let (simulator, _clock) = start(json!({}));
    let request = SignedGet::new(AK, SK, SystemTime::from(START));

    let missing = request.send_with(&simulator, |headers| {
        headers.retain(|(name, _)| name != "X-Sdk-Date");
    });
    let malformed = request.send_with(&simulator, |headers| {
        for (name, value) in headers.iter_mut() {
            if name == "X-Sdk-Date" {
                *value = "2024-01-15T08:09:10Z".to_owned();
            }
        }
    });

    assert_auth_failed(&missing, "the X-Sdk-Date header is missing");
    assert_auth_failed(
        &malformed,
        "X-Sdk-Date 2024-01-15T08:09:10Z is not in the form YYYYMMDDTHHMMSSZ",
    );
}

#[test]
fn signed_request_date_follows_clock_skew() {
    let (simulator, _clock) = start(json!({"clock_skew_seconds": 3600}));
    let unskewed = SystemTime::from(START);

    let behind = SignedGet::new(AK, SK, unskewed).send(&simulator);
    let matching = SignedGet::new(AK, SK, unskewed + Duration::from_secs(3600)).send(&simulator);

    assert_auth_failed(&behind, "server time 20240115T090910Z");
    assert_eq!(matching.status, 200, "body {}", matching.body);
}

#[test]
fn signed_request_project_must_match_path() {
    let (simulator, _clock) = start(json!({}));
    let now = SystemTime::from(START);

    let other = SignedGet::new(AK, SK, now)
        .with_header("X-Project-Id", OTHER_PROJECT)
        .send(&simulator);
    let missing = SignedGet::new(AK, SK, now)
        .without_header("X-Project-Id")
        .send(&simulator);

    assert_auth_failed(
        &other,
        &format!("X-Project-Id {OTHER_PROJECT} differs from the project {PROJECT} in the path"),
    );
    assert_auth_failed(&missing, "the X-Project-Id header is missing");
}

#[test]
fn temporary_key_needs_security_token() {
    let (simulator, _clock) = start(json!({}));
    let now = SystemTime::from(START);

    let without = SignedGet::new(TEMP_AK, TEMP_SK, now).send(&simulator);
    let wrong = SignedGet::new(TEMP_AK, TEMP_SK, now)
        .with_header("X-Security-Token", "some-other-security-token")
        .send(&simulator);
    let with = SignedGet::new(TEMP_AK, TEMP_SK, now)
        .with_header("X-Security-Token", SECURITY_TOKEN)
        .send(&simulator);

    assert_auth_failed(&without, "the X-Security-Token header is missing");
    assert_auth_failed(
        &wrong,
        &format!("X-Security-Token does not belong to access key {TEMP_AK}"),
    );
    assert!(!wrong.body.contains("some-other-security-token"));
    assert_eq!(with.status, 200, "body {}", with.body);
}

#[test]
fn access_key_locked_after_six_failures() {
    let (simulator, clock) = start(json!({}));
    let bad_at = |clock: &ManualClock| SignedGet::new(AK, "wrong-secret", clock.now());
    let good_at = |clock: &ManualClock| SignedGet::new(AK, SK, clock.now());

    // Five failures in a row are allowed, and a success clears the count.
    for _ in 0..5 {
        assert_eq!(bad_at(&clock).send(&simulator).status, 401);
    }
    assert_eq!(good_at(&clock).send(&simulator).status, 200);

    // The sixth failure in a row locks the key, even for correct requests.
    for _ in 0..6 {
        assert_eq!(bad_at(&clock).send(&simulator).status, 401);
    }
    let locked = good_at(&clock).send(&simulator);
    assert_auth_failed(
        &locked,
        &format!("access key {AK} is locked for 300 s more"),
    );
    let token_response = get_with_token(&simulator, TOKEN, INSTANCE);
    clock.advance(Duration::from_millis(299_500));
    let still_locked = good_at(&clock).send(&simulator);
    clock.advance(Duration::from_millis(500));
    let unlocked = good_at(&clock).send(&simulator);

    assert_eq!(token_response.status, 200);
    assert_auth_failed(&still_locked, "is locked for 1 s more");
    assert_eq!(unlocked.status, 200, "body {}", unlocked.body);
    assert_eq!(simulator.stats().auth_failures, 13);
}

#[test]
fn access_keys_have_own_quota() {
    let (simulator, _clock) = start(json!({"quota_per_second": 1}));
    let now = SystemTime::from(START);

    let signed = SignedGet::new(AK, SK, now).send(&simulator);
    let signed_again = SignedGet::new(AK, SK, now).send(&simulator);
    let token = get_with_token(&simulator, TOKEN, INSTANCE);

    assert_eq!(signed.status, 200, "body {}", signed.body);
    assert_eq!(signed_again.status, 429);
    assert_eq!(token.status, 200);
}

#[test]
fn panic_message_reads_payload() {
    let with_str = std::panic::catch_unwind(|| panic!("static message")).unwrap_err();
    let with_string = std::panic::catch_unwind(|| panic!("formatted {}", "message")).unwrap_err();
    let with_other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();

    assert_eq!(panic_message(with_str.as_ref()), "static message");
    assert_eq!(panic_message(with_string.as_ref()), "formatted message");
    assert_eq!(panic_message(with_other.as_ref()), "no message");
}
