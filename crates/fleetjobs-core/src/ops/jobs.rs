//! Jobs: CreateJob, UpdateJob, DescribeJob, ListJobs, CancelJob, DeleteJob, GetJobDocument,
//! AssociateTargetsWithJob.
//!
//! The six job configurations are listed member by member (not `#[serde(flatten)]` into a
//! `JobConfigs`): flattening buffers the members, and a type error inside one would then be
//! reported without the member's path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::job_templates::{check_arn, check_document_parameters, check_package_versions};
use super::tags::{check_tag, MAX_TAGS};
use super::{check_max_results, Timestamp};
use crate::error::AtMember;
use crate::events::ExecutionCounts;
use crate::job_config::{
    AbortConfig, JobConfigs, PresignedUrlConfig, RetryConfig, RolloutConfig, SchedulingConfig, TimeoutConfig,
};
use crate::model::{Job, JobExecutionStatus, JobStatus, Tag, TargetSelection};
use crate::validate::{self, MAX_TARGETS};
use crate::{ApiError, ApiResult, Millis};

/// At most this many `destinationPackageVersions` per job.
pub const MAX_DESTINATION_PACKAGE_VERSIONS: usize = 25;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobRequest {
    pub job_id: String,
    pub targets: Vec<String>,
    pub document_source: Option<String>,
    pub document: Option<String>,
    pub description: Option<String>,
    pub presigned_url_config: Option<PresignedUrlConfig>,
    pub target_selection: Option<TargetSelection>,
    pub job_executions_rollout_config: Option<RolloutConfig>,
    pub abort_config: Option<AbortConfig>,
    pub timeout_config: Option<TimeoutConfig>,
    pub tags: Option<Vec<Tag>>,
    pub namespace_id: Option<String>,
    pub job_template_arn: Option<String>,
    pub job_executions_retry_config: Option<RetryConfig>,
    pub document_parameters: Option<BTreeMap<String, String>>,
    pub scheduling_config: Option<SchedulingConfig>,
    pub destination_package_versions: Option<Vec<String>>,
    /// The document read from `documentSource` (filled by the engine before the write; never
    /// from the wire).
    #[serde(skip)]
    pub fetched_document: Option<String>,
}

impl CreateJobRequest {
    pub fn check(&self, now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId").at("jobId")?;
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(ApiError::invalid(format!("A job must have between 1 and {MAX_TARGETS} targets")).at("targets"));
        }
        if let Some(d) = &self.description {
            validate::free_text(d, "description").at("description")?;
        }
        if let Some(ns) = &self.namespace_id {
            validate::namespace_id(ns).at("namespaceId")?;
        }
        match &self.job_template_arn {
            // The template supplies the document: the request must not bring one too.
            Some(arn) => {
                check_arn(arn, "jobTemplateArn").at("jobTemplateArn")?;
                if self.document.is_some() || self.document_source.is_some() {
                    return Err(ApiError::invalid(
                        "Specify either document, documentSource or jobTemplateArn, not several",
                    )
                    .at("jobTemplateArn"));
                }
            }
            None => {
                if self.document_parameters.is_some() {
                    return Err(ApiError::invalid(
                        "documentParameters can only be used with an AWS managed job template",
                    )
                    .at("documentParameters"));
                }
                validate::job_document(self.inline_document()?).at("document")?;
            }
        }
        if let Some(params) = &self.document_parameters {
            check_document_parameters(params).at("documentParameters")?;
        }
        self.configs().check(now)?;
        let tags = self.tags.as_deref().unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(format!("tags can have at most {MAX_TAGS} items")).at("tags"));
        }
        tags.iter().try_for_each(check_tag).at("tags")?;
        check_package_versions(self.destination_package_versions.as_deref()).at("destinationPackageVersions")
    }

    /// The job document: inline, or as fetched from `documentSource`.
    pub fn inline_document(&self) -> ApiResult<&str> {
        match (&self.document, &self.document_source) {
            (Some(d), None) => Ok(d),
            (None, Some(url)) => self.fetched_document.as_deref().ok_or_else(|| {
                ApiError::invalid(format!("The job document at {url} could not be read")).at("documentSource")
            }),
            (Some(_), Some(_)) => {
                Err(ApiError::invalid("Specify either document or documentSource, not both").at("documentSource"))
            }
            (None, None) => {
                Err(ApiError::invalid("Either document or documentSource must be specified").at("document"))
            }
        }
    }

    /// The job configurations this request sets.
    pub fn configs(&self) -> JobConfigs {
        JobConfigs {
            presigned_url_config: self.presigned_url_config.clone(),
            job_executions_rollout_config: self.job_executions_rollout_config.clone(),
            abort_config: self.abort_config.clone(),
            timeout_config: self.timeout_config.clone(),
            job_executions_retry_config: self.job_executions_retry_config.clone(),
            scheduling_config: self.scheduling_config.clone(),
        }
    }
}

/// The answer of CreateJob, CancelJob and AssociateTargetsWithJob: the job's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobResponse {
    pub job_arn: String,
    pub job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub type CancelJobResponse = CreateJobResponse;
pub type AssociateTargetsWithJobResponse = CreateJobResponse;

impl From<&Job> for CreateJobResponse {
    fn from(j: &Job) -> Self {
        CreateJobResponse { job_arn: j.job_arn.clone(), job_id: j.job_id.clone(), description: j.description.clone() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobRequest {
    pub job_id: String,
    pub description: Option<String>,
    pub presigned_url_config: Option<PresignedUrlConfig>,
    pub job_executions_rollout_config: Option<RolloutConfig>,
    pub abort_config: Option<AbortConfig>,
    pub timeout_config: Option<TimeoutConfig>,
    pub namespace_id: Option<String>,
    pub job_executions_retry_config: Option<RetryConfig>,
    /// Not an UpdateJob member in the model: accepted and checked as CreateJob checks it, and
    /// never applied (scheduling is immutable after creation), as Fleetjobs always did.
    pub scheduling_config: Option<SchedulingConfig>,
}

impl UpdateJobRequest {
    pub fn check(&self, now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)?;
        if let Some(d) = &self.description {
            validate::free_text(d, "description")?;
        }
        self.configs().check_update(now)
    }

    /// The job configurations this request sets.
    pub fn configs(&self) -> JobConfigs {
        JobConfigs {
            presigned_url_config: self.presigned_url_config.clone(),
            job_executions_rollout_config: self.job_executions_rollout_config.clone(),
            abort_config: self.abort_config.clone(),
            timeout_config: self.timeout_config.clone(),
            job_executions_retry_config: self.job_executions_retry_config.clone(),
            scheduling_config: self.scheduling_config.clone(),
        }
    }
}

/// DescribeJob and GetJobDocument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobRequest {
    pub job_id: String,
    /// A job made from a managed template answers the document before its
    /// `documentParameters` were substituted; any other job's document is as sent.
    #[serde(default)]
    pub before_substitution: bool,
}

pub type GetJobDocumentRequest = DescribeJobRequest;

impl DescribeJobRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_source: Option<String>,
    pub job: JobDescription,
}

/// The control-plane `Job` shape (DescribeJob).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDescription {
    pub job_arn: String,
    pub job_id: String,
    pub target_selection: TargetSelection,
    pub status: JobStatus,
    pub force_canceled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Echoed in the shape they were stored; absent ones stay absent.
    #[serde(flatten)]
    pub configs: JobConfigs,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub job_process_details: JobProcessDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_template_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_package_versions: Option<Vec<String>>,
    /// True while the job is still creating executions (its rollout is held back by a rate,
    /// a schedule or maintenance windows, or a big target list is being created in chunks).
    pub is_concurrent: bool,
    /// The next starts of its maintenance windows (set by the engine, which knows the rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_job_rollouts: Option<Vec<ScheduledJobRollout>>,
}

/// `ScheduledJobRollout`: when a maintenance window of the job next opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledJobRollout {
    pub start_time: String,
}

impl JobDescription {
    pub fn new(j: &Job, counts: &ExecutionCounts) -> Self {
        JobDescription {
            job_arn: j.job_arn.clone(),
            job_id: j.job_id.clone(),
            target_selection: j.target_selection,
            status: j.status,
            force_canceled: j.force_canceled,
            reason_code: j.reason_code.clone(),
            comment: j.comment.clone(),
            targets: j.targets.clone(),
            description: j.description.clone(),
            configs: j.configs.clone(),
            created_at: j.created_at.into(),
            last_updated_at: j.last_updated_at.into(),
            completed_at: j.completed_at.map(Timestamp),
            job_process_details: JobProcessDetails {
                // The targets still being rolled out to; none once every target has its execution.
                processing_targets: j.rollout.is_some().then(|| j.targets.clone()),
                ..counts.into()
            },
            namespace_id: j.namespace_id.clone(),
            job_template_arn: j.job_template_arn.clone(),
            document_parameters: j.document_parameters.clone(),
            destination_package_versions: j.destination_package_versions.clone(),
            is_concurrent: j.rollout.is_some(),
            scheduled_job_rollouts: None,
        }
    }
}

/// `JobProcessDetails`: the job's executions by status, zeros included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProcessDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_targets: Option<Vec<String>>,
    pub number_of_canceled_things: i64,
    pub number_of_succeeded_things: i64,
    pub number_of_failed_things: i64,
    pub number_of_rejected_things: i64,
    pub number_of_queued_things: i64,
    pub number_of_in_progress_things: i64,
    pub number_of_removed_things: i64,
    pub number_of_timed_out_things: i64,
}

impl From<&ExecutionCounts> for JobProcessDetails {
    fn from(c: &ExecutionCounts) -> Self {
        use JobExecutionStatus::*;
        JobProcessDetails {
            processing_targets: None,
            number_of_canceled_things: c.get(Canceled),
            number_of_succeeded_things: c.get(Succeeded),
            number_of_failed_things: c.get(Failed),
            number_of_rejected_things: c.get(Rejected),
            number_of_queued_things: c.get(Queued),
            number_of_in_progress_things: c.get(InProgress),
            number_of_removed_things: c.get(Removed),
            number_of_timed_out_things: c.get(TimedOut),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobDocumentResponse {
    pub document: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsRequest {
    pub status: Option<JobStatus>,
    pub target_selection: Option<TargetSelection>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub thing_group_name: Option<String>,
    pub thing_group_id: Option<String>,
    pub namespace_id: Option<String>,
}

impl ListJobsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)?;
        check_max_results(self.max_results)
    }
}

/// `JobSummary`: one job of ListJobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub job_arn: String,
    pub job_id: String,
    pub target_selection: TargetSelection,
    pub status: JobStatus,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub is_concurrent: bool,
}

impl From<&Job> for JobSummary {
    fn from(j: &Job) -> Self {
        JobSummary {
            job_arn: j.job_arn.clone(),
            job_id: j.job_id.clone(),
            target_selection: j.target_selection,
            status: j.status,
            created_at: j.created_at.into(),
            last_updated_at: j.last_updated_at.into(),
            completed_at: j.completed_at.map(Timestamp),
            is_concurrent: j.rollout.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsResponse {
    pub jobs: Vec<JobSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelJobRequest {
    pub job_id: String,
    pub reason_code: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub force: bool,
}

impl CancelJobRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        if let Some(r) = &self.reason_code {
            validate::reason_code(r)?;
        }
        if let Some(c) = &self.comment {
            validate::free_text(c, "comment")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteJobRequest {
    pub job_id: String,
    #[serde(default)]
    pub force: bool,
    pub namespace_id: Option<String>,
}

impl DeleteJobRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociateTargetsWithJobRequest {
    pub targets: Vec<String>,
    pub job_id: String,
    pub comment: Option<String>,
    pub namespace_id: Option<String>,
}

impl AssociateTargetsWithJobRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        self.namespace_id.as_deref().map_or(Ok(()), validate::namespace_id)?;
        if self.targets.is_empty() {
            return Err(ApiError::invalid("targets must have at least 1 item"));
        }
        self.comment.as_deref().map_or(Ok(()), |c| validate::free_text(c, "comment"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn create(v: serde_json::Value) -> CreateJobRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn create_needs_one_inline_document_and_valid_tags() {
        let base = || json!({"jobId": "j", "targets": ["arn:aws:iot:us-east-1:1:thing/t"], "document": "{}"});
        assert!(create(base()).check(0).is_ok());
        let mut r = create(base());
        r.document_source = Some("https://s3/doc".into());
        assert_eq!(r.check(0).unwrap_err().message, "Specify either document or documentSource, not both");
        r.document = None;
        assert!(r.check(0).unwrap_err().message.contains("could not be read"));
        r.fetched_document = Some("{\"op\":1}".into());
        assert_eq!(r.inline_document().unwrap(), "{\"op\":1}");
        r.fetched_document = Some("not json".into());
        assert!(r.check(0).is_err());
        let mut v = base();
        v["tags"] = json!([{"Key": ""}]);
        assert_eq!(create(v).check(0).unwrap_err().message, "Tag keys must have length between 1 and 128");
        let mut v = base();
        v["targetSelection"] = json!("CONTINUOUS");
        v["tags"] = json!([{"Key": "k", "Value": "v"}, {"Key": "only"}]);
        let r = create(v);
        assert_eq!(r.target_selection, Some(TargetSelection::Continuous));
        assert_eq!(r.tags.as_ref().map(Vec::len), Some(2));
        assert!(r.check(0).is_ok());
        assert!(serde_json::from_value::<CreateJobRequest>(
            json!({"jobId": "j", "targets": [], "targetSelection": "SOMETIMES"})
        )
        .is_err());
    }

    #[test]
    fn descriptions_serialize_as_the_wire_shape() {
        let job: Job = serde_json::from_value(json!({"jobId": "j", "jobArn": "arn:j", "targets": ["arn:t"],
            "document": "{}", "targetSelection": "SNAPSHOT", "status": "IN_PROGRESS", "createdAt": 1_700_000_000_123_i64,
            "lastUpdatedAt": 1_700_000_000_500_i64, "configs": {"timeoutConfig": {"inProgressTimeoutInMinutes": 5}}}))
        .unwrap();
        let mut counts = ExecutionCounts::default();
        counts.add(JobExecutionStatus::Queued, 2);
        let text = serde_json::to_string(&JobDescription::new(&job, &counts)).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"jobArn":"arn:j","jobId":"j","targetSelection":"SNAPSHOT","status":"IN_PROGRESS","forceCanceled":false,"#,
                r#""targets":["arn:t"],"timeoutConfig":{"inProgressTimeoutInMinutes":5},"createdAt":1700000000.123,"#,
                r#""lastUpdatedAt":1700000000.5,"jobProcessDetails":{"numberOfCanceledThings":0,"numberOfSucceededThings":0,"#,
                r#""numberOfFailedThings":0,"numberOfRejectedThings":0,"numberOfQueuedThings":2,"numberOfInProgressThings":0,"#,
                r#""numberOfRemovedThings":0,"numberOfTimedOutThings":0},"isConcurrent":false}"#
            )
        );
        let summary = serde_json::to_value(JobSummary::from(&job)).unwrap();
        assert_eq!(summary["isConcurrent"], false);
        assert!(summary.get("completedAt").is_none());
        let ids = serde_json::to_value(CreateJobResponse::from(&job)).unwrap();
        assert_eq!(ids, json!({"jobArn": "arn:j", "jobId": "j"}));
    }

    #[test]
    fn list_and_cancel_checks() {
        assert!(ListJobsRequest { max_results: Some(251), ..Default::default() }.check(0).is_err());
        let r: ListJobsRequest = serde_json::from_value(json!({"status": "DELETION_IN_PROGRESS"})).unwrap();
        assert_eq!(r.status, Some(JobStatus::DeletionInProgress));
        let cancel = CancelJobRequest { job_id: "j".into(), reason_code: Some("lower".into()), ..Default::default() };
        assert!(cancel.check(0).is_err());
        let delete = DeleteJobRequest { job_id: "j".into(), namespace_id: Some("bad ns".into()), ..Default::default() };
        assert!(delete.check(0).is_err());
        let assoc = AssociateTargetsWithJobRequest { job_id: "j".into(), ..Default::default() };
        assert_eq!(assoc.check(0).unwrap_err().message, "targets must have at least 1 item");
        // Every namespaceId a request takes is checked against its pattern.
        let bad = Some("bad ns".to_string());
        assert!(ListJobsRequest { namespace_id: bad.clone(), ..Default::default() }.check(0).is_err());
        let update = UpdateJobRequest { job_id: "j".into(), namespace_id: bad.clone(), ..Default::default() };
        assert!(update.check(0).is_err());
        let assoc = AssociateTargetsWithJobRequest {
            job_id: "j".into(),
            targets: vec!["arn".into()],
            namespace_id: bad,
            ..Default::default()
        };
        assert!(assoc.check(0).is_err());
    }
}
