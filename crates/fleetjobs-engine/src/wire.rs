//! Wire shapes built from the records. Three timestamp conventions meet here: the control
//! plane sends fractional epoch seconds, the MQTT API integer epoch seconds, events (in
//! `fleetjobs_core::events`) a mix. Everything inside is epoch milliseconds.

use fleetjobs_core::arn::{ArnScope, ResourceKind};
use fleetjobs_core::events::ExecutionCounts;
use fleetjobs_core::model::{Job, JobExecution};
use fleetjobs_core::Millis;
use serde_json::{json, Map, Value};

/// Control-plane timestamp: epoch seconds with millisecond fraction.
pub fn ts(ms: Millis) -> Value {
    json!(ms as f64 / 1000.0)
}

fn insert_opt(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v);
    }
}

/// The job document as a JSON object (MQTT embeds it; it was validated at creation).
pub fn document_object(job: &Job) -> Value {
    serde_json::from_str(&job.document).unwrap_or(Value::Null)
}

/// Control-plane `JobExecutionSummary`.
pub fn control_summary(e: &JobExecution) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(e.status.as_str()));
    m.insert("queuedAt".into(), ts(e.queued_at));
    insert_opt(&mut m, "startedAt", e.started_at.map(ts));
    m.insert("lastUpdatedAt".into(), ts(e.last_updated_at));
    m.insert("executionNumber".into(), json!(e.execution_number));
    m.insert("retryAttempt".into(), json!(e.retry_attempt));
    Value::Object(m)
}

/// Control-plane `JobExecution` (DescribeJobExecution): the summary's times and numbers, plus
/// identity, `forceCanceled`, `statusDetails` (`{"detailsMap": ...}`, `{}` when empty) and
/// `versionNumber`.
pub fn control_execution(e: &JobExecution, scope: &ArnScope) -> Value {
    let Value::Object(mut m) = control_summary(e) else { unreachable!("a summary is an object") };
    m.remove("retryAttempt");
    m.insert("jobId".into(), json!(e.job_id));
    m.insert("forceCanceled".into(), json!(e.force_canceled));
    let details = if e.status_details.is_empty() { json!({}) } else { json!({ "detailsMap": e.status_details }) };
    m.insert("statusDetails".into(), details);
    m.insert("thingArn".into(), json!(scope.arn(ResourceKind::Thing, &e.thing_name)));
    m.insert("versionNumber".into(), json!(e.version_number));
    Value::Object(m)
}

/// Control-plane `Job` (DescribeJob).
pub fn job(j: &Job, counts: &ExecutionCounts) -> Value {
    let mut m = Map::new();
    m.insert("jobArn".into(), json!(j.job_arn));
    m.insert("jobId".into(), json!(j.job_id));
    m.insert("targetSelection".into(), json!(j.target_selection.as_str()));
    m.insert("status".into(), json!(j.status.as_str()));
    m.insert("forceCanceled".into(), json!(j.force_canceled));
    insert_opt(&mut m, "reasonCode", j.reason_code.as_ref().map(|v| json!(v)));
    insert_opt(&mut m, "comment", j.comment.as_ref().map(|v| json!(v)));
    m.insert("targets".into(), json!(j.targets));
    insert_opt(&mut m, "description", j.description.as_ref().map(|v| json!(v)));
    // The configs serialize in the order and shape AWS echoes them; absent ones stay absent.
    if let Ok(Value::Object(configs)) = serde_json::to_value(&j.configs) {
        m.extend(configs);
    }
    m.insert("createdAt".into(), ts(j.created_at));
    m.insert("lastUpdatedAt".into(), ts(j.last_updated_at));
    insert_opt(&mut m, "completedAt", j.completed_at.map(ts));
    m.insert("jobProcessDetails".into(), Value::Object(counts.job_process_details()));
    insert_opt(&mut m, "namespaceId", j.namespace_id.as_ref().map(|v| json!(v)));
    insert_opt(&mut m, "jobTemplateArn", j.job_template_arn.as_ref().map(|v| json!(v)));
    insert_opt(&mut m, "documentParameters", j.document_parameters.as_ref().map(|v| json!(v)));
    insert_opt(&mut m, "destinationPackageVersions", j.destination_package_versions.as_ref().map(|v| json!(v)));
    m.insert("isConcurrent".into(), json!(false));
    Value::Object(m)
}

/// Control-plane `JobSummary` (ListJobs).
pub fn job_summary(j: &Job) -> Value {
    let mut m = Map::new();
    m.insert("jobArn".into(), json!(j.job_arn));
    m.insert("jobId".into(), json!(j.job_id));
    m.insert("targetSelection".into(), json!(j.target_selection.as_str()));
    m.insert("status".into(), json!(j.status.as_str()));
    m.insert("createdAt".into(), ts(j.created_at));
    m.insert("lastUpdatedAt".into(), ts(j.last_updated_at));
    insert_opt(&mut m, "completedAt", j.completed_at.map(ts));
    m.insert("isConcurrent".into(), json!(false));
    Value::Object(m)
}

/// One page of `items` from an opaque `nextToken` (an offset).
pub fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i64>,
    default_size: usize,
) -> Result<(Vec<T>, Option<String>), String> {
    let start = match next_token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| "The nextToken is invalid".to_string())?,
    };
    let size = max_results.map(|m| m as usize).unwrap_or(default_size);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    Ok((page, next))
}
