//! Unit tests of job namespaces: a job created with a `namespaceId` queues, notifies and
//! answers on its namespace's topics only, and the control plane finds it there.

use fleetjobs_core::ops::executions::*;
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ErrorCode;
use serde_json::json;

use crate::tests::{harness, job_request, topics, Harness};

const GG: &str = "aws-gg-deployment";

async fn namespaced_job(h: &Harness, id: &str, things: &[&str]) {
    let r = CreateJobRequest { namespace_id: Some(GG.into()), ..job_request(id, things) };
    h.engine.create_job(r).await.unwrap();
}

#[tokio::test]
async fn each_namespace_is_a_queue_with_its_own_topics() {
    let mut h = harness();
    h.thing("pi").await;
    h.job("plain", &["pi"]).await.unwrap();
    h.published();
    h.tick(1000);
    namespaced_job(&h, "deploy", &["pi"]).await;
    let p = h.published();
    // The namespaced job heads its own queue; the default queue's head is unchanged.
    assert_eq!(
        topics(&p),
        [
            "$aws/things/pi/jobs/notify-namespace-aws-gg-deployment",
            "$aws/things/pi/jobs/notify-next-namespace-aws-gg-deployment"
        ]
    );
    assert_eq!(p[1].1["execution"]["jobId"], "deploy");
    assert_eq!(p[0].1["jobs"]["QUEUED"].as_array().unwrap().len(), 1, "the namespace's jobs only");

    // The default topics see the plain job only.
    let (_, r) = h.mqtt("$aws/things/pi/jobs/get", json!({})).await;
    assert_eq!(r["queuedJobs"].as_array().unwrap().iter().map(|j| &j["jobId"]).collect::<Vec<_>>(), [&json!("plain")]);
    let (_, r) = h.mqtt("$aws/things/pi/jobs/$next/get", json!({})).await;
    assert_eq!(r["execution"]["jobId"], "plain");
    let (t, r) = h.mqtt("$aws/things/pi/jobs/deploy/get", json!({})).await;
    assert_eq!((t.as_str(), r["code"].as_str()), ("$aws/things/pi/jobs/deploy/get/rejected", Some("ResourceNotFound")));

    // The namespace's topics see the namespaced job only, and run it.
    let ns = "$aws/things/pi/jobs/$next/namespace-aws-gg-deployment/get";
    let (t, r) = h.mqtt(ns, json!({"clientToken": "c"})).await;
    assert_eq!(t, format!("{ns}/accepted"));
    assert_eq!((r["execution"]["jobId"].as_str(), r["clientToken"].as_str()), (Some("deploy"), Some("c")));
    let (t, r) = h.mqtt("$aws/things/pi/jobs/plain/namespace-aws-gg-deployment/get", json!({})).await;
    assert!(t.ends_with("/rejected"), "{t}");
    assert_eq!(r["code"], "ResourceNotFound");
    let (t, _) =
        h.mqtt("$aws/things/pi/jobs/plain/namespace-aws-gg-deployment/update", json!({"status": "IN_PROGRESS"})).await;
    assert!(t.ends_with("/rejected"), "a job of the default namespace is not updated through another");
    let update = "$aws/things/pi/jobs/deploy/namespace-aws-gg-deployment/update";
    let (t, _) = h.mqtt(update, json!({"status": "IN_PROGRESS"})).await;
    assert_eq!(t, format!("{update}/accepted"));
    assert!(h.published().is_empty(), "QUEUED -> IN_PROGRESS of the head publishes nothing");
    let (t, _) = h.mqtt(update, json!({"status": "SUCCEEDED"})).await;
    assert_eq!(t, format!("{update}/accepted"));
    let p = h.published();
    let pushes: Vec<_> = topics(&p).into_iter().filter(|t| t.starts_with("$aws/things/")).collect();
    assert_eq!(
        pushes,
        [
            "$aws/things/pi/jobs/notify-namespace-aws-gg-deployment",
            "$aws/things/pi/jobs/notify-next-namespace-aws-gg-deployment"
        ]
    );
    let (_, r) = h.mqtt("$aws/things/pi/jobs/$next/get", json!({})).await;
    assert_eq!(r["execution"]["jobId"], "plain", "the default queue is untouched");
}

#[tokio::test]
async fn the_control_plane_filters_and_finds_jobs_by_namespace() {
    let h = harness();
    h.thing("pi").await;
    h.job("plain", &["pi"]).await.unwrap();
    namespaced_job(&h, "deploy", &["pi"]).await;

    let ns = Some(GG.to_string());
    let list = h.engine.list_jobs(ListJobsRequest { namespace_id: ns.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(list.jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), ["deploy"]);
    let r =
        ListJobExecutionsForThingRequest { thing_name: "pi".into(), namespace_id: ns.clone(), ..Default::default() };
    let list = h.engine.list_job_executions_for_thing(r).await.unwrap();
    assert_eq!(list.execution_summaries.iter().map(|e| e.job_id.as_str()).collect::<Vec<_>>(), ["deploy"]);
    let d = h.engine.describe_job(crate::tests::describe("deploy")).await.unwrap();
    assert_eq!(d.job.namespace_id.as_deref(), Some(GG));
    assert_eq!(d.job.job_arn, "arn:aws:iot:us-east-1:123456789012:job/deploy", "the ARN does not carry the namespace");

    // A request naming a namespace does not find a job of another one, and changes nothing.
    let update = UpdateJobRequest {
        job_id: "plain".into(),
        namespace_id: ns.clone(),
        description: Some("x".into()),
        ..Default::default()
    };
    assert_eq!(h.engine.update_job(update).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let delete = DeleteJobRequest { job_id: "plain".into(), namespace_id: ns.clone(), force: true };
    assert_eq!(h.engine.delete_job(delete).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let assoc = AssociateTargetsWithJobRequest {
        job_id: "plain".into(),
        targets: vec!["arn:aws:iot:::thing/pi".into()],
        namespace_id: ns.clone(),
        ..Default::default()
    };
    assert_eq!(h.engine.associate_targets_with_job(assoc).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let del_exec = DeleteJobExecutionRequest {
        job_id: "plain".into(),
        thing_name: "pi".into(),
        execution_number: 1,
        force: true,
        namespace_id: ns.clone(),
    };
    assert_eq!(h.engine.delete_job_execution(del_exec).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    assert!(h.engine.describe_job(crate::tests::describe("plain")).await.unwrap().job.description.is_none());

    // In its own namespace (or naming none) it is found.
    let update = UpdateJobRequest {
        job_id: "deploy".into(),
        namespace_id: ns.clone(),
        description: Some("x".into()),
        ..Default::default()
    };
    h.engine.update_job(update).await.unwrap();
    let delete = DeleteJobRequest { job_id: "deploy".into(), namespace_id: ns, force: true };
    h.engine.delete_job(delete).await.unwrap();
}

#[tokio::test]
async fn deleting_a_namespaced_job_notifies_its_namespace() {
    let mut h = harness();
    h.thing("pi").await;
    namespaced_job(&h, "deploy", &["pi"]).await;
    h.published();
    let delete = DeleteJobRequest { job_id: "deploy".into(), namespace_id: Some(GG.into()), force: true };
    h.engine.delete_job(delete).await.unwrap();
    let p = h.published();
    let pushes: Vec<_> = p.iter().filter(|(t, _)| t.starts_with("$aws/things/")).collect();
    assert_eq!(pushes.len(), 2, "{p:?}");
    assert_eq!(pushes[0].0, "$aws/things/pi/jobs/notify-namespace-aws-gg-deployment");
    assert_eq!(pushes[1].0, "$aws/things/pi/jobs/notify-next-namespace-aws-gg-deployment");
    assert_eq!(pushes[1].1, json!({"timestamp": pushes[1].1["timestamp"]}), "no next execution: no `execution`");
}
