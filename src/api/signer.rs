//! SDK-HMAC-SHA256 request signing, as Huawei Cloud's API gateway checks it.
//!
//! The scanner signs each AK/SK request with [`authorization`], and the local
//! simulator checks the same header with [`parse_authorization`] and
//! [`verify`]. The canonical form follows the `Signer` class in
//! `huaweicloudsdkcore/signer/signer.py` of the official Python SDK 3.1.219,
//! and `tests/sdk_interop.rs` compares the two byte for byte.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::format_description::StaticFormatDescription;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The algorithm name that starts the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Lowercase hex SHA-256 of an empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Header whose value replaces the body hash when the body is not empty. The
/// SDK sets it to `UNSIGNED-PAYLOAD` for content types other than JSON and BSON.
const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";

const SDK_DATE_HEADER: &str = "x-sdk-date";

/// `X-Sdk-Date` layout, `YYYYMMDDTHHMMSSZ`.
const SDK_DATE_FORMAT: StaticFormatDescription =
    format_description!("[year][month][day]T[hour][minute][second]Z");

type HmacSha256 = Hmac<Sha256>;

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
///
/// Every header whose name has no `_` is signed. Header names are expected to
/// be unique ignoring case.
pub fn canonical_request(request: &SigningRequest) -> CanonicalRequest {
    let mut headers: Vec<(String, &str)> = request
        .headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, value)| (name.to_lowercase(), trim_header_value(value)))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    build_canonical_request(request, &headers)
}

/// Returns the `Authorization` header value for `request`, signed with `sk`.
///
/// # Panics
///
/// Panics when `request.headers` has no `X-Sdk-Date`, because the string to
/// sign cannot be built without it.
pub fn authorization(ak: &str, sk: &[u8], request: &SigningRequest) -> String {
    let canonical = canonical_request(request);
    let sdk_date = header_value(request.headers, SDK_DATE_HEADER)
        .expect("the request to sign must carry an X-Sdk-Date header");

    let mac = keyed_mac(sk, &string_to_sign(sdk_date, &canonical.text));
    let signature = hex::encode(mac.finalize().into_bytes());

    format!(
        "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={signature}",
        canonical.signed_headers
    )
}

/// Checks `signature_hex` against `request` and `sk` in constant time.
/// Only the headers named in `signed_headers` take part.
///
/// Returns false when a named header or `X-Sdk-Date` is missing from the
/// request, or when `signature_hex` is not valid hex. Which headers must be
/// signed, and how far the date may drift, is the caller's policy.
pub fn verify(
    sk: &[u8],
    request: &SigningRequest,
    signed_headers: &[String],
    signature_hex: &str,
) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let Some(sdk_date) = header_value(request.headers, SDK_DATE_HEADER) else {
        return false;
    };

    let mut headers = Vec::with_capacity(signed_headers.len());
    for name in signed_headers {
        let name = name.to_lowercase();
        let Some(value) = header_value(request.headers, &name) else {
            return false;
        };
        headers.push((name, value));
    }

    let canonical = build_canonical_request(request, &headers);
    let mac = keyed_mac(sk, &string_to_sign(sdk_date, &canonical.text));
    mac.verify_slice(&signature).is_ok()
}

/// Parses an `Authorization` header value; `None` when it is not SDK-HMAC-SHA256.
///
/// Also `None` when a part is missing, repeated or empty, or an unknown part
/// is present. The parts may come in any order.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let parts = value.trim().strip_prefix(ALGORITHM)?;
    if !parts.starts_with(' ') {
        return None;
    }

    let mut access = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in parts.split(',') {
        let (key, part_value) = part.trim().split_once('=')?;
        let slot = match key {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.is_some() || part_value.is_empty() {
            return None;
        }
        *slot = Some(part_value);
    }

    let signed_headers: Vec<String> = signed_headers?.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(String::is_empty) {
        return None;
    }
    Some(ParsedAuthorization {
        access: access?.to_owned(),
        signed_headers,
        signature: signature?.to_owned(),
    })
}

/// Formats a time as `X-Sdk-Date` wants it: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn format_sdk_date(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(SDK_DATE_FORMAT)
        .expect("an OffsetDateTime has every component that the X-Sdk-Date format uses")
}

/// Parses an `X-Sdk-Date` value.
pub fn parse_sdk_date(value: &str) -> Option<OffsetDateTime> {
    // The length check rejects the optional `+` sign that `[year]` accepts.
    if value.len() != "YYYYMMDDTHHMMSSZ".len() {
        return None;
    }
    let local = PrimitiveDateTime::parse(value, SDK_DATE_FORMAT).ok()?;
    Some(local.assume_utc())
}

/// Builds the string to sign: the algorithm, the `X-Sdk-Date` value and the
/// hex SHA-256 of the canonical request, one per line.
pub fn string_to_sign(sdk_date: &str, canonical_request_text: &str) -> String {
    let request_hash = hex::encode(Sha256::digest(canonical_request_text.as_bytes()));
    format!("{ALGORITHM}\n{sdk_date}\n{request_hash}")
}

/// Percent-encodes `input` as the signer does: only `A-Z a-z 0-9 - _ . ~` stay
/// literal, and every other byte of the UTF-8 form becomes `%XX` (uppercase hex).
pub fn percent_encode(input: &str) -> String {
    let mut encoded = String::with_capacity(input.len());
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Builds the canonical URI: decode, split on `/`, encode each segment, and
/// end with `/`. The request itself is sent without that added `/`.
///
/// Because the path is decoded before the split, a `%2F` inside a segment
/// becomes a separator, as in the SDK.
/// Invalid UTF-8 after decoding becomes U+FFFD, as Python's `unquote` does.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode(path);
    let decoded = String::from_utf8_lossy(&decoded);

    let segments: Vec<String> = decoded.split('/').map(percent_encode).collect();
    let mut uri = segments.join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Builds the canonical query string: `key=value` pairs joined by `&`.
///
/// The pairs are sorted by decoded key, then decoded value, before encoding,
/// because the SDK sorts them that way. Sorting the encoded forms would put
/// `%XX` first and differs, for example, for the keys `a` and `{`.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs = query.to_vec();
    // Byte order of UTF-8 equals the code point order that Python sorts by.
    pairs.sort_unstable();

    let encoded: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect();
    encoded.join("&")
}

/// Decodes every `%XX` (hex in either case) and leaves any other `%` as it is.
fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                decoded.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    decoded
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// Assembles the canonical request from already selected, lowercase headers.
fn build_canonical_request(
    request: &SigningRequest,
    headers: &[(String, &str)],
) -> CanonicalRequest {
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    let signed_headers = names.join(";");

    let text = [
        request.method.to_uppercase(),
        canonical_uri(request.path),
        canonical_query(request.query),
        canonical_headers,
        signed_headers.clone(),
        payload_hash(request),
    ]
    .join("\n");

    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// Returns the lowercase hex SHA-256 of the body. As in the SDK, a non-empty
/// body with an `X-Sdk-Content-Sha256` header uses that header's value instead.
fn payload_hash(request: &SigningRequest) -> String {
    if request.body.is_empty() {
        return EMPTY_BODY_SHA256.to_owned();
    }
    if let Some(declared) = header_value(request.headers, CONTENT_SHA256_HEADER) {
        return declared.to_owned();
    }
    hex::encode(Sha256::digest(request.body))
}

/// Returns the trimmed value of the first header named `lowercase_name`, ignoring case.
fn header_value<'a>(headers: &[(&str, &'a str)], lowercase_name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(name, _)| name.to_lowercase() == lowercase_name)
        .map(|(_, value)| trim_header_value(value))
}

/// Trims Unicode whitespace, as Python's `str.strip()` in the SDK does. The two
/// differ only on U+001C to U+001F, which HTTP header values cannot contain.
fn trim_header_value(value: &str) -> &str {
    value.trim()
}

fn keyed_mac(sk: &[u8], string_to_sign: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(sk).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AK: &str = "HPUAEXAMPLEAK0000001";
    const SK: &[u8] = b"ExampleSecretKey0123456789abcdefghijABCD";
    const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const DATE: &str = "20240115T080910Z";

    fn get<'a>(
        path: &'a str,
        query: &'a [(&'a str, &'a str)],
        headers: &'a [(&'a str, &'a str)],
    ) -> SigningRequest<'a> {
        SigningRequest {
            method: "GET",
            path,
            query,
            headers,
            body: b"",
        }
    }

    fn expected_authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn vector_1_encryption_status() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "gaussdb.cn-north-4.myhuaweicloud.com"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", DATE),
        ];
        let path = "/v3/0a1b2c3d4e5f60718293a4b5c6d7e8f9/instances/f2b81ad3a7bd4b1e8fcd76a3c1b5c8c9in07/backups/encryption";
        let request = get(path, &[], &headers);

        assert_eq!(
            authorization(AK, SK, &request),
            expected_authorization(
                "content-type;host;x-project-id;x-sdk-date",
                "21e8d38e1a2f0fe31fa343b1c429db870c6ac2e5213314ac63259eca6d7eedce",
            )
        );
    }

    #[test]
    fn vector_2_paged_listing() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "gaussdbformysql.ap-southeast-1.myhuaweicloud.com"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", DATE),
        ];
        let query = [("offset", "100"), ("limit", "100")];
        let request = get(
            "/v3/0a1b2c3d4e5f60718293a4b5c6d7e8f9/instances",
            &query,
            &headers,
        );

        assert_eq!(canonical_query(&query), "limit=100&offset=100");
        assert_eq!(
            authorization(AK, SK, &request),
            expected_authorization(
                "content-type;host;x-project-id;x-sdk-date",
                "da32982de9aac940daf8002adb5217ad8b7b53c92f40886a959c675f3adb0a24",
            )
        );
    }

    #[test]
    fn vector_3_security_token() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "gaussdb-mysql.af-south-1.myhuaweicloud.com"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", DATE),
            ("X-Security-Token", "ExampleSecurityToken+/="),
        ];
        let query = [("limit", "50"), ("name", "*prod db"), ("offset", "0")];
        let request = get(
            "/v3.1/0a1b2c3d4e5f60718293a4b5c6d7e8f9/instances",
            &query,
            &headers,
        );

        assert_eq!(
            canonical_query(&query),
            "limit=50&name=%2Aprod%20db&offset=0"
        );
        assert_eq!(
            authorization(AK, SK, &request),
            expected_authorization(
                "content-type;host;x-project-id;x-sdk-date;x-security-token",
                "7956a23ecb2652e0c1a933205bf1b13cd98cd651be048f3b1abeb19071cd37e5",
            )
        );
    }

    #[test]
    fn guide_worked_example() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ];
        let query = [
            ("limit", "2"),
            ("marker", "13551d6b-755d-4757-b956-536f674975c0"),
        ];
        let request = get(
            "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            &query,
            &headers,
        );

        assert_eq!(
            authorization(
                "QTWAOYTTINDUT2QVKYUC",
                b"MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
                &request
            ),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, \
             SignedHeaders=content-type;host;x-sdk-date, \
             Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn canonical_request_layout() {
        let headers = [("Host", "127.0.0.1:8080"), ("X-Sdk-Date", DATE)];
        let query = [("b", "2"), ("a", "1")];
        let canonical = canonical_request(&get("/v3/p", &query, &headers));

        let expected = format!(
            "GET\n/v3/p/\na=1&b=2\nhost:127.0.0.1:8080\nx-sdk-date:{DATE}\n\nhost;x-sdk-date\n{EMPTY_BODY_SHA256}"
        );
        assert_eq!(canonical.text, expected);
        assert_eq!(canonical.signed_headers, "host;x-sdk-date");
    }

    #[test]
    fn uri_encoding_cases() {
        let cases = [
            ("/v3/p/instances", "/v3/p/instances/"),
            ("/v3/p/", "/v3/p/"),
            ("/", "/"),
            ("", "/"),
            ("/a//b", "/a//b/"),
            ("/a b/c", "/a%20b/c/"),
            ("/a%20b", "/a%20b/"),
            ("/a*b", "/a%2Ab/"),
            ("/a+b", "/a%2Bb/"),
            ("/a%2Fb", "/a/b/"),
            ("/a%2fb", "/a/b/"),
            ("/caf%C3%A9", "/caf%C3%A9/"),
            ("/café", "/caf%C3%A9/"),
            ("/数据库", "/%E6%95%B0%E6%8D%AE%E5%BA%93/"),
            ("/a~b-c_d.e", "/a~b-c_d.e/"),
            ("/a%7Eb", "/a~b/"),
            ("/100%", "/100%25/"),
            ("/%zz", "/%25zz/"),
            ("/%4", "/%254/"),
            ("/%FF", "/%EF%BF%BD/"),
            ("/a:b@c=d", "/a%3Ab%40c%3Dd/"),
        ];
        for (path, expected) in cases {
            assert_eq!(canonical_uri(path), expected, "path {path:?}");
        }
    }

    #[test]
    fn query_encoding_cases() {
        let cases: [(&[(&str, &str)], &str); 11] = [
            (&[], ""),
            (&[("name", "a b")], "name=a%20b"),
            (&[("name", "*")], "name=%2A"),
            (&[("name", "a+b")], "name=a%2Bb"),
            (&[("name", "a/b")], "name=a%2Fb"),
            (&[("name", "é")], "name=%C3%A9"),
            (&[("name", "~-_.")], "name=~-_."),
            (&[("name", "a=b&c")], "name=a%3Db%26c"),
            (&[("name", "")], "name="),
            (&[("a key", "v")], "a%20key=v"),
            (&[("k", "b"), ("k", "a")], "k=a&k=b"),
        ];
        for (query, expected) in cases {
            assert_eq!(canonical_query(query), expected, "query {query:?}");
        }
    }

    #[test]
    fn query_sorted_before_encoding() {
        // `{` sorts after `a`, but its encoded form `%7B` sorts before it.
        assert_eq!(canonical_query(&[("{", "1"), ("a", "2")]), "a=2&%7B=1");
        assert_eq!(canonical_query(&[("é", "1"), ("z", "2")]), "z=2&%C3%A9=1");
        assert_eq!(canonical_query(&[("k", "é"), ("k", "z")]), "k=z&k=%C3%A9");
    }

    #[test]
    fn headers_with_underscore_excluded() {
        let headers = [
            ("Host", "127.0.0.1"),
            ("X_Custom_Header", "excluded"),
            ("X-Sdk-Date", DATE),
        ];
        let canonical = canonical_request(&get("/", &[], &headers));

        assert_eq!(canonical.signed_headers, "host;x-sdk-date");
        assert!(!canonical.text.contains("excluded"), "{}", canonical.text);
    }

    #[test]
    fn headers_lowercased_and_sorted() {
        let headers = [
            ("X-SDK-DATE", DATE),
            ("host", "127.0.0.1"),
            ("Content-Type", "application/json"),
        ];
        let canonical = canonical_request(&get("/", &[], &headers));

        assert_eq!(canonical.signed_headers, "content-type;host;x-sdk-date");
    }

    #[test]
    fn header_values_trimmed() {
        let headers = [
            ("Content-Type", " \tapplication/json \t"),
            ("Host", "127.0.0.1"),
            ("X-Sdk-Date", DATE),
        ];
        let canonical = canonical_request(&get("/", &[], &headers));

        assert!(
            canonical.text.contains("\ncontent-type:application/json\n"),
            "{}",
            canonical.text
        );
    }

    #[test]
    fn header_value_inner_space_kept() {
        let headers = [
            ("Host", "127.0.0.1"),
            ("X-Note", "a  b"),
            ("X-Sdk-Date", DATE),
        ];
        let canonical = canonical_request(&get("/", &[], &headers));

        assert!(
            canonical.text.contains("\nx-note:a  b\n"),
            "{}",
            canonical.text
        );
    }

    #[test]
    fn method_uppercased() {
        let headers = [("Host", "127.0.0.1"), ("X-Sdk-Date", DATE)];
        let request = SigningRequest {
            method: "get",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"",
        };

        assert!(canonical_request(&request).text.starts_with("GET\n"));
    }

    #[test]
    fn payload_hash_of_body() {
        let headers = [("Host", "127.0.0.1"), ("X-Sdk-Date", DATE)];
        let request = SigningRequest {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"{}",
        };

        let text = canonical_request(&request).text;
        let body_hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert!(text.ends_with(&format!("\n{body_hash}")), "{text}");
    }

    #[test]
    fn payload_hash_unsigned_payload() {
        let headers = [
            ("Host", "127.0.0.1"),
            ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("X-Sdk-Date", DATE),
        ];
        let request = SigningRequest {
            method: "PUT",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"raw",
        };

        assert!(
            canonical_request(&request)
                .text
                .ends_with("\nUNSIGNED-PAYLOAD")
        );
    }

    #[test]
    fn payload_hash_empty_body_ignores_declared() {
        let headers = [
            ("Host", "127.0.0.1"),
            ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("X-Sdk-Date", DATE),
        ];
        let canonical = canonical_request(&get("/", &[], &headers));

        assert!(canonical.text.ends_with(EMPTY_BODY_SHA256));
    }

    #[test]
    #[should_panic(expected = "X-Sdk-Date")]
    fn authorization_without_date_panics() {
        let headers = [("Host", "127.0.0.1")];
        authorization(AK, SK, &get("/", &[], &headers));
    }

    /// Headers of a signed request to `/v3/p/instances`, plus one unsigned header.
    const VERIFY_HEADERS: [(&str, &str); 5] = [
        ("Content-Type", "application/json"),
        ("Host", "127.0.0.1:8080"),
        ("X-Project-Id", PROJECT),
        ("X-Sdk-Date", DATE),
        ("User_Agent", "not signed"),
    ];

    fn signed_parts(request: &SigningRequest) -> ParsedAuthorization {
        parse_authorization(&authorization(AK, SK, request)).expect("own header parses")
    }

    #[test]
    fn verify_accepts_own_signature() {
        let request = get("/v3/p/instances", &[("limit", "10")], &VERIFY_HEADERS);
        let parts = signed_parts(&request);

        assert!(verify(
            SK,
            &request,
            &parts.signed_headers,
            &parts.signature
        ));
    }

    #[test]
    fn verify_uses_only_named_headers() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let parts = signed_parts(&request);
        let mut more_headers = VERIFY_HEADERS.to_vec();
        more_headers.push(("X-Added-By-Proxy", "1"));
        let forwarded = get("/v3/p/instances", &[], &more_headers);

        assert!(verify(
            SK,
            &forwarded,
            &parts.signed_headers,
            &parts.signature
        ));
    }

    #[test]
    fn verify_rejects_wrong_key() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let parts = signed_parts(&request);

        assert!(!verify(
            b"another secret",
            &request,
            &parts.signed_headers,
            &parts.signature
        ));
    }

    #[test]
    fn verify_rejects_changed_request() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let parts = signed_parts(&request);
        let other_path = get("/v3/q/instances", &[], &VERIFY_HEADERS);
        let other_query = get("/v3/p/instances", &[("limit", "1")], &VERIFY_HEADERS);
        let mut other_headers = VERIFY_HEADERS;
        other_headers[2].1 = "ffffffffffffffffffffffffffffffff";
        let other_project = get("/v3/p/instances", &[], &other_headers);

        assert!(!verify(
            SK,
            &other_path,
            &parts.signed_headers,
            &parts.signature
        ));
        assert!(!verify(
            SK,
            &other_query,
            &parts.signed_headers,
            &parts.signature
        ));
        assert!(!verify(
            SK,
            &other_project,
            &parts.signed_headers,
            &parts.signature
        ));
    }

    #[test]
    fn verify_rejects_missing_signed_header() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let parts = signed_parts(&request);
        let without_project: Vec<_> = VERIFY_HEADERS
            .iter()
            .copied()
            .filter(|(name, _)| *name != "X-Project-Id")
            .collect();
        let stripped = get("/v3/p/instances", &[], &without_project);

        assert!(!verify(
            SK,
            &stripped,
            &parts.signed_headers,
            &parts.signature
        ));
    }

    #[test]
    fn verify_rejects_malformed_hex() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let parts = signed_parts(&request);
        let truncated = &parts.signature[..62];
        let odd_length = &parts.signature[..63];
        let not_hex = format!("zz{}", &parts.signature[2..]);

        assert!(!verify(SK, &request, &parts.signed_headers, truncated));
        assert!(!verify(SK, &request, &parts.signed_headers, odd_length));
        assert!(!verify(SK, &request, &parts.signed_headers, &not_hex));
        assert!(!verify(SK, &request, &parts.signed_headers, ""));
    }

    #[test]
    fn parse_authorization_round_trip() {
        let request = get("/v3/p/instances", &[], &VERIFY_HEADERS);
        let header = authorization(AK, SK, &request);

        let parts = parse_authorization(&header).expect("own header parses");
        assert_eq!(parts.access, AK);
        assert_eq!(
            parts.signed_headers,
            ["content-type", "host", "x-project-id", "x-sdk-date"]
        );
        assert_eq!(parts.signature.len(), 64);
        assert!(header.ends_with(&parts.signature));
    }

    #[test]
    fn parse_authorization_any_part_order() {
        let header = "SDK-HMAC-SHA256 Signature=abcd, Access=AK1,SignedHeaders=host";

        let expected = ParsedAuthorization {
            access: "AK1".to_owned(),
            signed_headers: vec!["host".to_owned()],
            signature: "abcd".to_owned(),
        };
        assert_eq!(parse_authorization(header), Some(expected));
    }

    #[test]
    fn parse_authorization_rejects_other_schemes() {
        let rejected = [
            "AWS4-HMAC-SHA256 Credential=AK/20240115/r/s/aws4_request, SignedHeaders=host, Signature=ab",
            "SDK-HMAC-SM3 Access=AK, SignedHeaders=host, Signature=ab",
            "V11-HMAC-SHA256 Credential=AK/info, SignedHeaders=host, Signature=ab",
            "SDK-HMAC-SHA256X Access=AK, SignedHeaders=host, Signature=ab",
            "Bearer token",
            "",
        ];
        for header in rejected {
            assert_eq!(parse_authorization(header), None, "header {header:?}");
        }
    }

    #[test]
    fn parse_authorization_rejects_bad_parts() {
        let rejected = [
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=ab, Signature=cd",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=ab, Region=r",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;;x-sdk-date, Signature=ab",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders, Signature=ab",
        ];
        for header in rejected {
            assert_eq!(parse_authorization(header), None, "header {header:?}");
        }
    }

    #[test]
    fn sdk_date_format() {
        assert_eq!(
            format_sdk_date(datetime!(2024-01-15 08:09:10.75 UTC)),
            "20240115T080910Z"
        );
    }

    #[test]
    fn sdk_date_format_converts_to_utc() {
        assert_eq!(
            format_sdk_date(datetime!(2024-01-15 16:09:10 +08:00)),
            "20240115T080910Z"
        );
    }

    #[test]
    fn sdk_date_round_trip() {
        let at = datetime!(2019-11-15 03:36:55 UTC);

        assert_eq!(parse_sdk_date(&format_sdk_date(at)), Some(at));
    }

    #[test]
    fn sdk_date_rejects_other_layouts() {
        let rejected = [
            "2024-01-15T08:09:10Z",
            "20240115T080910",
            "20240115T080910+0000",
            "+20240115T080910Z",
            "20241315T080910Z",
            "20240115t080910z",
            "",
        ];
        for value in rejected {
            assert_eq!(parse_sdk_date(value), None, "value {value:?}");
        }
    }
}
