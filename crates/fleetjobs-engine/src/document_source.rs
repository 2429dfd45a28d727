//! Job documents that live elsewhere: fetching `documentSource` at creation and replacing
//! `${aws:iot:s3-presigned-url:URL}` placeholders with presigned URLs when a device is sent a
//! document. The engine only holds the [`DocumentSource`] seam; the binary wires the real
//! (HTTP/S3) implementation, so this crate stays free of HTTP clients and tests can stub it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// The placeholder's opening; it runs to the next `}`.
pub const PRESIGN_PREFIX: &str = "${aws:iot:s3-presigned-url:";

/// How long a presigned URL is valid when the job sets no `presignedUrlConfig`.
pub const DEFAULT_PRESIGN_EXPIRY_SECS: u64 = 3600;

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Where job documents and presigned URLs come from.
pub trait DocumentSource: Send + Sync {
    /// The document at `url` (an S3 URL or any http(s) URL); `Err` says why it could not be
    /// read, for the client's error message.
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;

    /// A presigned GET URL for the S3 object `url` names, valid `expires_in_secs`; `None` if
    /// `url` is not an S3 URL or no credentials are configured (the placeholder then stays).
    fn presign(&self, url: &str, expires_in_secs: u64) -> Option<String>;
}

/// Whether any string in `doc` holds a placeholder (the common case, none, then costs a scan
/// and no copy).
pub fn has_placeholders(doc: &Value) -> bool {
    match doc {
        Value::String(s) => s.contains(PRESIGN_PREFIX),
        Value::Array(a) => a.iter().any(has_placeholders),
        Value::Object(o) => o.values().any(has_placeholders),
        _ => false,
    }
}

/// `doc` with every placeholder replaced by what `presign` answers for its URL (kept as is
/// when it answers `None`).
pub fn substitute(doc: &Value, presign: &dyn Fn(&str) -> Option<String>) -> Value {
    match doc {
        Value::String(s) => Value::String(substitute_str(s, presign)),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, presign)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), substitute(v, presign))).collect()),
        other => other.clone(),
    }
}

fn substitute_str(s: &str, presign: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(PRESIGN_PREFIX) {
        let after = &rest[start + PRESIGN_PREFIX.len()..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..start]);
        match presign(&after[..end]) {
            Some(url) => out.push_str(&url),
            None => out.push_str(&rest[start..start + PRESIGN_PREFIX.len() + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A job document as devices are sent it: parsed once, its placeholders presigned afresh at
/// each serialization (which happens after the state lock is released, from owned snapshots:
/// so the document carries the engine's source itself), valid for the job's
/// `presignedUrlConfig.expiresInSec`.
#[derive(Clone)]
pub struct DeviceDocument {
    pub value: Value,
    pub presign_expiry_secs: u64,
    /// Whether `value` holds placeholders (scanned once, not at every send).
    presigned: bool,
    /// Who presigns them (the engine's document source; `None`: they are sent as they are).
    presigner: Option<Arc<dyn DocumentSource>>,
}

impl std::fmt::Debug for DeviceDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceDocument").field("value", &self.value).field("presigned", &self.presigned).finish()
    }
}

impl PartialEq for DeviceDocument {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.presign_expiry_secs == other.presign_expiry_secs
    }
}

impl DeviceDocument {
    /// `expires_in_sec` as `presignedUrlConfig` holds it (`None`: the default); `presigner`
    /// is kept only when the document has placeholders.
    pub fn new(value: Value, expires_in_sec: Option<i64>, presigner: Option<Arc<dyn DocumentSource>>) -> Self {
        let presigned = has_placeholders(&value);
        DeviceDocument {
            presigner: presigner.filter(|_| presigned),
            presigned,
            value,
            presign_expiry_secs: expiry_secs(expires_in_sec),
        }
    }
}

/// The presigned URLs' validity for a job's `presignedUrlConfig.expiresInSec`.
pub fn expiry_secs(expires_in_sec: Option<i64>) -> u64 {
    expires_in_sec.and_then(|s| u64::try_from(s).ok()).unwrap_or(DEFAULT_PRESIGN_EXPIRY_SECS)
}

impl DeviceDocument {
    /// Whether the document's placeholders get presigned.
    pub fn has_placeholders(&self) -> bool {
        self.presigned
    }
}

impl Serialize for DeviceDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.presigner {
            Some(source) => substitute(&self.value, &|url| source.presign(url, self.presign_expiry_secs)).serialize(s),
            None => self.value.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_replaced_everywhere_and_unknown_ones_kept() {
        let doc = json!({
            "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k}",
            "steps": [{"cmd": "get ${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/a} and ${aws:iot:s3-presigned-url:nope}"}],
            "n": 1,
            "open": "${aws:iot:s3-presigned-url:unterminated"
        });
        assert!(has_placeholders(&doc));
        let presign = |u: &str| u.starts_with("https://").then(|| format!("P({u})"));
        let out = substitute(&doc, &presign);
        assert_eq!(out["url"], "P(https://s3.amazonaws.com/b/k)");
        assert_eq!(out["steps"][0]["cmd"], "get P(https://s3.amazonaws.com/b/a) and ${aws:iot:s3-presigned-url:nope}");
        assert_eq!(out["n"], 1);
        assert_eq!(out["open"], "${aws:iot:s3-presigned-url:unterminated");
        assert!(!has_placeholders(&json!({"a": "plain"})));
    }

    struct Stub;

    impl DocumentSource for Stub {
        fn fetch<'a>(&'a self, _: &'a str) -> FetchFuture<'a> {
            Box::pin(async { Err("no".to_string()) })
        }

        fn presign(&self, url: &str, expires_in_secs: u64) -> Option<String> {
            Some(format!("{url}?expires={expires_in_secs}"))
        }
    }

    #[test]
    fn a_device_document_is_presigned_when_serialized_with_the_jobs_expiry() {
        let stub: Option<Arc<dyn DocumentSource>> = Some(Arc::new(Stub));
        let doc = json!({"u": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k}"});
        let v = serde_json::to_value(DeviceDocument::new(doc.clone(), Some(600), stub.clone())).unwrap();
        assert_eq!(v["u"], "https://s3.amazonaws.com/b/k?expires=600");
        let v = serde_json::to_value(DeviceDocument::new(doc.clone(), None, stub.clone())).unwrap();
        assert_eq!(v["u"], "https://s3.amazonaws.com/b/k?expires=3600");
        let v = serde_json::to_value(DeviceDocument::new(doc.clone(), None, None)).unwrap();
        assert_eq!(v, doc, "without a source the placeholder stays");
        let plain = DeviceDocument::new(json!({"u": "x"}), None, stub);
        assert!(!plain.has_placeholders());
        assert_eq!(serde_json::to_value(plain).unwrap(), json!({"u": "x"}));
    }
}
