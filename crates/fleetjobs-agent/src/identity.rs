//! How the agent recognizes one job execution: the identity the journal records and the rule
//! that decides whether an execution the server shows is one the journal already knows.
//!
//! AWS lets a job id be used again once `delete-job` has finished, and the new job's
//! executions are numbered from 1 again, so `jobId#executionNumber` alone names different
//! executions over time. An [`ExecKey`] therefore also records where the execution came from
//! (the endpoint and the thing) and what the server said about it when it was first seen:
//! its `queuedAt` and a hash of its job document ([`document_hash`]).
//!
//! [`ExecKey::same_execution`] compares every field known on both sides; a field one side does
//! not know (a journal written before these fields existed, a payload without the document)
//! does not count against the match, so old journals keep working. Anything the journal does
//! not recognize as the same execution is a new one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jobs_client::{JobExecution, RequestError};
use crate::signature::{canonical_json, SIGNATURE_MEMBER};

/// The endpoint and thing this agent works for: part of every execution's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `host:port`.
    pub endpoint: String,
    pub thing: String,
}

/// Identifies one execution of a job on this thing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecKey {
    pub job_id: String,
    pub execution_number: u64,
    /// `execution.queuedAt` in epoch seconds (MQTT's precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<u64>,
    /// [`document_hash`] of the document the execution was delivered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing: Option<String>,
}

impl std::fmt::Display for ExecKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.job_id, self.execution_number)
    }
}

/// Both known and different. An unknown side never decides.
fn differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

impl ExecKey {
    /// A key with no identity beyond `jobId#executionNumber` (what journals before the
    /// identity fields hold).
    pub fn bare(job_id: impl Into<String>, execution_number: u64) -> ExecKey {
        ExecKey {
            job_id: job_id.into(),
            execution_number,
            queued_at: None,
            document_hash: None,
            endpoint: None,
            thing: None,
        }
    }

    /// The identity of an execution `origin`'s server sent.
    pub fn of(exec: &JobExecution, origin: &Origin) -> ExecKey {
        ExecKey {
            job_id: exec.job_id.clone(),
            // AWS omits executionNumber only where it is the first execution.
            execution_number: exec.execution_number.unwrap_or(1),
            queued_at: exec.queued_at.filter(|t| t.is_finite() && *t >= 0.0).map(|t| t as u64),
            document_hash: exec.job_document.as_ref().map(document_hash),
            endpoint: Some(origin.endpoint.clone()),
            thing: Some(origin.thing.clone()),
        }
    }

    /// Whether `self` and `other` can be the same execution: same job id and number, and no
    /// identity field known on both sides differs.
    pub fn same_execution(&self, other: &ExecKey) -> bool {
        self.job_id == other.job_id
            && self.execution_number == other.execution_number
            && !differ(&self.queued_at, &other.queued_at)
            && !differ(&self.document_hash, &other.document_hash)
            && !differ(&self.endpoint, &other.endpoint)
            && !differ(&self.thing, &other.thing)
    }

    /// Whether the key was journaled for another endpoint or thing than `origin` (updates for
    /// it cannot be sent: they would reach another server's or thing's execution).
    pub fn is_foreign(&self, origin: &Origin) -> bool {
        differ(&self.endpoint, &Some(origin.endpoint.clone())) || differ(&self.thing, &Some(origin.thing.clone()))
    }

    /// Whether the key carries none of the identity fields (journaled by an older agent).
    pub fn is_bare(&self) -> bool {
        self.queued_at.is_none() && self.document_hash.is_none() && self.endpoint.is_none() && self.thing.is_none()
    }

    /// The journal's map key for this exact identity (`jobId#n` for a bare key, as older
    /// journals wrote it).
    pub fn journal_id(&self) -> String {
        if self.is_bare() {
            return self.to_string();
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        format!(
            "{self}@{}/{}/{}/{}",
            self.queued_at.map(|t| t.to_string()).unwrap_or_default(),
            opt(&self.document_hash),
            opt(&self.thing),
            opt(&self.endpoint)
        )
    }
}

/// Why the execution journaled as `key` can take no more updates, given the server's answer
/// to a describe of `jobId#executionNumber` (made with the document, from `origin`): it is
/// gone, terminal, or the id now names another execution. `None`: it is still there (or the
/// answer says nothing, e.g. a timeout).
pub fn why_gone(key: &ExecKey, answer: &Result<Option<JobExecution>, RequestError>, origin: &Origin) -> Option<String> {
    match answer {
        Ok(None) => Some("the execution no longer exists".into()),
        Ok(Some(e)) if !key.same_execution(&ExecKey::of(e, origin)) => Some(format!(
            "the execution was deleted; job id {} now names another execution (queued at {})",
            e.job_id,
            e.queued_at.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
        )),
        Ok(Some(e)) if e.status.is_terminal() => Some(format!("execution is {}", e.status)),
        Err(RequestError::Rejected(r)) if matches!(r.code.as_str(), "ResourceNotFound" | "TerminalStateReached") => {
            Some(format!("the server answers {}", r.code))
        }
        Ok(Some(_)) | Err(_) => None,
    }
}

/// SHA-256 (hex) of a job document's canonical JSON, without what differs between two
/// deliveries of the same execution: the `fleetjobsSignature` member and the query of AWS
/// presigned URLs (AWS fills `${aws:iot:s3-presigned-url:…}` afresh on every delivery).
pub fn document_hash(doc: &Value) -> String {
    let mut doc = doc.clone();
    if let Some(obj) = doc.as_object_mut() {
        obj.remove(SIGNATURE_MEMBER);
    }
    strip_presigned_queries(&mut doc);
    hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
}

fn strip_presigned_queries(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some((base, query)) = s.split_once('?') {
                if base.starts_with("http") && query.contains("X-Amz-Signature=") {
                    *s = base.to_owned();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_presigned_queries),
        Value::Object(members) => members.values_mut().for_each(strip_presigned_queries),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution_status::ExecutionStatus;
    use serde_json::json;

    fn origin() -> Origin {
        Origin { endpoint: "iot.example:8883".into(), thing: "dev-1".into() }
    }

    fn exec(queued_at: Option<f64>, doc: Option<Value>) -> JobExecution {
        JobExecution {
            job_id: "j".into(),
            status: ExecutionStatus::Queued.into(),
            status_details: None,
            job_document: doc,
            version_number: Some(1),
            execution_number: Some(1),
            queued_at,
        }
    }

    #[test]
    fn a_reused_job_id_is_another_execution() {
        let first = ExecKey::of(&exec(Some(100.0), Some(json!({"operation": "a"}))), &origin());
        let again = ExecKey::of(&exec(Some(100.0), Some(json!({"operation": "a"}))), &origin());
        assert!(first.same_execution(&again));
        let requeued = ExecKey::of(&exec(Some(160.0), Some(json!({"operation": "a"}))), &origin());
        assert!(!first.same_execution(&requeued), "same document, queued later");
        let redocumented = ExecKey::of(&exec(Some(100.0), Some(json!({"operation": "b"}))), &origin());
        assert!(!first.same_execution(&redocumented), "same second, other document");
        let elsewhere = ExecKey::of(
            &exec(Some(100.0), Some(json!({"operation": "a"}))),
            &Origin { endpoint: "other:8883".into(), thing: "dev-1".into() },
        );
        assert!(!first.same_execution(&elsewhere));
        assert!(first.is_foreign(&Origin { endpoint: "iot.example:8883".into(), thing: "dev-2".into() }));
        assert!(!first.is_foreign(&origin()));
    }

    #[test]
    fn unknown_fields_do_not_decide() {
        let full = ExecKey::of(&exec(Some(100.0), Some(json!({"operation": "a"}))), &origin());
        let without_document = ExecKey::of(&exec(Some(100.0), None), &origin());
        assert!(full.same_execution(&without_document) && without_document.same_execution(&full));
        let bare = ExecKey::bare("j", 1);
        assert!(bare.same_execution(&full) && full.same_execution(&bare));
        assert!(!ExecKey::bare("j", 2).same_execution(&full));
        assert!(!ExecKey::bare("k", 1).same_execution(&full));
        assert!(!bare.is_foreign(&origin()));
    }

    #[test]
    fn journal_ids_separate_identities_and_keep_the_old_form() {
        assert_eq!(ExecKey::bare("j", 3).journal_id(), "j#3");
        let a = ExecKey::of(&exec(Some(100.0), None), &origin());
        let b = ExecKey::of(&exec(Some(101.0), None), &origin());
        assert_ne!(a.journal_id(), b.journal_id());
        assert!(a.journal_id().starts_with("j#1@100/"));
    }

    #[test]
    fn the_document_hash_ignores_signature_and_presigned_queries_only() {
        let doc = json!({"operation": "install", "files": [{"url": "https://b.s3.amazonaws.com/k?X-Amz-Signature=1&X-Amz-Date=2"}]});
        let redelivered = json!({"files": [{"url": "https://b.s3.amazonaws.com/k?X-Amz-Date=3&X-Amz-Signature=9"}], "operation": "install", "fleetjobsSignature": {"sig": "x"}});
        assert_eq!(document_hash(&doc), document_hash(&redelivered));
        let other_object =
            json!({"operation": "install", "files": [{"url": "https://b.s3.amazonaws.com/k2?X-Amz-Signature=1"}]});
        assert_ne!(document_hash(&doc), document_hash(&other_object));
        let plain_query = |q: &str| json!({"url": format!("https://h/f?v={q}")});
        assert_ne!(document_hash(&plain_query("1")), document_hash(&plain_query("2")));
    }

    #[test]
    fn an_execution_is_gone_when_deleted_terminal_or_replaced() {
        let key = ExecKey::of(&exec(Some(100.0), Some(json!({"operation": "a"}))), &origin());
        let gone = |answer: Result<Option<JobExecution>, RequestError>| why_gone(&key, &answer, &origin());
        assert_eq!(gone(Ok(Some(exec(Some(100.0), Some(json!({"operation": "a"})))))), None);
        assert_eq!(gone(Ok(Some(exec(Some(100.0), None)))), None, "described without the document");
        assert_eq!(gone(Err(RequestError::Timeout)), None);
        assert!(gone(Ok(None)).unwrap().contains("no longer exists"));
        let reused = gone(Ok(Some(exec(Some(130.0), Some(json!({"operation": "a"})))))).unwrap();
        assert!(reused.contains("another execution"), "{reused}");
        let mut canceled = exec(Some(100.0), None);
        canceled.status = ExecutionStatus::Canceled.into();
        assert_eq!(gone(Ok(Some(canceled))).as_deref(), Some("execution is CANCELED"));
        let rejected = |code: &str| {
            Err(RequestError::Rejected(Box::new(crate::jobs_client::Rejection {
                code: code.into(),
                message: String::new(),
                execution_state: None,
            })))
        };
        assert!(gone(rejected("TerminalStateReached")).is_some());
        assert!(gone(rejected("ResourceNotFound")).is_some());
        assert_eq!(gone(rejected("RequestThrottled")), None);
    }

    #[test]
    fn keys_without_identity_fields_load_from_old_journals() {
        let old: ExecKey = serde_json::from_value(json!({"jobId": "j", "executionNumber": 2})).unwrap();
        assert_eq!(old, ExecKey::bare("j", 2));
        assert_eq!(serde_json::to_value(&old).unwrap(), json!({"jobId": "j", "executionNumber": 2}));
        let full = ExecKey::of(&exec(Some(100.5), None), &origin());
        let back: ExecKey = serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
        assert_eq!(back, full);
        assert_eq!(back.queued_at, Some(100));
    }
}
