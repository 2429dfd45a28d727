//! Unit tests of dynamic thing groups, built from request types: members at creation,
//! joining and leaving as things change, the rules static groups keep, persistence, and
//! CONTINUOUS jobs following the query.

use std::collections::BTreeMap;

use fleetjobs_core::model::{JobExecutionStatus, TargetSelection};
use fleetjobs_core::ops::dynamic_groups::*;
use fleetjobs_core::ops::jobs::CreateJobRequest;
use fleetjobs_core::ops::thing_groups::*;
use fleetjobs_core::ops::things::{AttributePayload, CreateThingRequest, DeleteThingRequest, UpdateThingRequest};
use fleetjobs_core::ErrorCode;

use crate::tests::{execution, harness, job_request, Harness};

fn dynamic(name: &str, query: &str) -> CreateDynamicThingGroupRequest {
    CreateDynamicThingGroupRequest { thing_group_name: name.into(), query_string: query.into(), ..Default::default() }
}

fn attrs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn thing_with(h: &Harness, name: &str, kv: &[(&str, &str)]) {
    let r = CreateThingRequest {
        thing_name: name.into(),
        attribute_payload: Some(AttributePayload { attributes: attrs(kv), merge: false }),
        ..Default::default()
    };
    h.engine.create_thing(r).await.unwrap();
}

async fn set_attr(h: &Harness, name: &str, k: &str, v: &str) {
    let r = UpdateThingRequest {
        thing_name: name.into(),
        attribute_payload: Some(AttributePayload { attributes: attrs(&[(k, v)]), merge: true }),
        ..Default::default()
    };
    h.engine.update_thing(r).await.unwrap();
}

async fn members(h: &Harness, group: &str) -> Vec<String> {
    let r = ListThingsInThingGroupRequest { thing_group_name: group.into(), ..Default::default() };
    h.engine.list_things_in_thing_group(r).await.unwrap().things
}

async fn status(h: &Harness, job: &str, thing: &str) -> Option<(JobExecutionStatus, i64)> {
    h.engine
        .describe_job_execution(execution(job, thing))
        .await
        .ok()
        .map(|e| (e.execution.status, e.execution.execution_number))
}

#[tokio::test]
async fn members_are_the_things_the_query_matches() {
    let h = harness();
    thing_with(&h, "a", &[("fw", "1.0")]).await;
    thing_with(&h, "b", &[("fw", "2.1")]).await;
    thing_with(&h, "c", &[]).await;
    let out = h.engine.create_dynamic_thing_group(dynamic("old-fw", "attributes.fw:1*")).await.unwrap();
    assert_eq!((out.index_name.as_str(), out.query_version.as_str()), (INDEX_NAME, QUERY_VERSION));
    assert_eq!(out.query_string, "attributes.fw:1*");
    assert_eq!(members(&h, "old-fw").await, ["a"]);

    // A thing joins when it starts matching and leaves when it stops, or goes.
    set_attr(&h, "c", "fw", "1.5").await;
    assert_eq!(members(&h, "old-fw").await, ["a", "c"]);
    set_attr(&h, "a", "fw", "2.0").await;
    assert_eq!(members(&h, "old-fw").await, ["c"]);
    thing_with(&h, "d", &[("fw", "1.9")]).await;
    assert_eq!(members(&h, "old-fw").await, ["c", "d"]);
    h.engine.delete_thing(DeleteThingRequest { thing_name: "d".into(), expected_version: None }).await.unwrap();
    assert_eq!(members(&h, "old-fw").await, ["c"]);

    let groups = h
        .engine
        .list_thing_groups_for_thing(ListThingGroupsForThingRequest { thing_name: "c".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(groups.thing_groups.len(), 1);

    let d =
        h.engine.describe_thing_group(DescribeThingGroupRequest { thing_group_name: "old-fw".into() }).await.unwrap();
    assert_eq!(d.query_string.as_deref(), Some("attributes.fw:1*"));
    assert_eq!(d.status.as_deref(), Some("ACTIVE"));
    assert_eq!(d.index_name.as_deref(), Some(INDEX_NAME));

    // A new query re-evaluates every thing.
    let u = UpdateDynamicThingGroupRequest {
        thing_group_name: "old-fw".into(),
        query_string: Some("attributes.fw>=2".into()),
        ..Default::default()
    };
    assert_eq!(h.engine.update_dynamic_thing_group(u).await.unwrap().version, 2);
    assert_eq!(members(&h, "old-fw").await, ["a", "b"]);

    // Memberships are derived: a restart rebuilds them from the stored query.
    let h = h.reopen();
    assert_eq!(members(&h, "old-fw").await, ["a", "b"]);
}

#[tokio::test]
async fn queries_on_group_names_follow_static_memberships() {
    let h = harness();
    h.thing("t").await;
    h.engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: "eu".into(), ..Default::default() })
        .await
        .unwrap();
    h.engine.create_dynamic_thing_group(dynamic("in-eu", "thingGroupNames:eu")).await.unwrap();
    assert!(members(&h, "in-eu").await.is_empty());
    let m = ThingGroupMemberRequest {
        thing_group_name: Some("eu".into()),
        thing_name: Some("t".into()),
        ..Default::default()
    };
    h.engine.add_thing_to_thing_group(m.clone()).await.unwrap();
    assert_eq!(members(&h, "in-eu").await, ["t"]);
    h.engine.remove_thing_from_thing_group(m).await.unwrap();
    assert!(members(&h, "in-eu").await.is_empty());
}

#[tokio::test]
async fn dynamic_groups_refuse_what_static_groups_allow() {
    let h = harness();
    h.thing("t").await;
    let err = h.engine.create_dynamic_thing_group(dynamic("bad", "thingName:(")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidQuery);
    h.engine.create_dynamic_thing_group(dynamic("dyn", "thingName:t")).await.unwrap();
    // Again, the same: the same answer; different: already exists.
    h.engine.create_dynamic_thing_group(dynamic("dyn", "thingName:t")).await.unwrap();
    let err = h.engine.create_dynamic_thing_group(dynamic("dyn", "thingName:u")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceAlreadyExists);
    let err = h
        .engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: "dyn".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceAlreadyExists);

    let err = h
        .engine
        .create_thing_group(CreateThingGroupRequest {
            thing_group_name: "child".into(),
            parent_group_name: Some("dyn".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    let m = ThingGroupMemberRequest {
        thing_group_name: Some("dyn".into()),
        thing_name: Some("t".into()),
        ..Default::default()
    };
    assert_eq!(h.engine.add_thing_to_thing_group(m).await.unwrap_err().code, ErrorCode::InvalidRequest);

    h.engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: "static".into(), ..Default::default() })
        .await
        .unwrap();
    let u = UpdateDynamicThingGroupRequest { thing_group_name: "static".into(), ..Default::default() };
    assert_eq!(h.engine.update_dynamic_thing_group(u).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let d = DeleteDynamicThingGroupRequest { thing_group_name: "static".into(), expected_version: None };
    assert_eq!(h.engine.delete_dynamic_thing_group(d).await.unwrap_err().code, ErrorCode::InvalidRequest);

    let d = DeleteDynamicThingGroupRequest { thing_group_name: "dyn".into(), expected_version: Some(9) };
    assert_eq!(h.engine.delete_dynamic_thing_group(d).await.unwrap_err().code, ErrorCode::VersionConflict);
    let d = DeleteDynamicThingGroupRequest { thing_group_name: "dyn".into(), expected_version: None };
    h.engine.delete_dynamic_thing_group(d.clone()).await.unwrap();
    h.engine.delete_dynamic_thing_group(d).await.unwrap();
    let err = h.engine.describe_thing_group(DescribeThingGroupRequest { thing_group_name: "dyn".into() }).await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn a_continuous_job_follows_the_query() {
    let h = harness();
    thing_with(&h, "a", &[("ring", "canary")]).await;
    thing_with(&h, "b", &[("ring", "prod")]).await;
    h.engine.create_dynamic_thing_group(dynamic("canary", "attributes.ring:canary")).await.unwrap();
    let r = CreateJobRequest {
        targets: vec!["arn:aws:iot:::thinggroup/canary".into()],
        target_selection: Some(TargetSelection::Continuous),
        ..job_request("cont", &[])
    };
    h.engine.create_job(r).await.unwrap();
    assert_eq!(status(&h, "cont", "a").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "cont", "b").await, None);

    // Starts matching: queued; stops matching: its queued execution is removed.
    set_attr(&h, "b", "ring", "canary").await;
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Queued, 1)));
    set_attr(&h, "b", "ring", "prod").await;
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Removed, 1)));
    // A new thing that matches joins at once.
    thing_with(&h, "c", &[("ring", "canary")]).await;
    assert_eq!(status(&h, "cont", "c").await, Some((JobExecutionStatus::Queued, 1)));
    // A changed query moves things in and out.
    let u = UpdateDynamicThingGroupRequest {
        thing_group_name: "canary".into(),
        query_string: Some("attributes.ring:prod".into()),
        ..Default::default()
    };
    h.engine.update_dynamic_thing_group(u).await.unwrap();
    assert_eq!(status(&h, "cont", "a").await, Some((JobExecutionStatus::Removed, 1)));
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Queued, 2)));
    // Deleting the group releases its members.
    let d = DeleteDynamicThingGroupRequest { thing_group_name: "canary".into(), expected_version: None };
    h.engine.delete_dynamic_thing_group(d).await.unwrap();
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Removed, 2)));

    // A SNAPSHOT job on a dynamic group takes its members as they are.
    h.engine.create_dynamic_thing_group(dynamic("prod", "attributes.ring:prod")).await.unwrap();
    let r = CreateJobRequest { targets: vec!["arn:aws:iot:::thinggroup/prod".into()], ..job_request("snap", &[]) };
    h.engine.create_job(r).await.unwrap();
    assert_eq!(status(&h, "snap", "b").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "snap", "a").await, None);
}
