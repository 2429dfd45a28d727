//! The `iot-jobs-data` HTTPS API: the device rules of `device` (shared with the MQTT API) as
//! the REST-JSON operations of botocore's `iot-jobs-data` model. Differences from MQTT: no
//! `timestamp`/`clientToken`, `jobDocument` is a string, and refusals are HTTP exceptions.

use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use serde::{Deserialize, Serialize};

use super::payload::{DescribeRequest, ExecutionSummary, StartNextRequest, UpdateRequest};
use super::{Execution, ExecutionState, Rejected};
use crate::document_source::DeviceDocument;
use crate::Engine;

/// GetPendingJobExecutions: `GET /things/{thingName}/jobs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPendingJobExecutionsRequest {
    pub thing_name: String,
}

/// StartNextPendingJobExecution: `PUT /things/{thingName}/jobs/$next`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNextPendingJobExecutionRequest {
    pub thing_name: String,
    #[serde(flatten)]
    request: StartNextRequest,
}

/// DescribeJobExecution (device view): `GET /things/{thingName}/jobs/{jobId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionRequest {
    pub thing_name: String,
    pub job_id: String,
    #[serde(flatten)]
    request: DescribeRequest,
}

/// UpdateJobExecution: `POST /things/{thingName}/jobs/{jobId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobExecutionRequest {
    pub thing_name: String,
    pub job_id: String,
    #[serde(flatten)]
    request: UpdateRequest,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPendingJobExecutionsResponse {
    in_progress_jobs: Vec<ExecutionSummary>,
    queued_jobs: Vec<ExecutionSummary>,
}

/// The document as the data plane sends it: JSON text, placeholders presigned.
fn document_text(d: &DeviceDocument) -> String {
    serde_json::to_string(d).expect("json serializes")
}

/// The data-plane `JobExecution`: the MQTT one with its document as a JSON string.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobsDataExecution {
    #[serde(flatten)]
    execution: Execution,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_document: Option<String>,
}

impl From<Execution> for JobsDataExecution {
    fn from(mut execution: Execution) -> Self {
        let job_document = execution.job_document.take().map(|d| document_text(&d));
        JobsDataExecution { execution, job_document }
    }
}

/// StartNextPendingJobExecution and DescribeJobExecution: `{}` when nothing is pending.
#[derive(Debug, Serialize)]
pub struct ExecutionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<JobsDataExecution>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobExecutionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_state: Option<ExecutionState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_document: Option<String>,
}

/// An MQTT rejection code as the modeled HTTP exception. The model has no version-conflict
/// exception, so a version mismatch is an `InvalidStateTransitionException` (spec §3.1).
/// (A function, not `From`: a second `From` into `ApiError` would leave `?` in the engine's
/// closures without a type to infer.)
fn api_error(r: Rejected) -> ApiError {
    if let Some(code) = r.cause {
        return ApiError::new(code, r.message);
    }
    let code = match r.code {
        "InvalidRequest" | "InvalidJson" => ErrorCode::InvalidRequest,
        "ResourceNotFound" => ErrorCode::ResourceNotFound,
        "VersionMismatch" | "InvalidStateTransition" => ErrorCode::InvalidStateTransition,
        _ => ErrorCode::InternalFailure,
    };
    ApiError::new(code, r.message)
}

impl Engine {
    pub async fn jobs_data_get_pending(
        &self,
        r: GetPendingJobExecutionsRequest,
    ) -> ApiResult<GetPendingJobExecutionsResponse> {
        // An unknown thing is a 404 here (spec §3.1); over MQTT the device is a connection
        // whose thing may be gone, and an empty answer is what AWS sends there.
        let known = self.read(|s| Ok::<_, ApiError>(s.things.contains_key(&r.thing_name))).await?;
        if !known {
            return Err(ApiError::not_found(format!("Thing {} does not exist.", r.thing_name)));
        }
        let pending = self.device_get_pending(&r.thing_name, None).await.map_err(api_error)?;
        let shown = |status| pending.iter().filter(|e| e.status == status).map(ExecutionSummary::from).collect();
        Ok(GetPendingJobExecutionsResponse {
            in_progress_jobs: shown(fleetjobs_core::model::JobExecutionStatus::InProgress),
            queued_jobs: shown(fleetjobs_core::model::JobExecutionStatus::Queued),
        })
    }

    pub async fn jobs_data_start_next(&self, r: StartNextPendingJobExecutionRequest) -> ApiResult<ExecutionResponse> {
        let execution = self.device_start_next(&r.thing_name, None, r.request).await.map_err(api_error)?;
        Ok(ExecutionResponse { execution: execution.map(JobsDataExecution::from) })
    }

    pub async fn jobs_data_describe(&self, r: DescribeJobExecutionRequest) -> ApiResult<ExecutionResponse> {
        let execution = self.device_describe(&r.thing_name, None, &r.job_id, r.request).await.map_err(api_error)?;
        Ok(ExecutionResponse { execution: execution.map(JobsDataExecution::from) })
    }

    pub async fn jobs_data_update(&self, r: UpdateJobExecutionRequest) -> ApiResult<UpdateJobExecutionResponse> {
        let u = self.device_update(&r.thing_name, None, &r.job_id, r.request).await.map_err(api_error)?;
        Ok(UpdateJobExecutionResponse {
            execution_state: u.execution_state,
            job_document: u.job_document.map(|d| document_text(&d)),
        })
    }
}
