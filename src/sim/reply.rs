//! Responses: the gateway's own errors, the scripted responses, and their
//! conversion to HTTP responses.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;

use serde_json::{Map, Value};

use super::scenario::{NOT_FOUND_CODE, NOT_FOUND_MESSAGE, ScriptedResponse};

pub(crate) const API_NOT_FOUND_CODE: &str = "APIGW.0101";
pub(crate) const API_NOT_FOUND_MESSAGE: &str =
    "The API does not exist or has not been published in the environment.";
pub(crate) const AUTH_FAILED_CODE: &str = "APIGW.0301";
pub(crate) const AUTH_FAILED_PREFIX: &str = "Incorrect IAM authentication information: ";
pub(crate) const THROTTLED_CODE: &str = "APIGW.0308";

/// Error code prefix of responses that the scenario scripts with a status but no
/// error code, and of the simulator's own failures. `SIM.` marks them as
/// made up by the simulator.
const SIMULATOR_CODE_PREFIX: &str = "SIM.";

/// Status kept on a `reset` reply, which is never sent: the connection is
/// closed instead.
const RESET_STATUS: u16 = 500;

/// The status under which [`super::Stats::by_status`] counts a `reset`.
pub(crate) const RESET_STATS_STATUS: u16 = 0;

/// One response, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) request_id: String,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    /// Headers besides `X-Request-Id`, `Content-Type` and `Date`.
    pub(crate) extra_headers: Vec<(&'static str, String)>,
    pub(crate) reset: bool,
}

impl Reply {
    /// Builds an error response in the gateway's JSON shape. Codes starting with
    /// `APIGW.` also carry `request_id` in the body, as the gateway's do.
    pub(crate) fn error(status: u16, code: &str, message: &str, request_id: &str) -> Reply {
        let mut object = Map::new();
        insert_error_fields(&mut object, Some(code), Some(message), request_id);
        Reply::json(status, &object, request_id)
    }

    /// Builds the 404 for a request that is not a GET of the encryption-status path.
    pub(crate) fn api_not_found(request_id: &str) -> Reply {
        Reply::error(404, API_NOT_FOUND_CODE, API_NOT_FOUND_MESSAGE, request_id)
    }

    /// Builds the 401 for a failed token or signature check.
    pub(crate) fn auth_failed(reason: &str, request_id: &str) -> Reply {
        let message = format!("{AUTH_FAILED_PREFIX}{reason}");
        Reply::error(401, AUTH_FAILED_CODE, &message, request_id)
    }

    /// Builds the 429 for a request over the per-identity quota of `limit` per second.
    pub(crate) fn throttled(limit: u32, retry_after: Option<&str>, request_id: &str) -> Reply {
        let mut reply = Reply::error(429, THROTTLED_CODE, &throttled_message(limit), request_id);
        if let Some(value) = retry_after {
            reply.extra_headers.push(("Retry-After", value.to_owned()));
        }
        reply
    }

    /// Builds the 500 for a request that the simulator itself failed to handle.
    pub(crate) fn internal_error(request_id: &str) -> Reply {
        Reply::error(
            500,
            &format!("{SIMULATOR_CODE_PREFIX}500"),
            "The simulator failed while handling the request; its log has the details.",
            request_id,
        )
    }

    /// Builds the response that `response` scripts. `quota_limit` fills the message
    /// of a scripted 429 that has no `error_msg`.
    pub(crate) fn scripted(
        response: &ScriptedResponse,
        request_id: &str,
        quota_limit: Option<u32>,
    ) -> Reply {
        if response.reset {
            return Reply {
                status: RESET_STATUS,
                request_id: request_id.to_owned(),
                content_type: "application/json".to_owned(),
                body: Vec::new(),
                extra_headers: Vec::new(),
                reset: true,
            };
        }

        let status = response.status.unwrap_or(200);
        let mut reply = match &response.body {
            Some(raw) => Reply::raw(status, raw.as_bytes().to_vec(), request_id),
            None => Reply::json(
                status,
                &scripted_json(response, status, request_id, quota_limit),
                request_id,
            ),
        };
        if let Some(content_type) = &response.content_type {
            reply.content_type = content_type.clone();
        }
        if let Some(value) = &response.retry_after {
            reply.extra_headers.push(("Retry-After", value.clone()));
        }
        if let Some(value) = &response.location {
            reply.extra_headers.push(("Location", value.clone()));
        }
        reply
    }

    /// Returns the status that the stats count this response under.
    pub(crate) fn counted_status(&self) -> u16 {
        if self.reset {
            RESET_STATS_STATUS
        } else {
            self.status
        }
    }

    /// Builds the HTTP response, with a `Date` header of `date`. hyper adds
    /// `Content-Length`, since the body is complete.
    pub(crate) fn into_response(self, date: SystemTime) -> hyper::Response<Full<Bytes>> {
        let status = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = status;
        let mut headers = vec![
            ("X-Request-Id", self.request_id),
            ("Content-Type", self.content_type),
            ("Date", httpdate::fmt_http_date(date)),
            // Marks the evidence as simulated, so a report can never pass for a real audit.
            (
                crate::api::SIMULATOR_HEADER,
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ];
        headers.extend(self.extra_headers);
        for (name, value) in headers {
            match hyper::header::HeaderValue::from_str(&value) {
                Ok(value) => {
                    response.headers_mut().append(
                        hyper::header::HeaderName::from_bytes(name.as_bytes())
                            .expect("header names here are valid"),
                        value,
                    );
                }
                Err(_) => log::warn!("skipping header {name}: its value is not printable ASCII"),
            }
        }
        response
    }

    fn json(status: u16, object: &Map<String, Value>, request_id: &str) -> Reply {
        let body =
            serde_json::to_vec(object).expect("a JSON object with string keys always serializes");
        Reply::raw(status, body, request_id)
    }

    fn raw(status: u16, body: Vec<u8>, request_id: &str) -> Reply {
        Reply {
            status,
            request_id: request_id.to_owned(),
            content_type: "application/json".to_owned(),
            body,
            extra_headers: Vec::new(),
            reset: false,
        }
    }
}

fn throttled_message(limit: u32) -> String {
    format!(
        "The throttling threshold has been reached: policy user over ratelimit,limit:{limit},time:1 second"
    )
}

fn insert_error_fields(
    object: &mut Map<String, Value>,
    code: Option<&str>,
    message: Option<&str>,
    request_id: &str,
) {
    if let Some(code) = code {
        object.insert("error_code".to_owned(), Value::from(code));
        if code.starts_with("APIGW.") {
            object.insert("request_id".to_owned(), Value::from(request_id));
        }
    }
    if let Some(message) = message {
        object.insert("error_msg".to_owned(), Value::from(message));
    }
}

/// Builds the JSON body of a scripted response without a raw `body`.
fn scripted_json(
    response: &ScriptedResponse,
    status: u16,
    request_id: &str,
    quota_limit: Option<u32>,
) -> Map<String, Value> {
    let mut object = Map::new();
    if let Some(value) = &response.encryption_status {
        object.insert("encryption_status".to_owned(), value.clone());
    }

    let has_error_fields = response.error_code.is_some() || response.error_msg.is_some();
    if has_error_fields {
        insert_error_fields(
            &mut object,
            response.error_code.as_deref(),
            response.error_msg.as_deref(),
            request_id,
        );
    } else if response.encryption_status.is_none() && status >= 400 {
        let (code, message) = default_error(status, quota_limit);
        insert_error_fields(&mut object, Some(&code), Some(&message), request_id);
    }

    if let Some(min_bytes) = response.oversized_bytes {
        pad_past(&mut object, min_bytes);
    }
    object
}

/// Returns the error code and message of a scripted error status that sets neither.
fn default_error(status: u16, quota_limit: Option<u32>) -> (String, String) {
    match status {
        401 => (
            AUTH_FAILED_CODE.to_owned(),
            format!("{AUTH_FAILED_PREFIX}the scenario scripted this failure"),
        ),
        404 => (NOT_FOUND_CODE.to_owned(), NOT_FOUND_MESSAGE.to_owned()),
        429 => (
            THROTTLED_CODE.to_owned(),
            throttled_message(quota_limit.unwrap_or(0)),
        ),
        _ => (
            format!("{SIMULATOR_CODE_PREFIX}{status}"),
            format!("The scenario scripted this HTTP {status} response."),
        ),
    }
}

/// Adds a `padding` field of `x`s so that the serialized object is longer
/// than `min_bytes`.
fn pad_past(object: &mut Map<String, Value>, min_bytes: usize) {
    object.insert("padding".to_owned(), Value::from(""));
    let unpadded = serde_json::to_vec(object)
        .map(|body| body.len())
        .unwrap_or(0);
    let missing = (min_bytes + 1).saturating_sub(unpadded);
    object.insert("padding".to_owned(), Value::from("x".repeat(missing)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body_json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn gateway_error_carries_request_id() {
        let reply = Reply::api_not_found("abc");
        assert_eq!(reply.status, 404);
        assert_eq!(
            body_json(&reply),
            json!({"error_code": "APIGW.0101", "error_msg": API_NOT_FOUND_MESSAGE, "request_id": "abc"})
        );
    }

    #[test]
    fn service_error_has_no_request_id() {
        let reply = Reply::scripted(&ScriptedResponse::not_found(), "abc", None);
        assert_eq!(reply.status, 404);
        assert_eq!(
            body_json(&reply),
            json!({"error_code": NOT_FOUND_CODE, "error_msg": NOT_FOUND_MESSAGE})
        );
    }

    #[test]
    fn scripted_status_gets_default_error() {
        let response = ScriptedResponse {
            status: Some(503),
            ..ScriptedResponse::default()
        };
        let reply = Reply::scripted(&response, "abc", None);
        assert_eq!(
            body_json(&reply),
            json!({"error_code": "SIM.503", "error_msg": "The scenario scripted this HTTP 503 response."})
        );
    }

    #[test]
    fn scripted_429_names_quota_limit() {
        let response = ScriptedResponse {
            status: Some(429),
            ..ScriptedResponse::default()
        };
        let reply = Reply::scripted(&response, "abc", Some(7));
        let body = body_json(&reply);
        assert_eq!(body["error_code"], "APIGW.0308");
        assert_eq!(
            body["error_msg"],
            "The throttling threshold has been reached: policy user over ratelimit,limit:7,time:1 second"
        );
        assert_eq!(body["request_id"], "abc");
    }

    #[test]
    fn scripted_empty_object_is_empty_json() {
        let reply = Reply::scripted(&ScriptedResponse::default(), "abc", None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"{}");
    }

    #[test]
    fn oversized_body_exceeds_limit() {
        for min_bytes in [0, 10, 30, 65_536] {
            let response = ScriptedResponse {
                oversized_bytes: Some(min_bytes),
                ..ScriptedResponse::encryption_on()
            };
            let reply = Reply::scripted(&response, "abc", None);
            assert!(
                reply.body.len() > min_bytes,
                "{} bytes for {min_bytes}",
                reply.body.len()
            );
            assert_eq!(body_json(&reply)["encryption_status"], "on");
        }
    }

    #[test]
    fn reset_counts_under_zero() {
        let response = ScriptedResponse {
            reset: true,
            ..ScriptedResponse::default()
        };
        let reply = Reply::scripted(&response, "abc", None);
        assert!(reply.reset);
        assert_eq!(reply.counted_status(), RESET_STATS_STATUS);
    }
}
