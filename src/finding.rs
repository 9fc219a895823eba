//! The result of checking one inventory row: plain data, never an `Err`.
//!
//! Statuses and error kinds are serialised as stable lowercase strings
//! because reports, journals and the scripts that read them depend on them.

use serde::{Deserialize, Serialize};

/// The compliance status of one inventory row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The API responded 200 with exactly `"on"`.
    On,
    /// The API responded 200 with exactly `"off"`.
    Off,
    /// The API responded 404 with a `DBS.` error code: the instance does not exist.
    NotFound,
    /// Anything else: the row could not be checked.
    Error,
    /// The scan stopped before the row got a final answer.
    NotChecked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::On => "on",
            Status::Off => "off",
            Status::NotFound => "not_found",
            Status::Error => "error",
            Status::NotChecked => "not_checked",
        }
    }
}

/// The reason a row has status `error`. The kebab-case names are part of the report contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 200 with an `encryption_status` other than exactly `on` or `off`.
    UnexpectedValue,
    /// 200 with valid JSON that lacks a string `encryption_status`, or repeats it.
    UnexpectedBody,
    /// 200 whose body is not JSON (an HTML page, truncated JSON).
    InvalidJson,
    /// 200 with an empty body.
    EmptyBody,
    /// The body was larger than the response size cap.
    BodyTooLarge,
    /// 400: the API rejected the request.
    BadRequest,
    /// 401: the token or AK/SK was rejected, or the row was skipped after a rejection.
    AuthFailed,
    /// 403: the identity lacks permission for the call.
    PermissionDenied,
    /// 404 that is not an instance-not-found answer, such as `APIGW.0101` (no such API).
    ApiNotFound,
    /// 429 on every attempt.
    Throttled,
    /// 5xx on every attempt.
    ServerError,
    /// The connection or the response timed out on every attempt.
    Timeout,
    /// The connection failed (refused, reset, closed early, DNS or TLS failure).
    ConnectionFailed,
    /// A 3xx answer: redirects are never followed.
    Redirect,
    /// Any other HTTP status.
    UnexpectedStatus,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnexpectedValue => "unexpected-value",
            ErrorKind::UnexpectedBody => "unexpected-body",
            ErrorKind::InvalidJson => "invalid-json",
            ErrorKind::EmptyBody => "empty-body",
            ErrorKind::BodyTooLarge => "body-too-large",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::AuthFailed => "auth-failed",
            ErrorKind::PermissionDenied => "permission-denied",
            ErrorKind::ApiNotFound => "api-not-found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::ServerError => "server-error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionFailed => "connection-failed",
            ErrorKind::Redirect => "redirect",
            ErrorKind::UnexpectedStatus => "unexpected-status",
        }
    }
}

/// The final result of checking one row.
///
/// `http_status`, `error_code` and `error_msg` are evidence for any status:
/// a `not_found` row keeps the API's 404 code, an `error` row the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub status: Status,
    /// Set exactly when `status` is `error`.
    pub error_kind: Option<ErrorKind>,
    /// The HTTP status of the last answer, when there was one.
    pub http_status: Option<u16>,
    /// The API's `error_code`, when the body carried one.
    pub error_code: Option<String>,
    /// The API's `error_msg`, or a description of what went wrong.
    pub error_msg: Option<String>,
    /// UTC time of the last answer, RFC 3339; `None` when nothing was sent.
    pub checked_at: Option<String>,
    /// The `X-Request-Id` of the last answer.
    pub request_id: Option<String>,
    /// Requests sent for this row, retries included.
    pub attempts: u32,
}

impl Finding {
    /// Builds a finding for a row that was never sent.
    pub fn unsent(status: Status, error_kind: Option<ErrorKind>, error_msg: String) -> Finding {
        Finding {
            status,
            error_kind,
            http_status: None,
            error_code: None,
            error_msg: Some(error_msg),
            checked_at: None,
            request_id: None,
            attempts: 0,
        }
    }
}
