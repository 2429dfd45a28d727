//! Unit tests of the typed thing group operations, built from request types: hierarchy rules
//! (depth, cycle, missing parent, children before parents), recursive listing, persistence,
//! and jobs on groups (SNAPSHOT resolution with dedupe, CONTINUOUS join and leave).

use fleetjobs_core::model::{JobExecutionStatus, TargetSelection};
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ops::thing_groups::*;
use fleetjobs_core::ops::things::DeleteThingRequest;
use fleetjobs_core::ErrorCode;

use crate::rollout::CREATE_CHUNK_MIN;
use crate::tests::{describe, execution, harness, job_request, Harness};

fn group(name: &str, parent: Option<&str>) -> CreateThingGroupRequest {
    CreateThingGroupRequest {
        thing_group_name: name.into(),
        parent_group_name: parent.map(Into::into),
        ..Default::default()
    }
}

fn member(group: &str, thing: &str) -> ThingGroupMemberRequest {
    ThingGroupMemberRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..Default::default()
    }
}

fn group_arn(name: &str) -> String {
    format!("arn:aws:iot:::thinggroup/{name}")
}

fn things_in(group: &str, recursive: bool) -> ListThingsInThingGroupRequest {
    ListThingsInThingGroupRequest { thing_group_name: group.into(), recursive, ..Default::default() }
}

/// Groups `root` > `mid` > `leaf`, things a (root), b (mid), c (leaf and root), d (none).
async fn fleet() -> Harness {
    let h = harness();
    h.engine.create_thing_group(group("root", None)).await.unwrap();
    h.engine.create_thing_group(group("mid", Some("root"))).await.unwrap();
    h.engine.create_thing_group(group("leaf", Some("mid"))).await.unwrap();
    for t in ["a", "b", "c", "d"] {
        h.thing(t).await;
    }
    for (g, t) in [("root", "a"), ("mid", "b"), ("leaf", "c"), ("root", "c")] {
        h.engine.add_thing_to_thing_group(member(g, t)).await.unwrap();
    }
    h
}

async fn status(h: &Harness, job: &str, thing: &str) -> Option<(JobExecutionStatus, i64)> {
    h.engine
        .describe_job_execution(execution(job, thing))
        .await
        .ok()
        .map(|e| (e.execution.status, e.execution.execution_number))
}

#[tokio::test]
async fn hierarchy_needs_a_parent_and_stops_at_seven_levels() {
    let h = harness();
    let err = h.engine.create_thing_group(group("orphan", Some("nobody"))).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Thing group nobody cannot be found."));
    h.engine.create_thing_group(group("l1", None)).await.unwrap();
    for level in 2..=MAX_DEPTH {
        let parent = format!("l{}", level - 1);
        h.engine.create_thing_group(group(&format!("l{level}"), Some(&parent))).await.unwrap();
    }
    let err = h.engine.create_thing_group(group("l8", Some("l7"))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("at most 7 levels"), "{}", err.message);

    let d = h.engine.describe_thing_group(DescribeThingGroupRequest { thing_group_name: "l3".into() }).await.unwrap();
    let path: Vec<_> =
        d.thing_group_metadata.root_to_parent_thing_groups.iter().map(|g| g.group_name.as_str()).collect();
    assert_eq!(path, ["l1", "l2"]);
    assert_eq!(d.thing_group_metadata.parent_group_name.as_deref(), Some("l2"));
    assert_eq!(d.thing_group_arn, "arn:aws:iot:us-east-1:123456789012:thinggroup/l3");
    assert_eq!(d.version, 1);
}

#[tokio::test]
async fn a_parent_is_fixed_and_cannot_close_a_cycle() {
    let h = harness();
    h.engine.create_thing_group(group("top", None)).await.unwrap();
    h.engine.create_thing_group(group("below", Some("top"))).await.unwrap();
    // Re-parenting `top` under its own descendant is a cycle.
    let err = h.engine.create_thing_group(group("top", Some("below"))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("cycle"), "{}", err.message);
    // A group cannot be its own parent.
    let err = h.engine.create_thing_group(group("self", Some("self"))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    // Same request again: the same group; different properties: already exists.
    let first = h.engine.create_thing_group(group("below", Some("top"))).await.unwrap();
    let again = h.engine.create_thing_group(group("below", Some("top"))).await.unwrap();
    assert_eq!(first.thing_group_id, again.thing_group_id);
    let err = h.engine.create_thing_group(group("below", None)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceAlreadyExists);
}

#[tokio::test]
async fn listing_follows_the_hierarchy_recursively_or_not() {
    let h = fleet().await;
    let names = |r: ListThingGroupsResponse| r.thing_groups.into_iter().map(|g| g.group_name).collect::<Vec<_>>();
    let all = h.engine.list_thing_groups(ListThingGroupsRequest::default()).await.unwrap();
    assert_eq!(names(all), ["leaf", "mid", "root"]);
    let children = ListThingGroupsRequest { parent_group: Some("root".into()), ..Default::default() };
    assert_eq!(names(h.engine.list_thing_groups(children.clone()).await.unwrap()), ["mid"]);
    let below = ListThingGroupsRequest { recursive: Some(true), ..children };
    assert_eq!(names(h.engine.list_thing_groups(below).await.unwrap()), ["leaf", "mid"]);
    let prefix = ListThingGroupsRequest { name_prefix_filter: Some("r".into()), ..Default::default() };
    assert_eq!(names(h.engine.list_thing_groups(prefix).await.unwrap()), ["root"]);
    let unknown = ListThingGroupsRequest { parent_group: Some("x".into()), ..Default::default() };
    assert_eq!(h.engine.list_thing_groups(unknown).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    assert_eq!(h.engine.list_things_in_thing_group(things_in("root", false)).await.unwrap().things, ["a", "c"]);
    assert_eq!(h.engine.list_things_in_thing_group(things_in("root", true)).await.unwrap().things, ["a", "b", "c"]);
    assert_eq!(h.engine.list_things_in_thing_group(things_in("mid", true)).await.unwrap().things, ["b", "c"]);
    let groups = h
        .engine
        .list_thing_groups_for_thing(ListThingGroupsForThingRequest { thing_name: "c".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(groups.thing_groups.iter().map(|g| g.group_name.as_str()).collect::<Vec<_>>(), ["leaf", "root"]);
}

#[tokio::test]
async fn groups_and_memberships_survive_a_restart_and_go_with_a_deleted_thing() {
    let h = fleet().await.reopen();
    assert_eq!(h.engine.list_things_in_thing_group(things_in("root", true)).await.unwrap().things, ["a", "b", "c"]);
    let err = h
        .engine
        .delete_thing_group(DeleteThingGroupRequest { thing_group_name: "mid".into(), expected_version: None })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "mid still has leaf");
    h.engine.delete_thing(DeleteThingRequest { thing_name: "c".into(), expected_version: None }).await.unwrap();
    let h = h.reopen();
    assert_eq!(h.engine.list_things_in_thing_group(things_in("root", true)).await.unwrap().things, ["a", "b"]);
    h.engine
        .delete_thing_group(DeleteThingGroupRequest { thing_group_name: "leaf".into(), expected_version: None })
        .await
        .unwrap();
    let d = h.engine.describe_thing_group(DescribeThingGroupRequest { thing_group_name: "leaf".into() }).await;
    assert_eq!(d.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn update_bumps_the_version_and_checks_the_expected_one() {
    let h = fleet().await;
    let props = ThingGroupProperties { thing_group_description: Some("the fleet".into()), attribute_payload: None };
    let r = UpdateThingGroupRequest {
        thing_group_name: "root".into(),
        thing_group_properties: props,
        expected_version: Some(1),
    };
    assert_eq!(h.engine.update_thing_group(r.clone()).await.unwrap().version, 2);
    assert_eq!(h.engine.update_thing_group(r).await.unwrap_err().code, ErrorCode::VersionConflict);
    let d = h.engine.describe_thing_group(DescribeThingGroupRequest { thing_group_name: "root".into() }).await.unwrap();
    assert_eq!(d.thing_group_properties.thing_group_description.as_deref(), Some("the fleet"));
}

#[tokio::test]
async fn a_thing_joins_at_most_ten_groups() {
    let h = harness();
    h.thing("t").await;
    for i in 0..=MAX_GROUPS_PER_THING {
        h.engine.create_thing_group(group(&format!("g{i}"), None)).await.unwrap();
    }
    for i in 0..MAX_GROUPS_PER_THING {
        h.engine.add_thing_to_thing_group(member(&format!("g{i}"), "t")).await.unwrap();
    }
    let err = h.engine.add_thing_to_thing_group(member("g10", "t")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    let swap = UpdateThingGroupsForThingRequest {
        thing_name: Some("t".into()),
        thing_groups_to_add: vec!["g10".into()],
        thing_groups_to_remove: vec!["g0".into()],
        ..Default::default()
    };
    h.engine.update_thing_groups_for_thing(swap).await.unwrap();
    let err = h.engine.add_thing_to_thing_group(member("g0", "t")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    let err = h.engine.add_thing_to_thing_group(member("nope", "t")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn a_snapshot_job_on_a_group_reaches_descendants_once() {
    let h = fleet().await;
    let r = CreateJobRequest {
        targets: vec![group_arn("root"), group_arn("leaf"), "arn:aws:iot:::thing/c".into()],
        ..job_request("snap", &[])
    };
    h.engine.create_job(r).await.unwrap();
    let d = h.engine.describe_job(describe("snap")).await.unwrap();
    assert_eq!(d.job.job_process_details.number_of_queued_things, 3, "a, b and c, c once");
    assert_eq!(status(&h, "snap", "d").await, None);
    // Later membership changes do not touch a SNAPSHOT job.
    h.engine.add_thing_to_thing_group(member("leaf", "d")).await.unwrap();
    h.engine.remove_thing_from_thing_group(member("root", "a")).await.unwrap();
    assert_eq!(status(&h, "snap", "d").await, None);
    assert_eq!(status(&h, "snap", "a").await, Some((JobExecutionStatus::Queued, 1)));

    let listed = h
        .engine
        .list_jobs(ListJobsRequest { thing_group_name: Some("leaf".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.jobs.len(), 1);
    let listed = h
        .engine
        .list_jobs(ListJobsRequest { thing_group_name: Some("mid".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(listed.jobs.is_empty());

    let err =
        h.engine.create_job(CreateJobRequest { targets: vec![group_arn("ghost")], ..job_request("x", &[]) }).await;
    let err = err.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Thing group ghost cannot be found."));
}

#[tokio::test]
async fn a_continuous_job_follows_things_joining_and_leaving() {
    let h = fleet().await;
    let r = CreateJobRequest {
        targets: vec![group_arn("mid")],
        target_selection: Some(TargetSelection::Continuous),
        ..job_request("cont", &[])
    };
    h.engine.create_job(r).await.unwrap();
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "cont", "c").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "cont", "a").await, None);

    // Joining a descendant of the target queues; leaving it removes the queued execution.
    h.engine.add_thing_to_thing_group(member("leaf", "d")).await.unwrap();
    assert_eq!(status(&h, "cont", "d").await, Some((JobExecutionStatus::Queued, 1)));
    h.engine.remove_thing_from_thing_group(member("leaf", "d")).await.unwrap();
    assert_eq!(status(&h, "cont", "d").await, Some((JobExecutionStatus::Removed, 1)));
    // Rejoining is a fresh attempt.
    h.engine.add_thing_to_thing_group(member("mid", "d")).await.unwrap();
    assert_eq!(status(&h, "cont", "d").await, Some((JobExecutionStatus::Queued, 2)));

    // Still covered through another group: nothing changes.
    h.engine.add_thing_to_thing_group(member("leaf", "b")).await.unwrap();
    h.engine.remove_thing_from_thing_group(member("mid", "b")).await.unwrap();
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Queued, 1)));

    // Joining a group the job does not cover changes nothing; deleting a covered group
    // releases its members.
    h.engine.add_thing_to_thing_group(member("root", "d")).await.unwrap();
    h.engine.remove_thing_from_thing_group(member("mid", "d")).await.unwrap();
    assert_eq!(status(&h, "cont", "d").await, Some((JobExecutionStatus::Removed, 2)));
    h.engine
        .delete_thing_group(DeleteThingGroupRequest { thing_group_name: "leaf".into(), expected_version: None })
        .await
        .unwrap();
    assert_eq!(status(&h, "cont", "b").await, Some((JobExecutionStatus::Removed, 1)));
    assert_eq!(status(&h, "cont", "c").await, Some((JobExecutionStatus::Removed, 1)));

    // AssociateTargetsWithJob with a group queues its things.
    let add = AssociateTargetsWithJobRequest {
        job_id: "cont".into(),
        targets: vec![group_arn("root")],
        ..Default::default()
    };
    h.engine.associate_targets_with_job(add).await.unwrap();
    assert_eq!(status(&h, "cont", "a").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "cont", "d").await, Some((JobExecutionStatus::Queued, 3)));
}

/// A group of `n` things `t0`…
async fn big_group(h: &Harness, name: &str, n: usize) {
    h.engine.create_thing_group(group(name, None)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (engine, name) = (h.engine.clone(), name.to_string());
        tasks.spawn(async move {
            let thing = format!("t{i}");
            let request =
                fleetjobs_core::ops::things::CreateThingRequest { thing_name: thing.clone(), ..Default::default() };
            engine.create_thing(request).await.unwrap();
            engine.add_thing_to_thing_group(member(&name, &thing)).await.unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// CreateJob on more things than one transaction creates: the job is written first, then one
/// chunk of executions per batch, not all at once (the state lock is let go between chunks),
/// yet when CreateJob answers every target has exactly one execution (a thing named twice,
/// directly and through the group, included) and the job is no longer creating executions.
#[tokio::test]
async fn a_job_on_a_big_group_is_created_in_chunks_and_whole_before_it_answers() {
    let h = harness();
    let n = 2 * CREATE_CHUNK_MIN + 1;
    big_group(&h, "big", n).await;

    let mut request = job_request("big-job", &["t7"]);
    request.targets.push(group_arn("big"));
    h.submitted.lock().unwrap().clear();
    h.engine.create_job(request).await.unwrap();
    let batches: Vec<usize> = h.submitted.lock().unwrap().iter().map(|(_, mutations)| *mutations).collect();
    assert!(batches[0] < CREATE_CHUNK_MIN, "the job's own batch creates no executions: {batches:?}");
    assert!(batches.len() > 2, "the executions come in more than one batch: {batches:?}");
    assert!(batches[1..].iter().all(|&b| b < n), "each later batch holds one chunk, not all {n}: {batches:?}");

    let job = h.engine.describe_job(describe("big-job")).await.unwrap().job;
    assert_eq!(job.job_process_details.number_of_queued_things, n as i64, "one execution per thing");
    assert!(!job.is_concurrent, "every execution exists when CreateJob answers");
    assert_eq!(job.job_process_details.processing_targets, None);
    assert_eq!(status(&h, "big-job", "t7").await, Some((JobExecutionStatus::Queued, 1)));
    assert_eq!(status(&h, "big-job", &format!("t{}", n - 1)).await.map(|s| s.1), Some(1));
}

/// With a bulk runtime set (the server's device plane), a big job's chunks are created by a
/// task of that runtime, not by the caller's (the HTTP runtime's threads run at a raised
/// priority to answer API calls at once); the caller still gets its answer only once every
/// execution exists, and small jobs stay on the caller's task.
#[test]
fn a_big_jobs_chunks_run_on_the_bulk_runtime() {
    let bulk = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bulk-worker")
        .enable_all()
        .build()
        .unwrap();
    let caller = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    caller.block_on(async {
        let h = harness();
        h.engine.set_bulk_runtime(bulk.handle().clone());
        let n = 2 * CREATE_CHUNK_MIN + 1;
        big_group(&h, "big", n).await;
        h.submitted.lock().unwrap().clear();

        h.engine.create_job(job_request("small", &["t1", "t2"])).await.unwrap();
        let mut request = job_request("big-job", &[]);
        request.targets.push(group_arn("big"));
        h.engine.create_job(request).await.unwrap();

        let job = h.engine.describe_job(describe("big-job")).await.unwrap().job;
        assert_eq!(job.job_process_details.number_of_queued_things, n as i64, "every execution before the answer");
        let submitted = h.submitted.lock().unwrap().clone();
        let on_bulk: usize =
            submitted.iter().filter(|(thread, _)| thread.as_deref() == Some("bulk-worker")).map(|(_, m)| m).sum();
        assert!(on_bulk >= n, "the chunks' {n} executions were submitted on the bulk runtime: {submitted:?}");
        let elsewhere: Vec<_> =
            submitted.iter().filter(|(thread, _)| thread.as_deref() != Some("bulk-worker")).collect();
        assert_eq!(elsewhere.len(), 2, "the small job and the big job's own record on the caller's: {submitted:?}");
    });
}
