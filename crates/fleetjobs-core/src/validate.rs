//! Field constraints from the botocore models (length, pattern, range, enum). botocore checks
//! only required members, types and minimums client-side, so everything else is ours to
//! enforce. Messages follow the AWS "1 validation error detected" style.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ApiError, ApiResult};
use crate::model::StatusDetails;

/// Inline job document limit (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 32_768;
/// `targets` per job.
pub const MAX_TARGETS: usize = 100;
/// `statusDetails` pairs.
pub const MAX_STATUS_DETAILS: usize = 10;
/// `statusDetails` value length (characters).
pub const MAX_DETAILS_VALUE_CHARS: usize = 1024;
/// `stepTimeoutInMinutes` / `inProgressTimeoutInMinutes` upper bound (7 days).
pub const MAX_TIMEOUT_MINUTES: i64 = 10_080;

fn re(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("static pattern")
}

static JOB_ID: LazyLock<Regex> = LazyLock::new(|| re("[a-zA-Z0-9_-]+"));
static THING_NAME: LazyLock<Regex> = LazyLock::new(|| re("[a-zA-Z0-9:_-]+"));
static NO_CONTROL: LazyLock<Regex> = LazyLock::new(|| re(r"[^\p{C}]+"));
static REASON_CODE: LazyLock<Regex> = LazyLock::new(|| re(r"[\p{Lu}\p{Nd}_]+"));
static DETAILS_KEY: LazyLock<Regex> = LazyLock::new(|| re("[a-zA-Z0-9:_-]+"));
static POLICY_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"[\w+=,.@-]+"));
static TEMPLATE_NAME: LazyLock<Regex> = LazyLock::new(|| re("[0-9A-Za-z_-]+"));
static ATTRIBUTE_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"[a-zA-Z0-9_.,@/:#-]+"));
static ATTRIBUTE_VALUE: LazyLock<Regex> = LazyLock::new(|| re(r"[a-zA-Z0-9_.,@/:#=\[\]-]*"));
static GRAPH_OR_SPACE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:[^\p{C}\s]|\x20)*"));
static USER_PROPERTY_KEY: LazyLock<Regex> = LazyLock::new(|| re("[a-zA-Z0-9:$.]+"));
static CONNECTION_ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| re("[a-zA-Z0-9:.]+"));
static CERTIFICATE_ID: LazyLock<Regex> = LazyLock::new(|| re("(0x)?[a-fA-F0-9]+"));

fn violation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

/// Length (in characters) within `min..=max` and the whole string matching `pattern`.
fn string(value: &str, member: &str, min: usize, max: usize, pattern: Option<(&Regex, &str)>) -> ApiResult<()> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(violation(value, member, &format!("Member must have length between {min} and {max}")));
    }
    if let Some((re, text)) = pattern {
        if !re.is_match(value) {
            return Err(violation(value, member, &format!("Member must satisfy regular expression pattern: {text}")));
        }
    }
    Ok(())
}

/// Why a request body or payload is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonObjectError {
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("is not valid JSON: {0}")]
    Invalid(String),
}

/// A request's JSON object, from an HTTP body or an MQTT payload alike: blank means `{}`, as
/// AWS takes an empty body or payload. Each edge words the error in its own dialect.
pub fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, JsonObjectError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(JsonObjectError::NotAnObject),
        Err(e) => Err(JsonObjectError::Invalid(e.to_string())),
    }
}

pub fn job_id(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 64, Some((&JOB_ID, "[a-zA-Z0-9_-]+")))
}

pub fn thing_name(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&THING_NAME, "[a-zA-Z0-9:_-]+")))
}

pub fn thing_group_name(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&THING_NAME, "[a-zA-Z0-9:_-]+")))
}

/// `thingGroupDescription`: at most 2028 printable characters or spaces.
pub fn thing_group_description(value: &str) -> ApiResult<()> {
    string(value, "thingGroupProperties.thingGroupDescription", 0, 2028, Some((&GRAPH_OR_SPACE, r"[\p{Graph}\x20]*")))
}

pub fn thing_type_name(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&THING_NAME, "[a-zA-Z0-9:_-]+")))
}

/// `thingTypeDescription`: at most 2028 printable characters or spaces.
pub fn thing_type_description(value: &str) -> ApiResult<()> {
    string(value, "thingTypeProperties.thingTypeDescription", 0, 2028, Some((&GRAPH_OR_SPACE, r"[\p{Graph}\x20]*")))
}

/// An `AttributeName` outside an attribute payload (searchable and propagating attributes).
pub fn attribute_name(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&ATTRIBUTE_NAME, "[a-zA-Z0-9_.,@/:#-]+")))
}

/// A `PropagatingAttribute`'s `userPropertyKey`.
pub fn user_property_key(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&USER_PROPERTY_KEY, "[a-zA-Z0-9:$.]+")))
}

/// A `PropagatingAttribute`'s `connectionAttribute`.
pub fn connection_attribute(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 128, Some((&CONNECTION_ATTRIBUTE, "[a-zA-Z0-9:.]+")))
}

pub fn namespace_id(value: &str) -> ApiResult<()> {
    string(value, "namespaceId", 1, 64, Some((&JOB_ID, "[a-zA-Z0-9_-]+")))
}

/// `description` / `comment`: at most 2028 characters, no control characters.
pub fn free_text(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 2028, Some((&NO_CONTROL, r"[^\p{C}]+")))
}

pub fn reason_code(value: &str) -> ApiResult<()> {
    string(value, "reasonCode", 1, 128, Some((&REASON_CODE, r"[\p{Upper}\p{Digit}_]+")))
}

pub fn policy_name(value: &str) -> ApiResult<()> {
    string(value, "policyName", 1, 128, Some((&POLICY_NAME, r"[\w+=,.@-]+")))
}

pub fn certificate_id(value: &str) -> ApiResult<()> {
    string(value, "certificateId", 64, 64, Some((&CERTIFICATE_ID, "(0x)?[a-fA-F0-9]+")))
}

/// `CertificatePem`: 1 to 65,536 characters.
pub fn certificate_pem(value: &str, member: &str) -> ApiResult<()> {
    string(value, member, 1, 65_536, None)
}

/// A `RegistrationConfig`'s members: `templateBody` (at most 10,240 characters), `roleArn`
/// (20 to 2,048), `templateName` (1 to 36, `[0-9A-Za-z_-]`).
pub fn registration_config(
    template_body: Option<&str>,
    role_arn: Option<&str>,
    template_name: Option<&str>,
) -> ApiResult<()> {
    template_body.map_or(Ok(()), |v| string(v, "registrationConfig.templateBody", 0, 10_240, None))?;
    role_arn.map_or(Ok(()), |v| string(v, "registrationConfig.roleArn", 20, 2048, None))?;
    template_name.map_or(Ok(()), |v| {
        string(v, "registrationConfig.templateName", 1, 36, Some((&TEMPLATE_NAME, "^[0-9A-Za-z_-]+$")))
    })
}

pub fn attribute(name: &str, value: &str) -> ApiResult<()> {
    string(name, "attributePayload.attributes.key", 1, 128, Some((&ATTRIBUTE_NAME, "[a-zA-Z0-9_.,@/:#-]+")))?;
    string(value, "attributePayload.attributes.value", 0, 800, Some((&ATTRIBUTE_VALUE, r"[a-zA-Z0-9_.,@/:#=\[\]-]*")))
}

/// `maxResults` on list calls: 1..250.
pub fn max_results(value: i64) -> ApiResult<()> {
    if !(1..=250).contains(&value) {
        return Err(violation(&value.to_string(), "maxResults", "Member must have value between 1 and 250"));
    }
    Ok(())
}

/// A job document: at most 32 KB, valid UTF-8 JSON.
pub fn job_document(document: &str) -> ApiResult<serde_json::Value> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::invalid(format!(
            "The job document exceeds the maximum size of {MAX_DOCUMENT_BYTES} bytes."
        )));
    }
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::invalid("The job document must be a JSON object.")),
        Err(e) => Err(ApiError::invalid(format!("The job document is not valid JSON: {e}"))),
    }
}

/// `stepTimeoutInMinutes`: 1..10080, and -1 (discard the step timer) where `allow_discard`.
pub fn step_timeout(value: i64, allow_discard: bool) -> Result<(), String> {
    if (1..=MAX_TIMEOUT_MINUTES).contains(&value) || (allow_discard && value == -1) {
        Ok(())
    } else {
        Err(format!("stepTimeoutInMinutes must be between 1 and {MAX_TIMEOUT_MINUTES}"))
    }
}

/// `statusDetails` as a client sends it: an object whose values are strings, or numbers and
/// booleans, taken as their JSON text (devices such as the JS `jobs-agent.js` send them).
/// Deserializing reads the types; [`status_details`] checks the limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentStatusDetails(pub StatusDetails);

impl<'de> serde::Deserialize<'de> for SentStatusDetails {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};
        use std::fmt;

        /// One value, as its text.
        struct Text(String);
        impl<'de> serde::Deserialize<'de> for Text {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Text;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: Error>(self, v: &str) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_string<E: Error>(self, v: String) -> Result<Text, E> {
                        Ok(Text(v))
                    }
                    fn visit_bool<E: Error>(self, v: bool) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_i64<E: Error>(self, v: i64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_u64<E: Error>(self, v: u64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    // Debug keeps the JSON spelling of a float (`1.0`, `0.81`, `1e21`).
                    fn visit_f64<E: Error>(self, v: f64) -> Result<Text, E> {
                        Ok(Text(format!("{v:?}")))
                    }
                }
                d.deserialize_any(V)
            }
        }

        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = SentStatusDetails;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SentStatusDetails, A::Error> {
                let mut out = StatusDetails::new();
                while let Some((k, Text(v))) = m.next_entry::<String, Text>()? {
                    out.insert(k, v);
                }
                Ok(SentStatusDetails(out))
            }
        }
        d.deserialize_map(Map)
    }
}

/// Check a `statusDetails` map against AWS's limits: at most 10 entries, keys
/// `[a-zA-Z0-9:_-]{1,128}`, values 1 to 1,024 characters without control characters.
pub fn status_details(details: &StatusDetails) -> Result<(), String> {
    if details.len() > MAX_STATUS_DETAILS {
        return Err(format!("statusDetails can have at most {MAX_STATUS_DETAILS} entries"));
    }
    for (key, text) in details {
        if key.is_empty() || key.chars().count() > 128 || !DETAILS_KEY.is_match(key) {
            return Err(format!("statusDetails key '{key}' must match [a-zA-Z0-9:_-]+ and have 1 to 128 characters"));
        }
        if text.is_empty() || text.chars().count() > MAX_DETAILS_VALUE_CHARS || !NO_CONTROL.is_match(text) {
            return Err(format!(
                "statusDetails value of '{key}' must have 1 to {MAX_DETAILS_VALUE_CHARS} characters and no control characters"
            ));
        }
    }
    Ok(())
}

/// Parse a scheduling date-time (`StringDateTime`): `YYYY-MM-DDTHH:MM`, optionally with `:SS`
/// and a trailing `Z`, read as UTC. Returns epoch milliseconds.
pub fn date_time(s: &str) -> Option<crate::Millis> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let mut t = time.split(':');
    let (hh, mm) = (num(t.next()?, 2)?, num(t.next()?, 2)?);
    let ss = match t.next() {
        Some(v) => num(v, 2)?,
        None => 0,
    };
    if d.next().is_some() || t.next().is_some() || ss > 59 {
        return None;
    }
    let field = |v: i64| u8::try_from(v).ok();
    let civil = crate::utc::Civil {
        year: i32::try_from(y).ok()?,
        month: field(m)?,
        day: field(day)?,
        hour: field(hh)?,
        minute: field(mm)?,
        second: field(ss)?,
    };
    civil.to_unix().map(|secs| secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_ids() {
        assert!(job_id("example-job-01", "jobId").is_ok());
        assert!(job_id("a_B-9", "jobId").is_ok());
        let err = job_id("bad id!", "jobId").unwrap_err();
        assert!(err.message.contains("regular expression"), "{}", err.message);
        assert!(job_id("", "jobId").is_err());
        assert!(job_id(&"a".repeat(64), "jobId").is_ok());
        assert!(job_id(&"a".repeat(65), "jobId").is_err());
    }

    #[test]
    fn thing_names() {
        assert!(thing_name("MyRaspberryPi", "thingName").is_ok());
        assert!(thing_name("a:b_c-d", "thingName").is_ok());
        assert!(thing_name("a/b", "thingName").is_err());
        assert!(thing_name(&"a".repeat(129), "thingName").is_err());
    }

    #[test]
    fn free_text_rejects_control_chars() {
        assert!(free_text("My First test job", "description").is_ok());
        assert!(free_text("line\nbreak", "description").is_err());
        assert!(free_text(&"x".repeat(2029), "description").is_err());
    }

    #[test]
    fn reason_codes() {
        assert!(reason_code("USER_CANCEL_1").is_ok());
        assert!(reason_code("lower").is_err());
    }

    #[test]
    fn documents() {
        assert!(job_document(r#"{"operation":"customJob","otherInfo":"someValue"}"#).is_ok());
        assert!(job_document("not json").is_err());
        assert!(job_document("[1]").is_err());
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(job_document(&big).unwrap_err().message.contains("maximum size"));
    }

    #[test]
    fn status_details_rules() {
        let sent = |v: serde_json::Value| serde_json::from_value::<SentStatusDetails>(v).map(|d| d.0);
        let ok = sent(json!({"step": "1 of 2", "uptime": 0.81, "ok": true, "n": 3, "f": 1.0})).unwrap();
        assert_eq!((ok["uptime"].as_str(), ok["ok"].as_str(), ok["n"].as_str()), ("0.81", "true", "3"));
        assert_eq!(ok["f"], "1.0", "a float keeps its JSON spelling");
        assert!(status_details(&ok).is_ok());
        assert!(sent(json!("x")).is_err());
        assert!(sent(json!({"k": {"nested": 1}})).is_err());
        assert!(sent(json!({"k": null})).is_err());
        let checked = |v| status_details(&sent(v).unwrap());
        assert!(checked(json!({"bad key": "v"})).is_err());
        assert!(checked(json!({"k": ""})).is_err());
        assert!(checked(json!({"k": "a\u{0007}b"})).is_err());
        assert!(checked(json!({"k": "v".repeat(1025)})).is_err());
        let eleven: serde_json::Map<_, _> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(checked(serde_json::Value::Object(eleven)).is_err());
    }

    #[test]
    fn step_timeouts_and_max_results() {
        assert!(step_timeout(1, false).is_ok());
        assert!(step_timeout(10_080, false).is_ok());
        assert!(step_timeout(0, false).is_err());
        assert!(step_timeout(-1, false).is_err());
        assert!(step_timeout(-1, true).is_ok());
        assert!(step_timeout(10_081, true).is_err());
        assert!(max_results(250).is_ok());
        assert!(max_results(251).is_err());
        assert!(max_results(0).is_err());
    }

    #[test]
    fn date_times() {
        assert_eq!(date_time("1970-01-01T00:00"), Some(0));
        assert_eq!(date_time("2025-06-01T10:00"), Some(1_748_772_000_000));
        assert_eq!(date_time("2025-06-01T10:00:30Z"), Some(1_748_772_030_000));
        assert_eq!(date_time("2024-02-29T00:00"), Some(1_709_164_800_000));
        for bad in
            ["2023-02-29T00:00", "2025-13-01T00:00", "2025-06-01 10:00", "2025-06-01T24:00", "tomorrow", "2025-6-1T1:0"]
        {
            assert_eq!(date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn certificate_ids_and_policy_names() {
        assert!(certificate_id(&"a".repeat(64)).is_ok());
        assert!(certificate_id(&"g".repeat(64)).is_err());
        assert!(certificate_id("abc").is_err());
        assert!(policy_name("MyIotPolicy").is_ok());
        assert!(policy_name("bad name").is_err());
    }
}
