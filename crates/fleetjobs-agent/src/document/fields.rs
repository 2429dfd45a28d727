//! Typed, lenient-where-the-clients-are field readers that turn a wrong type into a
//! [`DocumentError`] naming the field (`steps[1].action.input.handler`, ...).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::plan::DocumentError;

pub(super) type Obj = Map<String, Value>;

pub(super) fn error(reason: impl Into<String>) -> DocumentError {
    DocumentError(reason.into())
}

/// `where_` joined with `key`, for messages: `steps[0].action` + `name`.
pub(super) fn at(where_: &str, key: &str) -> String {
    if where_.is_empty() {
        key.to_owned()
    } else {
        format!("{where_}.{key}")
    }
}

fn present<'a>(o: &'a Obj, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

pub(super) fn object<'a>(v: &'a Value, name: &str) -> Result<&'a Obj, DocumentError> {
    v.as_object().ok_or_else(|| error(format!("`{name}` must be an object")))
}

pub(super) fn opt_object<'a>(o: &'a Obj, where_: &str, key: &str) -> Result<Option<&'a Obj>, DocumentError> {
    present(o, key).map(|v| object(v, &at(where_, key))).transpose()
}

pub(super) fn req_object<'a>(o: &'a Obj, where_: &str, key: &str) -> Result<&'a Obj, DocumentError> {
    opt_object(o, where_, key)?.ok_or_else(|| missing(where_, key))
}

pub(super) fn missing(where_: &str, key: &str) -> DocumentError {
    error(format!("required field `{}` is missing", at(where_, key)))
}

/// A string field; absent or `null` → `None`.
pub(super) fn opt_str<'a>(o: &'a Obj, where_: &str, key: &str) -> Result<Option<&'a str>, DocumentError> {
    match present(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(format!("`{}` must be a string", at(where_, key)))),
    }
}

/// A required, non-empty string field.
pub(super) fn req_str<'a>(o: &'a Obj, where_: &str, key: &str) -> Result<&'a str, DocumentError> {
    match opt_str(o, where_, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(error(format!("`{}` must not be empty", at(where_, key)))),
        None => Err(missing(where_, key)),
    }
}

/// A string field where `""` means "not set" (substituted optional template parameters).
pub(super) fn opt_nonempty_str<'a>(o: &'a Obj, where_: &str, key: &str) -> Result<Option<&'a str>, DocumentError> {
    Ok(opt_str(o, where_, key)?.filter(|s| !s.trim().is_empty()))
}

fn parse_flag_str(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A boolean given as a JSON boolean or as the string `"true"` / `"false"`.
pub(super) fn opt_flag(o: &Obj, where_: &str, key: &str) -> Result<Option<bool>, DocumentError> {
    match present(o, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => parse_flag_str(s)
            .map(Some)
            .ok_or_else(|| error(format!("`{}` must be true or false, not {s:?}", at(where_, key)))),
        Some(_) => Err(error(format!("`{}` must be a boolean or \"true\"/\"false\"", at(where_, key)))),
    }
}

/// A non-negative integer given as a JSON number or a numeric string.
pub(super) fn opt_u32(o: &Obj, where_: &str, key: &str) -> Result<Option<u32>, DocumentError> {
    let bad = || error(format!("`{}` must be a non-negative integer", at(where_, key)));
    match present(o, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse::<u32>().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// `allowStdErr`: a boolean, or a line count (Device Client) where `0` allows none.
pub(super) fn opt_allow_stderr(o: &Obj, where_: &str) -> Result<Option<bool>, DocumentError> {
    const KEY: &str = "allowStdErr";
    match present(o, KEY) {
        Some(Value::Bool(_)) | None => opt_flag(o, where_, KEY),
        Some(Value::String(s)) if parse_flag_str(s).is_some() => opt_flag(o, where_, KEY),
        Some(_) => Ok(opt_u32(o, where_, KEY)?.map(|n| n > 0)),
    }
}

/// The Fleetjobs extension `timeoutSeconds` (a positive integer).
pub(super) fn opt_timeout(o: &Obj, where_: &str) -> Result<Option<Duration>, DocumentError> {
    const KEY: &str = "timeoutSeconds";
    match opt_u32(o, where_, KEY)? {
        Some(0) => Err(error(format!("`{}` must be positive", at(where_, KEY)))),
        other => Ok(other.map(|s| Duration::from_secs(u64::from(s)))),
    }
}

/// An array of arguments: strings, with numbers and booleans taken as their JSON text.
pub(super) fn opt_args(o: &Obj, where_: &str, key: &str) -> Result<Vec<String>, DocumentError> {
    let name = at(where_, key);
    let Some(v) = present(o, key) else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| error(format!("`{name}` must be an array of strings")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
            _ => Err(error(format!("`{name}[{i}]` must be a string"))),
        })
        .collect()
}

/// `true` when `url` is an `http://` or `https://` URL with a host.
pub(super) fn is_http_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|scheme| lower.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')))
}

/// A sha256 digest as 64 hex digits, normalized to lower case.
pub(super) fn sha256_hex(value: &str, name: &str) -> Result<String, DocumentError> {
    let v = value.trim().to_ascii_lowercase();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(error(format!("`{name}` must be a sha256 digest (64 hex digits)")))
    }
}
