//! The Jobs page: every job with its status, target selection, times and a stacked bar of its
//! executions by status, filtered by status and text, kept current over server-sent events.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use fleetjobs_core::model::JobStatus;
use fleetjobs_core::ops::console::{JobOverview, ListJobOverviewsRequest, MAX_SEARCH_TEXT};
use fleetjobs_core::ApiResult;
use fleetjobs_engine::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{self, Nav};
use crate::{live, Authed, Console};

/// At most this many jobs on the page (newest first).
const MAX_JOBS_SHOWN: usize = fleetjobs_core::ops::console::MAX_JOB_OVERVIEWS;
const JOB_STATUSES: [&str; 5] = ["IN_PROGRESS", "SCHEDULED", "COMPLETED", "CANCELED", "DELETION_IN_PROGRESS"];

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
}

impl Filter {
    fn status(&self) -> Option<JobStatus> {
        JobStatus::parse(&self.status)
    }

    fn query_string(&self) -> String {
        serde_urlencoded::to_string([("status", self.status.as_str()), ("q", self.q.as_str())]).unwrap_or_default()
    }
}

/// The jobs the filter selects, newest first, with their counts and descriptions: one engine
/// read however many jobs are listed (the live rows re-render at every durable change).
async fn load(engine: &Engine, filter: &Filter) -> ApiResult<(Vec<JobOverview>, bool)> {
    let request = ListJobOverviewsRequest {
        status: filter.status(),
        text: Some(filter.q.chars().take(MAX_SEARCH_TEXT).collect()),
        max_results: MAX_JOBS_SHOWN,
    };
    let answer = engine.list_job_overviews(request).await?;
    Ok((answer.jobs, answer.truncated))
}

fn rows(jobs: &[JobOverview]) -> Markup {
    html! {
        @if jobs.is_empty() {
            tr { td.empty colspan="6" { "No jobs." } }
        }
        @for j in jobs {
            tr data-job=(j.job_id) {
                td.id {
                    a href={ "/console/jobs/" (j.job_id) } { (j.job_id) }
                    @if let Some(d) = &j.description { div.sub { (d) } }
                }
                td { (layout::job_status(j.status)) }
                td.muted { (j.target_selection.as_str()) }
                td.wide { (layout::progress_bar(&j.job_process_details)) }
                td.time { (layout::time_cell(j.created_at.0)) }
                td.time { (layout::time_cell(j.last_updated_at.0)) }
            }
        }
    }
}

async fn render_rows(engine: &Engine, filter: &Filter) -> Markup {
    match load(engine, filter).await {
        Ok((jobs, _)) => rows(&jobs),
        Err(e) => html! { tr { td.error colspan="6" { (e.code.name()) ": " (e.message) } } },
    }
}

pub async fn page(State(console): State<Console>, Authed(session): Authed, Query(filter): Query<Filter>) -> Response {
    let loaded = load(&console.engine, &filter).await;
    let body = html! {
        div.titlebar {
            h1 { "Jobs" }
            span.live data-live="connecting" title="live updates" { "live" }
            a.button.primary href="/console/jobs/new" { "Create job" }
        }
        form.filters method="get" action="/console/jobs" {
            label { "Status "
                select name="status" data-autosubmit {
                    option value="" selected[filter.status.is_empty()] { "All" }
                    @for s in JOB_STATUSES { option value=(s) selected[filter.status == s] { (s) } }
                }
            }
            label { "Search "
                input type="search" name="q" value=(filter.q) placeholder="job ID or description"; }
            button type="submit" { "Filter" }
        }
        @match &loaded {
            Err(e) => p.error { (e.code.name()) ": " (e.message) },
            Ok((_, truncated)) => @if *truncated { p.muted { "Showing the newest " (MAX_JOBS_SHOWN) " matching jobs." } },
        }
        div.tablewrap {
            table.jobs {
                thead { tr { th { "Job" } th { "Status" } th { "Targets" } th { "Executions" } th { "Created" } th { "Updated" } } }
                tbody #jobs-rows data-sse={ "/console/jobs/events?" (filter.query_string()) } data-sse-event="rows" {
                    @if let Ok((jobs, _)) = &loaded { (rows(jobs)) }
                }
            }
        }
        (legend())
    };
    layout::page("Jobs", &session, Nav::Jobs, body).into_response()
}

/// The status colors, once per page.
pub fn legend() -> Markup {
    use fleetjobs_core::model::JobExecutionStatus as S;
    html! {
        p.legend {
            @for s in [S::Succeeded, S::Failed, S::TimedOut, S::Rejected, S::Canceled, S::Removed, S::InProgress, S::Queued] {
                span { i class={ "dot f-" (s.as_str()) } {} (s.as_str()) }
            }
        }
    }
}

/// The rows of the Jobs page, re-rendered as changes become durable.
pub async fn events(State(console): State<Console>, Authed(session): Authed, Query(filter): Query<Filter>) -> Response {
    let engine: Arc<Engine> = console.engine.clone();
    let filter = Arc::new(filter);
    live::stream(&console, session.id, "rows", move || {
        let (engine, filter) = (engine.clone(), filter.clone());
        async move { Some(render_rows(&engine, &filter).await.into_string()) }
    })
}
