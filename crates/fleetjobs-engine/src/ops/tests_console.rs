//! Unit tests of the console's reads: the Jobs page's rows in one read agree with ListJobs and
//! DescribeJob, and a job's status history follows its executions.

use fleetjobs_core::model::JobStatus;
use fleetjobs_core::ops::console::*;
use fleetjobs_core::ops::jobs::{CreateJobRequest, ListJobsRequest};
use fleetjobs_core::ErrorCode;
use serde_json::json;

use crate::tests::{describe, harness, job_request};

const NOW: i64 = 1_700_000_000_000;

fn overviews(max_results: usize) -> ListJobOverviewsRequest {
    ListJobOverviewsRequest { max_results, ..Default::default() }
}

#[tokio::test]
async fn overviews_are_list_jobs_and_describe_job_in_one_read() {
    let h = harness();
    h.thing("a").await;
    h.thing("b").await;
    for (i, id) in ["old", "mid", "new"].iter().enumerate() {
        let r = CreateJobRequest { description: Some(format!("Job number {i}")), ..job_request(id, &["a", "b"]) };
        h.engine.create_job(r).await.unwrap();
        h.tick(1000);
    }
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    h.mqtt("$aws/things/a/jobs/old/update", json!({"status": "SUCCEEDED"})).await;

    let all = h.engine.list_job_overviews(overviews(500)).await.unwrap();
    assert!(!all.truncated);
    let listed = h.engine.list_jobs(ListJobsRequest::default()).await.unwrap().jobs;
    assert_eq!(
        all.jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        listed.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        "ListJobs' order, newest first"
    );
    for o in &all.jobs {
        let d = h.engine.describe_job(describe(&o.job_id)).await.unwrap().job;
        assert_eq!(o.job_process_details, d.job_process_details, "{}", o.job_id);
        assert_eq!((o.status, o.target_selection), (d.status, d.target_selection));
        assert_eq!(
            (&o.description, o.created_at, o.last_updated_at),
            (&d.description, d.created_at, d.last_updated_at)
        );
    }
    let old = all.jobs.iter().find(|j| j.job_id == "old").unwrap();
    assert_eq!(
        (old.job_process_details.number_of_succeeded_things, old.job_process_details.number_of_queued_things),
        (1, 1)
    );

    // Bounded: the newest first, and it says so.
    let two = h.engine.list_job_overviews(overviews(2)).await.unwrap();
    assert!(two.truncated);
    assert_eq!(two.jobs.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), ["new", "mid"]);
    // Text (ID or description, any case) and status filters.
    let text = ListJobOverviewsRequest { text: Some("  NUMBER 1 ".into()), ..overviews(500) };
    assert_eq!(h.engine.list_job_overviews(text).await.unwrap().jobs[0].job_id, "mid");
    let by_id = ListJobOverviewsRequest { text: Some("ol".into()), ..overviews(500) };
    assert_eq!(h.engine.list_job_overviews(by_id).await.unwrap().jobs.len(), 1);
    let completed = ListJobOverviewsRequest { status: Some(JobStatus::Completed), ..overviews(500) };
    assert!(h.engine.list_job_overviews(completed).await.unwrap().jobs.is_empty());
    // Out of bounds: refused.
    assert_eq!(h.engine.list_job_overviews(overviews(0)).await.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn the_status_history_follows_the_executions_and_ends_at_completion() {
    let h = harness();
    h.thing("a").await;
    h.thing("b").await;
    h.job("j", &["a", "b"]).await.unwrap(); // t = NOW
    h.tick(10_000);
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await; // NOW + 10 s
    h.tick(10_000);
    h.mqtt("$aws/things/a/jobs/j/update", json!({"status": "SUCCEEDED"})).await; // NOW + 20 s
    h.mqtt("$aws/things/b/jobs/start-next", json!({})).await;
    h.tick(10_000);
    h.mqtt("$aws/things/b/jobs/j/update", json!({"status": "FAILED"})).await; // NOW + 30 s: completed

    h.tick(60_000);
    let r = JobStatusHistoryRequest { job_id: "j".into(), samples: 4 };
    let samples = h.engine.job_status_history(r).await.unwrap().samples;
    let at: Vec<i64> = samples.iter().map(|s| s.at - NOW).collect();
    assert_eq!(at, [0, 10_000, 20_000, 30_000], "from creation to completion, not to now");
    let c = |i: usize| {
        let d = &samples[i].counts;
        (
            d.number_of_queued_things,
            d.number_of_in_progress_things,
            d.number_of_succeeded_things,
            d.number_of_failed_things,
        )
    };
    assert_eq!(c(0), (2, 0, 0, 0));
    assert_eq!(c(1), (1, 1, 0, 0));
    assert_eq!(c(2), (0, 1, 1, 0));
    assert_eq!(c(3), (0, 0, 1, 1));
    let now = h.engine.describe_job(describe("j")).await.unwrap().job;
    assert_eq!(now.status, JobStatus::Completed);
    assert_eq!(samples[3].counts, now.job_process_details, "the last sample is jobProcessDetails");

    let missing = JobStatusHistoryRequest { job_id: "nope".into(), samples: 4 };
    assert_eq!(h.engine.job_status_history(missing).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}
