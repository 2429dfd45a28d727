//! The read rule: a read of one job waits for the durability of the batches that wrote that
//! job, and of no other (device updates of other jobs do not delay it); DescribeJob reads the
//! durable view and waits for nothing.

use std::future::Future;
use std::pin::pin;

use fleetjobs_core::model::{JobExecutionStatus, JobStatus};
use fleetjobs_core::ops::executions::CancelJobExecutionRequest;
use fleetjobs_core::ops::executions::ListJobExecutionsForJobRequest;
use fleetjobs_core::ops::jobs::CancelJobRequest;

use crate::tests::{describe, execution, harness, while_state_locked, Harness};

/// Whether `fut` is still waiting after being polled once (nothing else runs meanwhile).
async fn pending_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = fut;
    tokio::select! {
        biased;
        _ = &mut fut => false,
        _ = std::future::ready(()) => true,
    }
}

/// Jobs `a` (on `pi-a`) and `b` (on `pi-b` and `pi-c`), durable; then a cancel of `b`'s execution that
/// reaches memory and is held back by the store (not durable).
async fn pending_write_to_b() -> (Harness, tokio::task::JoinHandle<fleetjobs_core::ApiResult<()>>) {
    let h = harness();
    h.thing("pi-a").await;
    h.thing("pi-b").await;
    h.thing("pi-c").await;
    h.job("a", &["pi-a"]).await.unwrap();
    // Two things: canceling one execution leaves the job IN_PROGRESS (its record unwritten).
    h.job("b", &["pi-b", "pi-c"]).await.unwrap();
    h.hold();
    let engine = h.engine.clone();
    let cancel = tokio::spawn(async move {
        let r = CancelJobExecutionRequest {
            job_id: "b".into(),
            thing_name: "pi-b".into(),
            force: false,
            expected_version: None,
            status_details: None,
        };
        engine.cancel_job_execution(r).await.map(|_| ())
    });
    while h.held() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!cancel.is_finished(), "a write answers only once durable");
    (h, cancel)
}

#[tokio::test]
async fn a_read_of_one_job_does_not_wait_for_a_pending_write_to_another_jobs_executions() {
    let (h, cancel) = pending_write_to_b().await;
    // Each would wait forever if it waited for the held batch.
    let d = pin!(h.engine.describe_job(describe("a")));
    assert!(!pending_once(d).await, "describe-job of a waits for b's write");
    let e = pin!(h.engine.describe_job_execution(execution("a", "pi-a")));
    assert!(!pending_once(e).await, "describe-job-execution of a waits for b's write");
    let list = ListJobExecutionsForJobRequest { job_id: "a".into(), ..Default::default() };
    let l = pin!(h.engine.list_job_executions_for_job(list));
    assert!(!pending_once(l).await, "list-job-executions-for-job of a waits for b's write");
    h.release();
    cancel.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_read_of_a_job_whose_write_is_not_durable_waits_for_it() {
    let (h, cancel) = pending_write_to_b().await;
    let list = ListJobExecutionsForJobRequest { job_id: "b".into(), ..Default::default() };
    let mut l = pin!(h.engine.list_job_executions_for_job(list));
    assert!(pending_once(l.as_mut()).await, "list-job-executions-for-job of b shows a change that is not durable");
    let mut e = pin!(h.engine.describe_job_execution(execution("b", "pi-b")));
    assert!(pending_once(e.as_mut()).await, "describe-job-execution of b shows a change that is not durable");
    // A read that may look anywhere (the thing's executions) waits too.
    let things = fleetjobs_core::ops::executions::ListJobExecutionsForThingRequest {
        thing_name: "pi-b".into(),
        ..Default::default()
    };
    let mut t = pin!(h.engine.list_job_executions_for_thing(things));
    assert!(pending_once(t.as_mut()).await, "list-job-executions-for-thing shows a change that is not durable");
    h.release();
    let l = l.await.unwrap();
    assert_eq!(l.execution_summaries[0].job_execution_summary.status, JobExecutionStatus::Canceled);
    assert_eq!(e.await.unwrap().execution.status, JobExecutionStatus::Canceled);
    assert_eq!(t.await.unwrap().execution_summaries.len(), 1);
    cancel.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_job_created_but_not_durable_is_not_shown() {
    let h = harness();
    h.thing("pi").await;
    h.hold();
    let engine = h.engine.clone();
    let create = tokio::spawn(async move { engine.create_job(crate::tests::job_request("new", &["pi"])).await });
    while h.held() == 0 {
        tokio::task::yield_now().await;
    }
    // DescribeJob answers at once from what is durable; a read that waits shows it once durable.
    let e = h.engine.describe_job(describe("new")).await.unwrap_err();
    assert_eq!(e.code, fleetjobs_core::ErrorCode::ResourceNotFound, "a job not yet durable is shown");
    let mut list = pin!(h.engine.describe_job_execution(execution("new", "pi")));
    assert!(pending_once(list.as_mut()).await, "an execution not yet durable is shown");
    h.release();
    assert_eq!(list.await.unwrap().execution.job_id, "new");
    assert_eq!(h.engine.describe_job(describe("new")).await.unwrap().job.job_id, "new");
    create.await.unwrap().unwrap();
}

#[tokio::test]
async fn describe_job_answers_from_the_durable_view_while_the_jobs_executions_commit() {
    let (h, cancel) = pending_write_to_b().await;
    // The cancel of b's execution is in memory, not durable: describe-job of b answers at once
    // with the counts as stored, without it.
    let d = h.engine.describe_job(describe("b")).await.unwrap().job.job_process_details;
    assert_eq!((d.number_of_queued_things, d.number_of_canceled_things), (2, 0));
    h.release();
    cancel.await.unwrap().unwrap();
    let d = h.engine.describe_job(describe("b")).await.unwrap().job.job_process_details;
    assert_eq!((d.number_of_queued_things, d.number_of_canceled_things), (1, 1), "once durable, it shows");
}

#[tokio::test]
async fn describe_job_shows_the_stored_record_while_a_change_to_it_commits() {
    let h = harness();
    h.thing("pi").await;
    h.job("j", &["pi"]).await.unwrap();
    h.hold();
    let engine = h.engine.clone();
    let cancel = tokio::spawn(async move {
        engine.cancel_job(CancelJobRequest { job_id: "j".into(), ..Default::default() }).await.map(|_| ())
    });
    while h.held() == 0 {
        tokio::task::yield_now().await;
    }
    let d = h.engine.describe_job(describe("j")).await.unwrap().job;
    assert_eq!(d.status, JobStatus::InProgress, "describe-job shows a job status that is not durable");
    assert_eq!(d.job_process_details.number_of_queued_things, 1);
    h.release();
    cancel.await.unwrap().unwrap();
    let d = h.engine.describe_job(describe("j")).await.unwrap().job;
    assert_eq!(d.status, JobStatus::Canceled, "once its writer is answered, the change shows");
    assert_eq!(d.job_process_details.number_of_canceled_things, 1);
}

/// Every transaction holds the state lock, some for milliseconds (a CreateJob chunk, a device
/// update whose thread was descheduled): DescribeJob and the API's SigV4 check must not wait
/// for it.
#[tokio::test]
async fn describe_job_and_the_access_key_check_do_not_wait_for_the_state_lock() {
    let h = harness();
    h.thing("pi").await;
    h.job("j", &["pi"]).await.unwrap();
    let key = h.engine.ensure_admin_key().await.unwrap();
    let answer = while_state_locked(&h.engine, move |engine| {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let described = rt.block_on(engine.describe_job(describe("j"))).map(|d| d.job.job_id);
        (described, engine.secret_for(&key.access_key_id), key.secret_access_key)
    });
    let (described, secret, expected) = answer.expect("a read waited for the state lock");
    assert_eq!(described.unwrap(), "j");
    assert_eq!(secret, Some(expected));
}
