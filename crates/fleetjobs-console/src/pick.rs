//! What the create-job form asks the server for while it is filled in (htmx GETs, read-only):
//! things (through the fleet index when it is on, else ListThings pages) and thing groups by
//! name prefix to pick targets from, the job templates to choose
//! and a managed template's parameter fields, and whether a job ID is valid and free. Every
//! answer comes from the engine's own list and describe operations, bounded.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use fleetjobs_core::ops::indexing::{SearchIndexRequest, MAX_SEARCH_RESULTS};
use fleetjobs_core::ops::job_templates::{
    DescribeManagedJobTemplateRequest, DocumentParameter, ListJobTemplatesRequest, ListManagedJobTemplatesRequest,
};
use fleetjobs_core::ops::jobs::DescribeJobRequest;
use fleetjobs_core::ops::thing_groups::ListThingGroupsRequest;
use fleetjobs_core::ops::things::ListThingsRequest;
use fleetjobs_core::{validate, ErrorCode};
use fleetjobs_engine::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use crate::create::{aws_message, PARAM_PREFIX};
use crate::{Authed, Console};

/// Matches shown per kind (things, thing groups).
const MAX_MATCHES: usize = 10;
/// Things read (in pages of [`PAGE`]) looking for a prefix: ListThings has no name filter, so
/// the search reads at most this many; the answer says when it stopped there.
const MAX_SCANNED_THINGS: usize = 5_000;
const PAGE: i64 = 250;
/// Account job templates offered (the first, in id order).
const MAX_TEMPLATES: i64 = 250;

/// A template the form offers.
#[derive(Debug, Clone)]
pub(crate) struct TemplateChoice {
    pub arn: String,
    pub name: String,
    pub description: String,
    /// An AWS managed template: its document parameters (custom templates have none).
    pub parameters: Option<Vec<DocumentParameter>>,
}

/// The account's templates, then the AWS managed ones with their parameters. A failure to list
/// (the store refusing reads does not happen; the engine answers from memory) leaves a list
/// out rather than the page.
pub(crate) async fn templates(engine: &Engine) -> Vec<TemplateChoice> {
    let mut out = vec![];
    let own = engine.list_job_templates(ListJobTemplatesRequest { max_results: Some(MAX_TEMPLATES), next_token: None });
    if let Ok(own) = own.await {
        out.extend(own.job_templates.into_iter().map(|t| TemplateChoice {
            arn: t.job_template_arn,
            name: t.job_template_id,
            description: t.description,
            parameters: None,
        }));
    }
    let managed = engine.list_managed_job_templates(ListManagedJobTemplatesRequest::default()).await;
    for t in managed.map(|m| m.managed_job_templates).unwrap_or_default() {
        let described = engine
            .describe_managed_job_template(DescribeManagedJobTemplateRequest {
                template_name: t.template_name.clone(),
                template_version: Some(t.template_version.clone()),
            })
            .await;
        if let Ok(d) = described {
            out.push(TemplateChoice {
                arn: d.template_arn,
                name: d.template_name,
                description: d.description,
                parameters: Some(d.document_parameters),
            });
        }
    }
    out
}

pub(crate) fn template_options(templates: &[TemplateChoice], selected: &str) -> Markup {
    let (managed, own): (Vec<_>, Vec<_>) = templates.iter().partition(|t| t.parameters.is_some());
    html! {
        @if !own.is_empty() {
            optgroup label="Custom templates" {
                @for t in &own { option value=(t.arn) selected[t.arn == selected] { (t.name) } }
            }
        }
        optgroup label="AWS managed templates" {
            @for t in &managed { option value=(t.arn) selected[t.arn == selected] { (t.name) } }
        }
    }
}

/// The chosen template's description and, for a managed one, a field per document parameter
/// (`param_KEY`), filled with `values`.
pub(crate) fn parameter_fields(
    templates: &[TemplateChoice],
    selected: &str,
    values: &BTreeMap<String, String>,
) -> Markup {
    let Some(t) = templates.iter().find(|t| t.arn == selected) else { return html! {} };
    html! {
        p.hint data-template=(t.name) { (t.description) " The template brings the document: leave the URL and JSON empty." }
        @for p in t.parameters.iter().flatten() {
            label { (p.key) @if p.optional { span.sub { " (optional)" } }
                input name=(format!("{PARAM_PREFIX}{}", p.key)) value=[values.get(p.key)] placeholder=(p.example)
                    required[!p.optional] autocomplete="off"; }
            span.hint { (p.description) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TemplateQuery {
    #[serde(default)]
    job_template: String,
}

/// The parameter fields of the template chosen in the form.
pub(crate) async fn template_fields(
    State(console): State<Console>,
    _: Authed,
    Query(q): Query<TemplateQuery>,
) -> Response {
    let templates = templates(&console.engine).await;
    parameter_fields(&templates, &q.job_template, &BTreeMap::new()).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    target_search: String,
}

/// Where a thing search looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Searched {
    /// The fleet index (`AWS_Things`, on when fleet indexing is): every thing.
    Index,
    /// ListThings pages: every thing, unless `stopped` at [`MAX_SCANNED_THINGS`].
    List { stopped: bool },
}

/// Things whose name starts with `prefix`, up to [`MAX_MATCHES`]: from the fleet index when
/// it is on (SearchIndex `thingName:PREFIX*`, the whole fleet), else from ListThings pages.
async fn things_with_prefix(engine: &Engine, prefix: &str) -> (Vec<String>, Searched) {
    // Every character but letters and digits escaped: the query reads the prefix literally.
    let literal: String =
        prefix.chars().flat_map(|c| if c.is_ascii_alphanumeric() { vec![c] } else { vec!['\\', c] }).collect();
    let request = SearchIndexRequest {
        query_string: format!("thingName:{literal}*"),
        max_results: Some(MAX_SEARCH_RESULTS),
        ..Default::default()
    };
    if let Ok(r) = engine.search_index(request).await {
        // The index matches names case-insensitively; thing names are not.
        let found = r.things.into_iter().map(|t| t.thing_name).filter(|n| n.starts_with(prefix));
        return (found.take(MAX_MATCHES).collect(), Searched::Index);
    }
    let (found, stopped) = listed_things_with_prefix(engine, prefix).await;
    (found, Searched::List { stopped })
}

/// Things whose name starts with `prefix` among ListThings pages (it has no name filter): up
/// to [`MAX_MATCHES`], and whether the search stopped at [`MAX_SCANNED_THINGS`] first.
async fn listed_things_with_prefix(engine: &Engine, prefix: &str) -> (Vec<String>, bool) {
    let mut found = vec![];
    let mut next_token = None;
    let mut scanned = 0;
    loop {
        let request =
            ListThingsRequest { max_results: Some(PAGE), next_token: next_token.take(), ..Default::default() };
        let Ok(page) = engine.list_things(request).await else { return (found, false) };
        scanned += page.things.len();
        found.extend(page.things.into_iter().map(|t| t.thing_name).filter(|n| n.starts_with(prefix)));
        if found.len() >= MAX_MATCHES {
            found.truncate(MAX_MATCHES);
            return (found, false);
        }
        match page.next_token {
            Some(t) if scanned < MAX_SCANNED_THINGS => next_token = Some(t),
            Some(_) => return (found, true),
            None => return (found, false),
        }
    }
}

/// Thing groups whose name starts with `prefix` (ListThingGroups' `namePrefixFilter`).
async fn groups_with_prefix(engine: &Engine, prefix: &str) -> Vec<String> {
    let request = ListThingGroupsRequest {
        name_prefix_filter: Some(prefix.to_string()),
        max_results: Some(MAX_MATCHES as i64),
        ..Default::default()
    };
    // A prefix no group name could start with (a character names cannot hold) matches none.
    engine
        .list_thing_groups(request)
        .await
        .map(|r| r.thing_groups)
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.group_name)
        .collect()
}

/// The things and thing groups a prefix names, each a button that adds it to the targets.
pub(crate) async fn targets(State(console): State<Console>, _: Authed, Query(q): Query<SearchQuery>) -> Response {
    let prefix = q.target_search.trim();
    if prefix.is_empty() {
        return html! {}.into_response();
    }
    let (things, searched) = things_with_prefix(&console.engine, prefix).await;
    let (source, stopped) = match searched {
        Searched::Index => ("index", false),
        Searched::List { stopped } => ("list", stopped),
    };
    let groups = groups_with_prefix(&console.engine, prefix).await;
    let markup = html! {
        @if things.is_empty() && groups.is_empty() {
            p.muted data-matches="0" data-searched=(source) { "No thing or thing group starts with " code { (prefix) } "." }
        } @else {
            ul.picks data-matches=(things.len() + groups.len()) data-searched=(source) {
                @for t in &things {
                    li { button type="button" data-add-target="things" data-name=(t) { (t) } span.sub { " thing" } }
                }
                @for g in &groups {
                    li { button type="button" data-add-target="thing_groups" data-name=(g) { (g) } span.sub { " thing group" } }
                }
            }
        }
        @if stopped {
            p.hint { "Only the first " (MAX_SCANNED_THINGS) " things were searched (turn fleet indexing on to search them all), or type the name itself." }
        }
    };
    markup.into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobIdQuery {
    #[serde(default)]
    job_id: String,
}

/// Whether a job ID is one AWS accepts (core's `validate::job_id`) and no job has it yet.
pub(crate) async fn check_id(State(console): State<Console>, _: Authed, Query(q): Query<JobIdQuery>) -> Response {
    let id = q.job_id.trim();
    if id.is_empty() {
        return html! {}.into_response();
    }
    if let Err(e) = validate::job_id(id, "jobId") {
        return html! { p.field-error data-job-id="invalid" { (aws_message(&e)) } }.into_response();
    }
    let existing =
        console.engine.describe_job(DescribeJobRequest { job_id: id.to_string(), before_substitution: false });
    let markup = match existing.await {
        Ok(_) => {
            html! { p.field-error data-job-id="taken" { "ResourceAlreadyExistsException: Job with id " (id) " already exists" } }
        }
        Err(e) if e.code == ErrorCode::ResourceNotFound => html! { span.hint.ok data-job-id="free" { "Available." } },
        Err(e) => html! { p.field-error { (aws_message(&e)) } },
    };
    markup.into_response()
}
