//! One request to the TaurusDB API and the classification of its response.
//!
//! [`ApiClient`] owns the one `ureq::Agent` that every worker shares, so
//! connections are kept alive and reused. It sends
//! `GET /v3/{project_id}/instances/{instance_id}/backups/encryption` with a
//! token or an AK/SK signature and turns whatever happens into a
//! [`classify::RawAnswer`]; it never retries (the scan's retry policy does).

pub mod classify;
pub mod endpoint;
pub mod signer;

use std::io::ErrorKind as IoErrorKind;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use crate::credentials::Credential;
use classify::{BodyError, RawAnswer, TransportKind};
use endpoint::Endpoint;

/// Largest response body read. The real responses are under 300 bytes, so 16 KiB
/// leaves room for a proxy's error page while a misdirected endpoint that
/// streams megabytes cannot exhaust memory across many workers.
pub const BODY_LIMIT: u64 = 16 * 1024;

/// The header the bundled simulator adds to every response, so reports can
/// record that their evidence came from it.
pub const SIMULATOR_HEADER: &str = "x-taurus-audit-simulator";

/// Returns the `User-Agent` sent with every request.
pub fn user_agent() -> String {
    format!("taurus-audit/{}", env!("CARGO_PKG_VERSION"))
}

/// The language of the API's `error_msg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Language {
    #[value(name = "en-us")]
    #[serde(rename = "en-us")]
    EnUs,
    #[value(name = "zh-cn")]
    #[serde(rename = "zh-cn")]
    ZhCn,
}

impl Language {
    pub fn header_value(self) -> &'static str {
        match self {
            Language::EnUs => "en-us",
            Language::ZhCn => "zh-cn",
        }
    }
}

/// Transport settings of the client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Bound on one whole request: connect, send, headers and body.
    pub timeout: Duration,
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
    pub language: Language,
    /// Whether `HTTPS_PROXY` and friends apply. Off when every endpoint is
    /// loopback, so a proxy setting can never carry test traffic off the machine.
    pub use_env_proxy: bool,
}

/// The outcome of one request, with the facts the scan needs beyond the classification.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub answer: RawAnswer,
    /// The server's `Date` header, for telling a skewed local clock.
    pub server_date: Option<SystemTime>,
    /// Whether the answer came from the bundled simulator.
    pub from_simulator: bool,
    /// When the answer (or the failure) arrived.
    pub finished_at: OffsetDateTime,
}

impl Exchange {
    pub fn request_id(&self) -> Option<&str> {
        match &self.answer {
            RawAnswer::Http { request_id, .. } => request_id.as_deref(),
            RawAnswer::Transport { .. } => None,
        }
    }
}

/// The shared HTTP client.
pub struct ApiClient {
    agent: ureq::Agent,
    language: Language,
}

impl ApiClient {
    pub fn new(settings: &ClientSettings) -> ApiClient {
        let proxy = if settings.use_env_proxy {
            ureq::Proxy::try_from_env()
        } else {
            None
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .https_only(false)
            .proxy(proxy)
            .user_agent(user_agent())
            .timeout_global(Some(settings.timeout))
            .timeout_connect(Some(settings.connect_timeout))
            .max_idle_connections(256)
            .max_idle_connections_per_host(256)
            .build();
        ApiClient {
            agent: config.into(),
            language: settings.language,
        }
    }

    /// Builds the request path for one row.
    pub fn encryption_path(project_id: &str, instance_id: &str) -> String {
        format!("/v3/{project_id}/instances/{instance_id}/backups/encryption")
    }

    /// Sends one request and returns what happened. Network failures and
    /// malformed responses become a `RawAnswer`, not an error or a panic.
    pub fn get_encryption(
        &self,
        endpoint: &Endpoint,
        project_id: &str,
        instance_id: &str,
        credential: &Credential,
    ) -> Exchange {
        let path = Self::encryption_path(project_id, instance_id);
        let url = format!("{}{}", endpoint.base_url(), path);
        let mut request = self
            .agent
            .get(&url)
            .header("Content-Type", "application/json")
            .header("X-Language", self.language.header_value());
        match credential {
            Credential::Token(token) => {
                request = request.header("X-Auth-Token", token.expose());
            }
            Credential::AkSk {
                ak,
                sk,
                security_token,
            } => {
                let sdk_date = signer::format_sdk_date(OffsetDateTime::now_utc());
                let mut headers: Vec<(&str, &str)> = vec![
                    ("Content-Type", "application/json"),
                    ("Host", endpoint.host_header()),
                    ("X-Project-Id", project_id),
                    ("X-Sdk-Date", &sdk_date),
                ];
                if let Some(token) = security_token {
                    headers.push(("X-Security-Token", token.expose()));
                }
                let signing = signer::SigningRequest {
                    method: "GET",
                    path: &path,
                    query: &[],
                    headers: &headers,
                    body: b"",
                };
                let authorization = signer::authorization(ak, sk.expose().as_bytes(), &signing);
                request = request
                    .header("Host", endpoint.host_header())
                    .header("X-Project-Id", project_id)
                    .header("X-Sdk-Date", &sdk_date)
                    .header("Authorization", &authorization);
                if let Some(token) = security_token {
                    request = request.header("X-Security-Token", token.expose());
                }
            }
        }

        let answer = request.call();
        let finished_at = OffsetDateTime::now_utc();
        let mut response = match answer {
            Ok(response) => response,
            Err(err) => {
                let (kind, message) = describe_transport_error(&err);
                return Exchange {
                    answer: RawAnswer::Transport { kind, message },
                    server_date: None,
                    from_simulator: false,
                    finished_at,
                };
            }
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let status = response.status().as_u16();
        let request_id = header("x-request-id");
        let retry_after = header("retry-after");
        let location = header("location");
        let server_date = header("date").and_then(|d| httpdate::parse_http_date(&d).ok());
        let from_simulator = header(SIMULATOR_HEADER).is_some();
        let body = match response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
        {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(ureq::Error::BodyExceedsLimit(limit)) => Err(BodyError::TooLarge(limit)),
            Err(err) => {
                let (kind, message) = describe_transport_error(&err);
                Err(BodyError::Broken(
                    kind,
                    format!("the connection broke while the body was read: {message}"),
                ))
            }
        };
        Exchange {
            answer: RawAnswer::Http {
                status,
                request_id,
                retry_after,
                location,
                body,
            },
            server_date,
            from_simulator,
            finished_at: OffsetDateTime::now_utc(),
        }
    }
}

/// Sorts a ureq error into a transport kind with a message that contains no secret
/// (ureq's messages name the URL and the failure, never request headers).
fn describe_transport_error(err: &ureq::Error) -> (TransportKind, String) {
    let kind = match err {
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::Io(io) => match io.kind() {
            IoErrorKind::TimedOut | IoErrorKind::WouldBlock => TransportKind::Timeout,
            _ => TransportKind::Connection,
        },
        ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => TransportKind::Connection,
        _ => TransportKind::Fatal,
    };
    let message = match err {
        ureq::Error::Timeout(ureq::Timeout::Global) => {
            "the request took longer than --timeout".to_string()
        }
        ureq::Error::Timeout(ureq::Timeout::Connect) => "connecting timed out".to_string(),
        ureq::Error::Timeout(what) => format!("timed out while waiting ({what})"),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    };
    (kind, message)
}
