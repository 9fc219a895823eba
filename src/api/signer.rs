//! SDK-HMAC-SHA256 request signing, as Huawei Cloud's API gateway checks it.
//!
//! STUB: the interface below is fixed; the bodies are to be written.

use time::OffsetDateTime;

/// The algorithm name that starts the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Lowercase hex SHA-256 of an empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A request to sign or to verify.
pub struct SigningRequest<'a> {
    /// HTTP method, uppercase (`GET`).
    pub method: &'a str,
    /// The path as sent on the wire (it may be percent-encoded), without query.
    pub path: &'a str,
    /// Query pairs, already percent-decoded, in any order.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to consider for signing, names in any case. Must include
    /// `Host` and `X-Sdk-Date`. Names containing `_` are never signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The canonical request and the `;`-joined lowercase signed-header list.
pub struct CanonicalRequest {
    pub text: String,
    pub signed_headers: String,
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Builds the canonical request (steps 3 to 7 of the signing guide).
pub fn canonical_request(_request: &SigningRequest) -> CanonicalRequest {
    todo!()
}

/// Returns the `Authorization` header value for `request`, signed with `sk`.
pub fn authorization(_ak: &str, _sk: &[u8], _request: &SigningRequest) -> String {
    todo!()
}

/// Checks `signature_hex` against `request` and `sk` in constant time.
/// Only the headers named in `signed_headers` take part.
pub fn verify(
    _sk: &[u8],
    _request: &SigningRequest,
    _signed_headers: &[String],
    _signature_hex: &str,
) -> bool {
    todo!()
}

/// Parses an `Authorization` header value; `None` when it is not SDK-HMAC-SHA256.
pub fn parse_authorization(_value: &str) -> Option<ParsedAuthorization> {
    todo!()
}

/// Formats a time as `X-Sdk-Date` wants it: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn format_sdk_date(_at: OffsetDateTime) -> String {
    todo!()
}

/// Parses an `X-Sdk-Date` value.
pub fn parse_sdk_date(_value: &str) -> Option<OffsetDateTime> {
    todo!()
}
