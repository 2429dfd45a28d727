//! Unit tests of the typed job and job execution operations, built from request types: each
//! checks the answer's shape and one rule, and that a refused operation changes nothing.

use fleetjobs_core::model::{JobExecutionStatus, JobStatus, Tag, TargetSelection};
use fleetjobs_core::ops::executions::*;
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ops::Timestamp;
use fleetjobs_core::validate::SentStatusDetails;
use fleetjobs_core::ErrorCode;
use serde_json::json;

use crate::tests::{describe, execution, harness, job_request, Harness};

const NOW: i64 = 1_700_000_000_000;

/// A harness with things `a` and `b` and job `job1` targeting both.
async fn with_job() -> Harness {
    let h = harness();
    h.thing("a").await;
    h.thing("b").await;
    h.job("job1", &["a", "b"]).await.unwrap();
    h
}

fn cancel(id: &str) -> CancelJobRequest {
    CancelJobRequest { job_id: id.into(), ..Default::default() }
}

#[tokio::test]
async fn create_job_answers_its_identity_and_queues_one_execution_per_thing() {
    let h = harness();
    h.thing("a").await;
    let r = CreateJobRequest {
        description: Some("first".into()),
        tags: Some(vec![Tag { key: "team".into(), value: Some("ops".into()) }]),
        target_selection: Some(TargetSelection::Continuous),
        ..job_request("job1", &["a", "a"])
    };
    let out = h.engine.create_job(r).await.unwrap();
    assert_eq!(out.job_arn, "arn:aws:iot:us-east-1:123456789012:job/job1");
    assert_eq!((out.job_id.as_str(), out.description.as_deref()), ("job1", Some("first")));
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.target_selection, TargetSelection::Continuous);
    assert_eq!(d.job.job_process_details.number_of_queued_things, 1, "a repeated target queues once");
    assert_eq!(d.job.created_at, Timestamp(NOW));

    // A document that is not a JSON object is refused, and nothing is created.
    let bad = CreateJobRequest { document: Some("[1]".into()), ..job_request("job2", &["a"]) };
    assert_eq!(h.engine.create_job(bad).await.unwrap_err().code, ErrorCode::InvalidRequest);
    assert_eq!(h.engine.describe_job(describe("job2")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn update_job_replaces_what_it_sets_but_not_a_finished_job() {
    let h = with_job().await;
    h.tick(500);
    let r = UpdateJobRequest { job_id: "job1".into(), description: Some("new".into()), ..Default::default() };
    h.engine.update_job(r.clone()).await.unwrap();
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.description.as_deref(), Some("new"));
    assert_eq!(d.job.last_updated_at, Timestamp(NOW + 500));

    h.engine.cancel_job(cancel("job1")).await.unwrap();
    let refused = UpdateJobRequest { description: Some("late".into()), ..r };
    let err = h.engine.update_job(refused).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(err.message, "Job job1 is in status CANCELED and cannot be updated");
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.description.as_deref(), Some("new"), "the refused update changed nothing");
}

#[tokio::test]
async fn describe_job_answers_the_job_or_not_found() {
    let h = with_job().await;
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.document_source, None);
    assert_eq!((d.job.job_id.as_str(), d.job.status), ("job1", JobStatus::InProgress));
    assert_eq!(d.job.targets, ["arn:aws:iot:::thing/a", "arn:aws:iot:::thing/b"]);
    assert_eq!(d.job.job_process_details.number_of_queued_things, 2);
    assert!(!d.job.is_concurrent);
    let err = h.engine.describe_job(describe("nope")).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Job nope does not exist."));
}

#[tokio::test]
async fn get_job_document_answers_the_document_as_stored() {
    let h = with_job().await;
    let doc = h.engine.get_job_document(describe("job1")).await.unwrap();
    assert_eq!(doc.document, "{\"operation\":\"customJob\"}");
    let bad = DescribeJobRequest { job_id: "bad id".into(), before_substitution: true };
    assert_eq!(h.engine.get_job_document(bad).await.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn list_jobs_filters_pages_and_orders_newest_first() {
    let h = with_job().await;
    for id in ["job2", "job3"] {
        h.tick(1000);
        h.job(id, &["a"]).await.unwrap();
    }
    h.engine.cancel_job(cancel("job2")).await.unwrap();
    let page1 = h.engine.list_jobs(ListJobsRequest { max_results: Some(2), ..Default::default() }).await.unwrap();
    let ids: Vec<&str> = page1.jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!((ids, page1.next_token.as_deref()), (vec!["job3", "job2"], Some("2")));
    let page2 = ListJobsRequest { max_results: Some(2), next_token: page1.next_token, ..Default::default() };
    let page2 = h.engine.list_jobs(page2).await.unwrap();
    assert_eq!((page2.jobs.len(), page2.next_token), (1, None));
    let canceled = ListJobsRequest { status: Some(JobStatus::Canceled), ..Default::default() };
    let canceled = h.engine.list_jobs(canceled).await.unwrap();
    assert_eq!(canceled.jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), ["job2"]);
    let grouped = ListJobsRequest { thing_group_name: Some("g".into()), ..Default::default() };
    assert!(h.engine.list_jobs(grouped).await.unwrap().jobs.is_empty());
    let bad = ListJobsRequest { next_token: Some("x".into()), ..Default::default() };
    assert_eq!(h.engine.list_jobs(bad).await.unwrap_err().message, "The nextToken is invalid");
    let bad = ListJobsRequest { max_results: Some(0), ..Default::default() };
    assert_eq!(h.engine.list_jobs(bad).await.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn cancel_job_cancels_queued_executions_but_not_a_completed_job() {
    let mut h = with_job().await;
    let r = CancelJobRequest { reason_code: Some("STOP_1".into()), comment: Some("why".into()), ..cancel("job1") };
    let out = h.engine.cancel_job(r).await.unwrap();
    assert_eq!((out.job_id.as_str(), out.description), ("job1", None));
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!((d.job.status, d.job.reason_code.as_deref()), (JobStatus::Canceled, Some("STOP_1")));
    assert_eq!(d.job.job_process_details.number_of_canceled_things, 2);
    let err = h.engine.cancel_job(cancel("job1")).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::InvalidRequest, "Job job1 is already canceled"));

    h.job("done", &["a"]).await.unwrap();
    h.mqtt("$aws/things/a/jobs/done/update", json!({"status": "SUCCEEDED"})).await;
    h.published();
    let err = h.engine.cancel_job(cancel("done")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(err.message, "Job done is COMPLETED and cannot be canceled");
    assert!(h.published().is_empty(), "a refused cancel announces nothing");
    let d = h.engine.describe_job(describe("done")).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Completed);
}

#[tokio::test]
async fn delete_job_needs_force_while_in_progress() {
    let h = with_job().await;
    let r = DeleteJobRequest { job_id: "job1".into(), ..Default::default() };
    let err = h.engine.delete_job(r.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    assert_eq!(err.message, "Cannot delete job job1 in status IN_PROGRESS without force");
    let still = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(still.job.job_process_details.number_of_queued_things, 2, "the refused delete changed nothing");

    h.engine.delete_job(DeleteJobRequest { force: true, ..r }).await.unwrap();
    assert_eq!(h.engine.describe_job(describe("job1")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let err = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound, "its executions went with it");
}

#[tokio::test]
async fn associate_targets_adds_to_continuous_jobs_only() {
    let h = harness();
    for t in ["a", "b"] {
        h.thing(t).await;
    }
    let continuous =
        CreateJobRequest { target_selection: Some(TargetSelection::Continuous), ..job_request("cont", &["a"]) };
    h.engine.create_job(continuous).await.unwrap();
    h.job("snap", &["a"]).await.unwrap();
    let add = |id: &str| AssociateTargetsWithJobRequest {
        job_id: id.into(),
        targets: vec!["arn:aws:iot:::thing/a".into(), "arn:aws:iot:::thing/b".into()],
        ..Default::default()
    };
    let out = h.engine.associate_targets_with_job(add("cont")).await.unwrap();
    assert_eq!(out.job_id, "cont");
    let d = h.engine.describe_job(describe("cont")).await.unwrap();
    assert_eq!(d.job.targets.len(), 2);
    assert_eq!(d.job.job_process_details.number_of_queued_things, 2, "b is queued, a not twice");

    let err = h.engine.associate_targets_with_job(add("snap")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(err.message, "Targets can only be added to CONTINUOUS jobs that are IN_PROGRESS");
    let d = h.engine.describe_job(describe("snap")).await.unwrap();
    assert_eq!((d.job.targets.len(), d.job.job_process_details.number_of_queued_things), (1, 1));
}

#[tokio::test]
async fn list_job_executions_for_job_filters_by_status() {
    let h = with_job().await;
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    let r = ListJobExecutionsForJobRequest { job_id: "job1".into(), ..Default::default() };
    let all = h.engine.list_job_executions_for_job(r.clone()).await.unwrap();
    assert_eq!(all.execution_summaries.len(), 2);
    assert_eq!(all.next_token, None);
    let queued = ListJobExecutionsForJobRequest { status: Some(JobExecutionStatus::Queued), ..r.clone() };
    let queued = h.engine.list_job_executions_for_job(queued).await.unwrap();
    assert_eq!(queued.execution_summaries.len(), 1);
    let b = &queued.execution_summaries[0];
    assert_eq!(b.thing_arn, "arn:aws:iot:us-east-1:123456789012:thing/b");
    assert_eq!((b.job_execution_summary.execution_number, b.job_execution_summary.started_at), (1, None));
    let ghost = ListJobExecutionsForJobRequest { job_id: "ghost".into(), ..r };
    assert_eq!(h.engine.list_job_executions_for_job(ghost).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn list_job_executions_for_thing_newest_first_and_filtered() {
    let h = with_job().await;
    h.tick(1000);
    h.job("job2", &["a"]).await.unwrap();
    let r = ListJobExecutionsForThingRequest { thing_name: "a".into(), ..Default::default() };
    let all = h.engine.list_job_executions_for_thing(r.clone()).await.unwrap();
    let ids: Vec<&str> = all.execution_summaries.iter().map(|e| e.job_id.as_str()).collect();
    assert_eq!(ids, ["job2", "job1"]);
    let one = ListJobExecutionsForThingRequest { job_id: Some("job1".into()), max_results: Some(1), ..r.clone() };
    let one = h.engine.list_job_executions_for_thing(one).await.unwrap();
    assert_eq!((one.execution_summaries.len(), one.next_token), (1, None));
    let ghost = ListJobExecutionsForThingRequest { thing_name: "ghost".into(), ..r };
    let err = h.engine.list_job_executions_for_thing(ghost).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Thing ghost cannot be found."));
}

#[tokio::test]
async fn describe_job_execution_answers_the_latest_or_a_numbered_one() {
    let h = with_job().await;
    h.tick(250);
    h.mqtt("$aws/things/a/jobs/job1/update", json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1"}})).await;
    let e = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap().execution;
    assert_eq!((e.status, e.version_number, e.execution_number), (JobExecutionStatus::InProgress, 2, 1));
    assert_eq!(e.started_at, Some(Timestamp(NOW + 250)));
    assert_eq!(e.status_details.details_map.as_ref().map(|m| m["step"].as_str()), Some("1"));
    assert_eq!(e.thing_arn, "arn:aws:iot:us-east-1:123456789012:thing/a");
    let numbered = DescribeJobExecutionRequest { execution_number: Some(2), ..execution("job1", "a") };
    let err = h.engine.describe_job_execution(numbered).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    assert_eq!(err.message, "Job execution for job job1 and thing a does not exist.");
}

#[tokio::test]
async fn cancel_job_execution_sets_details_and_refuses_a_stale_version() {
    let h = with_job().await;
    let r = CancelJobExecutionRequest {
        job_id: "job1".into(),
        thing_name: "a".into(),
        expected_version: Some(2),
        status_details: Some(SentStatusDetails([("why".to_string(), "operator".to_string())].into())),
        ..Default::default()
    };
    let err = h.engine.cancel_job_execution(r.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::VersionConflict);
    let e = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap().execution;
    assert_eq!((e.status, e.version_number), (JobExecutionStatus::Queued, 1), "the refused cancel changed nothing");

    h.engine.cancel_job_execution(CancelJobExecutionRequest { expected_version: Some(1), ..r }).await.unwrap();
    let e = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap().execution;
    assert_eq!((e.status, e.version_number), (JobExecutionStatus::Canceled, 2));
    assert_eq!(e.status_details.details_map.map(|m| m["why"].clone()).as_deref(), Some("operator"));
}

#[tokio::test]
async fn delete_job_execution_needs_force_while_in_progress() {
    let h = with_job().await;
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    let r = DeleteJobExecutionRequest {
        job_id: "job1".into(),
        thing_name: "a".into(),
        execution_number: 1,
        ..Default::default()
    };
    let err = h.engine.delete_job_execution(r.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    assert!(h.engine.describe_job_execution(execution("job1", "a")).await.is_ok(), "still there");
    h.engine.delete_job_execution(DeleteJobExecutionRequest { force: true, ..r.clone() }).await.unwrap();
    let err = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    let err = h.engine.delete_job_execution(r).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
}

/// A document source that knows one URL.
struct OneDocument;

impl crate::document_source::DocumentSource for OneDocument {
    fn fetch<'a>(&'a self, url: &'a str) -> crate::document_source::FetchFuture<'a> {
        let answer = match url {
            "https://s3.amazonaws.com/b/doc.json" => Ok(r#"{"operation":"fetched"}"#.to_string()),
            "https://s3.amazonaws.com/b/list.json" => Ok("[1]".to_string()),
            _ => Err("the object does not exist".to_string()),
        };
        Box::pin(async move { answer })
    }

    fn presign(&self, _: &str, _: u64) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn create_job_reads_its_document_source_once_and_refuses_a_missing_one() {
    let h = harness();
    h.thing("a").await;
    let from = |id: &str, url: &str| CreateJobRequest {
        document: None,
        document_source: Some(url.into()),
        ..job_request(id, &["a"])
    };
    // Without a configured source the request is refused with a pointer to the flag.
    let err = h.engine.create_job(from("j0", "https://s3.amazonaws.com/b/doc.json")).await.unwrap_err();
    assert!(err.message.contains("--s3-endpoint"), "{}", err.message);

    h.engine.set_document_source(std::sync::Arc::new(OneDocument));
    h.engine.create_job(from("j1", "https://s3.amazonaws.com/b/doc.json")).await.unwrap();
    let d = h.engine.describe_job(describe("j1")).await.unwrap();
    assert_eq!(d.document_source.as_deref(), Some("https://s3.amazonaws.com/b/doc.json"));
    let doc = h.engine.get_job_document(GetJobDocumentRequest { job_id: "j1".into(), ..Default::default() });
    assert_eq!(doc.await.unwrap().document, r#"{"operation":"fetched"}"#);

    let err = h.engine.create_job(from("j2", "https://s3.amazonaws.com/b/missing")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("does not exist"), "{}", err.message);
    let err = h.engine.create_job(from("j3", "https://s3.amazonaws.com/b/list.json")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "a fetched document is validated like an inline one");
    let long = format!("https://s3.amazonaws.com/b/{}", "k".repeat(1350));
    let err = h.engine.create_job(from("j4", &long)).await.unwrap_err();
    assert!(err.message.contains("between 1 and 1350"), "{}", err.message);
    for id in ["j2", "j3", "j4"] {
        assert_eq!(h.engine.describe_job(describe(id)).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    }
}
