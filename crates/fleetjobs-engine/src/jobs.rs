//! Job operations: CreateJob, UpdateJob, DescribeJob, ListJobs, CancelJob, DeleteJob,
//! GetJobDocument, AssociateTargetsWithJob.
//!
//! Executions are created for every target at once (rollout rates, abort, timeouts, retries
//! and scheduling are validated and stored; their behaviour belongs to the rollout engine).

use std::collections::BTreeSet;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::events::JobEvent;
use fleetjobs_core::execution;
use fleetjobs_core::model::{Job, JobConfigs, JobExecution, JobExecutionStatus, JobStatus, TargetSelection};
use fleetjobs_core::validate::{self, MAX_TARGETS};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::input::Input;
use crate::registry::with_token;
use crate::state::{State, Txn};
use crate::wire::{self, page};
use crate::Engine;

pub(crate) fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job {id} does not exist."))
}

fn enum_in<'a>(m: &'a Input, key: &str, allowed: &[&str]) -> ApiResult<Option<&'a str>> {
    let v = m.str(key)?;
    if let Some(v) = v {
        if !allowed.contains(&v) {
            return Err(ApiError::invalid(format!("{key} must be one of {}", allowed.join(", "))));
        }
    }
    Ok(v)
}

fn objects(m: &Input, key: &str) -> ApiResult<Vec<Input>> {
    m.list(key)?
        .into_iter()
        .flatten()
        .map(|v| {
            v.as_object()
                .map(|o| Input(o.clone()))
                .ok_or_else(|| ApiError::invalid(format!("{key} items must be structures")))
        })
        .collect()
}

/// One job configuration member of `input`, typed.
fn config<T: DeserializeOwned>(input: &Input, key: &str) -> ApiResult<Option<T>> {
    input.get(key).map(|v| T::deserialize(v).map_err(|e| ApiError::invalid(format!("Invalid {key}: {e}")))).transpose()
}

/// The job configuration members present in `input` (checked by the caller: CreateJob and
/// UpdateJob differ).
fn job_configs(input: &Input) -> ApiResult<JobConfigs> {
    Ok(JobConfigs {
        presigned_url_config: config(input, "presignedUrlConfig")?,
        job_executions_rollout_config: config(input, "jobExecutionsRolloutConfig")?,
        abort_config: config(input, "abortConfig")?,
        timeout_config: config(input, "timeoutConfig")?,
        job_executions_retry_config: config(input, "jobExecutionsRetryConfig")?,
        scheduling_config: config(input, "schedulingConfig")?,
    })
}

fn tags(input: &Input) -> ApiResult<Option<Value>> {
    for t in objects(input, "tags")? {
        let key = t.req_str("Key")?;
        if !(1..=128).contains(&key.chars().count()) {
            return Err(ApiError::invalid("Tag keys must have length between 1 and 128"));
        }
        if t.str("Value")?.is_some_and(|v| v.chars().count() > 256) {
            return Err(ApiError::invalid("Tag values must have at most 256 characters"));
        }
    }
    Ok(input.get("tags").cloned())
}

impl Engine {
    /// Resolve target ARNs to thing names (things only; thing groups come with the registry's
    /// group support).
    fn resolve_targets(&self, s: &State, targets: &[&str]) -> ApiResult<Vec<String>> {
        let mut things = Vec::new();
        for t in targets {
            if t.len() > 2048 {
                return Err(ApiError::invalid("A target ARN can have at most 2048 characters"));
            }
            match self.config.scope.parse_any(t) {
                Some((ResourceKind::Thing, name)) if s.things.contains_key(name) => things.push(name.to_string()),
                Some((ResourceKind::Thing, name)) => {
                    return Err(ApiError::not_found(format!("Thing {name} cannot be found.")))
                }
                Some((ResourceKind::ThingGroup, name)) => {
                    return Err(ApiError::not_found(format!("Thing group {name} cannot be found.")))
                }
                _ => return Err(ApiError::invalid(format!("Invalid target ARN: {t}"))),
            }
        }
        Ok(things)
    }

    pub async fn create_job(&self, input: Input) -> ApiResult<Value> {
        let job_id = input.job_id()?.to_string();
        let targets =
            input.strings("targets")?.ok_or_else(|| ApiError::invalid("Missing required parameter: targets"))?;
        if targets.is_empty() || targets.len() > MAX_TARGETS {
            return Err(ApiError::invalid(format!("A job must have between 1 and {MAX_TARGETS} targets")));
        }
        let description = input.str("description")?.map(str::to_string);
        if let Some(d) = &description {
            validate::free_text(d, "description")?;
        }
        let target_selection = match enum_in(&input, "targetSelection", &["CONTINUOUS", "SNAPSHOT"])? {
            Some("CONTINUOUS") => TargetSelection::Continuous,
            _ => TargetSelection::Snapshot,
        };
        let namespace_id = input.str("namespaceId")?.map(str::to_string);
        if let Some(ns) = &namespace_id {
            validate::namespace_id(ns)?;
        }
        if input.get("jobTemplateArn").is_some() {
            return Err(ApiError::invalid("Job templates are not supported by this server yet"));
        }
        if input.get("documentParameters").is_some() {
            return Err(ApiError::invalid("documentParameters can only be used with an AWS managed job template"));
        }
        let document = match (input.str("document")?, input.str("documentSource")?) {
            (Some(d), None) => d.to_string(),
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "documentSource (S3) is not supported by this server; pass the document inline",
                ))
            }
            (Some(_), Some(_)) => return Err(ApiError::invalid("Specify either document or documentSource, not both")),
            (None, None) => return Err(ApiError::invalid("Either document or documentSource must be specified")),
        };
        validate::job_document(&document)?;
        let configs = job_configs(&input)?;
        configs.check(self.now())?;
        let tags = tags(&input)?;
        let destination =
            input.strings("destinationPackageVersions")?.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if destination.as_ref().is_some_and(|d| d.len() > 25) {
            return Err(ApiError::invalid("destinationPackageVersions can have at most 25 items"));
        }
        let scheduled = configs.is_scheduled();
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        self.write(|txn| {
            let arn = txn.scope.arn(ResourceKind::Job, &job_id);
            if txn.s.jobs.contains_key(&job_id) {
                return Err(ApiError::already_exists(format!("Job with id {job_id} already exists"), &job_id, &arn));
            }
            let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
            let things = self.resolve_targets(txn.s, &target_refs)?;
            let job = Job {
                job_id: job_id.clone(),
                job_arn: arn.clone(),
                targets,
                document,
                document_source: None,
                description: description.clone(),
                target_selection,
                status: if scheduled { JobStatus::Scheduled } else { JobStatus::InProgress },
                force_canceled: false,
                reason_code: None,
                comment: None,
                created_at: txn.now,
                last_updated_at: txn.now,
                completed_at: None,
                namespace_id,
                job_template_arn: None,
                document_parameters: None,
                destination_package_versions: destination,
                tags,
                configs,
            };
            txn.put_job(job);
            if !scheduled {
                queue_executions(txn, &job_id, &things);
            }
            let mut out = json!({"jobArn": arn, "jobId": job_id});
            if let Some(d) = description {
                out["description"] = json!(d);
            }
            Ok(out)
        })
        .await
    }

    pub async fn update_job(&self, input: Input) -> ApiResult<Value> {
        let job_id = input.job_id()?.to_string();
        let description = input.str("description")?.map(str::to_string);
        if let Some(d) = &description {
            validate::free_text(d, "description")?;
        }
        let configs = job_configs(&input)?;
        configs.check_update(self.now())?;
        self.write(|txn| {
            let mut job = txn.s.jobs.get(&job_id).cloned().ok_or_else(|| job_not_found(&job_id))?;
            if matches!(job.status, JobStatus::Completed | JobStatus::Canceled | JobStatus::DeletionInProgress) {
                return Err(ApiError::invalid(format!(
                    "Job {job_id} is in status {} and cannot be updated",
                    job.status.as_str()
                )));
            }
            if description.is_some() {
                job.description = description;
            }
            job.configs.update(configs);
            job.last_updated_at = txn.now;
            txn.put_job(job);
            Ok(json!({}))
        })
        .await
    }

    pub async fn describe_job(&self, input: Input) -> ApiResult<Value> {
        self.read_job(&input, |s, job| {
            let mut out = Map::new();
            if let Some(src) = &job.document_source {
                out.insert("documentSource".into(), json!(src));
            }
            out.insert("job".into(), wire::job(job, &s.counts(&job.job_id)));
            Value::Object(out)
        })
        .await
    }

    pub async fn get_job_document(&self, input: Input) -> ApiResult<Value> {
        self.read_job(&input, |_, job| json!({ "document": job.document })).await
    }

    /// Read one job (`jobId`, optional `beforeSubstitution`) and shape the answer with `f`.
    async fn read_job(&self, input: &Input, f: impl Fn(&State, &Job) -> Value) -> ApiResult<Value> {
        let job_id = input.job_id()?;
        input.bool("beforeSubstitution")?;
        self.read(|s| Ok(f(s, s.jobs.get(job_id).ok_or_else(|| job_not_found(job_id))?))).await
    }

    pub async fn list_jobs(&self, input: Input) -> ApiResult<Value> {
        let status =
            enum_in(&input, "status", &["IN_PROGRESS", "CANCELED", "COMPLETED", "DELETION_IN_PROGRESS", "SCHEDULED"])?;
        let selection = enum_in(&input, "targetSelection", &["CONTINUOUS", "SNAPSHOT"])?;
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        let namespace = input.str("namespaceId")?;
        let group = input.str("thingGroupName")?.or(input.str("thingGroupId")?);
        self.read(|s| {
            let mut jobs: Vec<&Job> = s
                .jobs
                .values()
                .filter(|j| status.is_none_or(|st| j.status.as_str() == st))
                .filter(|j| selection.is_none_or(|t| j.target_selection.as_str() == t))
                .filter(|j| namespace.is_none_or(|ns| j.namespace_id.as_deref() == Some(ns)))
                .filter(|_| group.is_none())
                .collect();
            jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.job_id.cmp(&b.job_id)));
            let items: Vec<Value> = jobs.into_iter().map(wire::job_summary).collect();
            let (jobs, next) = page(items, token, max, 50).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "jobs": jobs }), "nextToken", next))
        })
        .await
    }

    pub async fn cancel_job(&self, input: Input) -> ApiResult<Value> {
        let job_id = input.job_id()?.to_string();
        let force = input.flag("force")?;
        let reason_code = input.str("reasonCode")?.map(str::to_string);
        if let Some(r) = &reason_code {
            validate::reason_code(r)?;
        }
        let comment = input.str("comment")?.map(str::to_string);
        if let Some(c) = &comment {
            validate::free_text(c, "comment")?;
        }
        self.write(|txn| {
            let mut job = txn.s.jobs.get(&job_id).cloned().ok_or_else(|| job_not_found(&job_id))?;
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
            job.status = JobStatus::Canceled;
            job.force_canceled |= force;
            job.reason_code = reason_code.or(job.reason_code);
            job.comment = comment.or(job.comment);
            job.last_updated_at = txn.now;
            let out = response_ids(&job);
            txn.put_job(job);
            txn.job_event(JobEvent::CancellationInProgress, &job_id);
            let affected: Vec<JobExecution> =
                txn.s.executions_of_job(&job_id).filter(|e| e.is_pending()).cloned().collect();
            for mut e in affected {
                if execution::cancel(&mut e, force, None, None, txn.now).is_ok() {
                    txn.put_execution(e);
                }
            }
            txn.job_event(JobEvent::Canceled, &job_id);
            Ok(out)
        })
        .await
    }

    pub async fn delete_job(&self, input: Input) -> ApiResult<Value> {
        let job_id = input.job_id()?.to_string();
        let force = input.flag("force")?;
        if let Some(ns) = input.str("namespaceId")? {
            validate::namespace_id(ns)?;
        }
        self.write(|txn| {
            let mut job = txn.s.jobs.get(&job_id).cloned().ok_or_else(|| job_not_found(&job_id))?;
            match job.status {
                JobStatus::DeletionInProgress => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidStateTransition,
                        format!("Job {job_id} is already being deleted"),
                    ))
                }
                JobStatus::InProgress | JobStatus::Scheduled if !force => {
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
            txn.job_event(JobEvent::DeletionInProgress, &job_id);
            let keys: Vec<_> = txn
                .s
                .executions_of_job(&job_id)
                .map(|e| (e.job_id.clone(), e.thing_name.clone(), e.execution_number))
                .collect();
            for k in keys {
                txn.delete_execution(&k);
            }
            txn.job_event(JobEvent::Deleted, &job_id);
            txn.delete_job(&job_id);
            Ok(json!({}))
        })
        .await
    }

    pub async fn associate_targets_with_job(&self, input: Input) -> ApiResult<Value> {
        let job_id = input.job_id()?.to_string();
        let targets =
            input.strings("targets")?.ok_or_else(|| ApiError::invalid("Missing required parameter: targets"))?;
        if targets.is_empty() {
            return Err(ApiError::invalid("targets must have at least 1 item"));
        }
        if let Some(c) = input.str("comment")? {
            validate::free_text(c, "comment")?;
        }
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        self.write(|txn| {
            let mut job = txn.s.jobs.get(&job_id).cloned().ok_or_else(|| job_not_found(&job_id))?;
            if job.target_selection != TargetSelection::Continuous || job.status != JobStatus::InProgress {
                return Err(ApiError::invalid("Targets can only be added to CONTINUOUS jobs that are IN_PROGRESS"));
            }
            let new: Vec<String> = targets.iter().filter(|t| !job.targets.contains(t)).cloned().collect();
            if job.targets.len() + new.len() > MAX_TARGETS {
                return Err(ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("A job can have at most {MAX_TARGETS} targets"),
                ));
            }
            let refs: Vec<&str> = new.iter().map(String::as_str).collect();
            let things = self.resolve_targets(txn.s, &refs)?;
            job.targets.extend(new);
            job.last_updated_at = txn.now;
            let out = response_ids(&job);
            txn.put_job(job);
            queue_executions(txn, &job_id, &things);
            Ok(out)
        })
        .await
    }
}

fn response_ids(job: &Job) -> Value {
    let mut out = json!({"jobArn": job.job_arn, "jobId": job.job_id});
    if let Some(d) = &job.description {
        out["description"] = json!(d);
    }
    out
}

/// Queue one execution per thing (once per thing) unless it already has a pending one.
fn queue_executions(txn: &mut Txn<'_>, job_id: &str, things: &[String]) {
    let mut seen = BTreeSet::new();
    for thing in things {
        if !seen.insert(thing.clone()) {
            continue;
        }
        let latest = txn.s.execution(job_id, thing, None);
        if latest.is_some_and(|e| e.is_pending()) {
            continue;
        }
        let number = latest.map(|e| e.execution_number + 1).unwrap_or(1);
        txn.put_execution(JobExecution::queued(job_id, thing, number, txn.now));
    }
}

/// Statuses accepted by the `status` filter of the execution lists.
pub(crate) fn execution_status_filter(input: &Input) -> ApiResult<Option<JobExecutionStatus>> {
    match input.str("status")? {
        None => Ok(None),
        Some(s) => JobExecutionStatus::parse(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("Invalid job execution status: {s}"))),
    }
}
