//! Timer tests: job execution timeouts on a fake clock, through the engine and its store.

use fleetjobs_core::job_config::TimeoutConfig;
use fleetjobs_core::model::{JobExecutionStatus, JobStatus};
use serde_json::json;

use crate::tests::{describe, execution, harness, job_request, Harness};

const MINUTE: i64 = 60_000;

async fn job_with_timeout(h: &Harness, id: &str, thing: &str, minutes: Option<i64>) {
    let mut r = job_request(id, &[thing]);
    r.timeout_config = minutes.map(|m| TimeoutConfig { in_progress_timeout_in_minutes: Some(m) });
    h.engine.create_job(r).await.unwrap();
}

async fn status(h: &Harness, job: &str, thing: &str) -> JobExecutionStatus {
    h.engine.describe_job_execution(execution(job, thing)).await.unwrap().execution.status
}

#[tokio::test]
async fn the_in_progress_timer_times_an_execution_out_once() {
    let mut h = harness();
    h.thing("pi").await;
    job_with_timeout(&h, "j", "pi", Some(1)).await;
    let (_, started) = h.mqtt("$aws/things/pi/jobs/start-next", json!({})).await;
    assert_eq!(started["execution"]["approximateSecondsBeforeTimedOut"], 60);
    let d = h.engine.describe_job_execution(execution("j", "pi")).await.unwrap();
    assert_eq!(d.execution.approximate_seconds_before_timed_out, Some(60));
    h.published();

    h.tick(MINUTE - 1);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0, "not yet");
    assert_eq!(status(&h, "j", "pi").await, JobExecutionStatus::InProgress);
    h.tick(1);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(status(&h, "j", "pi").await, JobExecutionStatus::TimedOut);
    let topics: Vec<String> = h.published().into_iter().map(|(t, _)| t).collect();
    assert!(topics.contains(&"$aws/events/jobExecution/j/timed_out".to_string()), "{topics:?}");
    assert!(topics.contains(&"$aws/things/pi/jobs/notify-next".to_string()), "{topics:?}");
    let job = h.engine.describe_job(describe("j")).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Completed, "its only execution is terminal");
    assert_eq!(job.job_process_details.number_of_timed_out_things, 1);

    h.tick(MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0, "nothing times out twice");
    let (t, r) = h.mqtt("$aws/things/pi/jobs/j/update", json!({"status": "SUCCEEDED"})).await;
    assert_eq!(
        (t.as_str(), r["code"].as_str()),
        ("$aws/things/pi/jobs/j/update/rejected", Some("InvalidStateTransition"))
    );
}

#[tokio::test]
async fn step_timers_replace_each_other_and_minus_one_cancels() {
    let h = harness();
    h.thing("pi").await;
    job_with_timeout(&h, "j", "pi", None).await;
    h.mqtt("$aws/things/pi/jobs/start-next", json!({"stepTimeoutInMinutes": 2})).await;
    h.tick(MINUTE);
    let (_, r) =
        h.mqtt("$aws/things/pi/jobs/j/update", json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 5})).await;
    assert!(r.get("code").is_none(), "{r}");
    h.tick(2 * MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0, "the first step timer was replaced");
    h.mqtt("$aws/things/pi/jobs/j/update", json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1})).await;
    h.tick(10 * MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0, "-1 cancelled it");
    assert_eq!(status(&h, "j", "pi").await, JobExecutionStatus::InProgress);
    h.mqtt("$aws/things/pi/jobs/j/update", json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1})).await;
    h.tick(MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(status(&h, "j", "pi").await, JobExecutionStatus::TimedOut);
}

#[tokio::test]
async fn timers_continue_after_a_restart() {
    let h = harness();
    h.thing("a").await;
    h.thing("b").await;
    job_with_timeout(&h, "ja", "a", Some(5)).await;
    job_with_timeout(&h, "jb", "b", None).await;
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    h.mqtt("$aws/things/b/jobs/start-next", json!({"stepTimeoutInMinutes": 3})).await;
    h.tick(2 * MINUTE);

    let h = h.reopen();
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0);
    h.tick(MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1, "the step timer kept its deadline");
    assert_eq!(status(&h, "jb", "b").await, JobExecutionStatus::TimedOut);
    assert_eq!(status(&h, "ja", "a").await, JobExecutionStatus::InProgress);

    h.tick(10 * MINUTE);
    let h = h.reopen();
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 1, "an overdue timer fires at once after a restart");
    assert_eq!(status(&h, "ja", "a").await, JobExecutionStatus::TimedOut);
    let h = h.reopen();
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0, "and only once");
}

#[tokio::test]
async fn a_finished_execution_stops_its_timer() {
    let h = harness();
    h.thing("pi").await;
    job_with_timeout(&h, "j", "pi", Some(1)).await;
    h.mqtt("$aws/things/pi/jobs/start-next", json!({})).await;
    h.mqtt("$aws/things/pi/jobs/j/update", json!({"status": "SUCCEEDED"})).await;
    h.tick(2 * MINUTE);
    assert_eq!(h.engine.fire_due_timers().await.unwrap(), 0);
    assert_eq!(status(&h, "j", "pi").await, JobExecutionStatus::Succeeded);
    assert_eq!(
        h.engine
            .describe_job_execution(execution("j", "pi"))
            .await
            .unwrap()
            .execution
            .approximate_seconds_before_timed_out,
        None
    );
}
