//! The Jobs MQTT API's payloads, typed: the members of the four requests in, and what the
//! server publishes out (answers, `notify`, `notify-next`). This and the control plane's
//! HTTP adapter are the only places that know JSON; timestamps here are integer epoch seconds.

use std::sync::Arc;

use fleetjobs_core::execution;
use fleetjobs_core::model::{JobExecution, JobExecutionStatus, StatusDetails};
use fleetjobs_core::validate::{self, SentStatusDetails};
use fleetjobs_core::Millis;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::document_source::DeviceDocument;

/// MQTT timestamps: integer epoch seconds.
pub fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

/// Why a payload is not a request: the Jobs API's `InvalidJson` or `InvalidRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    InvalidJson(String),
    InvalidRequest(String),
}

/// A request payload: its `clientToken` (echoed on every answer, also when the rest of the
/// request is refused) and its other members, read by the request's type.
///
/// What devices send is read in one pass straight into the types: the token, then the
/// request. Only a payload those passes refuse (or would read differently: a member sent
/// twice) is read again the slow way — into a JSON object, then into the type — whose errors
/// name the member at fault; so both ways accept the same payloads and read them alike.
pub struct Payload<'a> {
    pub client_token: Option<String>,
    bytes: &'a [u8],
}

/// The token alone; every other member is skipped without being kept.
#[derive(Deserialize)]
struct TokenOnly {
    #[serde(rename = "clientToken")]
    client_token: Option<String>,
}

/// AWS's limit on `clientToken`.
const MAX_CLIENT_TOKEN_CHARS: usize = 64;

impl<'a> Payload<'a> {
    /// Parse a payload; a blank payload is `{}`, as AWS takes it.
    pub fn parse(bytes: &'a [u8]) -> Result<Payload<'a>, PayloadError> {
        // A struct also reads from a JSON array, which is no request: only objects go the fast way.
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if object {
            if let Ok(TokenOnly { client_token }) = serde_json::from_slice(bytes) {
                if client_token.as_ref().is_none_or(|t| t.chars().count() <= MAX_CLIENT_TOKEN_CHARS) {
                    return Ok(Payload { client_token, bytes });
                }
            }
        }
        let (client_token, _) = Self::members(bytes)?;
        Ok(Payload { client_token, bytes })
    }

    /// The request's members as `T` (which has no `clientToken` member: it is skipped like
    /// any member `T` does not know); a member of the wrong type names itself.
    pub fn request<T: DeserializeOwned>(self) -> Result<T, PayloadError> {
        // `parse` saw a JSON object or a blank payload: an array never reaches this pass.
        if let Ok(request) = serde_json::from_slice(self.bytes) {
            return Ok(request);
        }
        let (_, members) = Self::members(self.bytes)?;
        Self::typed(members)
    }

    /// The slow way's second step: the members as `T`, an error naming the member at fault.
    fn typed<T: DeserializeOwned>(members: Map<String, Value>) -> Result<T, PayloadError> {
        serde_path_to_error::deserialize(Value::Object(members)).map_err(|e| {
            let path = e.path().to_string();
            PayloadError::InvalidRequest(format!("Invalid {path}: {}", e.inner()))
        })
    }

    /// The slow way: the payload as a JSON object (the last of a member sent twice), and its
    /// checked token, taken out of it.
    fn members(bytes: &[u8]) -> Result<(Option<String>, Map<String, Value>), PayloadError> {
        let mut members =
            validate::json_object(bytes).map_err(|e| PayloadError::InvalidJson(format!("The request payload {e}")))?;
        let client_token = match members.remove("clientToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.chars().count() <= MAX_CLIENT_TOKEN_CHARS => Some(t),
            Some(_) => {
                return Err(PayloadError::InvalidRequest(format!(
                    "clientToken must be a string of at most {MAX_CLIENT_TOKEN_CHARS} characters"
                )))
            }
        };
        Ok((client_token, members))
    }
}

/// An integer member that devices also send as a string (`"expectedVersion": "3"`).
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        String(String),
    }
    match Option::<IntOrString>::deserialize(d)? {
        None => Ok(None),
        Some(IntOrString::Int(n)) => Ok(Some(n)),
        Some(IntOrString::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| de::Error::custom(format!("{s:?} is not an integer")))
        }
    }
}

/// `jobs/start-next`: StartNextPendingJobExecution.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNextRequest {
    pub status_details: Option<SentStatusDetails>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub step_timeout_in_minutes: Option<i64>,
}

/// `jobs/{jobId}/get`: DescribeJobExecution.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    #[serde(default, deserialize_with = "lenient_int")]
    pub execution_number: Option<i64>,
    pub include_job_document: Option<bool>,
}

/// `jobs/{jobId}/update`: UpdateJobExecution.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    pub status: JobExecutionStatus,
    pub status_details: Option<SentStatusDetails>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub expected_version: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub execution_number: Option<i64>,
    #[serde(default)]
    pub include_job_execution_state: bool,
    #[serde(default)]
    pub include_job_document: bool,
    #[serde(default, deserialize_with = "lenient_int")]
    pub step_timeout_in_minutes: Option<i64>,
}

fn document<S: Serializer>(doc: &Option<Arc<DeviceDocument>>, s: S) -> Result<S::Ok, S::Error> {
    match doc {
        Some(d) => d.as_ref().serialize(s),
        None => s.serialize_none(),
    }
}

/// MQTT `JobExecution`, with the job document when asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub job_id: String,
    pub thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "document")]
    pub job_document: Option<Arc<DeviceDocument>>,
    pub status: JobExecutionStatus,
    pub status_details: StatusDetails,
    pub queued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    pub last_updated_at: i64,
    pub version_number: i64,
    pub execution_number: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_seconds_before_timed_out: Option<i64>,
}

impl Execution {
    /// With the seconds left before the running timer, if one runs.
    pub fn timed(mut self, deadline: Option<Millis>, now: Millis) -> Self {
        self.approximate_seconds_before_timed_out = deadline.map(|d| execution::seconds_before(d, now));
        self
    }

    pub fn new(e: &JobExecution, job_document: Option<Arc<DeviceDocument>>) -> Self {
        Execution {
            job_id: e.job_id.clone(),
            thing_name: e.thing_name.clone(),
            job_document,
            status: e.status,
            status_details: e.status_details.clone(),
            queued_at: secs(e.queued_at),
            started_at: e.started_at.map(secs),
            last_updated_at: secs(e.last_updated_at),
            version_number: e.version_number,
            execution_number: e.execution_number,
            approximate_seconds_before_timed_out: None,
        }
    }
}

/// MQTT `JobExecutionSummary` (`jobs/get`, `jobs/notify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub job_id: String,
    pub queued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    pub last_updated_at: i64,
    pub version_number: i64,
    pub execution_number: i64,
}

impl From<&JobExecution> for ExecutionSummary {
    fn from(e: &JobExecution) -> Self {
        ExecutionSummary {
            job_id: e.job_id.clone(),
            queued_at: secs(e.queued_at),
            started_at: e.started_at.map(secs),
            last_updated_at: secs(e.last_updated_at),
            version_number: e.version_number,
            execution_number: e.execution_number,
        }
    }
}

/// MQTT `JobExecutionState` (update answers, and rejections of an update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionState {
    pub status: JobExecutionStatus,
    pub status_details: StatusDetails,
    pub version_number: i64,
}

impl From<&JobExecution> for ExecutionState {
    fn from(e: &JobExecution) -> Self {
        ExecutionState { status: e.status, status_details: e.status_details.clone(), version_number: e.version_number }
    }
}

/// The pending executions of one status, in `$next` order (the engine has cut the list to what
/// is shown).
fn shown<'a>(pending: &'a [JobExecution], status: JobExecutionStatus) -> impl Iterator<Item = ExecutionSummary> + 'a {
    pending.iter().filter(move |e| e.status == status).map(ExecutionSummary::from)
}

/// What an accepted request answers, before `timestamp` and `clientToken`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    #[serde(rename_all = "camelCase")]
    Pending { in_progress_jobs: Vec<ExecutionSummary>, queued_jobs: Vec<ExecutionSummary> },
    /// start-next and describe (no `execution`: nothing pending).
    Execution {
        #[serde(skip_serializing_if = "Option::is_none")]
        execution: Option<Execution>,
    },
    #[serde(rename_all = "camelCase")]
    Updated {
        #[serde(skip_serializing_if = "Option::is_none")]
        execution_state: Option<ExecutionState>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "document")]
        job_document: Option<Arc<DeviceDocument>>,
    },
}

impl Answer {
    pub fn pending(pending: &[JobExecution]) -> Answer {
        Answer::Pending {
            in_progress_jobs: shown(pending, JobExecutionStatus::InProgress).collect(),
            queued_jobs: shown(pending, JobExecutionStatus::Queued).collect(),
        }
    }
}

/// What an accepted update answers, on either plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub execution_state: Option<ExecutionState>,
    pub job_document: Option<Arc<DeviceDocument>>,
}

/// A request refused, as `/rejected` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_state: Option<ExecutionState>,
    /// The engine's own failure behind an `InternalError` (the store refusing a write, say),
    /// kept for the HTTPS plane, which answers it as itself (503), not as a 500.
    #[serde(skip)]
    pub cause: Option<fleetjobs_core::ErrorCode>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a, T> {
    #[serde(flatten)]
    body: T,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<&'a str>,
}

/// An `/accepted` or `/rejected` payload: the body, `timestamp` and the request's token.
pub fn reply<T: Serialize>(body: T, now: Millis, client_token: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&Reply { body, timestamp: secs(now), client_token }).expect("json serializes")
}

/// `jobs/notify`: the pending executions by status, IN_PROGRESS first.
pub fn notify(pending: &[JobExecution], now: Millis) -> Vec<u8> {
    #[derive(Serialize)]
    struct Jobs {
        #[serde(rename = "IN_PROGRESS", skip_serializing_if = "Vec::is_empty")]
        in_progress: Vec<ExecutionSummary>,
        #[serde(rename = "QUEUED", skip_serializing_if = "Vec::is_empty")]
        queued: Vec<ExecutionSummary>,
    }
    #[derive(Serialize)]
    struct Notify {
        timestamp: i64,
        jobs: Jobs,
    }
    let jobs = Jobs {
        in_progress: shown(pending, JobExecutionStatus::InProgress).collect(),
        queued: shown(pending, JobExecutionStatus::Queued).collect(),
    };
    serde_json::to_vec(&Notify { timestamp: secs(now), jobs }).expect("json serializes")
}

/// `jobs/notify-next`: the next pending execution with its document, if any.
pub fn notify_next(head: Option<Execution>, now: Millis) -> Vec<u8> {
    #[derive(Serialize)]
    struct NotifyNext {
        timestamp: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        execution: Option<Execution>,
    }
    serde_json::to_vec(&NotifyNext { timestamp: secs(now), execution: head }).expect("json serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<T: for<'de> Deserialize<'de>>(payload: &str) -> Result<(Option<String>, T), PayloadError> {
        let p = Payload::parse(payload.as_bytes())?;
        let token = p.client_token.clone();
        Ok((token, p.request()?))
    }

    #[test]
    fn requests_read_what_devices_send() {
        let (token, r): (_, UpdateRequest) = parse(
            r#"{"status":"IN_PROGRESS","expectedVersion":"2","statusDetails":{"pct":50,"ok":true},"clientToken":"t"}"#,
        )
        .unwrap();
        assert_eq!(token.as_deref(), Some("t"));
        assert_eq!(r.status, JobExecutionStatus::InProgress);
        assert_eq!(r.expected_version, Some(2), "a numeric string is an integer");
        assert_eq!(r.status_details.unwrap().0["pct"], "50");
        let (_, r): (_, DescribeRequest) = parse("").unwrap();
        assert_eq!(r.execution_number, None);
    }

    #[test]
    fn bad_requests_name_their_member_and_keep_the_token() {
        let p = Payload::parse(br#"{"status":"DONE","clientToken":"t"}"#).unwrap();
        assert_eq!(p.client_token.as_deref(), Some("t"));
        assert!(matches!(p.request::<UpdateRequest>(), Err(PayloadError::InvalidRequest(m)) if m.contains("status")));
        assert!(matches!(parse::<UpdateRequest>("{}"), Err(PayloadError::InvalidRequest(m)) if m.contains("status")));
        assert!(matches!(
            parse::<DescribeRequest>(r#"{"executionNumber":"x"}"#),
            Err(PayloadError::InvalidRequest(m)) if m.contains("executionNumber")
        ));
        assert!(matches!(parse::<DescribeRequest>("[1]"), Err(PayloadError::InvalidJson(_))));
        assert!(matches!(parse::<DescribeRequest>(r#"{"clientToken":5}"#), Err(PayloadError::InvalidRequest(_))));
    }

    /// What a payload reads as, the slow way only: a JSON object, then the type. As
    /// `handle_jobs_topic` answers: the token, also beside a request refused.
    fn slow<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> (Option<String>, Result<T, PayloadError>) {
        match Payload::members(payload) {
            Err(e) => (None, Err(e)),
            Ok((token, members)) => (token, Payload::typed(members)),
        }
    }

    /// Both ways give the same token, request and error for `payload`, as each request type.
    fn assert_read_alike(payload: &[u8]) {
        fn one<T: for<'de> Deserialize<'de> + std::fmt::Debug>(payload: &[u8]) {
            let fast = match Payload::parse(payload) {
                Err(e) => (None, Err(e)),
                Ok(p) => (p.client_token.clone(), p.request::<T>()),
            };
            let slow = slow::<T>(payload);
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{}", String::from_utf8_lossy(payload));
        }
        one::<UpdateRequest>(payload);
        one::<StartNextRequest>(payload);
        one::<DescribeRequest>(payload);
    }

    #[test]
    fn the_fast_way_reads_as_the_slow_way() {
        let corpus: &[&str] = &[
            "",
            "  \n ",
            "{}",
            "[]",
            r#"["IN_PROGRESS"]"#,
            "null",
            "3",
            r#""x""#,
            "{",
            r#"{"status":"IN_PROGRESS"} x"#,
            r#"{"status":"IN_PROGRESS","clientToken":"t"}"#,
            r#" {"status":"SUCCEEDED","statusDetails":{"a":"b","n":1.5,"big":1e21,"t":true},"expectedVersion":2}"#,
            r#"{"status":"IN_PROGRESS","expectedVersion":"3","executionNumber":" 7 ","stepTimeoutInMinutes":"x"}"#,
            r#"{"status":"IN_PROGRESS","clientToken":"a","clientToken":"b"}"#,
            r#"{"status":"IN_PROGRESS","status":"FAILED"}"#,
            r#"{"status":"IN_PROGRESS","other":1,"other":[1,{"a":null}]}"#,
            r#"{"clientToken":null,"includeJobDocument":true,"executionNumber":null}"#,
            r#"{"clientToken":5}"#,
            r#"{"clientToken":"0123456789012345678901234567890123456789012345678901234567890123"}"#,
            r#"{"clientToken":"01234567890123456789012345678901234567890123456789012345678901234"}"#,
            r#"{"clientToken":"\u00e9\ud83d\ude00\n"}"#,
            r#"{"includeJobDocument":"true"}"#,
            r#"{"executionNumber":1.0}"#,
            r#"{"executionNumber":-4,"expectedVersion":18446744073709551615}"#,
            r#"{"status":"DONE"}"#,
            r#"{"status":null}"#,
            r#"{"statusDetails":null,"status":"QUEUED"}"#,
            r#"{"statusDetails":{"k":null},"status":"FAILED"}"#,
            r#"{"statusDetails":["x"],"status":"FAILED"}"#,
            r#"{"statusDetails":{"k":"v","k":"w"},"status":"FAILED"}"#,
            r#"{"includeJobExecutionState":null,"status":"FAILED"}"#,
        ];
        for payload in corpus {
            assert_read_alike(payload.as_bytes());
        }
    }

    proptest::proptest! {
        /// Objects of the members the requests know (and one they do not), each value of
        /// every JSON kind, members repeated.
        #[test]
        fn any_object_reads_alike(members in proptest::collection::vec((0usize..9, 0usize..14), 0..6)) {
            const KEYS: [&str; 9] = ["status", "statusDetails", "expectedVersion", "executionNumber",
                "includeJobExecutionState", "includeJobDocument", "stepTimeoutInMinutes", "clientToken", "x"];
            const VALUES: [&str; 14] = ["null", "true", "0", "-1", "2.5", r#""7""#, r#""t""#, r#""IN_PROGRESS""#,
                r#""SUCCEEDED""#, "{}", r#"{"a":"b"}"#, r#"{"a":1}"#, "[]", "99999999999999999999"];
            let body: Vec<String> = members.iter().map(|&(k, v)| format!("\"{}\":{}", KEYS[k], VALUES[v])).collect();
            assert_read_alike(format!("{{{}}}", body.join(",")).as_bytes());
        }
    }

    #[test]
    fn answers_have_the_aws_shape() {
        let mut e = JobExecution::queued("j", "pi", 1, 1_700_000_000_999);
        let doc = Some(Arc::new(DeviceDocument::new(json!({"op": "x"}), None, None)));
        let v: Value = serde_json::from_slice(&reply(
            Answer::Execution { execution: Some(Execution::new(&e, doc)) },
            5_000,
            Some("t"),
        ))
        .unwrap();
        assert_eq!(v["execution"]["queuedAt"], 1_700_000_000);
        assert_eq!(v["execution"]["jobDocument"]["op"], "x");
        assert_eq!(v["execution"]["status"], "QUEUED");
        assert!(v["execution"].get("startedAt").is_none());
        assert_eq!((v["timestamp"].as_i64(), v["clientToken"].as_str()), (Some(5), Some("t")));
        let v: Value = serde_json::from_slice(&reply(Answer::Execution { execution: None }, 0, None)).unwrap();
        assert_eq!(v, json!({"timestamp": 0}));
        let timed = Execution::new(&e, None).timed(Some(10_500), 1_000);
        assert_eq!(timed.approximate_seconds_before_timed_out, Some(10));
        assert_eq!(Execution::new(&e, None).timed(Some(1_000), 5_000).approximate_seconds_before_timed_out, Some(0));

        e.status = JobExecutionStatus::InProgress;
        let v: Value = serde_json::from_slice(&notify(&[e.clone()], 2_000)).unwrap();
        assert_eq!(v["jobs"]["IN_PROGRESS"][0]["jobId"], "j");
        assert!(v["jobs"].get("QUEUED").is_none());
        let v: Value = serde_json::from_slice(&reply(Answer::pending(&[e]), 0, None)).unwrap();
        assert_eq!(v["inProgressJobs"][0]["executionNumber"], 1);
        assert_eq!(v["queuedJobs"], json!([]));
        let r = Rejection { code: "InvalidRequest", message: "m".into(), execution_state: None, cause: None };
        assert_eq!(serde_json::from_slice::<Value>(&reply(r, 0, None)).unwrap()["code"], "InvalidRequest");
    }
}
