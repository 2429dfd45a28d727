//! Control-plane job execution operations: ListJobExecutionsForJob/ForThing,
//! DescribeJobExecution, CancelJobExecution, DeleteJobExecution.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution::{self, Rejection};
use fleetjobs_core::validate;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use serde_json::{json, Value};

use crate::input::Input;
use crate::jobs::{execution_status_filter, job_not_found};
use crate::registry::with_token;
use crate::wire::{self, page};
use crate::Engine;

fn execution_not_found(job: &str, thing: &str) -> ApiError {
    ApiError::not_found(format!("Job execution for job {job} and thing {thing} does not exist."))
}

fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::VersionMismatch => {
            ApiError::new(ErrorCode::VersionConflict, "The expected version does not match the job execution version.")
        }
        Rejection::InvalidStateTransition(m) => ApiError::new(ErrorCode::InvalidStateTransition, m),
    }
}

fn ids(input: &Input) -> ApiResult<(String, String)> {
    let job = input.job_id()?;
    let thing = input.thing_name()?;
    Ok((job.to_string(), thing.to_string()))
}

impl Engine {
    pub async fn list_job_executions_for_job(&self, input: Input) -> ApiResult<Value> {
        let job = input.job_id()?;
        let status = execution_status_filter(&input)?;
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        self.read(|s| {
            if !s.jobs.contains_key(job) {
                return Err(job_not_found(job));
            }
            let items: Vec<Value> = s
                .executions_of_job(job)
                .filter(|e| status.is_none_or(|st| e.status == st))
                .map(|e| json!({"thingArn": self.config.scope.arn(ResourceKind::Thing, &e.thing_name), "jobExecutionSummary": wire::control_summary(e)}))
                .collect();
            let (list, next) = page(items, token, max, 50).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "executionSummaries": list }), "nextToken", next))
        })
        .await
    }

    pub async fn list_job_executions_for_thing(&self, input: Input) -> ApiResult<Value> {
        let thing = input.thing_name()?;
        let status = execution_status_filter(&input)?;
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        let job_filter = input.str("jobId")?;
        let namespace = input.str("namespaceId")?;
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(ApiError::not_found(format!("Thing {thing} cannot be found.")));
            }
            let mut execs: Vec<_> = s
                .executions_of_thing(thing)
                .filter(|e| status.is_none_or(|st| e.status == st))
                .filter(|e| job_filter.is_none_or(|j| e.job_id == j))
                .filter(|e| {
                    namespace.is_none_or(|ns| s.jobs.get(&e.job_id).and_then(|j| j.namespace_id.as_deref()) == Some(ns))
                })
                .collect();
            execs.sort_by(|a, b| b.queued_at.cmp(&a.queued_at).then_with(|| a.job_id.cmp(&b.job_id)));
            let items: Vec<Value> = execs
                .into_iter()
                .map(|e| json!({"jobId": e.job_id, "jobExecutionSummary": wire::control_summary(e)}))
                .collect();
            let (list, next) = page(items, token, max, 50).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "executionSummaries": list }), "nextToken", next))
        })
        .await
    }

    pub async fn describe_job_execution(&self, input: Input) -> ApiResult<Value> {
        let (job, thing) = ids(&input)?;
        let number = input.i64("executionNumber")?;
        self.read(|s| {
            let e = s.execution(&job, &thing, number).ok_or_else(|| execution_not_found(&job, &thing))?;
            Ok(json!({ "execution": wire::control_execution(e, &self.config.scope) }))
        })
        .await
    }

    pub async fn cancel_job_execution(&self, input: Input) -> ApiResult<Value> {
        let (job, thing) = ids(&input)?;
        let force = input.flag("force")?;
        let expected = input.i64("expectedVersion")?;
        let details = match input.get("statusDetails") {
            Some(v) => Some(validate::status_details(v).map_err(ApiError::invalid)?),
            None => None,
        };
        self.write(|txn| {
            let mut e =
                txn.s.execution(&job, &thing, None).cloned().ok_or_else(|| execution_not_found(&job, &thing))?;
            execution::cancel(&mut e, force, expected, details.as_ref(), txn.now).map_err(rejection)?;
            txn.put_execution(e);
            Ok(json!({}))
        })
        .await
    }

    pub async fn delete_job_execution(&self, input: Input) -> ApiResult<Value> {
        let (job, thing) = ids(&input)?;
        let number = input
            .i64("executionNumber")?
            .ok_or_else(|| ApiError::invalid("Missing required parameter: executionNumber"))?;
        let force = input.flag("force")?;
        self.write(|txn| {
            let key = (job.clone(), thing.clone(), number);
            let e = txn.s.executions.get(&key).ok_or_else(|| execution_not_found(&job, &thing))?;
            execution::can_delete(e, force).map_err(rejection)?;
            txn.delete_execution(&key);
            Ok(json!({}))
        })
        .await
    }
}
