//! Devices: the things (type, groups, attributes) and thing groups; a thing's page with its
//! certificates and its job executions. Read-only, through the registry's operations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetjobs_core::ops::executions::ListJobExecutionsForThingRequest;
use fleetjobs_core::ops::thing_groups::{
    ListThingGroupsForThingRequest, ListThingGroupsRequest, ListThingsInThingGroupRequest,
};
use fleetjobs_core::ops::things::{DescribeThingRequest, ListThingPrincipalsRequest, ListThingsRequest};
use fleetjobs_core::ApiResult;
use fleetjobs_engine::Engine;
use maud::{html, Markup};

use crate::layout::{self, Nav};
use crate::{Authed, Console};

/// At most this many things and groups listed.
const MAX_SHOWN: i64 = 250;

fn error(e: &fleetjobs_core::ApiError) -> Markup {
    html! { p.error { (e.code.name()) ": " (e.message) } }
}

async fn groups_of(engine: &Engine, thing: &str) -> ApiResult<Vec<String>> {
    let request =
        ListThingGroupsForThingRequest { thing_name: thing.to_string(), max_results: Some(10), next_token: None };
    Ok(engine.list_thing_groups_for_thing(request).await?.thing_groups.into_iter().map(|g| g.group_name).collect())
}

async fn list(engine: &Engine) -> ApiResult<Markup> {
    let things = engine.list_things(ListThingsRequest { max_results: Some(MAX_SHOWN), ..Default::default() }).await?;
    let mut rows = Vec::with_capacity(things.things.len());
    for t in &things.things {
        rows.push((t, groups_of(engine, &t.thing_name).await.unwrap_or_default()));
    }
    let groups =
        engine.list_thing_groups(ListThingGroupsRequest { max_results: Some(MAX_SHOWN), ..Default::default() }).await?;
    let mut group_rows = Vec::with_capacity(groups.thing_groups.len());
    for g in &groups.thing_groups {
        let members = engine
            .list_things_in_thing_group(ListThingsInThingGroupRequest {
                thing_group_name: g.group_name.clone(),
                recursive: false,
                next_token: None,
                max_results: Some(MAX_SHOWN),
            })
            .await
            .map(|m| m.things)
            .unwrap_or_default();
        group_rows.push((g.group_name.clone(), members));
    }
    Ok(html! {
        div.grid.create {
            section.card {
                h2 { "Things" }
                div.tablewrap {
                    table.things {
                        thead { tr { th { "Thing" } th { "Type" } th { "Groups" } th { "Attributes" } } }
                        tbody {
                            @if rows.is_empty() { tr { td.empty colspan="4" { "No things." } } }
                            @for (t, groups) in &rows {
                                tr data-thing=(t.thing_name) {
                                    td.id { a href={ "/console/things/" (t.thing_name) } { (t.thing_name) } }
                                    td.muted { (t.thing_type_name.as_deref().unwrap_or("—")) }
                                    td { (groups.join(", ")) }
                                    td { @for (k, v) in &t.attributes { code { (k) "=" (v) } " " } }
                                }
                            }
                        }
                    }
                }
                @if things.next_token.is_some() { p.muted { "Showing the first " (MAX_SHOWN) " things." } }
            }
            section.card {
                h2 { "Thing groups" }
                div.tablewrap {
                    table.groups {
                        thead { tr { th { "Group" } th { "Things" } } }
                        tbody {
                            @if group_rows.is_empty() { tr { td.empty colspan="2" { "No thing groups." } } }
                            @for (name, members) in &group_rows {
                                tr data-group=(name) { td.id { (name) } td { (members.len()) span.sub { " " (members.join(", ")) } } }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn page(State(console): State<Console>, Authed(session): Authed) -> Response {
    let body = match list(&console.engine).await {
        Ok(m) => m,
        Err(e) => error(&e),
    };
    let body = html! { div.titlebar { h1 { "Devices" } } (body) };
    layout::page("Devices", &session, Nav::Devices, body).into_response()
}

/// `connected`: whether a client with the thing's name as client id is connected now (`None`
/// without a broker).
async fn thing_markup(engine: &Engine, name: &str, connected: Option<bool>) -> ApiResult<Markup> {
    let thing = engine.describe_thing(DescribeThingRequest { thing_name: name.to_string() }).await?;
    let groups = groups_of(engine, name).await?;
    let principals = engine
        .list_thing_principals(ListThingPrincipalsRequest {
            thing_name: name.to_string(),
            next_token: None,
            max_results: Some(50),
        })
        .await?
        .principals;
    let executions = engine
        .list_job_executions_for_thing(ListJobExecutionsForThingRequest {
            thing_name: name.to_string(),
            max_results: Some(100),
            ..Default::default()
        })
        .await?;
    Ok(html! {
        div.titlebar { h1 { "Thing " span.id { (thing.thing_name) } } }
        div.grid {
            section.card {
                h2 { "Details" }
                dl.kv {
                    dt { "Thing ARN" } dd.mono { (thing.thing_arn) }
                    dt { "Connected" }
                    dd data-connected=(match connected { Some(true) => "yes", Some(false) => "no", None => "unknown" }) {
                        @match connected {
                            Some(true) => { span.badge.st-SUCCEEDED { "connected" } " (client id " code { (name) } ")" }
                            Some(false) => { span.muted { "not connected" } }
                            None => { "—" }
                        }
                    }
                    dt { "Type" } dd { (thing.thing_type_name.as_deref().unwrap_or("—")) }
                    dt { "Groups" } dd { @if groups.is_empty() { "—" } @else { (groups.join(", ")) } }
                    dt { "Attributes" } dd { @for (k, v) in &thing.attributes { code { (k) "=" (v) } " " } }
                    dt { "Certificates" } dd { ul.targets { @for p in &principals { li.mono { (p) } } } }
                }
            }
            section.card {
                h2 { "Job executions" }
                div.tablewrap {
                    table.executions {
                        thead { tr { th { "Job" } th { "#" } th { "Status" } th { "Queued" } th { "Updated" } } }
                        tbody {
                            @if executions.execution_summaries.is_empty() { tr { td.empty colspan="5" { "No job executions." } } }
                            @for e in &executions.execution_summaries {
                                @let s = &e.job_execution_summary;
                                tr data-job=(e.job_id) {
                                    td.id { a href={ "/console/jobs/" (e.job_id) } { (e.job_id) } }
                                    td { (s.execution_number) }
                                    td { (layout::execution_status(s.status)) }
                                    td.time { (layout::time_cell(s.queued_at.0)) }
                                    td.time { (layout::time_cell(s.last_updated_at.0)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn thing(State(console): State<Console>, Authed(session): Authed, Path(name): Path<String>) -> Response {
    let connected = console.mqtt.as_ref().map(|mqtt| mqtt.is_connected(&name));
    match thing_markup(&console.engine, &name, connected).await {
        Ok(m) => layout::page(&format!("Thing {name}"), &session, Nav::Devices, m).into_response(),
        Err(e) => {
            let status = if e.code == fleetjobs_core::ErrorCode::ResourceNotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, layout::page("Thing", &session, Nav::Devices, error(&e))).into_response()
        }
    }
}
