//! The `iot-jobs-data` HTTPS operations: the same rules, notifications and refusals as the Jobs
//! MQTT API, in the data plane's shapes.

use fleetjobs_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::tests::{harness, topics};

/// A request from its merged members, as the API crate builds it.
fn req<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn val<T: Serialize>(t: T) -> Value {
    serde_json::to_value(t).unwrap()
}

#[tokio::test]
async fn the_four_operations_answer_the_data_plane_shapes() {
    let mut h = harness();
    h.thing("pi").await;
    h.job("j1", &["pi"]).await.unwrap();
    h.job("j2", &["pi"]).await.unwrap();
    h.published();

    let e = h.engine.clone();
    let p = val(e.jobs_data_get_pending(req(json!({"thingName": "pi"}))).await.unwrap());
    assert_eq!(p["inProgressJobs"], json!([]));
    assert_eq!(p["queuedJobs"][0]["jobId"], "j1");
    assert!(p["queuedJobs"][0]["queuedAt"].is_i64(), "epoch seconds");

    let d = val(e.jobs_data_describe(req(json!({"thingName": "pi", "jobId": "$next"}))).await.unwrap());
    assert_eq!(d["execution"]["jobId"], "j1");
    assert_eq!(d["execution"]["jobDocument"], "{\"operation\":\"customJob\"}", "the document is a string");
    let d = val(e
        .jobs_data_describe(req(json!({"thingName": "pi", "jobId": "j2", "includeJobDocument": false})))
        .await
        .unwrap());
    assert!(d["execution"].get("jobDocument").is_none());

    let s = val(e
        .jobs_data_start_next(req(
            json!({"thingName": "pi", "statusDetails": {"step": "1"}, "stepTimeoutInMinutes": 5}),
        ))
        .await
        .unwrap());
    assert_eq!(s["execution"]["status"], "IN_PROGRESS");
    assert_eq!(s["execution"]["statusDetails"], json!({"step": "1"}));
    assert_eq!(s["execution"]["approximateSecondsBeforeTimedOut"], 300);
    assert!(s["execution"]["jobDocument"].is_string());
    assert!(h.published().is_empty(), "starting the head publishes nothing");

    let u = val(e
        .jobs_data_update(req(json!({"thingName": "pi", "jobId": "j1", "status": "SUCCEEDED",
            "expectedVersion": 2, "includeJobExecutionState": true, "includeJobDocument": true})))
        .await
        .unwrap());
    assert_eq!(u["executionState"], json!({"status": "SUCCEEDED", "statusDetails": {"step": "1"}, "versionNumber": 3}));
    assert!(u["jobDocument"].is_string());
    let p = h.published();
    assert!(topics(&p).contains(&"$aws/things/pi/jobs/notify-next"), "{p:?}");
    let next = p.iter().find(|(t, _)| t.ends_with("notify-next")).unwrap();
    assert_eq!(next.1["execution"]["jobId"], "j2");

    let u =
        val(e.jobs_data_update(req(json!({"thingName": "pi", "jobId": "j2", "status": "IN_PROGRESS"}))).await.unwrap());
    assert_eq!(u, json!({}), "nothing asked for, nothing answered");
    e.jobs_data_update(req(json!({"thingName": "pi", "jobId": "j2", "status": "SUCCEEDED"}))).await.unwrap();
    let none = val(e.jobs_data_start_next(req(json!({"thingName": "pi"}))).await.unwrap());
    assert_eq!(none, json!({}));
}

#[tokio::test]
async fn refusals_are_the_modeled_exceptions() {
    let h = harness();
    h.thing("pi").await;
    h.job("j1", &["pi"]).await.unwrap();
    let e = &h.engine;
    let err = e.jobs_data_get_pending(req(json!({"thingName": "ghost"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    let err = e.jobs_data_describe(req(json!({"thingName": "pi", "jobId": "nope"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    let err = e
        .jobs_data_update(req(json!({"thingName": "pi", "jobId": "j1", "status": "IN_PROGRESS", "expectedVersion": 7})))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition, "the model has no version-conflict exception");
    let err = e.jobs_data_update(req(json!({"thingName": "pi", "jobId": "j1", "status": "QUEUED"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition, "back to QUEUED");
    e.jobs_data_update(req(json!({"thingName": "pi", "jobId": "j1", "status": "FAILED"}))).await.unwrap();
    let err =
        e.jobs_data_update(req(json!({"thingName": "pi", "jobId": "j1", "status": "IN_PROGRESS"}))).await.unwrap_err();
    assert_eq!((err.code, err.code.http_status()), (ErrorCode::InvalidStateTransition, 409));
    let err = e.jobs_data_start_next(req(json!({"thingName": "pi", "stepTimeoutInMinutes": 0}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn a_refused_commit_answers_503_over_https_as_on_the_control_plane() {
    let h = harness();
    h.thing("pi").await;
    h.job("j1", &["pi"]).await.unwrap();
    h.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = h.engine.jobs_data_start_next(req(json!({"thingName": "pi"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServiceUnavailable, "{}", err.message);
}
