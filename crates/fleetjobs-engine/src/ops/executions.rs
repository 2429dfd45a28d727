//! Job executions on the control plane: ListJobExecutionsForJob, ListJobExecutionsForThing,
//! DescribeJobExecution, CancelJobExecution, DeleteJobExecution.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution;
use fleetjobs_core::ops::executions::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::ApiResult;

use super::{execution_not_found, job_in_namespace, job_not_found, rejection, thing_not_found};
use crate::Engine;

impl Engine {
    pub async fn list_job_executions_for_job(
        &self,
        r: ListJobExecutionsForJobRequest,
    ) -> ApiResult<ListJobExecutionsForJobResponse> {
        r.check(self.now())?;
        let job = &r.job_id;
        self.read_job(job, |s| {
            if !s.jobs.contains_key(job) {
                return Err(job_not_found(job));
            }
            // The page is cut from references; only its own items become summaries (paging
            // through N executions would otherwise build N summaries per page).
            let items: Vec<_> = s.executions_of_job(job).filter(|e| r.status.is_none_or(|st| e.status == st)).collect();
            let (shown, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            let execution_summaries = shown
                .into_iter()
                .map(|e| JobExecutionSummaryForJob {
                    thing_arn: self.config.scope.arn(ResourceKind::Thing, &e.thing_name),
                    job_execution_summary: e.into(),
                })
                .collect();
            Ok(ListJobExecutionsForJobResponse { execution_summaries, next_token })
        })
        .await
    }

    pub async fn list_job_executions_for_thing(
        &self,
        r: ListJobExecutionsForThingRequest,
    ) -> ApiResult<ListJobExecutionsForThingResponse> {
        r.check(self.now())?;
        let thing = &r.thing_name;
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(thing_not_found(thing));
            }
            let mut execs: Vec<_> = s
                .executions_of_thing(thing)
                .filter(|e| r.status.is_none_or(|st| e.status == st))
                .filter(|e| r.job_id.as_ref().is_none_or(|j| &e.job_id == j))
                .filter(|e| {
                    r.namespace_id
                        .as_deref()
                        .is_none_or(|ns| s.jobs.get(&e.job_id).and_then(|j| j.namespace_id.as_deref()) == Some(ns))
                })
                .collect();
            execs.sort_by(|a, b| b.queued_at.cmp(&a.queued_at).then_with(|| a.job_id.cmp(&b.job_id)));
            let items: Vec<JobExecutionSummaryForThing> = execs
                .into_iter()
                .map(|e| JobExecutionSummaryForThing { job_id: e.job_id.clone(), job_execution_summary: e.into() })
                .collect();
            let (execution_summaries, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListJobExecutionsForThingResponse { execution_summaries, next_token })
        })
        .await
    }

    pub async fn describe_job_execution(
        &self,
        r: DescribeJobExecutionRequest,
    ) -> ApiResult<DescribeJobExecutionResponse> {
        r.check(self.now())?;
        let (job, thing) = (&r.job_id, &r.thing_name);
        let now = self.now();
        self.read_job(job, |s| {
            let e = s.execution(job, thing, r.execution_number).ok_or_else(|| execution_not_found(job, thing))?;
            let mut execution = JobExecutionDescription::new(e, &self.config.scope);
            let deadline = s.deadline_of(&(e.job_id.as_str(), e.thing_name.as_str(), e.execution_number));
            execution.approximate_seconds_before_timed_out = deadline.map(|d| execution::seconds_before(d, now));
            Ok(DescribeJobExecutionResponse { execution })
        })
        .await
    }

    pub async fn cancel_job_execution(&self, r: CancelJobExecutionRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let (job, thing) = (&r.job_id, &r.thing_name);
        self.write(|txn| {
            let mut e = txn.s.execution(job, thing, None).cloned().ok_or_else(|| execution_not_found(job, thing))?;
            execution::cancel(&mut e, r.force, r.expected_version, r.status_details(), txn.now).map_err(rejection)?;
            txn.put_execution(e);
            Ok(Empty {})
        })
        .await
    }

    pub async fn delete_job_execution(&self, r: DeleteJobExecutionRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let (job, thing) = (&r.job_id, &r.thing_name);
        self.write(|txn| {
            let key = (job.clone(), thing.clone(), r.execution_number);
            let e = txn.s.executions.get(&key).ok_or_else(|| execution_not_found(job, thing))?;
            job_in_namespace(txn.s, job, r.namespace_id.as_deref())?;
            execution::can_delete(e, r.force).map_err(rejection)?;
            txn.delete_execution(&key);
            Ok(Empty {})
        })
        .await
    }
}
