//! One job's page: its description, document, configs, execution counts, the chart of its
//! statuses over time and the executions table (filtered by status, paginated both ways, each
//! row linking to its execution's page), kept current over server-sent events; cancel (with
//! force) and delete. And one execution's live page: its `statusDetails`, times, version, number
//! and retry attempt, beside the thing's other attempts at the job.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::JobExecutionStatus;
use fleetjobs_core::ops::console::JobStatusHistoryRequest;
use fleetjobs_core::ops::executions::{
    DescribeJobExecutionRequest, ListJobExecutionsForJobRequest, ListJobExecutionsForThingRequest,
};
use fleetjobs_core::ops::jobs::{CancelJobRequest, DeleteJobRequest, DescribeJobRequest, GetJobDocumentRequest};
use fleetjobs_core::{ApiError, ErrorCode};
use fleetjobs_engine::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Session;
use crate::layout::{self, Nav};
use crate::{chart, live, Authed, Console, Posted};

/// Executions per page of the table (each row costs one more engine read, for its details).
const PAGE_SIZE: i64 = 25;
/// Pages remembered for "Previous page" (the engine's tokens only go forward); further back,
/// "First page" still works.
const MAX_BACK: usize = 40;

/// The table's filter and place: `token` is the engine's `nextToken` of the page shown (empty:
/// the first page), `back` the tokens of the pages between the first and it (comma-separated,
/// oldest first, at most [`MAX_BACK`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExecutionsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    back: String,
}

impl ExecutionsQuery {
    fn status(&self) -> Option<JobExecutionStatus> {
        JobExecutionStatus::parse(&self.status)
    }

    fn back(&self) -> Vec<&str> {
        if self.back.is_empty() {
            return Vec::new();
        }
        let all: Vec<&str> = self.back.split(',').collect();
        all[all.len().saturating_sub(MAX_BACK)..].to_vec()
    }

    fn query_string(&self) -> String {
        let pairs = [("status", self.status.as_str()), ("token", self.token.as_str()), ("back", self.back.as_str())];
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The page after this one, whose token the engine gave.
    fn next(&self, next_token: &str) -> ExecutionsQuery {
        let mut back = self.back();
        // The first page has no token: it is where "previous" goes when the trail is empty.
        if !self.token.is_empty() {
            back.push(&self.token);
        }
        let back = back[back.len().saturating_sub(MAX_BACK)..].join(",");
        ExecutionsQuery { status: self.status.clone(), token: next_token.to_string(), back }
    }

    /// The page before this one (`None` on the first page).
    fn previous(&self) -> Option<ExecutionsQuery> {
        if self.token.is_empty() {
            return None;
        }
        let mut back = self.back();
        let token = back.pop().unwrap_or("").to_string();
        Some(ExecutionsQuery { status: self.status.clone(), token, back: back.join(",") })
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
    let history = engine
        .job_status_history(JobStatusHistoryRequest { job_id: job_id.to_string(), samples: chart::SAMPLES })
        .await?;
    let d = &job.job_process_details;
    let filter_base = format!("/console/jobs/{job_id}");
    let first = ExecutionsQuery { status: query.status.clone(), ..Default::default() };
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
            h2 { "Over time" }
            (chart::status_history(&history.samples))
            (crate::jobs::legend())
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
                            td.id { a href=(execution_href(job_id, thing, s.execution_number)) { (thing) } }
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
            @if let Some(previous) = query.previous() {
                a.first href={ (filter_base) "?" (first.query_string()) } { "« First page" }
                a.previous rel="prev" href={ (filter_base) "?" (previous.query_string()) } { "‹ Previous page" }
            }
            @if let Some(next) = &executions.next_token {
                a.next rel="next" href={ (filter_base) "?" (query.next(next).query_string()) } { "Next page ›" }
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

/// A name as one URL path segment (job IDs and thing names are `[a-zA-Z0-9_:-]` by the API's
/// patterns; anything else is percent-encoded all the same).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page of the executions of `job_id` on `thing`.
fn execution_path(job_id: &str, thing: &str) -> String {
    format!("/console/jobs/{}/things/{}", segment(job_id), segment(thing))
}

/// The page of one execution of `job_id` on `thing`.
pub fn execution_href(job_id: &str, thing: &str, execution_number: i64) -> String {
    format!("{}?number={execution_number}", execution_path(job_id, thing))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExecutionQuery {
    /// The execution number (none: the latest).
    number: Option<i64>,
}

impl ExecutionQuery {
    fn query_string(&self) -> String {
        self.number.map(|n| format!("number={n}")).unwrap_or_default()
    }
}

/// Attempts of one thing at one job shown on its execution page.
const MAX_ATTEMPTS_SHOWN: i64 = 50;

/// One execution's page body: what DescribeJobExecution says (statusDetails, times, version,
/// number), its retry attempt, and the thing's other executions of the job.
async fn execution_markup(engine: &Engine, job_id: &str, thing: &str, number: Option<i64>) -> Result<Markup, ApiError> {
    let request = DescribeJobExecutionRequest {
        job_id: job_id.to_string(),
        thing_name: thing.to_string(),
        execution_number: number,
    };
    let e = engine.describe_job_execution(request).await?.execution;
    let attempts = ListJobExecutionsForThingRequest {
        thing_name: thing.to_string(),
        job_id: Some(job_id.to_string()),
        max_results: Some(MAX_ATTEMPTS_SHOWN),
        ..Default::default()
    };
    let attempts =
        engine.list_job_executions_for_thing(attempts).await.map(|a| a.execution_summaries).unwrap_or_default();
    let retry_attempt = attempts
        .iter()
        .find(|a| a.job_execution_summary.execution_number == e.execution_number)
        .map(|a| a.job_execution_summary.retry_attempt);
    Ok(html! {
        div.titlebar {
            h1 { "Execution " span.id { (job_id) } " on " span.id { (thing) } }
            (layout::execution_status(e.status))
        }
        div.grid {
            section.card.execution {
                h2 { "Execution" }
                dl.kv {
                    dt { "Job" } dd { a href={ "/console/jobs/" (segment(job_id)) } { (job_id) } }
                    dt { "Thing" } dd { a href={ "/console/things/" (segment(thing)) } { (thing) } }
                    dt { "Status" } dd data-status=(e.status.as_str()) { (layout::execution_status(e.status)) @if e.force_canceled { " (forced)" } }
                    dt { "Execution number" } dd data-field="executionNumber" { (e.execution_number) }
                    dt { "Retry attempt" } dd data-field="retryAttempt" { @if let Some(r) = retry_attempt { (r) } @else { "—" } }
                    dt { "Version" } dd data-field="versionNumber" { (e.version_number) }
                    dt { "Queued" } dd { (layout::time_cell(e.queued_at.0)) }
                    dt { "Started" } dd { @if let Some(t) = e.started_at { (layout::time_cell(t.0)) } @else { "—" } }
                    dt { "Last updated" } dd { (layout::time_cell(e.last_updated_at.0)) }
                    @if let Some(s) = e.approximate_seconds_before_timed_out {
                        dt { "Times out in" } dd { (s) " s" }
                    }
                    dt { "Thing ARN" } dd.mono { (e.thing_arn) }
                }
            }
            section.card {
                h2 { "Status details" }
                @match &e.status_details.details_map {
                    Some(map) => dl.kv.status-details { @for (k, v) in map { dt { (k) } dd { (v) } } },
                    None => p.muted { "The device sent none." },
                }
            }
        }
        section.card {
            h2 { "Attempts of this thing at this job" }
            div.tablewrap {
                table.attempts {
                    thead { tr { th { "#" } th { "Retry" } th { "Status" } th { "Queued" } th { "Updated" } } }
                    tbody {
                        @for a in &attempts {
                            @let s = &a.job_execution_summary;
                            tr data-number=(s.execution_number) class=[(s.execution_number == e.execution_number).then_some("current")] {
                                td { a href=(execution_href(job_id, thing, s.execution_number)) { (s.execution_number) } }
                                td { (s.retry_attempt) }
                                td { (layout::execution_status(s.status)) }
                                td.time { (layout::time_cell(s.queued_at.0)) }
                                td.time { (layout::time_cell(s.last_updated_at.0)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// One execution's page, kept current over server-sent events.
pub async fn execution(
    State(console): State<Console>,
    Authed(session): Authed,
    Path((job_id, thing)): Path<(String, String)>,
    Query(query): Query<ExecutionQuery>,
) -> Response {
    match execution_markup(&console.engine, &job_id, &thing, query.number).await {
        Ok(m) => {
            let events = format!("{}/events?{}", execution_path(&job_id, &thing), query.query_string());
            let body = html! {
                div.titlebar { span.live data-live="connecting" title="live updates" { "live" } }
                div #execution-live data-sse=(events) data-sse-event="execution" { (m) }
            };
            layout::page(&format!("Execution of {job_id} on {thing}"), &session, Nav::Jobs, body).into_response()
        }
        Err(err) => {
            let status =
                if err.code == ErrorCode::ResourceNotFound { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            let body = html! {
                h1 { "Execution of " (job_id) " on " (thing) }
                p.error { (err.code.name()) ": " (err.message) }
                p { a href={ "/console/jobs/" (segment(&job_id)) } { "The job" } }
            };
            (status, layout::page("Execution", &session, Nav::Jobs, body)).into_response()
        }
    }
}

pub async fn execution_events(
    State(console): State<Console>,
    Authed(session): Authed,
    Path((job_id, thing)): Path<(String, String)>,
    Query(query): Query<ExecutionQuery>,
) -> Response {
    let engine: Arc<Engine> = console.engine.clone();
    let key = Arc::new((job_id, thing, query.number));
    live::stream(&console, session.id, "execution", move || {
        let (engine, key) = (engine.clone(), key.clone());
        // A deleted execution ends its stream.
        async move { execution_markup(&engine, &key.0, &key.1, key.2).await.ok().map(Markup::into_string) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_forward_and_back_with_a_bounded_trail() {
        let first = ExecutionsQuery { status: "QUEUED".into(), ..Default::default() };
        assert!(first.previous().is_none());
        let second = first.next("25");
        assert_eq!((second.token.as_str(), second.back.as_str()), ("25", ""));
        let third = second.next("50");
        assert_eq!((third.token.as_str(), third.back.as_str()), ("50", "25"));
        let back = third.previous().unwrap();
        assert_eq!((back.token.as_str(), back.back.as_str(), back.status.as_str()), ("25", "", "QUEUED"));
        let back = back.previous().unwrap();
        assert_eq!((back.token.as_str(), back.back.as_str()), ("", ""));
        let mut far = first.clone();
        for i in 1..=100 {
            far = far.next(&(i * 25).to_string());
        }
        assert_eq!(far.back().len(), MAX_BACK);
        assert_eq!(far.previous().unwrap().token, "2475");
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(execution_href("job-1", "thing:a_b", 2), "/console/jobs/job-1/things/thing:a_b?number=2");
        assert_eq!(segment("a/b?c d\"<"), "a%2Fb%3Fc%20d%22%3C");
    }
}
