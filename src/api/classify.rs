//! Classification of one API response, fail-closed.
//!
//! A row is `on` only when the API answered 200 with a JSON object whose one
//! `encryption_status` field is exactly the string `"on"`, and `off` only with
//! exactly `"off"`. A 404 with a `DBS.` error code is `not_found`. Every other
//! answer is an error with a stable kind, and the verdict says whether the
//! retry policy may try again.

use std::time::Duration;

use serde::Deserialize;

use crate::finding::{ErrorKind, Status};

/// The outcome of one request, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAnswer {
    /// The server responded with a status line and headers.
    Http {
        status: u16,
        request_id: Option<String>,
        retry_after: Option<String>,
        location: Option<String>,
        /// The body, or why it could not be read in full.
        body: Result<String, BodyError>,
    },
    /// No complete response arrived.
    Transport {
        kind: TransportKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body was longer than the cap, in bytes.
    TooLarge(u64),
    /// The connection broke while the body was read.
    Broken(TransportKind, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Connect, read or whole-request timeout.
    Timeout,
    /// Refused, reset, closed early or malformed HTTP: worth another try.
    Connection,
    /// DNS or TLS failure, or a bad URL: another try will not help.
    Fatal,
}

/// Whether and how a request may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The answer is final.
    No,
    /// A transient failure: back off and try again.
    Backoff,
    /// Throttled: wait at least this long (from `Retry-After`), or Huawei's advised 2 to 5 s when `None`.
    Throttled(Option<Duration>),
}

/// The classification of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub error_kind: Option<ErrorKind>,
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    pub retry: Retry,
}

/// Reports whether an answer was an authentication rejection (401 `APIGW.0301` or `APIGW.0307`,
/// or any 401, since a gateway in front may not send a code).
pub fn is_auth_rejection(verdict: &Verdict) -> bool {
    verdict.error_kind == Some(ErrorKind::AuthFailed)
}

/// Reports whether the answer proves that the credential was accepted: only the
/// service behind the gateway sends 200, 400, 403 or a `DBS.` 404.
pub fn proves_credential(verdict: &Verdict) -> bool {
    match verdict.http_status {
        Some(200) | Some(400) | Some(403) => true,
        Some(404) => verdict.status == Status::NotFound,
        _ => false,
    }
}

/// The documented success body. Unknown fields are allowed; a repeated field is not.
#[derive(Deserialize)]
struct EncryptionBody {
    encryption_status: String,
}

/// The documented error body; both fields are optional because proxies differ.
#[derive(Deserialize, Default)]
struct ErrorBody {
    error_code: Option<String>,
    error_msg: Option<String>,
}

/// Classifies one answer.
pub fn classify(answer: &RawAnswer) -> Verdict {
    match answer {
        RawAnswer::Transport { kind, message } => transport_verdict(*kind, message),
        RawAnswer::Http {
            status,
            retry_after,
            location,
            body,
            ..
        } => {
            let body = match body {
                Ok(body) => body,
                Err(BodyError::TooLarge(limit)) => {
                    return error(
                        ErrorKind::BodyTooLarge,
                        Some(*status),
                        None,
                        format!(
                            "the response body was larger than {limit} bytes, far more than this API sends; the endpoint may not be the TaurusDB API"
                        ),
                        Retry::No,
                    );
                }
                Err(BodyError::Broken(kind, message)) => return transport_verdict(*kind, message),
            };
            classify_http(*status, retry_after.as_deref(), location.as_deref(), body)
        }
    }
}

fn classify_http(
    status: u16,
    retry_after: Option<&str>,
    location: Option<&str>,
    body: &str,
) -> Verdict {
    if status == 200 {
        return classify_success(body);
    }
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let code = parsed.error_code.filter(|c| !c.is_empty());
    let message = parsed
        .error_msg
        .filter(|m| !m.is_empty())
        .or_else(|| snippet(body));
    let (kind, retry) = match status {
        300..=399 => {
            let target = location
                .map(redirect_host)
                .unwrap_or_else(|| "an unknown place".to_string());
            let text = format!(
                "the API answered {status} with a redirect to {target}; redirects are never followed, so check the endpoint"
            );
            return error(ErrorKind::Redirect, Some(status), code, text, Retry::No);
        }
        400 => (ErrorKind::BadRequest, Retry::No),
        401 => (ErrorKind::AuthFailed, Retry::No),
        403 => (ErrorKind::PermissionDenied, Retry::No),
        404 if code.as_deref().is_some_and(|c| c.starts_with("DBS.")) => {
            return Verdict {
                status: Status::NotFound,
                error_kind: None,
                http_status: Some(404),
                error_code: code,
                error_msg: message,
                retry: Retry::No,
            };
        }
        404 => (ErrorKind::ApiNotFound, Retry::No),
        429 => (
            ErrorKind::Throttled,
            Retry::Throttled(retry_after.and_then(parse_retry_after)),
        ),
        500 | 502 | 503 | 504 => (ErrorKind::ServerError, Retry::Backoff),
        _ => (ErrorKind::UnexpectedStatus, Retry::No),
    };
    let message = match (kind, message) {
        (ErrorKind::PermissionDenied, Some(m)) => Some(format!(
            "{m} (this call needs the IAM action gaussdbformysql:backup:encrypt)"
        )),
        (ErrorKind::PermissionDenied, None) => Some(
            "permission denied (this call needs the IAM action gaussdbformysql:backup:encrypt)"
                .to_string(),
        ),
        (ErrorKind::ApiNotFound, m) => Some(format!(
            "{}; the path or endpoint is wrong, so this is not an instance-not-found response",
            m.unwrap_or_else(|| "404 without a DBS error code".to_string())
        )),
        (_, m) => m,
    };
    Verdict {
        status: Status::Error,
        error_kind: Some(kind),
        http_status: Some(status),
        error_code: code,
        error_msg: message,
        retry,
    }
}

fn classify_success(body: &str) -> Verdict {
    if body.trim().is_empty() {
        return bad_body(
            ErrorKind::EmptyBody,
            "the API answered 200 with an empty body".to_string(),
        );
    }
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(body) {
        let text = snippet(body).unwrap_or_default();
        return bad_body(
            ErrorKind::InvalidJson,
            format!("the body is not valid JSON ({err}): {text}"),
        );
    }
    // serde would also read a struct from a JSON array, so anything but an object is rejected first.
    if !body.trim_start().starts_with('{') {
        let text = snippet(body).unwrap_or_default();
        return bad_body(
            ErrorKind::UnexpectedBody,
            format!("the body is JSON but not an object: {text}"),
        );
    }
    // The body is valid JSON, so the only errors left are about its shape.
    match serde_json::from_str::<EncryptionBody>(body) {
        Ok(parsed) => match parsed.encryption_status.as_str() {
            "on" => success(Status::On),
            "off" => success(Status::Off),
            other => bad_body(
                ErrorKind::UnexpectedValue,
                format!("encryption_status is {other:?}, which is neither \"on\" nor \"off\""),
            ),
        },
        Err(err) => bad_body(
            ErrorKind::UnexpectedBody,
            format!("the JSON body does not have one string encryption_status ({err})"),
        ),
    }
}

/// Builds the verdict for a 200 whose body is not the documented shape.
fn bad_body(kind: ErrorKind, message: String) -> Verdict {
    error(kind, Some(200), None, message, Retry::No)
}

fn transport_verdict(kind: TransportKind, message: &str) -> Verdict {
    let (error_kind, retry) = match kind {
        TransportKind::Timeout => (ErrorKind::Timeout, Retry::Backoff),
        TransportKind::Connection => (ErrorKind::ConnectionFailed, Retry::Backoff),
        TransportKind::Fatal => (ErrorKind::ConnectionFailed, Retry::No),
    };
    error(error_kind, None, None, message.to_string(), retry)
}

fn success(status: Status) -> Verdict {
    Verdict {
        status,
        error_kind: None,
        http_status: Some(200),
        error_code: None,
        error_msg: None,
        retry: Retry::No,
    }
}

fn error(
    kind: ErrorKind,
    http_status: Option<u16>,
    code: Option<String>,
    message: String,
    retry: Retry,
) -> Verdict {
    Verdict {
        status: Status::Error,
        error_kind: Some(kind),
        http_status,
        error_code: code,
        error_msg: Some(message),
        retry,
    }
}

/// Parses `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Names the host of a redirect target, or the raw value when it has none.
fn redirect_host(location: &str) -> String {
    match location.parse::<ureq::http::Uri>() {
        Ok(uri) if uri.host().is_some() => format!("host {}", uri.host().unwrap_or_default()),
        _ => format!("{location:?}"),
    }
}

/// Returns the start of a body with control characters removed, for messages.
fn snippet(body: &str) -> Option<String> {
    let cleaned: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.is_empty() {
        return None;
    }
    const MAX: usize = 200;
    match cleaned.char_indices().nth(MAX) {
        Some((cut, _)) => Some(format!("{}...", &cleaned[..cut])),
        None => Some(cleaned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> RawAnswer {
        RawAnswer::Http {
            status,
            request_id: Some("rid".into()),
            retry_after: None,
            location: None,
            body: Ok(body.to_string()),
        }
    }

    /// (status, body, expected status, expected kind, expected retry)
    #[test]
    fn classification_table() {
        use ErrorKind::*;
        let cases: &[(u16, &str, Status, Option<ErrorKind>, Retry)] = &[
            (
                200,
                r#"{"encryption_status":"on"}"#,
                Status::On,
                None,
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":"off"}"#,
                Status::Off,
                None,
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":"on","extra":1}"#,
                Status::On,
                None,
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":"ON"}"#,
                Status::Error,
                Some(UnexpectedValue),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":" on"}"#,
                Status::Error,
                Some(UnexpectedValue),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":""}"#,
                Status::Error,
                Some(UnexpectedValue),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":true}"#,
                Status::Error,
                Some(UnexpectedBody),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":null}"#,
                Status::Error,
                Some(UnexpectedBody),
                Retry::No,
            ),
            (
                200,
                r#"{"status":"on"}"#,
                Status::Error,
                Some(UnexpectedBody),
                Retry::No,
            ),
            (
                200,
                r#"["on"]"#,
                Status::Error,
                Some(UnexpectedBody),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":"off","encryption_status":"on"}"#,
                Status::Error,
                Some(UnexpectedBody),
                Retry::No,
            ),
            (
                200,
                r#"{"encryption_status":"on""#,
                Status::Error,
                Some(InvalidJson),
                Retry::No,
            ),
            (
                200,
                "<html><body>OK</body></html>",
                Status::Error,
                Some(InvalidJson),
                Retry::No,
            ),
            (200, "", Status::Error, Some(EmptyBody), Retry::No),
            (200, "  \n", Status::Error, Some(EmptyBody), Retry::No),
            (
                400,
                r#"{"error_code":"DBS.280234","error_msg":"bad id"}"#,
                Status::Error,
                Some(BadRequest),
                Retry::No,
            ),
            (
                401,
                r#"{"error_code":"APIGW.0301","error_msg":"bad auth"}"#,
                Status::Error,
                Some(AuthFailed),
                Retry::No,
            ),
            (
                401,
                r#"{"error_code":"APIGW.0307","error_msg":"renew"}"#,
                Status::Error,
                Some(AuthFailed),
                Retry::No,
            ),
            (
                403,
                r#"{"error_code":"DBS.0001","error_msg":"no"}"#,
                Status::Error,
                Some(PermissionDenied),
                Retry::No,
            ),
            (
                404,
                r#"{"error_code":"DBS.200823","error_msg":"gone"}"#,
                Status::NotFound,
                None,
                Retry::No,
            ),
            (
                404,
                r#"{"error_code":"APIGW.0101","error_msg":"no api"}"#,
                Status::Error,
                Some(ApiNotFound),
                Retry::No,
            ),
            (
                404,
                "<html>Not Found</html>",
                Status::Error,
                Some(ApiNotFound),
                Retry::No,
            ),
            (
                429,
                r#"{"error_code":"APIGW.0308"}"#,
                Status::Error,
                Some(Throttled),
                Retry::Throttled(None),
            ),
            (500, "{}", Status::Error, Some(ServerError), Retry::Backoff),
            (
                502,
                "<html>Bad Gateway</html>",
                Status::Error,
                Some(ServerError),
                Retry::Backoff,
            ),
            (503, "", Status::Error, Some(ServerError), Retry::Backoff),
            (504, "", Status::Error, Some(ServerError), Retry::Backoff),
            (501, "", Status::Error, Some(UnexpectedStatus), Retry::No),
            (204, "", Status::Error, Some(UnexpectedStatus), Retry::No),
            (302, "", Status::Error, Some(Redirect), Retry::No),
        ];
        for (status, body, want_status, want_kind, want_retry) in cases {
            let verdict = classify(&http(*status, body));
            assert_eq!(verdict.status, *want_status, "status for {status} {body:?}");
            assert_eq!(verdict.error_kind, *want_kind, "kind for {status} {body:?}");
            assert_eq!(verdict.retry, *want_retry, "retry for {status} {body:?}");
        }
    }

    #[test]
    fn error_fields_carried() {
        let verdict = classify(&http(
            404,
            r#"{"error_code":"DBS.200823","error_msg":"The DB instance does not exist."}"#,
        ));
        assert_eq!(verdict.http_status, Some(404));
        assert_eq!(verdict.error_code.as_deref(), Some("DBS.200823"));
        assert_eq!(
            verdict.error_msg.as_deref(),
            Some("The DB instance does not exist.")
        );
    }

    #[test]
    fn permission_denied_names_iam_action() {
        let verdict = classify(&http(403, r#"{"error_code":"X","error_msg":"denied"}"#));
        assert!(
            verdict
                .error_msg
                .unwrap()
                .contains("gaussdbformysql:backup:encrypt")
        );
    }

    #[test]
    fn redirect_names_target_host() {
        let answer = RawAnswer::Http {
            status: 302,
            request_id: None,
            retry_after: None,
            location: Some("https://elsewhere.example/login".into()),
            body: Ok(String::new()),
        };
        let verdict = classify(&answer);
        assert!(verdict.error_msg.unwrap().contains("elsewhere.example"));
    }

    #[test]
    fn retry_after_seconds_and_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        let answer = RawAnswer::Http {
            status: 429,
            request_id: None,
            retry_after: Some("7".into()),
            location: None,
            body: Ok(String::new()),
        };
        assert_eq!(
            classify(&answer).retry,
            Retry::Throttled(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn transport_and_body_failures() {
        let timeout = RawAnswer::Transport {
            kind: TransportKind::Timeout,
            message: "timed out".into(),
        };
        assert_eq!(classify(&timeout).error_kind, Some(ErrorKind::Timeout));
        assert_eq!(classify(&timeout).retry, Retry::Backoff);
        let tls = RawAnswer::Transport {
            kind: TransportKind::Fatal,
            message: "tls".into(),
        };
        assert_eq!(classify(&tls).retry, Retry::No);
        let large = RawAnswer::Http {
            status: 200,
            request_id: None,
            retry_after: None,
            location: None,
            body: Err(BodyError::TooLarge(8192)),
        };
        assert_eq!(classify(&large).error_kind, Some(ErrorKind::BodyTooLarge));
        let broken = RawAnswer::Http {
            status: 200,
            request_id: None,
            retry_after: None,
            location: None,
            body: Err(BodyError::Broken(TransportKind::Connection, "reset".into())),
        };
        assert_eq!(
            classify(&broken).error_kind,
            Some(ErrorKind::ConnectionFailed)
        );
        assert_eq!(classify(&broken).retry, Retry::Backoff);
    }

    #[test]
    fn credential_proof() {
        assert!(proves_credential(&classify(&http(
            200,
            r#"{"encryption_status":"on"}"#
        ))));
        assert!(proves_credential(&classify(&http(
            404,
            r#"{"error_code":"DBS.1"}"#
        ))));
        assert!(!proves_credential(&classify(&http(
            404,
            r#"{"error_code":"APIGW.0101"}"#
        ))));
        assert!(!proves_credential(&classify(&http(429, ""))));
        assert!(!proves_credential(&classify(&http(500, ""))));
        assert!(is_auth_rejection(&classify(&http(401, ""))));
    }
}
