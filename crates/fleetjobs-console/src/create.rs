//! The create-job form (the AWS console's "Create custom job": job ID, description, things and
//! thing groups, the job document — pasted, uploaded, from a URL or from a template —, snapshot
//! or continuous, rollout, abort, timeout, retries, scheduling with maintenance windows,
//! presigned URLs) and, beside it, the rollout preview: `fleetjobs_rollout::preview::timeline`,
//! the same pure rules `fleetjobs rollout-preview` uses.
//!
//! The form becomes a `CreateJobRequest` with core's typed configs, answered by
//! `Engine::create_job` as the API's is; the engine's error is shown beside the field it names.
//! What the form asks for as it is typed (target search, a template's parameters, the job ID
//! check) is in `pick`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::job_config::{
    AbortAction, AbortConfig, AbortCriteria, AbortFailureType, Double, ExponentialRate, JobConfigs, JobEndBehavior,
    MaintenanceWindow, PresignedUrlConfig, RateIncreaseCriteria, RetryConfig, RetryCriteria, RetryFailureType,
    RolloutConfig, SchedulingConfig, TimeoutConfig,
};
use fleetjobs_core::model::TargetSelection;
use fleetjobs_core::ops::job_templates::{merge_configs, windows_only, DescribeJobTemplateRequest};
use fleetjobs_core::ops::jobs::CreateJobRequest;
use fleetjobs_core::ops::thing_groups::ListThingsInThingGroupRequest;
use fleetjobs_core::{validate, ApiError, ApiResult, Millis};
use fleetjobs_engine::Engine;
use fleetjobs_rollout::preview::{timeline, Stop};
use maud::{html, Markup};

use crate::auth::Session;
use crate::layout::{self, Nav};
use crate::pick;
use crate::{now_millis, Authed, Console, Form, Posted};

/// Batches listed in the preview; the rest are summed up.
const PREVIEW_ROWS: usize = 30;
/// Things counted per thing group for the preview (the preview is an estimate beyond it).
const MAX_PREVIEW_THINGS: usize = 100_000;
/// Rows offered for abort criteria (one per failure type but one is plenty in practice), retry
/// criteria (AWS allows two) and maintenance windows.
const ABORT_ROWS: usize = 3;
const RETRY_ROWS: usize = 2;
const WINDOW_ROWS: usize = 3;
/// Form fields of a managed template's document parameters: `param_KEY`.
pub(crate) const PARAM_PREFIX: &str = "param_";

/// One abort criterion's fields.
#[derive(Debug, Default, Clone)]
struct AbortRow {
    failure_type: String,
    threshold: String,
    min_executed: String,
}

/// One retry criterion's fields.
#[derive(Debug, Default, Clone)]
struct RetryRow {
    failure_type: String,
    retries: String,
}

/// One maintenance window's fields.
#[derive(Debug, Default, Clone)]
struct WindowRow {
    cron: String,
    minutes: String,
}

/// The form's values as typed, kept to show them again beside an error.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    job_id: String,
    description: String,
    things: String,
    thing_groups: String,
    document: String,
    document_source: String,
    /// The chosen template's ARN (empty: none).
    pub(crate) job_template: String,
    /// A managed template's parameters, by key (blank ones left out).
    pub(crate) params: BTreeMap<String, String>,
    target_selection: String,
    max_per_minute: String,
    /// `constant` or `exponential`.
    rollout_kind: String,
    base_rate: String,
    increment_factor: String,
    /// `notified` or `succeeded`.
    increase_by: String,
    increase_threshold: String,
    timeout_minutes: String,
    abort: Vec<AbortRow>,
    retry: Vec<RetryRow>,
    start_time: String,
    end_time: String,
    end_behavior: String,
    windows: Vec<WindowRow>,
    expires_in_sec: String,
}

impl Fields {
    fn from_form(f: &Form) -> Self {
        let get = |n: &str| f.get(n).unwrap_or_default().to_string();
        let trimmed = |n: &str| f.get(n).unwrap_or_default().trim().to_string();
        Fields {
            job_id: trimmed("job_id"),
            description: get("description"),
            things: get("things"),
            thing_groups: get("thing_groups"),
            document: get("document"),
            document_source: trimmed("document_source"),
            job_template: trimmed("job_template"),
            params: f
                .0
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(PARAM_PREFIX)?.to_string(), v.clone())))
                .filter(|(_, v)| !v.trim().is_empty())
                .collect(),
            target_selection: get("target_selection"),
            max_per_minute: trimmed("max_per_minute"),
            rollout_kind: get("rollout_kind"),
            base_rate: trimmed("base_rate"),
            increment_factor: trimmed("increment_factor"),
            increase_by: get("increase_by"),
            increase_threshold: trimmed("increase_threshold"),
            timeout_minutes: trimmed("timeout_minutes"),
            abort: (0..ABORT_ROWS)
                .map(|i| AbortRow {
                    failure_type: get(&format!("abort_failure_type_{i}")),
                    threshold: trimmed(&format!("abort_threshold_{i}")),
                    min_executed: trimmed(&format!("abort_min_executed_{i}")),
                })
                .collect(),
            retry: (0..RETRY_ROWS)
                .map(|i| RetryRow {
                    failure_type: get(&format!("retry_failure_type_{i}")),
                    retries: trimmed(&format!("retry_count_{i}")),
                })
                .collect(),
            start_time: trimmed("start_time"),
            end_time: trimmed("end_time"),
            end_behavior: get("end_behavior"),
            windows: (0..WINDOW_ROWS)
                .map(|i| WindowRow {
                    cron: trimmed(&format!("window_cron_{i}")),
                    minutes: trimmed(&format!("window_minutes_{i}")),
                })
                .collect(),
            expires_in_sec: trimmed("expires_in_sec"),
        }
    }

    /// A blank form: snapshot, and its repeated rows present but empty.
    fn blank() -> Self {
        Fields {
            target_selection: "SNAPSHOT".into(),
            abort: vec![AbortRow::default(); ABORT_ROWS],
            retry: vec![RetryRow::default(); RETRY_ROWS],
            windows: vec![WindowRow::default(); WINDOW_ROWS],
            ..Default::default()
        }
    }
}

/// Names separated by commas, spaces or lines.
fn names(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .filter(|n| seen.insert(n.to_string()))
        .map(str::to_string)
        .collect()
}

/// An error beside a field: which field the engine's message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    JobId,
    Description,
    Targets,
    Document,
    Template,
    Rollout,
    Abort,
    Timeout,
    Retry,
    Scheduling,
    Presigned,
    Form,
}

/// The field an engine error belongs beside: the request member its check blamed.
fn field_of(e: &ApiError) -> Field {
    match e.member {
        Some("jobId") => Field::JobId,
        Some("description") => Field::Description,
        Some("targets") => Field::Targets,
        Some("document" | "documentSource") => Field::Document,
        Some("jobTemplateArn" | "documentParameters") => Field::Template,
        Some("jobExecutionsRolloutConfig") => Field::Rollout,
        Some("abortConfig") => Field::Abort,
        Some("timeoutConfig") => Field::Timeout,
        Some("jobExecutionsRetryConfig") => Field::Retry,
        Some("schedulingConfig") => Field::Scheduling,
        Some("presignedUrlConfig") => Field::Presigned,
        _ => Field::Form,
    }
}

/// A whole number typed into a field, or the error beside it (named as AWS names the member).
fn whole<T: TryFrom<i64>>(text: &str, member: &str, field: Field) -> Result<T, (Field, String)> {
    text.parse::<i64>()
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| (field, format!("{member} must be a whole number")))
}

fn double(text: &str, member: &str, field: Field) -> Result<Double, (Field, String)> {
    serde_json::from_str::<Double>(text).map_err(|_| (field, format!("{member} must be a number")))
}

/// An AWS enum chosen in a select: the option values are the AWS spellings.
fn choice<T: TryFrom<String, Error = String>>(text: &str, field: Field) -> Result<T, (Field, String)> {
    T::try_from(text.to_string()).map_err(|e| (field, e))
}

/// The configs of the form's rollout, abort, timeout, retry, scheduling and presigned-URL
/// fields; left blank, a config is absent. The values are checked by the engine (core's
/// `JobConfigs::check`), not here: only what cannot be typed (a word for a number) is refused.
fn configs(f: &Fields) -> Result<JobConfigs, (Field, String)> {
    let mut configs = JobConfigs::default();
    let max = match f.max_per_minute.as_str() {
        "" => None,
        m => Some(whole::<i32>(m, "maximumPerMinute", Field::Rollout)?),
    };
    let exponential = if f.rollout_kind == "exponential" {
        let threshold = whole::<i64>(&f.increase_threshold, "The rate increase threshold", Field::Rollout)?;
        Some(ExponentialRate {
            base_rate_per_minute: whole(&f.base_rate, "baseRatePerMinute", Field::Rollout)?,
            increment_factor: double(&f.increment_factor, "incrementFactor", Field::Rollout)?,
            rate_increase_criteria: match f.increase_by.as_str() {
                "succeeded" => RateIncreaseCriteria::NumberOfSucceededThings(threshold),
                _ => RateIncreaseCriteria::NumberOfNotifiedThings(threshold),
            },
        })
    } else {
        None
    };
    if max.is_some() || exponential.is_some() {
        configs.job_executions_rollout_config =
            Some(RolloutConfig { maximum_per_minute: max, exponential_rate: exponential });
    }
    let mut abort = vec![];
    for row in f.abort.iter().filter(|r| !r.threshold.is_empty() || !r.min_executed.is_empty()) {
        abort.push(AbortCriteria {
            failure_type: choice::<AbortFailureType>(&row.failure_type, Field::Abort)?,
            action: AbortAction::Cancel,
            threshold_percentage: double(&row.threshold, "thresholdPercentage", Field::Abort)?,
            min_number_of_executed_things: whole(&row.min_executed, "minNumberOfExecutedThings", Field::Abort)?,
        });
    }
    if !abort.is_empty() {
        configs.abort_config = Some(AbortConfig { criteria_list: abort });
    }
    if !f.timeout_minutes.is_empty() {
        let n = whole(&f.timeout_minutes, "inProgressTimeoutInMinutes", Field::Timeout)?;
        configs.timeout_config = Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(n) });
    }
    let mut retry = vec![];
    for row in f.retry.iter().filter(|r| !r.retries.is_empty()) {
        retry.push(RetryCriteria {
            failure_type: choice::<RetryFailureType>(&row.failure_type, Field::Retry)?,
            number_of_retries: whole(&row.retries, "numberOfRetries", Field::Retry)?,
        });
    }
    if !retry.is_empty() {
        configs.job_executions_retry_config = Some(RetryConfig { criteria_list: retry });
    }
    let mut windows = vec![];
    for row in f.windows.iter().filter(|w| !w.cron.is_empty() || !w.minutes.is_empty()) {
        windows.push(MaintenanceWindow {
            start_time: row.cron.clone(),
            duration_in_minutes: whole(&row.minutes, "durationInMinutes", Field::Scheduling)?,
        });
    }
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let end_behavior = match f.end_behavior.as_str() {
        "" => None,
        b => Some(choice::<JobEndBehavior>(b, Field::Scheduling)?),
    };
    let scheduling = SchedulingConfig {
        start_time: text(&f.start_time),
        end_time: text(&f.end_time),
        end_behavior,
        maintenance_windows: Some(windows).filter(|w| !w.is_empty()),
    };
    if scheduling
        != (SchedulingConfig { start_time: None, end_time: None, end_behavior: None, maintenance_windows: None })
    {
        configs.scheduling_config = Some(scheduling);
    }
    if !f.expires_in_sec.is_empty() {
        let expires = whole(&f.expires_in_sec, "expiresInSec", Field::Presigned)?;
        configs.presigned_url_config = Some(PresignedUrlConfig { role_arn: None, expires_in_sec: Some(expires) });
    }
    Ok(configs)
}

fn request(engine: &Engine, f: &Fields) -> Result<CreateJobRequest, (Field, String)> {
    // The job ID first, as AWS checks it: its error shows whatever else is wrong.
    validate::job_id(&f.job_id, "jobId").map_err(|e| (Field::JobId, aws_message(&e)))?;
    let configs = configs(f)?;
    let scope = &engine.config().scope;
    let mut targets: Vec<String> = names(&f.things).iter().map(|t| scope.arn(ResourceKind::Thing, t)).collect();
    targets.extend(names(&f.thing_groups).iter().map(|g| scope.arn(ResourceKind::ThingGroup, g)));
    if targets.is_empty() {
        return Err((Field::Targets, "Name at least one thing or thing group".to_string()));
    }
    let target_selection = match f.target_selection.as_str() {
        "CONTINUOUS" => TargetSelection::Continuous,
        _ => TargetSelection::Snapshot,
    };
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
    Ok(CreateJobRequest {
        job_id: f.job_id.clone(),
        targets,
        // Whatever the form brings goes to the engine: bringing two is its error to give.
        document: text(&f.document),
        document_source: text(&f.document_source),
        job_template_arn: text(&f.job_template),
        document_parameters: Some(f.params.clone()).filter(|p| !p.is_empty()),
        description: text(f.description.trim()),
        target_selection: Some(target_selection),
        presigned_url_config: configs.presigned_url_config,
        job_executions_rollout_config: configs.job_executions_rollout_config,
        abort_config: configs.abort_config,
        timeout_config: configs.timeout_config,
        job_executions_retry_config: configs.job_executions_retry_config,
        scheduling_config: configs.scheduling_config,
        ..Default::default()
    })
}

/// An engine error as the API names it: `InvalidRequestException: ...`.
pub(crate) fn aws_message(e: &ApiError) -> String {
    format!("{}: {}", e.code.name(), e.message)
}

/// `<select>` options of an AWS enum, the typed value selected (or the first).
fn options<'a>(all: &[&'a str], selected: &'a str) -> Markup {
    html! {
        @for (i, v) in all.iter().enumerate() {
            option value=(v) selected[*v == selected || (i == 0 && !all.contains(&selected))] { (v) }
        }
    }
}

fn form(session: &Session, f: &Fields, templates: &[pick::TemplateChoice], error: Option<(Field, String)>) -> Markup {
    let err = |field: Field| -> Markup {
        html! { @if let Some((at, message)) = &error { @if *at == field { p.field-error role="alert" data-field=(format!("{field:?}")) { (message) } } } }
    };
    let continuous = f.target_selection == "CONTINUOUS";
    let exponential = f.rollout_kind == "exponential";
    let abort_types: Vec<&str> = AbortFailureType::ALL.iter().map(|t| t.as_str()).collect();
    let retry_types: Vec<&str> = RetryFailureType::ALL.iter().map(|t| t.as_str()).collect();
    html! {
        div.titlebar { h1 { "Create job" } }
        (err(Field::Form))
        div.grid.create {
            form #create-form.card method="post" action="/console/jobs/new" {
                input type="hidden" name="csrf" value=(session.csrf);
                h2 { "Job properties" }
                label { "Job ID"
                    input name="job_id" value=(f.job_id) required maxlength="64" pattern="[a-zA-Z0-9_-]+"
                        placeholder="example-job-01" autocomplete="off"
                        hx-get="/console/jobs/check-id" hx-trigger="input changed delay:300ms" hx-target="#job-id-check"; }
                span.hint { "Letters, digits, - and _; at most 64. Unique among jobs." }
                div #job-id-check aria-live="polite" {}
                (err(Field::JobId))
                label { "Description" textarea name="description" rows="2" maxlength="2028" { (f.description) } }
                (err(Field::Description))
                h2 { "Targets" }
                label { "Search things and thing groups by name"
                    input #target-search type="search" name="target_search" autocomplete="off" data-no-enter
                        placeholder="name prefix" hx-get="/console/jobs/targets" hx-trigger="input changed delay:300ms, search"
                        hx-target="#target-results"; }
                div #target-results aria-live="polite" {}
                label { "Things" textarea name="things" rows="2" placeholder="names, separated by commas or lines" { (f.things) } }
                label { "Thing groups" textarea name="thing_groups" rows="2" placeholder="names, separated by commas or lines" { (f.thing_groups) } }
                (err(Field::Targets))
                fieldset.choice {
                    legend { "Job run type" }
                    label.inline { input type="radio" name="target_selection" value="SNAPSHOT" checked[!continuous]; " Snapshot: the targets now, once" }
                    label.inline { input type="radio" name="target_selection" value="CONTINUOUS" checked[continuous]; " Continuous: also things added to the groups later" }
                }
                h2 { "Job document" }
                span.hint { "One of: a template, a document URL, or the JSON (pasted or uploaded)." }
                label { "Job template"
                    select name="job_template" hx-get="/console/jobs/template-fields" hx-target="#template-fields" hx-trigger="change" {
                        option value="" selected[f.job_template.is_empty()] { "None: my own document" }
                        (pick::template_options(templates, &f.job_template))
                    }
                }
                div #template-fields { (pick::parameter_fields(templates, &f.job_template, &f.params)) }
                (err(Field::Template))
                label { "Document URL (S3 or HTTPS)"
                    input name="document_source" type="url" value=(f.document_source) autocomplete="off"
                        placeholder="https://s3.amazonaws.com/bucket/job.json"; }
                label { "Upload a file" input type="file" accept=".json,application/json" data-load-into="document"; }
                label { "JSON" textarea #document name="document" rows="10" spellcheck="false" class="code"
                    placeholder=r#"{"operation": "install", "version": "1.0"}"# { (f.document) } }
                span.hint #document-check aria-live="polite" {}
                (err(Field::Document))
                label { "Presigned URL lifetime (seconds, 60 to 3600)"
                    input name="expires_in_sec" type="number" value=(f.expires_in_sec) placeholder="3600"; }
                span.hint { "For ${aws:iot:s3-presigned-url:...} placeholders in the document." }
                (err(Field::Presigned))
                h2 { "Rollout and timeout" }
                fieldset.choice {
                    legend { "Rollout rate" }
                    label.inline { input type="radio" name="rollout_kind" value="constant" checked[!exponential]; " Constant" }
                    label.inline { input type="radio" name="rollout_kind" value="exponential" checked[exponential]; " Exponential" }
                    label { "Maximum executions per minute"
                        input name="max_per_minute" type="number" min="1" max="1000" value=(f.max_per_minute) placeholder="no limit"; }
                    div.exponential {
                        label { "Base rate per minute (exponential)"
                            input name="base_rate" type="number" min="1" max="1000" value=(f.base_rate); }
                        label { "Increment factor (exponential, 1.1 to 5)"
                            input name="increment_factor" inputmode="decimal" value=(f.increment_factor) placeholder="2"; }
                        label { "Raise the rate after this many things are"
                            select name="increase_by" {
                                option value="notified" selected[f.increase_by != "succeeded"] { "notified" }
                                option value="succeeded" selected[f.increase_by == "succeeded"] { "succeeded" }
                            }
                            input name="increase_threshold" type="number" min="1" value=(f.increase_threshold); }
                    }
                }
                (err(Field::Rollout))
                label { "In-progress timeout (minutes)"
                    input name="timeout_minutes" type="number" min="1" max="10080" value=(f.timeout_minutes) placeholder="none"; }
                (err(Field::Timeout))
                h2 { "Abort" }
                span.hint { "Cancel the job when, of at least this many executed things, this percentage ended so." }
                table.rows {
                    thead { tr { th { "Failure type" } th.action { "Action" } th { "Threshold %" } th { "Min. executed things" } } }
                    tbody {
                        @for (i, row) in f.abort.iter().enumerate() {
                            tr {
                                td { select name=(format!("abort_failure_type_{i}")) aria-label="failureType" { (options(&abort_types, &row.failure_type)) } }
                                td.action { select name=(format!("abort_action_{i}")) aria-label="action" { option value="CANCEL" { "CANCEL" } } }
                                td { input name=(format!("abort_threshold_{i}")) inputmode="decimal" value=(row.threshold) aria-label="thresholdPercentage"; }
                                td { input name=(format!("abort_min_executed_{i}")) type="number" value=(row.min_executed) aria-label="minNumberOfExecutedThings"; }
                            }
                        }
                    }
                }
                (err(Field::Abort))
                h2 { "Retries" }
                span.hint { "Try a failed or timed-out execution again; at most 10 retries in all." }
                table.rows {
                    thead { tr { th { "Failure type" } th { "Retries" } } }
                    tbody {
                        @for (i, row) in f.retry.iter().enumerate() {
                            tr {
                                td { select name=(format!("retry_failure_type_{i}")) aria-label="failureType" { (options(&retry_types, &row.failure_type)) } }
                                td { input name=(format!("retry_count_{i}")) type="number" value=(row.retries) aria-label="numberOfRetries"; }
                            }
                        }
                    }
                }
                (err(Field::Retry))
                h2 { "Scheduling" }
                span.hint { "Times in UTC, 30 minutes to a year ahead." }
                label { "Start time (UTC)" input name="start_time" type="datetime-local" value=(f.start_time); }
                label { "End time (UTC)" input name="end_time" type="datetime-local" value=(f.end_time); }
                label { "At the end time"
                    select name="end_behavior" {
                        option value="" selected[f.end_behavior.is_empty()] { "nothing (no end behavior)" }
                        @for b in JobEndBehavior::ALL {
                            option value=(b.as_str()) selected[f.end_behavior == b.as_str()] { (b.as_str()) }
                        }
                    }
                }
                table.rows {
                    thead { tr { th { "Maintenance window start (cron)" } th { "Duration (minutes)" } } }
                    tbody {
                        @for (i, row) in f.windows.iter().enumerate() {
                            tr {
                                td { input name=(format!("window_cron_{i}")) value=(row.cron) placeholder="cron(0 2 ? * SAT *)" aria-label="startTime"; }
                                td { input name=(format!("window_minutes_{i}")) type="number" value=(row.minutes) aria-label="durationInMinutes"; }
                            }
                        }
                    }
                }
                (err(Field::Scheduling))
                div.actions { button.primary type="submit" { "Create job" } }
            }
            section.card #preview-card {
                h2 { "Rollout preview" }
                div #preview hx-post="/console/jobs/preview" hx-include="#create-form"
                    hx-trigger="load, input from:#create-form delay:400ms, change from:#create-form" hx-target="this" {
                    p.muted { "Name targets to see when their executions are created." }
                }
            }
        }
    }
}

/// The page: the form with the account's and the managed templates to choose from.
async fn render(console: &Console, session: &Session, f: &Fields, error: Option<(Field, String)>) -> Markup {
    let templates = pick::templates(&console.engine).await;
    layout::page("Create job", session, Nav::Create, form(session, f, &templates, error))
}

pub async fn page(State(console): State<Console>, Authed(session): Authed) -> Response {
    render(&console, &session, &Fields::blank(), None).await.into_response()
}

pub async fn submit(State(console): State<Console>, Posted { session, form: form_data }: Posted) -> Response {
    let f = Fields::from_form(&form_data);
    let outcome = match request(&console.engine, &f) {
        Ok(r) => console.engine.create_job(r).await.map_err(|e| (field_of(&e), aws_message(&e))),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(created) => Redirect::to(&format!("/console/jobs/{}", created.job_id)).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, render(&console, &session, &f, Some(error)).await).into_response(),
    }
}

/// How many things the targets name: the things, and the members of the groups (nested
/// groups included), each counted once.
async fn count_things(engine: &Engine, f: &Fields) -> ApiResult<usize> {
    let mut things: BTreeSet<String> = names(&f.things).into_iter().collect();
    for group in names(&f.thing_groups) {
        let mut next_token = None;
        loop {
            let page = engine
                .list_things_in_thing_group(ListThingsInThingGroupRequest {
                    thing_group_name: group.clone(),
                    recursive: true,
                    next_token: next_token.take(),
                    max_results: Some(250),
                })
                .await?;
            things.extend(page.things);
            match page.next_token {
                Some(t) if things.len() < MAX_PREVIEW_THINGS => next_token = Some(t),
                _ => break,
            }
        }
    }
    Ok(things.len())
}

pub async fn preview(State(console): State<Console>, Posted { form: form_data, .. }: Posted) -> Response {
    let f = Fields::from_form(&form_data);
    let now = now_millis();
    let start = now - now.rem_euclid(fleetjobs_rollout::MINUTE);
    let markup = match preview_markup(&console.engine, &f, start).await {
        Ok(m) => m,
        Err(message) => html! { p.field-error { (message) } },
    };
    markup.into_response()
}

/// The configs a job made from the form would have: the form's, and a custom template's
/// filling the rest as `Engine::create_job` fills them (core's `merge_configs`). A managed
/// template has no configs; an unknown one is the engine's error at submit, not the preview's.
async fn job_configs(engine: &Engine, f: &Fields) -> Result<JobConfigs, String> {
    let own = configs(f).map_err(|(_, m)| m)?;
    let id = engine.config().scope.parse(&f.job_template, ResourceKind::JobTemplate).filter(|id| !id.contains(':'));
    let Some(id) = id else { return Ok(own) };
    let Ok(t) = engine.describe_job_template(DescribeJobTemplateRequest { job_template_id: id.to_string() }).await
    else {
        return Ok(own);
    };
    let template = JobConfigs {
        presigned_url_config: t.presigned_url_config,
        job_executions_rollout_config: t.job_executions_rollout_config,
        abort_config: t.abort_config,
        timeout_config: t.timeout_config,
        job_executions_retry_config: t.job_executions_retry_config,
        scheduling_config: windows_only(t.maintenance_windows),
    };
    Ok(merge_configs(&own, &template))
}

async fn preview_markup(engine: &Engine, f: &Fields, start: Millis) -> Result<Markup, String> {
    let configs = job_configs(engine, f).await?;
    configs.check(start).map_err(|e| e.message)?;
    let things = count_things(engine, f).await.map_err(|e| aws_message(&e))?;
    if things == 0 {
        return Ok(html! { p.muted { "Name targets to see when their executions are created." } });
    }
    let p = timeline(&configs, things, start).map_err(|e| e.message)?;
    let created: i64 = p.batches.iter().map(|b| b.count).sum();
    let first = p.batches.first().map(|b| b.at);
    let last = p.batches.last().map(|b| b.at);
    let mut cumulative = 0;
    let aborts = configs.abort_config.as_ref().map(|a| a.criteria_list.as_slice()).unwrap_or_default();
    Ok(html! {
        p.preview-summary data-things=(things) data-batches=(p.batches.len())
            data-first=[first.map(|f| f - start)] data-not-created=(p.not_created) {
            strong { (things) } " thing" @if things != 1 { "s" } ": "
            @match last {
                Some(at) if at == start => { "every execution is created at once." }
                Some(at) => { (created) " executions over " strong { (minutes(at - start)) } ", the last at " (layout::time(at)) " UTC." }
                None => { "no execution would be created." }
            }
            @if let Some(at) = first.filter(|f| *f > start) {
                " The first are created at " strong { (layout::time(at)) } " UTC, in " (minutes(at - start)) " (the scheduled start or the next maintenance window)."
            }
        }
        @match p.stop {
            Some(Stop::Ended { at, behavior }) => p.field-error { "The end time (" (layout::time(at)) ") stops the rollout with " (behavior.as_str()) "; " (p.not_created) " things get no execution." },
            Some(Stop::NoWindowOpens { at }) => p.field-error { "No maintenance window opens after " (layout::time(at)) "; " (p.not_created) " things get no execution." },
            None => {},
        }
        @if p.windows.iter().any(|w| w.closes.is_some()) {
            p.preview-windows { "Maintenance windows used: "
                @for (i, w) in p.windows.iter().enumerate() {
                    @if i > 0 { "; " }
                    (layout::time(w.first_batch)) @if let Some(c) = w.closes { " to " (layout::time(c)) }
                }
                " (UTC)."
            }
        }
        table.preview {
            thead { tr { th { "Time (UTC)" } th { "After" } th { "New" } th { "Total" } th { "Rate/min" } } }
            tbody {
                @for b in p.batches.iter().take(PREVIEW_ROWS) {
                    tr {
                        td.time { (layout::time(b.at)) }
                        td { (minutes(b.at - start)) }
                        td { (b.count) }
                        td { ({ cumulative += b.count; cumulative }) }
                        td { @if let Some(r) = b.per_minute { (r) } @else { "∞" } }
                    }
                }
                @if p.batches.len() > PREVIEW_ROWS {
                    tr { td.muted colspan="5" { "… " (p.batches.len() - PREVIEW_ROWS) " more batches" } }
                }
            }
        }
        @for c in aborts {
            p.preview-abort { "Abort: the job is canceled once " (c.threshold_percentage.get()) "% of at least "
                (c.min_number_of_executed_things) " executed things ended " (c.failure_type.as_str()) "." }
        }
        p.hint { "Assumes every device succeeds at once (so no abort or retry), as the engine's rollout rules are applied (the same rules as " code { "fleetjobs rollout-preview" } ")." }
    })
}

/// `0 min`, `12 min`, `2 h 5 min`, `3 d 1 h 0 min`.
fn minutes(ms: Millis) -> String {
    let m = ms / fleetjobs_rollout::MINUTE;
    if m < 60 {
        format!("{m} min")
    } else if m < 24 * 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} d {} h {} min", m / (24 * 60), m % (24 * 60) / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_on_commas_and_lines_once_each() {
        assert_eq!(names(" a, b\nc  a,,"), vec!["a", "b", "c"]);
        assert!(names("  ").is_empty());
    }

    /// The field of the error CreateJob's own check gives for `request` (wire JSON).
    fn field_of_request(request: serde_json::Value) -> Field {
        let r: CreateJobRequest = serde_json::from_value(request).unwrap();
        field_of(&r.check(0).unwrap_err())
    }

    #[test]
    fn engine_errors_land_beside_their_field() {
        let ok = || serde_json::json!({"jobId": "j", "targets": ["arn:aws:iot:us-east-1:123456789012:thing/t"], "document": "{}"});
        let with = |member: &str, value: serde_json::Value| {
            let mut r = ok();
            r[member] = value;
            field_of_request(r)
        };
        assert_eq!(with("jobId", "no spaces allowed".into()), Field::JobId);
        assert_eq!(with("document", "[1]".into()), Field::Document);
        assert_eq!(with("targets", serde_json::json!([])), Field::Targets);
        assert_eq!(with("description", "x".repeat(3000).into()), Field::Description);
        assert_eq!(with("jobExecutionsRolloutConfig", serde_json::json!({"maximumPerMinute": 0})), Field::Rollout);
        assert_eq!(with("documentParameters", serde_json::json!({"a": "b"})), Field::Template);
        let no_document = {
            let mut r = ok();
            r.as_object_mut().unwrap().remove("document");
            r
        };
        assert_eq!(field_of_request(no_document), Field::Document);
        // An error no check blamed on a member (the store refusing writes, say).
        assert_eq!(field_of(&ApiError::invalid("The store refuses writes")), Field::Form);
        assert_eq!(field_of(&ApiError::invalid("x").at("tags")), Field::Form);
    }

    #[test]
    fn the_rollout_fields_become_the_rollout_config() {
        let constant = Fields { max_per_minute: "10".into(), ..Default::default() };
        let c = configs(&constant).unwrap().job_executions_rollout_config.unwrap();
        assert_eq!((c.maximum_per_minute, c.exponential_rate.is_none()), (Some(10), true));
        assert!(configs(&Fields::default()).unwrap().job_executions_rollout_config.is_none());
        let exp = Fields {
            rollout_kind: "exponential".into(),
            base_rate: "2".into(),
            increment_factor: "1.5".into(),
            increase_by: "succeeded".into(),
            increase_threshold: "4".into(),
            ..Default::default()
        };
        let e = configs(&exp).unwrap().job_executions_rollout_config.unwrap().exponential_rate.unwrap();
        assert_eq!(e.base_rate_per_minute, 2);
        assert_eq!(e.increment_factor.get(), 1.5);
        assert_eq!(e.rate_increase_criteria, RateIncreaseCriteria::NumberOfSucceededThings(4));
        let bad = Fields { increment_factor: "fast".into(), ..exp };
        assert_eq!(configs(&bad).unwrap_err().0, Field::Rollout);
    }

    #[test]
    fn durations_read_as_minutes_hours_and_days() {
        assert_eq!(minutes(0), "0 min");
        assert_eq!(minutes(125 * 60_000), "2 h 5 min");
        assert_eq!(minutes((2 * 24 * 60 + 61) * 60_000), "2 d 1 h 1 min");
    }

    #[test]
    fn blank_rows_are_absent_configs() {
        let c = configs(&Fields::blank()).unwrap();
        assert_eq!(c, JobConfigs::default());
    }

    #[test]
    fn the_new_configs_land_beside_their_fields() {
        let with = |member: &str, value: serde_json::Value| {
            let mut r = serde_json::json!({"jobId": "j", "targets": ["arn:aws:iot:us-east-1:123456789012:thing/t"], "document": "{}"});
            r[member] = value;
            field_of_request(r)
        };
        let abort = serde_json::json!({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
            "thresholdPercentage": 101, "minNumberOfExecutedThings": 1}]});
        assert_eq!(with("abortConfig", abort), Field::Abort);
        let retry = serde_json::json!({"criteriaList": [{"failureType": "ALL", "numberOfRetries": 11}]});
        assert_eq!(with("jobExecutionsRetryConfig", retry), Field::Retry);
        assert_eq!(with("schedulingConfig", serde_json::json!({"endBehavior": "CANCEL"})), Field::Scheduling);
        let presigned = serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/r", "expiresInSec": 1});
        assert_eq!(with("presignedUrlConfig", presigned), Field::Presigned);
        assert_eq!(with("timeoutConfig", serde_json::json!({"inProgressTimeoutInMinutes": 0})), Field::Timeout);
        assert_eq!(with("jobTemplateArn", "not an arn".into()), Field::Template);
    }

    #[test]
    fn abort_retry_and_window_rows_become_criteria_lists() {
        let mut f = Fields::blank();
        f.abort[1] = AbortRow { failure_type: "REJECTED".into(), threshold: "50".into(), min_executed: "3".into() };
        f.retry[0] = RetryRow { failure_type: "ALL".into(), retries: "4".into() };
        f.windows[2] = WindowRow { cron: "cron(0 2 ? * SAT *)".into(), minutes: "30".into() };
        let c = configs(&f).unwrap();
        let abort = &c.abort_config.unwrap().criteria_list;
        assert_eq!(
            (abort.len(), abort[0].failure_type, abort[0].min_number_of_executed_things),
            (1, AbortFailureType::Rejected, 3)
        );
        let retry = &c.job_executions_retry_config.unwrap().criteria_list;
        assert_eq!((retry.len(), retry[0].failure_type, retry[0].number_of_retries), (1, RetryFailureType::All, 4));
        let s = c.scheduling_config.unwrap();
        assert_eq!(s.maintenance_windows.unwrap()[0].duration_in_minutes, 30);
        assert_eq!((s.start_time, s.end_behavior), (None, None));
        f.abort[1].failure_type = "CRASHED".into();
        let (field, message) = configs(&f).unwrap_err();
        assert_eq!(
            (field, message.as_str()),
            (Field::Abort, "failureType must be one of FAILED, REJECTED, TIMED_OUT, ALL")
        );
    }
}
