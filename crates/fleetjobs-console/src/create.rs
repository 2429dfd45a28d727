//! The create-job form (the AWS console's "Create custom job": job ID, description, things and
//! thing groups, the job document, snapshot or continuous, the rollout rate, the timeout) and,
//! beside it, the rollout preview: `fleetjobs_rollout::preview::timeline`, the same pure rules
//! `fleetjobs rollout-preview` uses.
//!
//! The form becomes a `CreateJobRequest`, answered by `Engine::create_job` as the API's is;
//! the engine's error is shown beside the field it names.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::job_config::{
    Double, ExponentialRate, JobConfigs, RateIncreaseCriteria, RolloutConfig, TimeoutConfig,
};
use fleetjobs_core::model::TargetSelection;
use fleetjobs_core::ops::jobs::CreateJobRequest;
use fleetjobs_core::ops::thing_groups::ListThingsInThingGroupRequest;
use fleetjobs_core::{ApiError, ApiResult, Millis};
use fleetjobs_engine::Engine;
use fleetjobs_rollout::preview::{timeline, Stop};
use maud::{html, Markup};

use crate::auth::Session;
use crate::layout::{self, Nav};
use crate::{now_millis, Authed, Console, Form, Posted};

/// Batches listed in the preview; the rest are summed up.
const PREVIEW_ROWS: usize = 30;
/// Things counted per thing group for the preview (the preview is an estimate beyond it).
const MAX_PREVIEW_THINGS: usize = 100_000;

/// The form's values as typed, kept to show them again beside an error.
#[derive(Debug, Default)]
struct Fields {
    job_id: String,
    description: String,
    things: String,
    thing_groups: String,
    document: String,
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
}

impl Fields {
    fn from_form(f: &Form) -> Self {
        let get = |n: &str| f.get(n).unwrap_or_default().to_string();
        Fields {
            job_id: get("job_id").trim().to_string(),
            description: get("description"),
            things: get("things"),
            thing_groups: get("thing_groups"),
            document: get("document"),
            target_selection: get("target_selection"),
            max_per_minute: get("max_per_minute").trim().to_string(),
            rollout_kind: get("rollout_kind"),
            base_rate: get("base_rate").trim().to_string(),
            increment_factor: get("increment_factor").trim().to_string(),
            increase_by: get("increase_by"),
            increase_threshold: get("increase_threshold").trim().to_string(),
            timeout_minutes: get("timeout_minutes").trim().to_string(),
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
    Rollout,
    Timeout,
    Form,
}

fn field_of(e: &ApiError) -> Field {
    let m = e.message.to_lowercase();
    if m.contains("jobid") || m.contains("job with id") || m.contains("job id") {
        Field::JobId
    } else if m.contains("rollout") || m.contains("maximumperminute") {
        Field::Rollout
    } else if m.contains("timeout") {
        Field::Timeout
    } else if m.contains("document") {
        Field::Document
    } else if m.contains("description") {
        Field::Description
    } else if m.contains("target") || m.starts_with("thing") || m.contains(" thing") {
        Field::Targets
    } else {
        Field::Form
    }
}

/// The configs of the form's rollout and timeout fields.
fn configs(f: &Fields) -> Result<JobConfigs, (Field, String)> {
    let mut configs = JobConfigs::default();
    let number = |text: &str, what: &str| -> Result<i64, (Field, String)> {
        text.parse().map_err(|_| (Field::Rollout, format!("{what} must be a whole number")))
    };
    let max = match f.max_per_minute.as_str() {
        "" => None,
        m => Some(i32::try_from(number(m, "Maximum per minute")?).unwrap_or(i32::MAX)),
    };
    let exponential = if f.rollout_kind == "exponential" {
        let base = number(&f.base_rate, "The base rate per minute")?;
        let factor = serde_json::from_str::<Double>(&f.increment_factor)
            .map_err(|_| (Field::Rollout, "The increment factor must be a number".to_string()))?;
        let threshold = number(&f.increase_threshold, "The rate increase threshold")?;
        let criteria = match f.increase_by.as_str() {
            "succeeded" => RateIncreaseCriteria::NumberOfSucceededThings(threshold),
            _ => RateIncreaseCriteria::NumberOfNotifiedThings(threshold),
        };
        Some(ExponentialRate {
            base_rate_per_minute: i32::try_from(base).unwrap_or(i32::MAX),
            increment_factor: factor,
            rate_increase_criteria: criteria,
        })
    } else {
        None
    };
    if max.is_some() || exponential.is_some() {
        configs.job_executions_rollout_config =
            Some(RolloutConfig { maximum_per_minute: max, exponential_rate: exponential });
    }
    if !f.timeout_minutes.is_empty() {
        let n: i64 = f
            .timeout_minutes
            .parse()
            .map_err(|_| (Field::Timeout, "The timeout must be a whole number of minutes".to_string()))?;
        configs.timeout_config = Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(n) });
    }
    Ok(configs)
}

fn request(engine: &Engine, f: &Fields) -> Result<CreateJobRequest, (Field, String)> {
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
    Ok(CreateJobRequest {
        job_id: f.job_id.clone(),
        targets,
        document: Some(f.document.clone()),
        description: Some(f.description.trim().to_string()).filter(|d| !d.is_empty()),
        target_selection: Some(target_selection),
        job_executions_rollout_config: configs.job_executions_rollout_config,
        timeout_config: configs.timeout_config,
        ..Default::default()
    })
}

fn form(session: &Session, f: &Fields, error: Option<(Field, String)>) -> Markup {
    let err = |field: Field| -> Markup {
        html! { @if let Some((at, message)) = &error { @if *at == field { p.field-error role="alert" { (message) } } } }
    };
    let continuous = f.target_selection == "CONTINUOUS";
    let exponential = f.rollout_kind == "exponential";
    html! {
        div.titlebar { h1 { "Create job" } }
        (err(Field::Form))
        div.grid.create {
            form #create-form.card method="post" action="/console/jobs/new" {
                input type="hidden" name="csrf" value=(session.csrf);
                h2 { "Job properties" }
                label { "Job ID"
                    input name="job_id" value=(f.job_id) required maxlength="64" pattern="[a-zA-Z0-9_-]+"
                        placeholder="example-job-01" autocomplete="off"; }
                span.hint { "Letters, digits, - and _; at most 64. Unique among jobs." }
                (err(Field::JobId))
                label { "Description" textarea name="description" rows="2" maxlength="2028" { (f.description) } }
                (err(Field::Description))
                h2 { "Targets" }
                label { "Things" textarea name="things" rows="2" placeholder="names, separated by commas or lines" { (f.things) } }
                label { "Thing groups" textarea name="thing_groups" rows="2" placeholder="names, separated by commas or lines" { (f.thing_groups) } }
                (err(Field::Targets))
                fieldset.choice {
                    legend { "Job run type" }
                    label.inline { input type="radio" name="target_selection" value="SNAPSHOT" checked[!continuous]; " Snapshot: the targets now, once" }
                    label.inline { input type="radio" name="target_selection" value="CONTINUOUS" checked[continuous]; " Continuous: also things added to the groups later" }
                }
                h2 { "Job document" }
                label { "Upload a file" input type="file" accept=".json,application/json" data-load-into="document"; }
                label { "JSON" textarea #document name="document" rows="10" required spellcheck="false" class="code"
                    placeholder=r#"{"operation": "install", "version": "1.0"}"# { (f.document) } }
                span.hint #document-check aria-live="polite" {}
                (err(Field::Document))
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

pub async fn page(Authed(session): Authed) -> Response {
    let f = Fields { target_selection: "SNAPSHOT".into(), ..Default::default() };
    layout::page("Create job", &session, Nav::Create, form(&session, &f, None)).into_response()
}

pub async fn submit(State(console): State<Console>, Posted { session, form: form_data }: Posted) -> Response {
    let f = Fields::from_form(&form_data);
    let outcome = match request(&console.engine, &f) {
        Ok(r) => {
            console.engine.create_job(r).await.map_err(|e| (field_of(&e), format!("{}: {}", e.code.name(), e.message)))
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(created) => Redirect::to(&format!("/console/jobs/{}", created.job_id)).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            layout::page("Create job", &session, Nav::Create, form(&session, &f, Some(error))),
        )
            .into_response(),
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

async fn preview_markup(engine: &Engine, f: &Fields, start: Millis) -> Result<Markup, String> {
    let configs = configs(f).map_err(|(_, m)| m)?;
    configs.check(start).map_err(|e| e.message)?;
    let things = count_things(engine, f).await.map_err(|e| format!("{}: {}", e.code.name(), e.message))?;
    if things == 0 {
        return Ok(html! { p.muted { "Name targets to see when their executions are created." } });
    }
    let p = timeline(&configs, things, start).map_err(|e| e.message)?;
    let created: i64 = p.batches.iter().map(|b| b.count).sum();
    let last = p.batches.last().map(|b| b.at);
    let mut cumulative = 0;
    Ok(html! {
        p.preview-summary data-things=(things) data-batches=(p.batches.len()) {
            strong { (things) } " thing" @if things != 1 { "s" } ": "
            @match last {
                Some(at) if at == start => { "every execution is created at once." }
                Some(at) => { (created) " executions over " strong { (minutes(at - start)) } ", the last at " (layout::time(at)) " UTC." }
                None => { "no execution would be created." }
            }
        }
        @match p.stop {
            Some(Stop::Ended { at, behavior }) => p.field-error { "The end time (" (layout::time(at)) ") stops the rollout with " (format!("{behavior:?}")) "; " (p.not_created) " things get no execution." },
            Some(Stop::NoWindowOpens { at }) => p.field-error { "No maintenance window opens after " (layout::time(at)) "; " (p.not_created) " things get no execution." },
            None => {},
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
        p.hint { "Assumes every device succeeds at once, as the engine's rollout rules are applied (the same rules as " code { "fleetjobs rollout-preview" } ")." }
    })
}

/// `0 min`, `12 min`, `2 h 5 min`.
fn minutes(ms: Millis) -> String {
    let m = ms / fleetjobs_rollout::MINUTE;
    if m < 60 {
        format!("{m} min")
    } else {
        format!("{} h {} min", m / 60, m % 60)
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

    #[test]
    fn engine_errors_land_beside_their_field() {
        let e = |m: &str| field_of(&ApiError::invalid(m));
        assert_eq!(e("jobId must match [a-zA-Z0-9_-]+"), Field::JobId);
        assert_eq!(e("Job with id j already exists"), Field::JobId);
        assert_eq!(e("The job document must be a JSON object"), Field::Document);
        assert_eq!(e("Thing t does not exist"), Field::Targets);
        assert_eq!(e("maximumPerMinute must be between 1 and 1000"), Field::Rollout);
        assert_eq!(e("something else"), Field::Form);
        assert_eq!(e("The store refuses writes"), Field::Form);
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
    fn durations_read_as_minutes_and_hours() {
        assert_eq!(minutes(0), "0 min");
        assert_eq!(minutes(125 * 60_000), "2 h 5 min");
    }
}
