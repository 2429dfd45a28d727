//! Reads the web console needs that AWS has no operation for: every job's row of the Jobs page
//! in one read (instead of ListJobs, then DescribeJob per job), and a job's execution statuses
//! over time. Typed like the AWS operations, checked the same way; not on the HTTP API.

use super::jobs::JobProcessDetails;
use super::Timestamp;
use crate::events::ExecutionCounts;
use crate::model::{Job, JobStatus, TargetSelection};
use crate::status_history::MAX_SAMPLES;
use crate::validate;
use crate::{ApiError, ApiResult, Millis};

/// At most this many jobs in one [`ListJobOverviewsRequest`] answer.
pub const MAX_JOB_OVERVIEWS: usize = 500;
/// The longest search text.
pub const MAX_SEARCH_TEXT: usize = 256;

/// The jobs of the Jobs page, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListJobOverviewsRequest {
    pub status: Option<JobStatus>,
    /// Only jobs whose ID or description contains it, ignoring case.
    pub text: Option<String>,
    /// 1..=[`MAX_JOB_OVERVIEWS`].
    pub max_results: usize,
}

impl ListJobOverviewsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        if !(1..=MAX_JOB_OVERVIEWS).contains(&self.max_results) {
            return Err(ApiError::invalid(format!("maxResults must be between 1 and {MAX_JOB_OVERVIEWS}")));
        }
        if self.text.as_ref().is_some_and(|t| t.chars().count() > MAX_SEARCH_TEXT) {
            return Err(ApiError::invalid(format!("The search text can have at most {MAX_SEARCH_TEXT} characters")));
        }
        Ok(())
    }
}

/// One job's row: what ListJobs says of it, its description and its `jobProcessDetails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOverview {
    pub job_id: String,
    pub status: JobStatus,
    pub target_selection: TargetSelection,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    pub job_process_details: JobProcessDetails,
}

impl JobOverview {
    pub fn new(j: &Job, counts: &ExecutionCounts) -> Self {
        JobOverview {
            job_id: j.job_id.clone(),
            status: j.status,
            target_selection: j.target_selection,
            description: j.description.clone(),
            created_at: j.created_at.into(),
            last_updated_at: j.last_updated_at.into(),
            job_process_details: counts.into(),
        }
    }
}

/// The search of the Jobs page: `needle` (lowercase) in the job's ID or its description.
pub fn job_matches(j: &Job, needle: &str) -> bool {
    j.job_id.to_lowercase().contains(needle)
        || j.description.as_deref().is_some_and(|d| d.to_lowercase().contains(needle))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListJobOverviewsResponse {
    pub jobs: Vec<JobOverview>,
    /// More jobs matched than `max_results`: the oldest were left out.
    pub truncated: bool,
}

/// A job's execution statuses at `samples` instants evenly spaced from its creation to its
/// completion (or now), by [`crate::status_history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatusHistoryRequest {
    pub job_id: String,
    /// 2..=[`MAX_SAMPLES`].
    pub samples: usize,
}

impl JobStatusHistoryRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_id, "jobId")?;
        if !(2..=MAX_SAMPLES).contains(&self.samples) {
            return Err(ApiError::invalid(format!("samples must be between 2 and {MAX_SAMPLES}")));
        }
        Ok(())
    }
}

/// The counts at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSample {
    pub at: Millis,
    pub counts: JobProcessDetails,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatusHistoryResponse {
    pub samples: Vec<StatusSample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_bounded() {
        let ok = ListJobOverviewsRequest { max_results: 500, ..Default::default() };
        assert!(ok.check(0).is_ok());
        assert!(ListJobOverviewsRequest { max_results: 0, ..Default::default() }.check(0).is_err());
        assert!(ListJobOverviewsRequest { max_results: 501, ..Default::default() }.check(0).is_err());
        let long = ListJobOverviewsRequest { text: Some("x".repeat(257)), ..ok };
        assert!(long.check(0).is_err());
        let history = JobStatusHistoryRequest { job_id: "j".into(), samples: 60 };
        assert!(history.check(0).is_ok());
        assert!(JobStatusHistoryRequest { samples: 1, ..history.clone() }.check(0).is_err());
        assert!(JobStatusHistoryRequest { samples: MAX_SAMPLES + 1, ..history.clone() }.check(0).is_err());
        assert!(JobStatusHistoryRequest { job_id: "bad id!".into(), ..history }.check(0).is_err());
    }
}
