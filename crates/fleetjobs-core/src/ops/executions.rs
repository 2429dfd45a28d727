//! Job executions on the control plane: ListJobExecutionsForJob, ListJobExecutionsForThing,
//! DescribeJobExecution, CancelJobExecution, DeleteJobExecution.

use serde::{Deserialize, Serialize};

use super::{check_max_results, Timestamp};
use crate::arn::{ArnScope, ResourceKind};
use crate::model::{JobExecution, JobExecutionStatus, StatusDetails};
use crate::validate::{self, SentStatusDetails};
use crate::{ApiError, ApiResult, Millis};

/// The `jobId` and `thingName` that name an execution.
fn check_ids(job_id: &str, thing_name: &str) -> ApiResult<()> {
    validate::job_id(job_id, "jobId")?;
    validate::thing_name(thing_name, "thingName")
}

/// The control-plane `JobExecutionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummary {
    pub status: JobExecutionStatus,
    pub queued_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    pub last_updated_at: Timestamp,
    pub execution_number: i64,
    pub retry_attempt: i32,
}

impl From<&JobExecution> for JobExecutionSummary {
    fn from(e: &JobExecution) -> Self {
        JobExecutionSummary {
            status: e.status,
            queued_at: e.queued_at.into(),
            started_at: e.started_at.map(Timestamp),
            last_updated_at: e.last_updated_at.into(),
            execution_number: e.execution_number,
            retry_attempt: e.retry_attempt,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForJobRequest {
    pub job_id: String,
    pub status: Option<JobExecutionStatus>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

impl ListJobExecutionsForJobRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummaryForJob {
    pub thing_arn: String,
    pub job_execution_summary: JobExecutionSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForJobResponse {
    pub execution_summaries: Vec<JobExecutionSummaryForJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForThingRequest {
    pub thing_name: String,
    pub status: Option<JobExecutionStatus>,
    pub namespace_id: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    /// Only the executions of this job.
    pub job_id: Option<String>,
}

impl ListJobExecutionsForThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)?;
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummaryForThing {
    pub job_id: String,
    pub job_execution_summary: JobExecutionSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForThingResponse {
    pub execution_summaries: Vec<JobExecutionSummaryForThing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionRequest {
    pub job_id: String,
    pub thing_name: String,
    /// The latest execution when absent.
    pub execution_number: Option<i64>,
}

impl DescribeJobExecutionRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_ids(&self.job_id, &self.thing_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionResponse {
    pub execution: JobExecutionDescription,
}

/// The control-plane `JobExecution` shape (DescribeJobExecution): the summary's times and
/// numbers, plus identity, `forceCanceled`, `statusDetails` and `versionNumber`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionDescription {
    pub status: JobExecutionStatus,
    pub queued_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    pub last_updated_at: Timestamp,
    pub execution_number: i64,
    pub job_id: String,
    pub force_canceled: bool,
    pub status_details: JobExecutionStatusDetails,
    pub thing_arn: String,
    pub version_number: i64,
    /// Only while a timer runs (set by the engine, which keeps the timers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_seconds_before_timed_out: Option<i64>,
}

/// `JobExecutionStatusDetails`: `{}` when there are none, else `{"detailsMap": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionStatusDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_map: Option<StatusDetails>,
}

impl JobExecutionDescription {
    pub fn new(e: &JobExecution, scope: &ArnScope) -> Self {
        JobExecutionDescription {
            status: e.status,
            queued_at: e.queued_at.into(),
            started_at: e.started_at.map(Timestamp),
            last_updated_at: e.last_updated_at.into(),
            execution_number: e.execution_number,
            job_id: e.job_id.clone(),
            force_canceled: e.force_canceled,
            status_details: JobExecutionStatusDetails {
                details_map: (!e.status_details.is_empty()).then(|| e.status_details.clone()),
            },
            thing_arn: scope.arn(ResourceKind::Thing, &e.thing_name),
            version_number: e.version_number,
            approximate_seconds_before_timed_out: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelJobExecutionRequest {
    pub job_id: String,
    pub thing_name: String,
    #[serde(default)]
    pub force: bool,
    pub expected_version: Option<i64>,
    /// Read as the devices' updates read it (numbers and booleans taken as their text).
    pub status_details: Option<SentStatusDetails>,
}

impl CancelJobExecutionRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_ids(&self.job_id, &self.thing_name)?;
        self.status_details.as_ref().map_or(Ok(()), |d| validate::status_details(&d.0).map_err(ApiError::invalid))
    }

    /// The `statusDetails` to set on the canceled execution.
    pub fn status_details(&self) -> Option<&StatusDetails> {
        self.status_details.as_ref().map(|d| &d.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteJobExecutionRequest {
    pub job_id: String,
    pub thing_name: String,
    pub execution_number: i64,
    #[serde(default)]
    pub force: bool,
    pub namespace_id: Option<String>,
}

impl DeleteJobExecutionRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)?;
        check_ids(&self.job_id, &self.thing_name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn executions_serialize_as_the_wire_shape() {
        let mut e = JobExecution::queued("j", "pi", 1, 1_700_000_000_000);
        let scope = ArnScope::new("us-east-1", "123456789012");
        let d = serde_json::to_value(JobExecutionDescription::new(&e, &scope)).unwrap();
        assert_eq!(d["statusDetails"], json!({}));
        assert_eq!(d["thingArn"], "arn:aws:iot:us-east-1:123456789012:thing/pi");
        assert!(d.get("startedAt").is_none());
        e.status_details.insert("step".into(), "1".into());
        e.started_at = Some(1_700_000_001_250);
        let d = serde_json::to_value(JobExecutionDescription::new(&e, &scope)).unwrap();
        assert_eq!(d["statusDetails"], json!({"detailsMap": {"step": "1"}}));
        assert_eq!(d["startedAt"].to_string(), "1700000001.25");
        let s = serde_json::to_string(&JobExecutionSummary::from(&e)).unwrap();
        assert_eq!(
            s,
            r#"{"status":"QUEUED","queuedAt":1700000000.0,"startedAt":1700000001.25,"lastUpdatedAt":1700000000.0,"executionNumber":1,"retryAttempt":0}"#
        );
    }

    #[test]
    fn cancel_checks_status_details() {
        let mut r = CancelJobExecutionRequest { job_id: "j".into(), thing_name: "t".into(), ..Default::default() };
        assert!(r.check(0).is_ok());
        let sent = |v| Some(serde_json::from_value::<SentStatusDetails>(v).unwrap());
        r.status_details = sent(json!({"n": 1}));
        assert_eq!(r.status_details().unwrap()["n"], "1");
        r.status_details = sent(json!({"bad key": "v"}));
        assert!(r.check(0).unwrap_err().message.contains("bad key"));
        let status: ListJobExecutionsForJobRequest =
            serde_json::from_value(json!({"jobId": "j", "status": "TIMED_OUT"})).unwrap();
        assert_eq!(status.status, Some(JobExecutionStatus::TimedOut));
    }
}
