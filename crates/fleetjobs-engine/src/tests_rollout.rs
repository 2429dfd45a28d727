//! The rollout rules acting through the engine: `abortConfig` cancels a job whose failures
//! reach the threshold, `jobExecutionsRetryConfig` queues new attempts (also after a timeout).

use fleetjobs_core::job_config::{AbortConfig, RetryConfig, TimeoutConfig};
use fleetjobs_core::model::{JobExecutionStatus, JobStatus};
use fleetjobs_core::ops::executions::ListJobExecutionsForJobRequest;
use serde_json::json;

use crate::tests::{describe, harness, job_request, Harness};

async fn device_runs(h: &Harness, thing: &str, job: &str, status: &str) {
    h.mqtt(&format!("$aws/things/{thing}/jobs/start-next"), json!({})).await;
    let (t, r) = h.mqtt(&format!("$aws/things/{thing}/jobs/{job}/update"), json!({ "status": status })).await;
    assert!(t.ends_with("/accepted"), "{t} {r}");
}

async fn executions(h: &Harness, job: &str) -> Vec<(String, i64, JobExecutionStatus, i32)> {
    let r = ListJobExecutionsForJobRequest { job_id: job.into(), ..Default::default() };
    let list = h.engine.list_job_executions_for_job(r).await.unwrap().execution_summaries;
    let mut out: Vec<_> = list
        .into_iter()
        .map(|s| {
            let thing = s.thing_arn.rsplit('/').next().unwrap().to_string();
            let e = s.job_execution_summary;
            (thing, e.execution_number, e.status, e.retry_attempt)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn abort_cancels_the_job_and_its_queued_executions_at_the_threshold() {
    let mut h = harness();
    let things = ["t0", "t1", "t2", "t3"];
    for t in things {
        h.thing(t).await;
    }
    let mut r = job_request("bad-firmware", &things);
    r.abort_config = Some(
        serde_json::from_value::<AbortConfig>(json!({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
            "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]}))
        .unwrap(),
    );
    h.engine.create_job(r).await.unwrap();
    device_runs(&h, "t0", "bad-firmware", "FAILED").await;
    assert_eq!(
        h.engine.describe_job(describe("bad-firmware")).await.unwrap().job.status,
        JobStatus::InProgress,
        "1 executed: below the minimum"
    );
    h.mqtt("$aws/things/t2/jobs/start-next", json!({})).await;
    h.published();
    device_runs(&h, "t1", "bad-firmware", "SUCCEEDED").await;

    let job = h.engine.describe_job(describe("bad-firmware")).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Canceled, "1 of 2 failed: 50 % reached");
    assert_eq!(job.reason_code.as_deref(), Some("ABORT_CRITERIA_MET"));
    assert!(job.comment.as_deref().is_some_and(|c| c.contains("FAILED")), "{:?}", job.comment);
    let e = executions(&h, "bad-firmware").await;
    assert_eq!(e.iter().find(|x| x.0 == "t2").unwrap().2, JobExecutionStatus::InProgress, "IN_PROGRESS keeps running");
    assert_eq!(e.iter().find(|x| x.0 == "t3").unwrap().2, JobExecutionStatus::Canceled, "QUEUED is canceled");
    let topics: Vec<String> = h.published().into_iter().map(|(t, _)| t).collect();
    assert!(topics.contains(&"$aws/events/job/bad-firmware/canceled".to_string()), "{topics:?}");
    assert!(topics.contains(&"$aws/things/t3/jobs/notify-next".to_string()), "{topics:?}");
}

#[tokio::test]
async fn failures_are_retried_within_their_budget_and_rejections_never() {
    let h = harness();
    h.thing("a").await;
    h.thing("b").await;
    let mut r = job_request("flaky", &["a", "b"]);
    r.job_executions_retry_config = Some(
        serde_json::from_value::<RetryConfig>(
            json!({"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}),
        )
        .unwrap(),
    );
    h.engine.create_job(r).await.unwrap();
    for _ in 0..3 {
        device_runs(&h, "a", "flaky", "FAILED").await;
    }
    device_runs(&h, "b", "flaky", "REJECTED").await;
    use JobExecutionStatus::*;
    assert_eq!(
        executions(&h, "flaky").await,
        vec![
            ("a".into(), 1, Failed, 0),
            ("a".into(), 2, Failed, 1),
            ("a".into(), 3, Failed, 2),
            ("b".into(), 1, Rejected, 0),
        ],
        "two retries, then the budget is spent; REJECTED is final"
    );
    assert_eq!(h.engine.describe_job(describe("flaky")).await.unwrap().job.status, JobStatus::Completed);
}

#[tokio::test]
async fn a_timed_out_execution_is_retried_under_a_timed_out_criterion() {
    let h = harness();
    h.thing("a").await;
    let mut r = job_request("slow", &["a"]);
    r.timeout_config = Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(1) });
    r.job_executions_retry_config = Some(
        serde_json::from_value::<RetryConfig>(
            json!({"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]}),
        )
        .unwrap(),
    );
    h.engine.create_job(r).await.unwrap();
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    h.tick(60_000);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1);
    let (_, next) = h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    assert_eq!(next["execution"]["executionNumber"], 2, "{next}");
    h.tick(60_000);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1);
    use JobExecutionStatus::*;
    assert_eq!(executions(&h, "slow").await, vec![("a".into(), 1, TimedOut, 0), ("a".into(), 2, TimedOut, 1)]);
    assert_eq!(h.engine.describe_job(describe("slow")).await.unwrap().job.status, JobStatus::Completed);
}

fn minute_text(ms: i64) -> String {
    fleetjobs_rollout::windows::start_time(ms).unwrap()
}

const MINUTE: i64 = 60_000;

/// The harness clock, rounded up to the next whole minute plus `minutes`.
fn at_minute(h: &Harness, minutes: i64) -> i64 {
    let now = h.clock.load(std::sync::atomic::Ordering::SeqCst);
    (now / MINUTE + 1 + minutes) * MINUTE
}

async fn created(h: &Harness, job: &str) -> usize {
    executions(h, job).await.len()
}

#[tokio::test]
async fn the_rollout_rate_creates_executions_minute_by_minute_also_after_a_restart() {
    let h = harness();
    let things: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    for t in &things {
        h.thing(t).await;
    }
    let refs: Vec<&str> = things.iter().map(String::as_str).collect();
    let mut r = job_request("rated", &refs);
    r.job_executions_rollout_config = Some(serde_json::from_value(json!({"maximumPerMinute": 2})).unwrap());
    h.engine.create_job(r).await.unwrap();
    assert_eq!(created(&h, "rated").await, 2, "the first minute's batch at once");
    let job = h.engine.describe_job(describe("rated")).await.unwrap().job;
    assert!(job.is_concurrent);
    assert_eq!(job.job_process_details.processing_targets.as_ref().map(Vec::len), Some(5));

    h.tick(30_000);
    h.engine.advance_due_rollouts().await.unwrap();
    assert_eq!(created(&h, "rated").await, 2, "still the same minute");
    h.tick(30_000);
    let h = h.reopen();
    h.engine.advance_due_rollouts().await.unwrap();
    assert_eq!(created(&h, "rated").await, 4, "the next minute, after a restart");
    h.tick(MINUTE);
    h.engine.advance_due_rollouts().await.unwrap();
    assert_eq!(created(&h, "rated").await, 5);
    let job = h.engine.describe_job(describe("rated")).await.unwrap().job;
    assert!(!job.is_concurrent, "rolled out");
    assert_eq!(job.job_process_details.processing_targets, None);
    h.tick(MINUTE);
    assert_eq!(h.engine.advance_due_rollouts().await.unwrap(), 0, "nothing left to do");
}

#[tokio::test]
async fn a_scheduled_job_starts_at_its_start_time_and_cancels_at_its_end() {
    let h = harness();
    let things: Vec<String> = (0..60).map(|i| format!("s{i}")).collect();
    for t in &things {
        h.thing(t).await;
    }
    let refs: Vec<&str> = things.iter().map(String::as_str).collect();
    let (start, end) = (at_minute(&h, 40), at_minute(&h, 80));
    let mut r = job_request("scheduled", &refs);
    r.job_executions_rollout_config = Some(serde_json::from_value(json!({"maximumPerMinute": 1})).unwrap());
    r.scheduling_config = Some(
        serde_json::from_value(
            json!({"startTime": minute_text(start), "endTime": minute_text(end), "endBehavior": "CANCEL"}),
        )
        .unwrap(),
    );
    h.engine.create_job(r).await.unwrap();
    assert_eq!(h.engine.describe_job(describe("scheduled")).await.unwrap().job.status, JobStatus::Scheduled);
    assert_eq!(created(&h, "scheduled").await, 0);

    // Minute by minute, as the timer loop would.
    let mut now = h.clock.load(std::sync::atomic::Ordering::SeqCst);
    while now < start - MINUTE {
        h.tick(MINUTE);
        now += MINUTE;
        h.engine.advance_due_rollouts().await.unwrap();
    }
    assert_eq!(h.engine.describe_job(describe("scheduled")).await.unwrap().job.status, JobStatus::Scheduled);
    while now < end + MINUTE {
        h.tick(MINUTE);
        now += MINUTE;
        h.engine.advance_due_rollouts().await.unwrap();
    }
    let job = h.engine.describe_job(describe("scheduled")).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Canceled, "endBehavior CANCEL at endTime");
    assert!(!job.is_concurrent && job.job_process_details.processing_targets.is_none(), "the rollout ended");
    assert!(job.comment.as_deref().is_some_and(|c| c.contains("endTime")), "{:?}", job.comment);
    let list = executions(&h, "scheduled").await;
    assert!((39..=41).contains(&list.len()), "one per minute from start to end, not 60: {}", list.len());
    assert!(list.iter().all(|e| e.2 == JobExecutionStatus::Canceled), "QUEUED ones canceled");
}

#[tokio::test]
async fn maintenance_windows_hold_the_rollout_until_they_open() {
    let h = harness();
    h.thing("w").await;
    let start = at_minute(&h, 30);
    let mut r = job_request("windowed", &["w"]);
    // Every day at 06:00 UTC for an hour; the harness clock is 2023-11-14 22:13 UTC.
    r.scheduling_config = Some(
        serde_json::from_value(json!({"startTime": minute_text(start),
            "maintenanceWindows": [{"startTime": "cron(0 6 * * ? *)", "durationInMinutes": 60}]}))
        .unwrap(),
    );
    h.engine.create_job(r).await.unwrap();
    let job = h.engine.describe_job(describe("windowed")).await.unwrap().job;
    let rollouts = job.scheduled_job_rollouts.unwrap();
    assert_eq!(rollouts.len(), 7);
    assert_eq!(rollouts[0].start_time, "2023-11-15T06:00");
    h.tick(start - h.clock.load(std::sync::atomic::Ordering::SeqCst));
    h.engine.advance_due_rollouts().await.unwrap();
    assert_eq!(h.engine.describe_job(describe("windowed")).await.unwrap().job.status, JobStatus::InProgress);
    assert_eq!(created(&h, "windowed").await, 0, "started, but outside its window");
    let six = fleetjobs_core::validate::date_time("2023-11-15T06:00").unwrap();
    h.tick(six - h.clock.load(std::sync::atomic::Ordering::SeqCst));
    h.engine.advance_due_rollouts().await.unwrap();
    assert_eq!(created(&h, "windowed").await, 1, "created when the window opened");
}

#[tokio::test]
async fn a_job_is_not_complete_while_its_rollout_still_has_targets() {
    let h = harness();
    h.thing("c0").await;
    h.thing("c1").await;
    let mut r = job_request("paced", &["c0", "c1"]);
    r.job_executions_rollout_config = Some(serde_json::from_value(json!({"maximumPerMinute": 1})).unwrap());
    h.engine.create_job(r).await.unwrap();
    let first = executions(&h, "paced").await[0].0.clone();
    device_runs(&h, &first, "paced", "SUCCEEDED").await;
    assert_eq!(
        h.engine.describe_job(describe("paced")).await.unwrap().job.status,
        JobStatus::InProgress,
        "one target still waits"
    );
    h.tick(MINUTE);
    h.engine.advance_due_rollouts().await.unwrap();
    let second = executions(&h, "paced").await.into_iter().find(|e| e.0 != first).unwrap().0;
    device_runs(&h, &second, "paced", "SUCCEEDED").await;
    assert_eq!(h.engine.describe_job(describe("paced")).await.unwrap().job.status, JobStatus::Completed);
}

#[tokio::test]
async fn a_scheduled_job_raises_the_pending_list_cap_from_10_to_15() {
    let h = harness();
    h.thing("busy").await;
    for i in 0..12 {
        h.engine.create_job(job_request(&format!("plain-{i:02}"), &["busy"])).await.unwrap();
    }
    let (_, pending) = h.mqtt("$aws/things/busy/jobs/get", json!({})).await;
    assert_eq!(pending["queuedJobs"].as_array().unwrap().len(), 10);

    let start = at_minute(&h, 31);
    let mut r = job_request("scheduled", &["busy"]);
    r.scheduling_config = Some(serde_json::from_value(json!({"startTime": minute_text(start)})).unwrap());
    h.engine.create_job(r).await.unwrap();
    h.tick(start - h.clock.load(std::sync::atomic::Ordering::SeqCst));
    h.engine.advance_due_rollouts().await.unwrap();
    let (_, pending) = h.mqtt("$aws/things/busy/jobs/get", json!({})).await;
    assert_eq!(pending["queuedJobs"].as_array().unwrap().len(), 13, "all 13 within the scheduled cap of 15");
}
