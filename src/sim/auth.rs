//! The gateway's authentication: IAM tokens in `X-Auth-Token`, and
//! SDK-HMAC-SHA256 signatures from access keys, with the lockout that follows
//! repeated failures for one access key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::scenario::{AccessKey, TokenGrant};
use crate::api::signer::{self, SigningRequest};

/// The gateway locks an access key after more than this many consecutive failures.
pub(crate) const MAX_CONSECUTIVE_FAILURES: u32 = 5;

/// How long a locked access key stays locked.
pub(crate) const LOCKOUT: Duration = Duration::from_secs(300);

/// How far `X-Sdk-Date` may be from the simulator's clock, either way.
pub(crate) const MAX_DATE_DRIFT: Duration = Duration::from_secs(15 * 60);

/// The authenticated caller, which the quota counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    Token(String),
    AccessKey(String),
}

impl Identity {
    /// Returns the key under which the quota counts this identity.
    pub(crate) fn quota_key(&self) -> String {
        match self {
            Identity::Token(token) => format!("token:{token}"),
            Identity::AccessKey(ak) => format!("ak:{ak}"),
        }
    }
}

/// The reason a request failed authentication: the part of `error_msg` after
/// "Incorrect IAM authentication information: ". It never contains a token,
/// secret key or security token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFailure {
    pub(crate) reason: String,
}

fn fail<T>(reason: impl Into<String>) -> Result<T, AuthFailure> {
    Err(AuthFailure {
        reason: reason.into(),
    })
}

/// The parts of a received request that authentication looks at.
pub(crate) struct ReceivedRequest<'a> {
    pub(crate) method: &'a str,
    /// The path as received, without the query.
    pub(crate) path: &'a str,
    /// The query as received, without `?`. It is empty when there is none.
    pub(crate) query: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: &'a [u8],
    /// The project id from the path.
    pub(crate) project_id: &'a str,
}

impl ReceivedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// The check of credentials against the scenario's tokens and keys, with
/// the lockout state of each access key.
pub(crate) struct Authenticator {
    tokens: Vec<TokenGrant>,
    keys: HashMap<String, AccessKey>,
    lockouts: Mutex<HashMap<String, KeyState>>,
}

/// Failure history of one access key.
#[derive(Default)]
struct KeyState {
    consecutive_failures: u32,
    locked_until: Option<SystemTime>,
}

impl Authenticator {
    pub(crate) fn new(tokens: &[TokenGrant], keys: &[AccessKey]) -> Authenticator {
        Authenticator {
            tokens: tokens.to_vec(),
            keys: keys
                .iter()
                .map(|key| (key.ak.clone(), key.clone()))
                .collect(),
            lockouts: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates `request` at `now`, the simulator's skewed clock.
    /// A token in `X-Auth-Token` takes precedence over an `Authorization` header.
    pub(crate) fn check(
        &self,
        request: &ReceivedRequest,
        now: SystemTime,
    ) -> Result<Identity, AuthFailure> {
        if let Some(token) = request.header("X-Auth-Token") {
            return self.check_token(token, request.project_id);
        }
        if let Some(authorization) = request.header("Authorization") {
            return self.check_signature(authorization, request, now);
        }
        fail("the request has neither an X-Auth-Token nor an Authorization header")
    }

    fn check_token(&self, token: &str, project_id: &str) -> Result<Identity, AuthFailure> {
        let Some(grant) = self.tokens.iter().find(|grant| grant.token == token) else {
            return fail("the token is not valid");
        };
        if let Some(projects) = &grant.projects
            && !projects.iter().any(|project| project == project_id)
        {
            return fail(format!("the token is not scoped to project {project_id}"));
        }
        Ok(Identity::Token(token.to_owned()))
    }

    fn check_signature(
        &self,
        authorization: &str,
        request: &ReceivedRequest,
        now: SystemTime,
    ) -> Result<Identity, AuthFailure> {
        let Some(parsed) = signer::parse_authorization(authorization) else {
            return fail(
                "the Authorization header is not a valid SDK-HMAC-SHA256 signature header",
            );
        };
        let ak = parsed.access.as_str();
        let Some(key) = self.keys.get(ak) else {
            return fail(format!("access key {ak} does not exist"));
        };

        if let Some(remaining) = self.remaining_lockout(ak, now) {
            let remaining_seconds = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
            return fail(format!(
                "access key {ak} is locked for {remaining_seconds} s more after more than \
                 {MAX_CONSECUTIVE_FAILURES} consecutive authentication failures"
            ));
        }

        let result = verify_signed_request(key, &parsed, request, now);
        self.record_attempt(ak, result.is_ok(), now);
        result.map(|()| Identity::AccessKey(ak.to_owned()))
    }

    /// Returns how long `ak` stays locked, or `None` when it is not locked.
    fn remaining_lockout(&self, ak: &str, now: SystemTime) -> Option<Duration> {
        let mut lockouts = self.lockouts.lock().unwrap_or_else(PoisonError::into_inner);
        let state = lockouts.get_mut(ak)?;
        let until = state.locked_until?;
        match until.duration_since(now) {
            Ok(remaining) if !remaining.is_zero() => Some(remaining),
            _ => {
                *state = KeyState::default();
                None
            }
        }
    }

    /// Counts a failure towards the lockout, or clears the count after a success.
    fn record_attempt(&self, ak: &str, succeeded: bool, now: SystemTime) {
        let mut lockouts = self.lockouts.lock().unwrap_or_else(PoisonError::into_inner);
        let state = lockouts.entry(ak.to_owned()).or_default();
        if succeeded {
            state.consecutive_failures = 0;
            return;
        }
        state.consecutive_failures += 1;
        if state.consecutive_failures > MAX_CONSECUTIVE_FAILURES {
            log::debug!("access key {ak} locked for {} s", LOCKOUT.as_secs());
            state.locked_until = Some(now + LOCKOUT);
            state.consecutive_failures = 0;
        }
    }
}

/// Checks the date, project, security token and signature of a request
/// signed with `key`.
fn verify_signed_request(
    key: &AccessKey,
    parsed: &signer::ParsedAuthorization,
    request: &ReceivedRequest,
    now: SystemTime,
) -> Result<(), AuthFailure> {
    let Some(sdk_date) = request.header("X-Sdk-Date") else {
        return fail("the X-Sdk-Date header is missing");
    };
    let Some(signed_at) = signer::parse_sdk_date(sdk_date) else {
        return fail(format!(
            "X-Sdk-Date {sdk_date} is not in the form YYYYMMDDTHHMMSSZ"
        ));
    };
    let server_time = OffsetDateTime::from(now);
    if (signed_at - server_time).unsigned_abs() > MAX_DATE_DRIFT {
        return fail(format!(
            "X-Sdk-Date {sdk_date} is more than 15 minutes from the server time {}",
            signer::format_sdk_date(server_time)
        ));
    }

    match request.header("X-Project-Id") {
        None => return fail("the X-Project-Id header is missing"),
        Some(project) if project != request.project_id => {
            return fail(format!(
                "X-Project-Id {project} differs from the project {} in the path",
                request.project_id
            ));
        }
        Some(_) => {}
    }

    if let Some(expected) = &key.security_token {
        match request.header("X-Security-Token") {
            None => {
                return fail(format!(
                    "access key {} is temporary and the X-Security-Token header is missing",
                    key.ak
                ));
            }
            Some(sent) if sent != expected => {
                return fail(format!(
                    "X-Security-Token does not belong to access key {}",
                    key.ak
                ));
            }
            Some(_) => {}
        }
    }

    for name in &parsed.signed_headers {
        if request.header(name).is_none() {
            return fail(format!(
                "the signed header {name} is missing from the request"
            ));
        }
    }

    let decoded_query = decode_query(request.query);
    let query: Vec<(&str, &str)> = decoded_query
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let signing_request = SigningRequest {
        method: request.method,
        path: request.path,
        query: &query,
        headers: request.headers,
        body: request.body,
    };
    if !signer::verify(
        key.sk.as_bytes(),
        &signing_request,
        &parsed.signed_headers,
        &parsed.signature,
    ) {
        return fail("the signature does not match the request");
    }
    Ok(())
}

/// Splits a query string into percent-decoded pairs. A pair without `=` has
/// an empty value, and `+` stays a `+`, as the signer expects.
fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes every `%XX` and leaves any other `%` as it is.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 3)
            .filter(|hex| bytes[index] == b'%' && hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_query_decodes_pairs() {
        assert_eq!(
            decode_query("limit=50&name=%2Aprod%20db&offset=0&flag"),
            vec![
                ("limit".to_owned(), "50".to_owned()),
                ("name".to_owned(), "*prod db".to_owned()),
                ("offset".to_owned(), "0".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert!(decode_query("").is_empty());
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("%+1"), "%+1");
    }
}
