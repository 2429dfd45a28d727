//! One job's page: its description, document, configs, execution counts and the executions
//! table (filtered by status, paginated, each with its `statusDetails` and times), kept
//! current over server-sent events; cancel (with force) and delete.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::JobExecutionStatus;
use fleetjobs_core::ops::executions::{DescribeJobExecutionRequest, ListJobExecutionsForJobRequest};
use fleetjobs_core::ops::jobs::{CancelJobRequest, DeleteJobRequest, DescribeJobRequest, GetJobDocumentRequest};
use fleetjobs_core::{ApiError, ErrorCode};
use fleetjobs_engine::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Session;
use crate::layout::{self, Nav};
use crate::{live, Authed, Console, Posted};

/// Executions per page of the table.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExecutionsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    token: String,
}

impl ExecutionsQuery {
    fn status(&self) -> Option<JobExecutionStatus> {
        JobExecutionStatus::parse(&self.status)
    }

    fn query_string(&self) -> String {
        serde_urlencoded::to_string([("status", self.status.as_str()), ("token", self.token.as_str())])
            .unwrap_or_default()
    }
}

/// The part of the page that changes as executions do: status, counts, bar, executions.
async fn live_region(engine: &Engine, job_id: &str, query: &ExecutionsQuery) -> Result<Markup, ApiError> {
    let job =
        engine.describe_job(DescribeJobRequest { job_id: job_id.to_string(), before_substitution: false }).await?.job;
    let request = ListJobExecutionsForJobRequest {
        job_id: job_id.to_string(),
        status: query.status(),
        max_results: Some(PAGE_SIZE),
        next_token: (!query.token.is_empty()).then(|| query.token.clone()),
    };
    let executions = engine.list_job_executions_for_job(request).await?;
    let scope = &engine.config().scope;
    let mut rows = Vec::with_capacity(executions.execution_summaries.len());
    for e in &executions.execution_summaries {
        let thing = scope.parse(&e.thing_arn, ResourceKind::Thing).unwrap_or(&e.thing_arn).to_string();
        let described = engine
            .describe_job_execution(DescribeJobExecutionRequest {
                job_id: job_id.to_string(),
                thing_name: thing.clone(),
                execution_number: Some(e.job_execution_summary.execution_number),
            })
            .await
            .ok()
            .map(|d| d.execution);
        rows.push((thing, e.job_execution_summary.clone(), described));
    }
    let d = &job.job_process_details;
    let filter_base = format!("/console/jobs/{job_id}");
    Ok(html! {
        section.card {
            h2 { "Progress" }
            div.summary {
                div { "Status " (layout::job_status(job.status)) @if job.force_canceled { " (forced)" } }
                div { "Updated " (layout::time_cell(job.last_updated_at.0)) }
                @if let Some(c) = job.completed_at { div { "Completed " (layout::time_cell(c.0)) } }
                @if let Some(r) = &job.reason_code { div { "Reason " code { (r) } } }
                @if let Some(c) = &job.comment { div { "Comment " (c) } }
            }
            div.bigbar { (layout::progress_bar(d)) }
            ul.counts {
                @for (s, n) in layout::counts(d) { li { (layout::execution_status(s)) " " strong data-count=(s.as_str()) { (n) } } }
            }
        }
        section.card {
        h2 { "Executions" }
        form.filters method="get" action=(filter_base) {
            label { "Status "
                select name="status" data-autosubmit {
                    option value="" selected[query.status.is_empty()] { "All" }
                    @for s in JobExecutionStatus::ALL { option value=(s.as_str()) selected[query.status == s.as_str()] { (s.as_str()) } }
                }
            }
            noscript { button type="submit" { "Filter" } }
        }
        div.tablewrap {
            table.executions {
                thead { tr { th { "Thing" } th { "#" } th { "Status" } th { "Queued" } th { "Started" } th { "Updated" } th { "Status details" } } }
                tbody {
                    @if rows.is_empty() { tr { td.empty colspan="7" { "No executions." } } }
                    @for (thing, s, described) in &rows {
                        tr data-thing=(thing) {
                            td.id { (thing) }
                            td { (s.execution_number) @if s.retry_attempt > 0 { span.sub { " retry " (s.retry_attempt) } } }
                            td { (layout::execution_status(s.status)) }
                            td.time { (layout::time_cell(s.queued_at.0)) }
                            td.time { @if let Some(t) = s.started_at { (layout::time_cell(t.0)) } @else { "—" } }
                            td.time { (layout::time_cell(s.last_updated_at.0)) }
                            td.details {
                                @if let Some(map) = described.as_ref().and_then(|d| d.status_details.details_map.as_ref()) {
                                    dl.kv { @for (k, v) in map { dt { (k) } dd { (v) } } }
                                } @else { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
        p.pager {
            @if !query.token.is_empty() {
                a href={ (filter_base) "?" (serde_urlencoded::to_string([("status", query.status.as_str())]).unwrap_or_default()) } { "« First page" }
            }
            @if let Some(next) = &executions.next_token {
                a href={ (filter_base) "?" (serde_urlencoded::to_string([("status", query.status.as_str()), ("token", next.as_str())]).unwrap_or_default()) } { "Next page »" }
            }
        }
        }
    })
}

async fn render(
    console: &Console,
    session: &Session,
    job_id: &str,
    query: &ExecutionsQuery,
    notice: Option<&ApiError>,
) -> Response {
    let engine = &console.engine;
    let described = match engine
        .describe_job(DescribeJobRequest { job_id: job_id.to_string(), before_substitution: false })
        .await
    {
        Ok(d) => d,
        Err(e) => {
            let status =
                if e.code == ErrorCode::ResourceNotFound { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            let body = html! { h1 { "Job " (job_id) } p.error { (e.code.name()) ": " (e.message) } p { a href="/console/jobs" { "All jobs" } } };
            return (status, layout::page("Job", session, Nav::Jobs, body)).into_response();
        }
    };
    let job = &described.job;
    let document = engine
        .get_job_document(GetJobDocumentRequest { job_id: job_id.to_string(), before_substitution: false })
        .await
        .map(|d| pretty(&d.document))
        .unwrap_or_else(|e| format!("({})", e.message));
    let configs = serde_json::to_string_pretty(&job.configs).unwrap_or_default();
    let live = match live_region(engine, job_id, query).await {
        Ok(m) => m,
        Err(e) => html! { p.error { (e.code.name()) ": " (e.message) } },
    };
    let body = html! {
        div.titlebar {
            h1 { "Job " span.id { (job.job_id) } }
            span.live data-live="connecting" title="live updates" { "live" }
        }
        @if let Some(e) = notice { p.error role="alert" { (e.code.name()) ": " (e.message) } }
        div #job-live data-sse={ "/console/jobs/" (job.job_id) "/events?" (query.query_string()) } data-sse-event="job" {
            (live)
        }
        @if console.mqtt.is_some() {
            section.card.events {
                h2 { "Events" }
                p.hint { "This job's " code { "$aws/events" } " messages as they happen (when event configurations enable them), newest first." }
                ol #job-events.messages data-sse={ "/console/test/events?" (events_query(&job.job_id)) } data-sse-event="message" data-sse-mode="prepend" {}
            }
        }
        div.grid {
            section.card {
                h2 { "Details" }
                dl.kv {
                    dt { "Description" } dd { @if let Some(d) = &job.description { (d) } @else { span.muted { "—" } } }
                    dt { "Job ARN" } dd.mono { (job.job_arn) }
                    dt { "Target selection" } dd { (job.target_selection.as_str()) }
                    dt { "Targets" } dd { ul.targets { @for t in &job.targets { li.mono { (t) } } } }
                    @if let Some(s) = &described.document_source { dt { "Document source" } dd.mono { (s) } }
                    @if let Some(t) = &job.job_template_arn { dt { "Job template" } dd.mono { (t) } }
                    dt { "Created" } dd { (layout::time_cell(job.created_at.0)) }
                }
                div.actions {
                    form method="post" action={ "/console/jobs/" (job.job_id) "/cancel" } data-confirm="Cancel this job?" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label.inline { input type="checkbox" name="force" value="true"; " force (also IN_PROGRESS executions)" }
                        input name="comment" placeholder="comment (optional)" maxlength="2028";
                        button.warn type="submit" { "Cancel job" }
                    }
                    form method="post" action={ "/console/jobs/" (job.job_id) "/delete" } data-confirm="Delete this job and its executions?" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label.inline { input type="checkbox" name="force" value="true"; " force (also while executions are IN_PROGRESS)" }
                        button.danger type="submit" { "Delete job" }
                    }
                }
            }
            section.card { h2 { "Document" } pre.code { (document) } }
            section.card { h2 { "Configurations" } pre.code { (configs) } }
        }
    };
    let status = if notice.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, layout::page(&format!("Job {}", job.job_id), session, Nav::Jobs, body)).into_response()
}

/// The MQTT test client's stream of this job's events.
fn events_query(job_id: &str) -> String {
    let filters = format!("$aws/events/job/{job_id}/#\n$aws/events/jobExecution/{job_id}/#");
    serde_urlencoded::to_string([("filters", filters)]).unwrap_or_default()
}

/// A JSON document indented, or as it is when it is not JSON.
fn pretty(document: &str) -> String {
    serde_json::from_str::<serde_json::Value>(document)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| document.to_string())
}

pub async fn page(
    State(console): State<Console>,
    Authed(session): Authed,
    Path(job_id): Path<String>,
    Query(query): Query<ExecutionsQuery>,
) -> Response {
    render(&console, &session, &job_id, &query, None).await
}

pub async fn events(
    State(console): State<Console>,
    Authed(session): Authed,
    Path(job_id): Path<String>,
    Query(query): Query<ExecutionsQuery>,
) -> Response {
    let engine: Arc<Engine> = console.engine.clone();
    let (job_id, query) = (Arc::new(job_id), Arc::new(query));
    live::stream(&console, session.id, "job", move || {
        let (engine, job_id, query) = (engine.clone(), job_id.clone(), query.clone());
        // A deleted job ends its stream.
        async move { live_region(&engine, &job_id, &query).await.ok().map(Markup::into_string) }
    })
}

pub async fn cancel(
    State(console): State<Console>,
    Path(job_id): Path<String>,
    Posted { session, form }: Posted,
) -> Response {
    let request = CancelJobRequest {
        job_id: job_id.clone(),
        reason_code: None,
        comment: form.text("comment"),
        force: form.checked("force"),
    };
    match console.engine.cancel_job(request).await {
        Ok(_) => Redirect::to(&format!("/console/jobs/{job_id}")).into_response(),
        Err(e) => render(&console, &session, &job_id, &ExecutionsQuery::default(), Some(&e)).await,
    }
}

pub async fn delete(
    State(console): State<Console>,
    Path(job_id): Path<String>,
    Posted { session, form }: Posted,
) -> Response {
    let request = DeleteJobRequest { job_id: job_id.clone(), force: form.checked("force"), namespace_id: None };
    match console.engine.delete_job(request).await {
        Ok(_) => Redirect::to("/console/jobs").into_response(),
        Err(e) => render(&console, &session, &job_id, &ExecutionsQuery::default(), Some(&e)).await,
    }
}
