//! The scenario file: which credentials the simulator accepts, its quota,
//! latency and clock skew, and the response it scripts for each instance.
//! `docs/simulator.md` describes the format with an example.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Error code of the scripted "instance not found" response. The exact code
/// that TaurusDB returns is not confirmed, so clients should treat any 404
/// with a `DBS.` code as "instance not found".
pub const NOT_FOUND_CODE: &str = "DBS.200823";

/// Largest `clock_skew_seconds` either way: ten years of 365.25 days. It
/// keeps the skewed clock after 1970 and before 9999, which the `Date`
/// header format requires.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 10 * 36_525 * 24 * 3600 / 100;

/// Error message of the scripted "instance not found" response.
pub const NOT_FOUND_MESSAGE: &str = "The DB instance does not exist.";

/// Settings and scripted responses for one simulator run. Every field is
/// optional in JSON, and unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Requests each identity (token or AK) may make in each one-second
    /// window before the gateway responds with 429. `None` means no quota.
    #[serde(default)]
    pub quota_per_second: Option<u32>,
    /// `Retry-After` value sent with quota 429s. `None` sends no header.
    #[serde(default)]
    pub quota_retry_after: Option<String>,
    /// Milliseconds to wait before every response.
    #[serde(default)]
    pub latency_ms: u64,
    /// Seconds to add to the system clock (negative: subtract) for the `Date`
    /// header and the `X-Sdk-Date` check.
    #[serde(default)]
    pub clock_skew_seconds: i64,
    #[serde(default)]
    pub tokens: Vec<TokenGrant>,
    #[serde(default)]
    pub keys: Vec<AccessKey>,
    /// The response for instances that `instances` does not list.
    #[serde(
        default = "ScriptedResponse::encryption_on",
        deserialize_with = "deserialize_response"
    )]
    pub default_status: ScriptedResponse,
    /// Responses per instance id. The nth request that passes authentication
    /// and the quota gets entry n, and the last entry repeats.
    #[serde(default, deserialize_with = "deserialize_instances")]
    pub instances: BTreeMap<String, Vec<ScriptedResponse>>,
}

/// An IAM token that the simulator accepts in `X-Auth-Token`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenGrant {
    pub token: String,
    /// Projects the token is scoped to. `None` accepts it for every project.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
}

/// An access key pair that the simulator accepts in AK/SK-signed requests.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub ak: String,
    pub sk: String,
    /// Set for temporary keys, whose requests must carry it in `X-Security-Token`.
    #[serde(default)]
    pub security_token: Option<String>,
}

/// One scripted response. Every field is optional, and the fields combine.
/// The status defaults to 200, and the JSON body carries each of
/// `encryption_status`, `error_code` and `error_msg` that is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedResponse {
    /// Value of `encryption_status` in the body, which may be any JSON value, `null` included.
    #[serde(default, deserialize_with = "deserialize_present")]
    pub encryption_status: Option<Value>,
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    /// `Retry-After` header value, sent as given.
    pub retry_after: Option<String>,
    /// Raw body that replaces the JSON body. An empty string sends no body.
    pub body: Option<String>,
    /// `Content-Type` header value, replacing `application/json`.
    pub content_type: Option<String>,
    /// Milliseconds to wait before this response, after `latency_ms`.
    #[serde(default)]
    pub delay_ms: u64,
    /// Whether to break the connection instead of sending a response.
    #[serde(default)]
    pub reset: bool,
    /// `Location` header value, for redirects.
    pub location: Option<String>,
    /// Size in bytes that the JSON body must exceed, by way of a long `padding` field.
    pub oversized_bytes: Option<usize>,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario {
            quota_per_second: None,
            quota_retry_after: None,
            latency_ms: 0,
            clock_skew_seconds: 0,
            tokens: Vec::new(),
            keys: Vec::new(),
            default_status: ScriptedResponse::encryption_on(),
            instances: BTreeMap::new(),
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read scenario file {}", path.display()))?;
        parse(&text).map_err(|reason| anyhow!("invalid scenario file {}: {reason}", path.display()))
    }

    /// Parses and validates a scenario from JSON text.
    pub fn from_json(text: &str) -> anyhow::Result<Scenario> {
        parse(text).map_err(|reason| anyhow!("invalid scenario: {reason}"))
    }

    /// Checks what JSON parsing cannot: value ranges, duplicate credentials,
    /// header values and keys that would be ignored.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.check()
            .map_err(|reason| anyhow!("invalid scenario: {reason}"))
    }

    fn check(&self) -> Result<(), String> {
        if self.clock_skew_seconds.unsigned_abs() > MAX_CLOCK_SKEW_SECONDS.unsigned_abs() {
            return Err(format!(
                "clock_skew_seconds {} is outside -{MAX_CLOCK_SKEW_SECONDS} to {MAX_CLOCK_SKEW_SECONDS}",
                self.clock_skew_seconds
            ));
        }
        if let Some(value) = &self.quota_retry_after {
            check_header_value("quota_retry_after", value)?;
        }

        let mut tokens = HashSet::new();
        for (index, grant) in self.tokens.iter().enumerate() {
            if grant.token.is_empty() {
                return Err(format!("tokens[{index}]: token is empty"));
            }
            if !tokens.insert(grant.token.as_str()) {
                return Err(format!("tokens[{index}]: the same token is listed twice"));
            }
        }

        let mut access_keys = HashSet::new();
        for (index, key) in self.keys.iter().enumerate() {
            if key.ak.is_empty() || key.sk.is_empty() {
                return Err(format!("keys[{index}]: ak and sk must not be empty"));
            }
            if !access_keys.insert(key.ak.as_str()) {
                return Err(format!(
                    "keys[{index}]: access key {} is listed twice",
                    key.ak
                ));
            }
        }

        self.default_status
            .check()
            .map_err(|reason| format!("default_status: {reason}"))?;
        for (instance_id, responses) in &self.instances {
            if instance_id.is_empty() {
                return Err("instances: an instance id is empty".to_owned());
            }
            if responses.is_empty() {
                return Err(format!(
                    "instance {instance_id}: the response list is empty"
                ));
            }
            for (index, response) in responses.iter().enumerate() {
                response.check().map_err(|reason| {
                    format!("instance {instance_id}, response {}: {reason}", index + 1)
                })?;
            }
        }
        Ok(())
    }
}

fn parse(text: &str) -> Result<Scenario, String> {
    let scenario: Scenario = serde_json::from_str(text).map_err(|error| error.to_string())?;
    scenario.check()?;
    Ok(scenario)
}

impl ScriptedResponse {
    /// Returns a 200 response with `{"encryption_status": value}`.
    pub fn encryption(value: impl Into<Value>) -> ScriptedResponse {
        ScriptedResponse {
            encryption_status: Some(value.into()),
            ..ScriptedResponse::default()
        }
    }

    /// Returns a 200 response with `{"encryption_status": "on"}`.
    pub fn encryption_on() -> ScriptedResponse {
        ScriptedResponse::encryption("on")
    }

    /// Returns a 404 "instance not found" response with [`NOT_FOUND_CODE`].
    pub fn not_found() -> ScriptedResponse {
        ScriptedResponse {
            status: Some(404),
            error_code: Some(NOT_FOUND_CODE.to_owned()),
            error_msg: Some(NOT_FOUND_MESSAGE.to_owned()),
            ..ScriptedResponse::default()
        }
    }

    /// Reads one response in any of its JSON forms: an object, the string
    /// `"not_found"`, or another string as the `encryption_status` value.
    fn from_json_value(value: Value) -> Result<ScriptedResponse, String> {
        match value {
            Value::String(text) if text == "not_found" => Ok(ScriptedResponse::not_found()),
            Value::String(text) => Ok(ScriptedResponse::encryption(text)),
            Value::Object(_) => {
                ScriptedResponse::deserialize(value).map_err(|error| error.to_string())
            }
            other => Err(format!(
                "a response must be an object or a string, not {}",
                json_kind(&other)
            )),
        }
    }

    fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status
            && !(200..=599).contains(&status)
        {
            return Err(format!("status {status} is outside 200 to 599"));
        }

        for (key, value) in [
            ("retry_after", &self.retry_after),
            ("content_type", &self.content_type),
            ("location", &self.location),
        ] {
            if let Some(value) = value {
                check_header_value(key, value)?;
            }
        }

        if self.body.is_some() {
            let replaced = [
                ("encryption_status", self.encryption_status.is_some()),
                ("error_code", self.error_code.is_some()),
                ("error_msg", self.error_msg.is_some()),
                ("oversized_bytes", self.oversized_bytes.is_some()),
            ];
            if let Some((key, _)) = replaced.iter().find(|(_, is_set)| *is_set) {
                return Err(format!(
                    "`body` replaces the JSON body, so `{key}` would be ignored"
                ));
            }
        }

        if self.reset {
            let ignored = [
                ("encryption_status", self.encryption_status.is_some()),
                ("status", self.status.is_some()),
                ("error_code", self.error_code.is_some()),
                ("error_msg", self.error_msg.is_some()),
                ("retry_after", self.retry_after.is_some()),
                ("body", self.body.is_some()),
                ("content_type", self.content_type.is_some()),
                ("location", self.location.is_some()),
                ("oversized_bytes", self.oversized_bytes.is_some()),
            ];
            if let Some((key, _)) = ignored.iter().find(|(_, is_set)| *is_set) {
                return Err(format!(
                    "`reset` sends no usable response, so `{key}` would be ignored"
                ));
            }
        }
        Ok(())
    }
}

/// Rejects values that cannot go into an HTTP header as given.
fn check_header_value(key: &str, value: &str) -> Result<(), String> {
    let is_printable = value.bytes().all(|byte| (0x20..=0x7e).contains(&byte));
    if is_printable {
        Ok(())
    } else {
        Err(format!(
            "`{key}` must contain only printable ASCII characters, because it is sent as a header"
        ))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Keeps an explicit JSON `null` as `Some(Value::Null)`, so that it differs
/// from a missing key.
fn deserialize_present<'de, D>(deserializer: D) -> Result<Option<Value>, D::Error>
where
    D: Deserializer<'de>,
{
    Value::deserialize(deserializer).map(Some)
}

fn deserialize_response<'de, D>(deserializer: D) -> Result<ScriptedResponse, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    ScriptedResponse::from_json_value(value)
        .map_err(|reason| D::Error::custom(format!("default_status: {reason}")))
}

fn deserialize_instances<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<ScriptedResponse>>, D::Error>
where
    D: Deserializer<'de>,
{
    let entries = BTreeMap::<String, Value>::deserialize(deserializer)?;
    let mut instances = BTreeMap::new();
    for (instance_id, value) in entries {
        let values = match value {
            Value::Array(values) => values,
            single => vec![single],
        };
        let mut responses = Vec::with_capacity(values.len());
        for (index, value) in values.into_iter().enumerate() {
            let response = ScriptedResponse::from_json_value(value).map_err(|reason| {
                D::Error::custom(format!(
                    "instance {instance_id}, response {}: {reason}",
                    index + 1
                ))
            })?;
            responses.push(response);
        }
        instances.insert(instance_id, responses);
    }
    Ok(instances)
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("token", &"<redacted>")
            .field("projects", &self.projects)
            .finish()
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let security_token = self.security_token.as_ref().map(|_| "<redacted>");
        f.debug_struct("AccessKey")
            .field("ak", &self.ak)
            .field("sk", &"<redacted>")
            .field("security_token", &security_token)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(text: &str) -> String {
        format!("{:#}", Scenario::from_json(text).unwrap_err())
    }

    #[test]
    fn scenario_empty_object_uses_defaults() {
        let scenario = Scenario::from_json("{}").unwrap();
        assert_eq!(scenario.quota_per_second, None);
        assert_eq!(scenario.quota_retry_after, None);
        assert_eq!(scenario.latency_ms, 0);
        assert_eq!(scenario.clock_skew_seconds, 0);
        assert!(scenario.tokens.is_empty());
        assert!(scenario.keys.is_empty());
        assert_eq!(scenario.default_status, ScriptedResponse::encryption_on());
        assert!(scenario.instances.is_empty());
    }

    #[test]
    fn scenario_reads_every_top_level_key() {
        let scenario = Scenario::from_json(
            r#"{
                "quota_per_second": 50,
                "quota_retry_after": "1",
                "latency_ms": 20,
                "clock_skew_seconds": -30,
                "tokens": [{"token": "t1", "projects": ["0a1b2c3d4e5f60718293a4b5c6d7e8f9"]}, {"token": "t2"}],
                "keys": [{"ak": "AK1", "sk": "SK1"}, {"ak": "AK2", "sk": "SK2", "security_token": "ST2"}],
                "default_status": "off",
                "instances": {"i1": "on"}
            }"#,
        )
        .unwrap();

        assert_eq!(scenario.quota_per_second, Some(50));
        assert_eq!(scenario.quota_retry_after.as_deref(), Some("1"));
        assert_eq!(scenario.latency_ms, 20);
        assert_eq!(scenario.clock_skew_seconds, -30);
        assert_eq!(scenario.tokens.len(), 2);
        assert_eq!(
            scenario.tokens[0].projects,
            Some(vec!["0a1b2c3d4e5f60718293a4b5c6d7e8f9".to_owned()])
        );
        assert_eq!(scenario.tokens[1].projects, None);
        assert_eq!(scenario.keys[0].security_token, None);
        assert_eq!(scenario.keys[1].security_token.as_deref(), Some("ST2"));
        assert_eq!(scenario.default_status, ScriptedResponse::encryption("off"));
        assert_eq!(
            scenario.instances["i1"],
            vec![ScriptedResponse::encryption_on()]
        );
    }

    #[test]
    fn scenario_string_shorthands() {
        let scenario = Scenario::from_json(
            r#"{"instances": {"a": "off", "b": "ON", "c": "not_found", "d": ""}}"#,
        )
        .unwrap();

        assert_eq!(
            scenario.instances["a"],
            vec![ScriptedResponse::encryption("off")]
        );
        assert_eq!(
            scenario.instances["b"],
            vec![ScriptedResponse::encryption("ON")]
        );
        assert_eq!(scenario.instances["c"], vec![ScriptedResponse::not_found()]);
        assert_eq!(
            scenario.instances["d"],
            vec![ScriptedResponse::encryption("")]
        );
    }

    #[test]
    fn scenario_keeps_null_encryption_status() {
        let scenario = Scenario::from_json(
            r#"{"instances": {"a": {"encryption_status": null}, "b": {"encryption_status": 1}, "c": {}}}"#,
        )
        .unwrap();

        assert_eq!(
            scenario.instances["a"][0].encryption_status,
            Some(Value::Null)
        );
        assert_eq!(scenario.instances["b"][0].encryption_status, Some(json!(1)));
        assert_eq!(scenario.instances["c"][0].encryption_status, None);
    }

    #[test]
    fn scenario_reads_response_list() {
        let scenario = Scenario::from_json(
            r#"{"instances": {"a": [{"status": 503}, "not_found", {"encryption_status": "on", "delay_ms": 5}]}}"#,
        )
        .unwrap();

        let responses = &scenario.instances["a"];
        assert_eq!(responses.len(), 3);
        assert_eq!(responses[0].status, Some(503));
        assert_eq!(responses[1], ScriptedResponse::not_found());
        assert_eq!(responses[2].delay_ms, 5);
    }

    #[test]
    fn scenario_rejects_unknown_top_level_key() {
        let message = error_of(r#"{"quota_per_secnod": 5}"#);
        assert!(
            message.contains("unknown field `quota_per_secnod`"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_unknown_response_key() {
        let message = error_of(r#"{"instances": {"i1": ["on", {"stauts": 500}]}}"#);
        assert!(message.contains("unknown field `stauts`"), "{message}");
        assert!(message.contains("instance i1, response 2"), "{message}");
    }

    #[test]
    fn scenario_rejects_unknown_key_in_credentials() {
        let message = error_of(r#"{"keys": [{"ak": "A", "sk": "S", "token": "x"}]}"#);
        assert!(message.contains("unknown field `token`"), "{message}");
    }

    #[test]
    fn scenario_rejects_unknown_default_status_key() {
        let message = error_of(r#"{"default_status": {"encryption": "on"}}"#);
        assert!(message.contains("unknown field `encryption`"), "{message}");
        assert!(message.contains("default_status"), "{message}");
    }

    #[test]
    fn scenario_rejects_non_object_response() {
        let message = error_of(r#"{"instances": {"i1": 5}}"#);
        assert!(
            message.contains("must be an object or a string, not a number"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_empty_response_list() {
        let message = error_of(r#"{"instances": {"i1": []}}"#);
        assert!(
            message.contains("instance i1: the response list is empty"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_status_out_of_range() {
        let message = error_of(r#"{"instances": {"i1": {"status": 101}}}"#);
        assert!(
            message.contains("status 101 is outside 200 to 599"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_body_with_json_fields() {
        let message =
            error_of(r#"{"instances": {"i1": {"body": "x", "encryption_status": "on"}}}"#);
        assert!(
            message.contains("`encryption_status` would be ignored"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_reset_with_status() {
        let message = error_of(r#"{"instances": {"i1": {"reset": true, "status": 500}}}"#);
        assert!(message.contains("`status` would be ignored"), "{message}");
    }

    #[test]
    fn scenario_accepts_reset_with_delay() {
        let scenario =
            Scenario::from_json(r#"{"instances": {"i1": {"reset": true, "delay_ms": 10}}}"#)
                .unwrap();
        assert!(scenario.instances["i1"][0].reset);
    }

    #[test]
    fn scenario_rejects_extreme_clock_skew() {
        let message = error_of(r#"{"clock_skew_seconds": -9223372036854775808}"#);
        assert!(
            message.contains("clock_skew_seconds -9223372036854775808 is outside"),
            "{message}"
        );
        let within = format!(r#"{{"clock_skew_seconds": {MAX_CLOCK_SKEW_SECONDS}}}"#);
        assert!(Scenario::from_json(&within).is_ok());
    }

    #[test]
    fn scenario_rejects_header_value_with_newline() {
        let message = error_of(r#"{"instances": {"i1": {"retry_after": "1\r\nX-Evil: 1"}}}"#);
        assert!(
            message.contains("`retry_after` must contain only printable ASCII"),
            "{message}"
        );
    }

    #[test]
    fn scenario_rejects_duplicate_access_key() {
        let message = error_of(r#"{"keys": [{"ak": "A", "sk": "S1"}, {"ak": "A", "sk": "S2"}]}"#);
        assert!(
            message.contains("access key A is listed twice"),
            "{message}"
        );
        assert!(!message.contains("S1"), "{message}");
    }

    #[test]
    fn scenario_debug_hides_secrets() {
        let scenario = Scenario::from_json(
            r#"{"tokens": [{"token": "token-secret"}],
                "keys": [{"ak": "AK1", "sk": "sk-secret", "security_token": "st-secret"}]}"#,
        )
        .unwrap();

        let output = format!("{scenario:?}");
        for secret in ["token-secret", "sk-secret", "st-secret"] {
            assert!(!output.contains(secret), "{output}");
        }
        assert!(output.contains("AK1"), "{output}");
    }

    #[test]
    fn scenario_file_errors_name_the_file() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("missing.json");
        let message = format!("{:#}", Scenario::from_file(&missing).unwrap_err());
        assert!(message.contains("missing.json"), "{message}");
        assert!(
            message.contains("failed to read scenario file"),
            "{message}"
        );

        let invalid = folder.path().join("invalid.json");
        std::fs::write(&invalid, r#"{"latency_ms": "slow"}"#).unwrap();
        let message = format!("{:#}", Scenario::from_file(&invalid).unwrap_err());
        assert!(message.contains("invalid.json"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }
}
