//! Jobs: CreateJob, UpdateJob, DescribeJob, ListJobs, CancelJob, DeleteJob, GetJobDocument,
//! AssociateTargetsWithJob.
//!
//! A job without a rate or a schedule gets an execution for every target before CreateJob
//! answers: in its own transaction when it has up to `rollout::CREATE_CHUNK_MIN` targets, else a
//! chunk per transaction through the rollout driver (`crate::rollout`), which also creates the
//! executions of jobs with a rate or a schedule over time.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::events::JobEvent;
use fleetjobs_core::model::{Job, JobStatus, Rollout, TargetSelection};
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::validate::MAX_TARGETS;
use fleetjobs_core::{ApiError, ApiResult, AtMember, ErrorCode};

use super::{job_in_namespace, job_not_found, queue_executions};
use crate::durable_view::DurableJob;
use crate::rollout::CREATE_CHUNK_MIN;
use crate::Engine;

impl Engine {
    pub async fn create_job(&self, mut r: CreateJobRequest) -> ApiResult<CreateJobResponse> {
        if let (None, Some(url), None) = (&r.document, &r.document_source, &r.job_template_arn) {
            r.fetched_document = Some(self.fetch_document(url).await.at("documentSource")?);
        }
        r.check(self.now())?;
        let job_id = r.job_id.clone();
        let created = self.write(|txn| {
            let arn = txn.scope.arn(ResourceKind::Job, &job_id);
            if txn.s.jobs.contains_key(&job_id) {
                let message = format!("Job with id {job_id} already exists");
                return Err(ApiError::already_exists(message, &job_id, &arn).at("jobId"));
            }
            let source = self.job_source(txn.s, &r).at("jobTemplateArn")?;
            let configs = source.configs;
            let scheduled = configs.is_scheduled();
            // A rate or a schedule holds executions back: the rollout driver creates them.
            let staged = configs.job_executions_rollout_config.is_some() || configs.scheduling_config.is_some();
            let things = self.resolve_targets(txn.s, &r.targets).at("targets")?;
            // Many targets: the rollout driver creates them a chunk per transaction, below.
            let chunked = !staged && things.len() > CREATE_CHUNK_MIN;
            let job = Job {
                job_id: job_id.clone(),
                job_arn: arn,
                targets: r.targets.clone(),
                document: source.document,
                document_source: r.job_template_arn.is_none().then(|| r.document_source.clone()).flatten(),
                description: source.description,
                target_selection: r.target_selection.unwrap_or_default(),
                status: if scheduled { JobStatus::Scheduled } else { JobStatus::InProgress },
                force_canceled: false,
                reason_code: None,
                comment: None,
                created_at: txn.now,
                last_updated_at: txn.now,
                completed_at: None,
                namespace_id: r.namespace_id.clone(),
                job_template_arn: source.job_template_arn,
                document_parameters: source.document_parameters,
                destination_package_versions: source.destination_package_versions,
                tags: r.tags.clone(),
                configs,
                document_before_substitution: source.document_before_substitution,
                rollout: match (staged, chunked) {
                    (true, _) => Some(Rollout::default()),
                    (false, true) => Some(Rollout { pending: Some(things.clone()), ..Rollout::default() }),
                    (false, false) => None,
                },
            };
            let out = CreateJobResponse::from(&job);
            txn.put_job(job);
            if staged {
                let _ = self.advance_rollout(txn, &job_id);
            } else if !chunked {
                queue_executions(txn, &job_id, &things);
            }
            Ok((out, chunked))
        });
        let (out, chunked) = created.await?;
        if chunked {
            match (self.bulk.get(), self.me.upgrade()) {
                (Some(runtime), Some(engine)) => {
                    let chunks = runtime.spawn(async move { engine.create_in_chunks(&job_id).await });
                    if let Err(e) = chunks.await {
                        tracing::error!(error = %e, "CreateJob's chunks ended early; the timer loop goes on");
                    }
                }
                _ => self.create_in_chunks(&job_id).await,
            }
        }
        Ok(out)
    }

    /// A chunked job's executions, one transaction per chunk: others take the state lock in
    /// between. The chunks are queued back to back and CreateJob's answer waits for the last
    /// (the store commits in order), so every execution exists when CreateJob answers, as for a
    /// small job. Should a chunk fail (the store refusing writes), the job stays a rollout in
    /// progress (DescribeJob's `isConcurrent`) and the timer loop goes on with it.
    async fn create_in_chunks(&self, job_id: &str) {
        let mut more = true;
        let mut last = None;
        while more {
            tokio::task::yield_now().await;
            match self.begin_write(|txn| Ok::<_, ApiError>(self.advance_rollout(txn, job_id))) {
                Ok(submitted) => {
                    more = matches!(submitted.result, Ok(step) if step.created > 0 && step.remaining > 0);
                    last = Some(match last.take() {
                        Some(earlier) => submitted.after(earlier),
                        None => submitted,
                    });
                }
                Err(e) => {
                    tracing::debug!(job_id, error = %e.message, "executions left to the timer loop");
                    more = false;
                }
            }
        }
        if let Some(last) = last {
            if let Err(e) = self.durable(last).await {
                tracing::debug!(job_id, error = %e.message, "executions left to the timer loop");
            }
        }
    }

    pub async fn update_job(&self, r: UpdateJobRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let configs = r.configs();
        let job_id = &r.job_id;
        self.write(|txn| {
            job_in_namespace(txn.s, job_id, r.namespace_id.as_deref())?;
            let mut job = txn.s.jobs.get(job_id).map(|j| Job::clone(j)).ok_or_else(|| job_not_found(job_id))?;
            if matches!(job.status, JobStatus::Completed | JobStatus::Canceled | JobStatus::DeletionInProgress) {
                return Err(ApiError::invalid(format!(
                    "Job {job_id} is in status {} and cannot be updated",
                    job.status.as_str()
                )));
            }
            if r.description.is_some() {
                job.description = r.description.clone();
            }
            job.configs.update(configs.clone());
            job.last_updated_at = txn.now;
            txn.put_job(job);
            Ok(Empty {})
        })
        .await
    }

    pub async fn describe_job(&self, r: DescribeJobRequest) -> ApiResult<DescribeJobResponse> {
        r.check(self.now())?;
        let now = self.now();
        // From the durable view: no wait for the state lock, which device updates and CreateJob
        // chunks hold.
        let DurableJob { job, counts } = self.view.job(&r.job_id).ok_or_else(|| job_not_found(&r.job_id))?;
        let mut description = JobDescription::new(&job, &counts);
        description.scheduled_job_rollouts = crate::rollout::scheduled_job_rollouts(&job, now);
        Ok(DescribeJobResponse { document_source: job.document_source.clone(), job: description })
    }

    pub async fn get_job_document(&self, r: GetJobDocumentRequest) -> ApiResult<GetJobDocumentResponse> {
        r.check(self.now())?;
        self.read_job(&r.job_id, |s| {
            let job = s.jobs.get(&r.job_id).ok_or_else(|| job_not_found(&r.job_id))?;
            let document = match (&job.document_before_substitution, r.before_substitution) {
                (Some(before), true) => before.clone(),
                _ => job.document.clone(),
            };
            Ok(GetJobDocumentResponse { document })
        })
        .await
    }

    pub async fn list_jobs(&self, r: ListJobsRequest) -> ApiResult<ListJobsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            // Jobs whose targets name the group (by name, or by the id of the group now so named).
            let by_id = r.thing_group_id.as_ref().map(|id| {
                s.thing_groups.values().find(|g| g.thing_group_id == *id).map(|g| g.thing_group_name.clone())
            });
            let targets_group = |j: &Job, group: &str| {
                j.targets.iter().any(|t| self.config.scope.parse(t, ResourceKind::ThingGroup) == Some(group))
            };
            let mut jobs: Vec<&Job> = s
                .jobs
                .values()
                .map(|j| &**j)
                .filter(|j| r.status.is_none_or(|st| j.status == st))
                .filter(|j| r.target_selection.is_none_or(|t| j.target_selection == t))
                .filter(|j| r.namespace_id.as_ref().is_none_or(|ns| j.namespace_id.as_ref() == Some(ns)))
                .filter(|j| r.thing_group_name.as_ref().is_none_or(|g| targets_group(j, g)))
                .filter(|j| match &by_id {
                    None => true,
                    Some(None) => false,
                    Some(Some(g)) => targets_group(j, g),
                })
                .collect();
            jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.job_id.cmp(&b.job_id)));
            let items: Vec<JobSummary> = jobs.into_iter().map(JobSummary::from).collect();
            let (jobs, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListJobsResponse { jobs, next_token })
        })
        .await
    }

    pub async fn cancel_job(&self, r: CancelJobRequest) -> ApiResult<CancelJobResponse> {
        r.check(self.now())?;
        let job_id = &r.job_id;
        let force = r.force;
        self.write(|txn| {
            let job = txn.s.jobs.get(job_id).map(|j| Job::clone(j)).ok_or_else(|| job_not_found(job_id))?;
            match job.status {
                JobStatus::DeletionInProgress => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidStateTransition,
                        format!("Job {job_id} is being deleted and cannot be canceled"),
                    ))
                }
                JobStatus::Completed => {
                    return Err(ApiError::invalid(format!("Job {job_id} is COMPLETED and cannot be canceled")))
                }
                JobStatus::Canceled if !force => {
                    return Err(ApiError::invalid(format!("Job {job_id} is already canceled")))
                }
                _ => {}
            }
            let out = CancelJobResponse::from(&job);
            txn.cancel_job(job, force, r.reason_code.clone(), r.comment.clone());
            Ok(out)
        })
        .await
    }

    pub async fn delete_job(&self, r: DeleteJobRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let job_id = &r.job_id;
        self.write(|txn| {
            job_in_namespace(txn.s, job_id, r.namespace_id.as_deref())?;
            let mut job = txn.s.jobs.get(job_id).map(|j| Job::clone(j)).ok_or_else(|| job_not_found(job_id))?;
            match job.status {
                JobStatus::DeletionInProgress => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidStateTransition,
                        format!("Job {job_id} is already being deleted"),
                    ))
                }
                JobStatus::InProgress | JobStatus::Scheduled if !r.force => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidStateTransition,
                        format!("Cannot delete job {job_id} in status {} without force", job.status.as_str()),
                    ))
                }
                _ => {}
            }
            job.status = JobStatus::DeletionInProgress;
            job.last_updated_at = txn.now;
            txn.put_job(job);
            txn.job_event(JobEvent::DeletionInProgress, job_id);
            let keys: Vec<_> = txn
                .s
                .executions_of_job(job_id)
                .map(|e| (e.job_id.clone(), e.thing_name.clone(), e.execution_number))
                .collect();
            for k in keys {
                txn.delete_execution(&k);
            }
            txn.job_event(JobEvent::Deleted, job_id);
            txn.delete_job(job_id);
            Ok(Empty {})
        })
        .await
    }

    pub async fn associate_targets_with_job(
        &self,
        r: AssociateTargetsWithJobRequest,
    ) -> ApiResult<AssociateTargetsWithJobResponse> {
        r.check(self.now())?;
        let job_id = &r.job_id;
        self.write(|txn| {
            job_in_namespace(txn.s, job_id, r.namespace_id.as_deref())?;
            let mut job = txn.s.jobs.get(job_id).map(|j| Job::clone(j)).ok_or_else(|| job_not_found(job_id))?;
            if job.target_selection != TargetSelection::Continuous || job.status != JobStatus::InProgress {
                return Err(ApiError::invalid("Targets can only be added to CONTINUOUS jobs that are IN_PROGRESS"));
            }
            let new: Vec<String> = r.targets.iter().filter(|t| !job.targets.contains(t)).cloned().collect();
            if job.targets.len() + new.len() > MAX_TARGETS {
                return Err(ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("A job can have at most {MAX_TARGETS} targets"),
                ));
            }
            let things = self.resolve_targets(txn.s, &new)?;
            job.targets.extend(new);
            job.last_updated_at = txn.now;
            let out = AssociateTargetsWithJobResponse::from(&job);
            txn.put_job(job);
            queue_executions(txn, job_id, &things);
            Ok(out)
        })
        .await
    }
}
