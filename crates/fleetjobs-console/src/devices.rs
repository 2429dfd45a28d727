//! Devices: the things (type, groups, attributes) and the thing-group tree (each group under
//! its parent); a thing's page with its certificates, the policies attached to them, its job
//! executions and whether it is connected; and the AWS console's
//! one-click thing: a thing with a new certificate (and a policy, if named), its files to
//! download once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetjobs_core::ops::certificates::{CreateKeysAndCertificateRequest, CreateKeysAndCertificateResponse};
use fleetjobs_core::ops::executions::ListJobExecutionsForThingRequest;
use fleetjobs_core::ops::policies::{ListAttachedPoliciesRequest, PolicyTargetRequest};
use fleetjobs_core::ops::thing_groups::{
    ListThingGroupsForThingRequest, ListThingGroupsRequest, ListThingsInThingGroupRequest,
};
use fleetjobs_core::ops::things::{
    CreateThingRequest, DescribeThingRequest, ListThingPrincipalsRequest, ListThingsRequest, ThingPrincipalRequest,
};
use fleetjobs_core::{ApiError, ApiResult};
use fleetjobs_engine::Engine;
use maud::{html, Markup};

use crate::layout::{self, Nav};
use crate::{Authed, Console, Posted};

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

/// Indentation levels the stylesheet has (AWS allows 7 levels of groups).
const MAX_DEPTH_SHOWN: usize = 7;

/// The thing groups in tree order (each group, then its children by name, depth first), as
/// (name, parent, depth); at most [`MAX_SHOWN`] groups. The engine's ListThingGroups gives the
/// roots (`recursive: false`) and each group's children (`parentGroup`).
async fn group_tree(engine: &Engine) -> ApiResult<Vec<(String, Option<String>, usize)>> {
    let limit = MAX_SHOWN as usize;
    let children = |parent: Option<String>| ListThingGroupsRequest {
        parent_group: parent,
        recursive: Some(false),
        max_results: Some(MAX_SHOWN),
        ..Default::default()
    };
    let roots = engine.list_thing_groups(children(None)).await?.thing_groups;
    // A stack of what is still to visit, the next one on top.
    let mut stack: Vec<(String, Option<String>, usize)> =
        roots.into_iter().rev().map(|g| (g.group_name, None, 0)).collect();
    let mut out = Vec::new();
    while let Some((name, parent, depth)) = stack.pop() {
        if out.len() >= limit {
            break;
        }
        // A group deleted since its parent was listed has no children to show.
        let kids = engine.list_thing_groups(children(Some(name.clone()))).await.map(|r| r.thing_groups);
        for g in kids.unwrap_or_default().into_iter().rev() {
            stack.push((g.group_name, Some(name.clone()), depth + 1));
        }
        out.push((name, parent, depth));
    }
    Ok(out)
}

async fn list(engine: &Engine) -> ApiResult<Markup> {
    let things = engine.list_things(ListThingsRequest { max_results: Some(MAX_SHOWN), ..Default::default() }).await?;
    let mut rows = Vec::with_capacity(things.things.len());
    for t in &things.things {
        rows.push((t, groups_of(engine, &t.thing_name).await.unwrap_or_default()));
    }
    let tree = group_tree(engine).await?;
    let mut group_rows = Vec::with_capacity(tree.len());
    for (name, parent, depth) in tree {
        let members = engine
            .list_things_in_thing_group(ListThingsInThingGroupRequest {
                thing_group_name: name.clone(),
                recursive: false,
                next_token: None,
                max_results: Some(MAX_SHOWN),
            })
            .await
            .map(|m| m.things)
            .unwrap_or_default();
        group_rows.push((name, parent, depth, members));
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
                        tbody.tree {
                            @if group_rows.is_empty() { tr { td.empty colspan="2" { "No thing groups." } } }
                            @for (name, parent, depth, members) in &group_rows {
                                tr data-group=(name) data-parent=[parent.as_deref()] data-depth=(depth) {
                                    td.id class={ "depth-" (depth.min(&MAX_DEPTH_SHOWN)) } {
                                        @if *depth > 0 { span.branch aria-hidden="true" { "└ " } }
                                        (name)
                                    }
                                    td { (members.len()) span.sub { " " (members.join(", ")) } }
                                }
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
    let body = html! { div.titlebar { h1 { "Devices" } } (create_form(&session, "", "", None)) (body) };
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
    // The policies of each certificate: what the device may do when it connects with it.
    let mut policies = Vec::with_capacity(principals.len());
    for p in &principals {
        let attached = engine
            .list_attached_policies(ListAttachedPoliciesRequest {
                target: p.clone(),
                recursive: None,
                marker: None,
                page_size: Some(MAX_SHOWN),
            })
            .await
            .map(|r| r.policies)
            .unwrap_or_default();
        policies.push((p.clone(), attached));
    }
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
                    dt { "Policies" }
                    dd {
                        ul.policies {
                            @for (principal, attached) in &policies {
                                @for policy in attached {
                                    li data-policy=(policy.policy_name) title={ "attached to " (principal) } {
                                        (policy.policy_name)
                                        span.sub { " on certificate " (principal.rsplit('/').next().unwrap_or(principal).get(..10).unwrap_or("")) "…" }
                                    }
                                }
                            }
                            @if policies.iter().all(|(_, a)| a.is_empty()) { li.muted { "None: its certificates may do nothing." } }
                        }
                    }
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
                                    td { a href=(crate::job::execution_href(&e.job_id, name, s.execution_number)) { (s.execution_number) } }
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

/// The one-click form: a thing name and, optionally, an existing policy to attach.
fn create_form(session: &crate::auth::Session, thing: &str, policy: &str, error: Option<&str>) -> Markup {
    html! {
        section.card {
            h2 { "Create a thing with a certificate" }
            form.inline method="post" action="/console/things/new" {
                input type="hidden" name="csrf" value=(session.csrf);
                label { "Thing name " input name="thingName" required value=(thing); }
                label { "Policy to attach (optional) " input name="policyName" value=(policy); }
                button type="submit" { "Create thing" }
            }
            @if let Some(e) = error { p.field-error { (e) } }
        }
    }
}

/// create-thing, create-keys-and-certificate (ACTIVE), attach-policy (if named),
/// attach-thing-principal, as the AWS console does in a row; the first failure is shown beside
/// the form, with what was created before it.
pub async fn create(State(console): State<Console>, Posted { session, form }: Posted) -> Response {
    let thing = form.text("thingName").unwrap_or_default();
    let policy = form.text("policyName");
    let engine = &console.engine;
    let mut done: Vec<String> = Vec::new();
    let outcome: ApiResult<CreateKeysAndCertificateResponse> = async {
        // CreateThing is idempotent, as on AWS; a one-click thing is a new one.
        if let Ok(existing) = engine.describe_thing(DescribeThingRequest { thing_name: thing.clone() }).await {
            let message = format!("A thing named {thing} already exists");
            return Err(ApiError::already_exists(message, &existing.thing_id, &existing.thing_arn));
        }
        engine
            .create_thing(CreateThingRequest {
                thing_name: thing.clone(),
                thing_type_name: None,
                attribute_payload: None,
                billing_group_name: None,
            })
            .await?;
        done.push(format!("thing {thing}"));
        let cert = engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await?;
        done.push(format!("certificate {}", cert.certificate_id));
        if let Some(policy_name) = &policy {
            let target = cert.certificate_arn.clone();
            engine.attach_policy(PolicyTargetRequest { policy_name: policy_name.clone(), target }).await?;
            done.push(format!("policy {policy_name} attached"));
        }
        engine
            .attach_thing_principal(ThingPrincipalRequest {
                thing_name: thing.clone(),
                principal: cert.certificate_arn.clone(),
                thing_principal_type: None,
            })
            .await?;
        Ok(cert)
    }
    .await;
    match outcome {
        Ok(cert) => {
            let body = created(&thing, &cert, engine.root_ca_pem());
            layout::page(&format!("Thing {thing} created"), &session, Nav::Devices, body).into_response()
        }
        Err(e) => {
            let mut message = format!("{}: {}", e.code.name(), e.message);
            if !done.is_empty() {
                message.push_str(&format!(" (already done: {})", done.join(", ")));
            }
            let body = html! {
                div.titlebar { h1 { "Devices" } }
                (create_form(&session, &thing, policy.as_deref().unwrap_or(""), Some(&message)))
            };
            (StatusCode::BAD_REQUEST, layout::page("Devices", &session, Nav::Devices, body)).into_response()
        }
    }
}

/// The new device's files, each a download link (the private key is not kept by the server:
/// this page is the only chance to take it, as in the AWS console).
fn created(thing: &str, cert: &CreateKeysAndCertificateResponse, root_ca: &str) -> Markup {
    let id = &cert.certificate_id;
    let short = &id[..id.len().min(10)];
    let files = [
        ("certificate", format!("{short}-certificate.pem.crt"), cert.certificate_pem.as_str()),
        ("private-key", format!("{short}-private.pem.key"), cert.key_pair.private_key.as_str()),
        ("public-key", format!("{short}-public.pem.key"), cert.key_pair.public_key.as_str()),
        ("root-ca", "root-CA.crt".to_string(), root_ca),
    ];
    html! {
        div.titlebar { h1 { "Thing " span.id { (thing) } " created" } }
        section.card {
            h2 { "Download the device's files" }
            p { "The private key is shown on this page only: the server does not keep it." }
            dl.kv {
                dt { "Certificate ID" } dd.mono { (id) }
                dt { "Certificate ARN" } dd.mono { (cert.certificate_arn) }
            }
            ul.downloads {
                @for (kind, name, pem) in &files {
                    li { a data-file=(kind) download=(name) href=(data_url(pem)) { (name) } }
                }
            }
            p { a href={ "/console/things/" (thing) } { "Go to the thing" } }
        }
    }
}

fn data_url(text: &str) -> String {
    use base64::Engine as _;
    format!("data:application/x-pem-file;base64,{}", base64::engine::general_purpose::STANDARD.encode(text))
}
