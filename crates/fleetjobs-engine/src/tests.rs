//! Engine tests: real SQLite store in a temp dir, a fixed clock, the outbox observed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::model::{JobExecutionStatus, JobStatus};
use fleetjobs_core::ops::executions::*;
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ops::things::*;
use fleetjobs_core::ErrorCode;
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::{Record, SqliteStore, StoreError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::*;

pub(crate) struct Harness {
    pub(crate) engine: Arc<Engine>,
    outbox: Outbox,
    dir: PathBuf,
    pub(crate) clock: Arc<AtomicI64>,
    ca: Arc<CertificateAuthority>,
    /// While set, the store refuses every commit as a full disk does.
    pub(crate) full: Arc<AtomicBool>,
    /// While `Some`, the store holds batches back (not durable yet) in submission order.
    pub(crate) held: Arc<std::sync::Mutex<Option<Vec<Batch>>>>,
    pub(crate) submitted: Submissions,
}

/// The real SQLite store, with a switch that makes it refuse commits as a full disk does,
/// keeping the store's contract: refused batches still settle in submission order (they pass
/// through the writer's queue empty), and later batches of a failed epoch are refused too.
struct FlakyStore {
    inner: SqliteStore,
    pub(crate) full: Arc<AtomicBool>,
    failed_epoch: AtomicU64,
    held: Arc<std::sync::Mutex<Option<Vec<Batch>>>>,
    submitted: Submissions,
}

/// Each batch submitted: the name of the thread that submitted it, and its mutations.
pub(crate) type Submissions = Arc<std::sync::Mutex<Vec<(Option<String>, usize)>>>;

impl Store for FlakyStore {
    fn load(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.load()
    }

    fn submit(&self, batch: Batch) {
        let thread = std::thread::current().name().map(String::from);
        self.submitted.lock().unwrap().push((thread, batch.mutations.len()));
        let mut held = self.held.lock().unwrap();
        if let Some(held) = held.as_mut() {
            held.push(batch);
            return;
        }
        let refusal = if self.full.load(Ordering::SeqCst) {
            self.failed_epoch.fetch_max(batch.epoch, Ordering::SeqCst);
            Some(StoreError::Full("database or disk is full".into()))
        } else if batch.epoch <= self.failed_epoch.load(Ordering::SeqCst) {
            Some(StoreError::Aborted)
        } else {
            None
        };
        match refusal {
            None => self.inner.submit(batch),
            Some(error) => {
                let on_durable = batch.on_durable;
                let refuse = Box::new(move |_| on_durable(Err(error)));
                self.inner.submit(Batch { epoch: batch.epoch, mutations: vec![], on_durable: refuse });
            }
        }
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetjobs-engine-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open(dir: PathBuf, ca: Arc<CertificateAuthority>, clock: Arc<AtomicI64>) -> Harness {
    let full = Arc::new(AtomicBool::new(false));
    let held = Arc::new(std::sync::Mutex::new(None));
    let submitted = Arc::default();
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open(&dir.join("db.sqlite")).unwrap(),
        full: full.clone(),
        failed_epoch: AtomicU64::new(0),
        held: held.clone(),
        submitted: Arc::clone(&submitted),
    });
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost:8883".into(),
        jobs_endpoint: "localhost:8443".into(),
        http_endpoint: "http://127.0.0.1:8080".into(),
    };
    let c = clock.clone();
    let (engine, outbox) =
        Engine::open(config, store, ca.clone(), [3; 32], Arc::new(move || c.load(Ordering::SeqCst))).unwrap();
    Harness { engine, outbox, dir, clock, ca, full, held, submitted }
}

pub(crate) fn harness() -> Harness {
    open(temp_dir(), Arc::new(CertificateAuthority::generate().unwrap()), Arc::new(AtomicI64::new(1_700_000_000_000)))
}

fn thing_request(name: impl Into<String>) -> CreateThingRequest {
    CreateThingRequest { thing_name: name.into(), ..Default::default() }
}

fn principal_request(thing: &str, principal: &str) -> ThingPrincipalRequest {
    ThingPrincipalRequest { thing_name: thing.into(), principal: principal.into(), thing_principal_type: None }
}

/// CreateJob of a custom-job document for `things` (by name).
pub(crate) fn job_request(id: &str, things: &[&str]) -> CreateJobRequest {
    CreateJobRequest {
        job_id: id.into(),
        targets: things.iter().map(|t| format!("arn:aws:iot:::thing/{t}")).collect(),
        document: Some("{\"operation\":\"customJob\"}".into()),
        ..Default::default()
    }
}

pub(crate) fn describe(id: &str) -> DescribeJobRequest {
    DescribeJobRequest { job_id: id.into(), ..Default::default() }
}

pub(crate) fn execution(job: &str, thing: &str) -> DescribeJobExecutionRequest {
    DescribeJobExecutionRequest { job_id: job.into(), thing_name: thing.into(), execution_number: None }
}

/// A request from its JSON members, as the HTTP adapter deserializes it (a member of the wrong
/// type is refused there, before the engine).
fn request<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::invalid(e.to_string()))
}

impl Harness {
    pub(crate) fn reopen(self) -> Harness {
        let Harness { dir, ca, clock, engine, .. } = self;
        drop(engine);
        open(dir, ca, clock)
    }

    /// Hold back every batch submitted from now on (they are not durable until [`Self::release`]).
    pub(crate) fn hold(&self) {
        *self.held.lock().unwrap() = Some(vec![]);
    }

    /// How many batches are held back.
    pub(crate) fn held(&self) -> usize {
        self.held.lock().unwrap().as_ref().map_or(0, Vec::len)
    }

    /// Hand the held batches to the store, in order, and stop holding (no write can slip in
    /// between: the engine submits from this runtime's tasks, and this does not yield).
    pub(crate) fn release(&self) {
        let held = self.held.lock().unwrap().take();
        for batch in held.unwrap_or_default() {
            self.engine.store.submit(batch);
        }
    }

    pub(crate) fn tick(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// The certificates disconnected since the last call (other commands are dropped).
    pub(crate) fn disconnects(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.outbox.try_recv().ok())
            .filter_map(|c| match c {
                DeviceCommand::DisconnectCertificate { certificate_id } => Some(certificate_id),
                DeviceCommand::Publish { .. } | DeviceCommand::Event(_) => None,
            })
            .collect()
    }

    /// Everything published since the last call: (topic, payload).
    pub(crate) fn published(&mut self) -> Vec<(String, Value)> {
        let mut out = vec![];
        while let Ok(c) = self.outbox.try_recv() {
            if let DeviceCommand::Publish { topic, payload } = c {
                out.push((topic, serde_json::from_slice(&payload).unwrap()));
            }
        }
        out
    }

    pub(crate) async fn thing(&self, name: &str) {
        self.engine.create_thing(thing_request(name)).await.unwrap();
    }

    pub(crate) async fn job(&self, id: &str, things: &[&str]) -> Result<CreateJobResponse, ApiError> {
        self.engine.create_job(job_request(id, things)).await
    }

    pub(crate) async fn mqtt(&self, topic: &str, payload: Value) -> (String, Value) {
        let replies = self.engine.handle_jobs_request(topic, payload.to_string().as_bytes()).await.unwrap();
        assert_eq!(replies.len(), 1);
        let (t, p) = &replies[0];
        (t.clone(), serde_json::from_slice(p).unwrap())
    }
}

/// `f`'s answer, run on a thread of its own while another thread holds the engine's state
/// lock; `None` if it did not answer within 30 s (it waited for the lock). The lock is
/// released either way, so that both threads end.
pub(crate) fn while_state_locked<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(Arc<Engine>) -> T + Send + 'static,
) -> Option<T> {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let held = engine.clone();
    let holder = std::thread::spawn(move || {
        let _guard = held.state.lock().unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    locked_rx.recv().unwrap();
    let (answer_tx, answer_rx) = std::sync::mpsc::channel();
    let engine = engine.clone();
    let worker = std::thread::spawn(move || {
        let _ = answer_tx.send(f(engine));
    });
    let answer = answer_rx.recv_timeout(std::time::Duration::from_secs(30)).ok();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    worker.join().unwrap();
    answer
}

pub(crate) fn topics(published: &[(String, Value)]) -> Vec<&str> {
    published.iter().map(|(t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn tutorial_flow_notifies_completes_and_emits_events() {
    let mut h = harness();
    h.thing("pi").await;
    h.published();
    h.job("job1", &["pi"]).await.unwrap();
    let p = h.published();
    assert_eq!(topics(&p), ["$aws/things/pi/jobs/notify", "$aws/things/pi/jobs/notify-next"]);
    assert_eq!(p[1].1["execution"]["jobDocument"]["operation"], "customJob");
    assert_eq!(p[1].1["execution"]["status"], "QUEUED");

    let (t, r) = h.mqtt("$aws/things/pi/jobs/$next/get", json!({"clientToken": "c1"})).await;
    assert_eq!(t, "$aws/things/pi/jobs/$next/get/accepted");
    assert_eq!((r["clientToken"].as_str(), r["execution"]["jobId"].as_str()), (Some("c1"), Some("job1")));

    h.tick(1000);
    let (t, _) = h
        .mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1"}}))
        .await;
    assert_eq!(t, "$aws/things/pi/jobs/job1/update/accepted");
    assert!(h.published().is_empty(), "QUEUED -> IN_PROGRESS of the head publishes nothing");

    let (_, r) = h
        .mqtt(
            "$aws/things/pi/jobs/job1/update",
            json!({"status": "SUCCEEDED", "includeJobExecutionState": true, "expectedVersion": "2"}),
        )
        .await;
    assert_eq!(r["executionState"], json!({"status": "SUCCEEDED", "statusDetails": {"step": "1"}, "versionNumber": 3}));
    let p = h.published();
    assert_eq!(
        topics(&p),
        [
            "$aws/things/pi/jobs/notify",
            "$aws/things/pi/jobs/notify-next",
            "$aws/events/jobExecution/job1/succeeded",
            "$aws/events/job/job1/completed",
        ]
    );
    assert_eq!(p[0].1["jobs"], json!({}));
    assert!(p[1].1.get("execution").is_none());
    assert_eq!(p[3].1["jobProcessDetails"]["numberOfSucceededThings"], 1);

    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Completed);
    assert_eq!(d.job.job_process_details.number_of_succeeded_things, 1);
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let h = harness();
    h.thing("pi").await;
    h.job("job1", &["pi"]).await.unwrap();
    h.mqtt("$aws/things/pi/jobs/start-next", json!({})).await;
    let key = h.engine.ensure_admin_key().await.unwrap();
    let h = h.reopen();
    assert_eq!(h.engine.secret_for(&key.access_key_id), Some(key.secret_access_key));
    let e = h.engine.describe_job_execution(execution("job1", "pi")).await.unwrap();
    assert_eq!(e.execution.status, JobExecutionStatus::InProgress);
    assert_eq!(e.execution.version_number, 2);
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.job_process_details.number_of_in_progress_things, 1, "derived counts are rebuilt");
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let mut h = harness();
    h.thing("pi").await;
    h.job("job1", &["pi"]).await.unwrap();
    h.published();
    let dup = h.job("job1", &["pi"]).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::ResourceAlreadyExists);
    assert_eq!(dup.resource_id.as_deref(), Some("job1"));
    assert_eq!(h.job("bad id!", &["pi"]).await.unwrap_err().code, ErrorCode::InvalidRequest);
    assert_eq!(h.job("job2", &["ghost"]).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let many: Vec<&str> = vec!["pi"; 101];
    assert_eq!(h.job("job3", &many).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(33_000));
    let err = h.engine.create_job(CreateJobRequest { document: Some(big), ..job_request("job4", &["pi"]) }).await;
    assert_eq!(err.unwrap_err().code, ErrorCode::InvalidRequest);
    assert!(h.published().is_empty());
    let list = h.engine.list_jobs(ListJobsRequest::default()).await.unwrap();
    assert_eq!(list.jobs.len(), 1);

    // Device-side rejections carry the AWS codes and leave the execution as it was.
    let (t, r) =
        h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "IN_PROGRESS", "expectedVersion": 5})).await;
    assert_eq!((t.as_str(), r["code"].as_str()), ("$aws/things/pi/jobs/job1/update/rejected", Some("VersionMismatch")));
    assert_eq!(r["executionState"]["versionNumber"], 1);
    h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "SUCCEEDED"})).await;
    let (_, r) = h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "IN_PROGRESS", "clientToken": "t"})).await;
    assert_eq!((r["code"].as_str(), r["clientToken"].as_str()), (Some("InvalidStateTransition"), Some("t")));
    assert_eq!(r["executionState"]["status"], "SUCCEEDED");
    let replies = h.engine.handle_jobs_request("$aws/things/pi/jobs/job1/update", b"{not json").await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&replies[0].1).unwrap()["code"], "InvalidJson");
    let (_, r) = h.mqtt("$aws/things/pi/jobs/frobnicate", json!({"clientToken": "tok"})).await;
    assert_eq!((r["code"].as_str(), r["clientToken"].as_str()), (Some("InvalidTopic"), Some("tok")));
    let (_, r) = h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "CANCELED"})).await;
    assert_eq!(r["code"], "InvalidRequest");
    let (_, r) = h.mqtt("$aws/things/pi/jobs/nojob/get", json!({})).await;
    assert_eq!(r["code"], "ResourceNotFound");
    assert!(h.engine.handle_jobs_request("testTopic", b"{}").await.is_none());
}

#[tokio::test]
async fn cancel_and_delete_follow_the_state_rules() {
    let mut h = harness();
    for t in ["a", "b"] {
        h.thing(t).await;
    }
    h.job("job1", &["a", "b"]).await.unwrap();
    h.mqtt("$aws/things/a/jobs/start-next", json!({})).await;
    h.published();
    let delete = || DeleteJobRequest { job_id: "job1".into(), ..Default::default() };
    let err = h.engine.delete_job(delete()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);

    let cancel = CancelJobRequest { job_id: "job1".into(), comment: Some("stop".into()), ..Default::default() };
    h.engine.cancel_job(cancel).await.unwrap();
    let p = h.published();
    assert_eq!(
        topics(&p),
        [
            "$aws/things/b/jobs/notify",
            "$aws/things/b/jobs/notify-next",
            "$aws/events/job/job1/cancellation_in_progress",
            "$aws/events/jobExecution/job1/canceled",
            "$aws/events/job/job1/canceled",
        ]
    );
    let a = h.engine.describe_job_execution(execution("job1", "a")).await.unwrap();
    assert_eq!(a.execution.status, JobExecutionStatus::InProgress, "a non-forced cancel leaves IN_PROGRESS running");

    let cancel = |force, expected_version| CancelJobExecutionRequest {
        job_id: "job1".into(),
        thing_name: "a".into(),
        force,
        expected_version,
        status_details: None,
    };
    let err = h.engine.cancel_job_execution(cancel(false, None)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    let err = h.engine.cancel_job_execution(cancel(true, Some(9))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::VersionConflict);
    h.engine.cancel_job_execution(cancel(true, None)).await.unwrap();
    let (_, r) = h.mqtt("$aws/things/a/jobs/job1/update", json!({"status": "SUCCEEDED"})).await;
    assert_eq!(r["code"], "InvalidStateTransition", "a force-canceled device is told on its next update");

    let delete_b = || DeleteJobExecutionRequest {
        job_id: "job1".into(),
        thing_name: "b".into(),
        execution_number: 1,
        ..Default::default()
    };
    h.engine.delete_job_execution(delete_b()).await.unwrap();
    let err = h.engine.delete_job_execution(delete_b()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    h.engine.delete_job(delete()).await.unwrap();
    let err = h.engine.describe_job(describe("job1")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    let (_, r) = h.mqtt("$aws/things/a/jobs/job1/get", json!({})).await;
    assert_eq!(r["code"], "ResourceNotFound");
}

#[tokio::test]
async fn configs_are_validated_and_stored() {
    let h = harness();
    h.thing("pi").await;
    let base = || json!({"targets": ["arn:aws:iot:::thing/pi"], "document": "{}"});
    let with = |id: &str, key: &str, v: Value| {
        let mut b = base();
        b["jobId"] = json!(id);
        b[key] = v;
        request::<CreateJobRequest>(b).unwrap()
    };
    for (key, bad) in [
        (
            "abortConfig",
            json!({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 101, "minNumberOfExecutedThings": 1}]}),
        ),
        ("abortConfig", json!({"criteriaList": []})),
        ("jobExecutionsRolloutConfig", json!({"maximumPerMinute": 1001})),
        (
            "jobExecutionsRolloutConfig",
            json!({"exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 1.05, "rateIncreaseCriteria": {"numberOfNotifiedThings": 5}}}),
        ),
        ("timeoutConfig", json!({"inProgressTimeoutInMinutes": 10081})),
        ("jobExecutionsRetryConfig", json!({"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 11}]})),
        ("presignedUrlConfig", json!({"expiresInSec": 30})),
        ("schedulingConfig", json!({"startTime": "2023-11-14T22:13"})),
        (
            "schedulingConfig",
            json!({"startTime": "2023-11-15T10:00", "maintenanceWindows": [{"startTime": "every day", "durationInMinutes": 60}]}),
        ),
    ] {
        let err = h.engine.create_job(with("bad", key, bad.clone())).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{key} {bad}");
    }
    let timeout = json!({"inProgressTimeoutInMinutes": 30});
    h.engine.create_job(with("ok", "timeoutConfig", timeout.clone())).await.unwrap();
    let d = h.engine.describe_job(describe("ok")).await.unwrap();
    assert_eq!(serde_json::to_value(&d.job.configs).unwrap(), json!({ "timeoutConfig": timeout }));
    // The harness clock is 2023-11-14T22:13:20Z: one day ahead is a valid schedule.
    let schedule = json!({"startTime": "2023-11-15T22:13", "endTime": "2023-11-16T22:13", "endBehavior": "CANCEL"});
    h.engine.create_job(with("later", "schedulingConfig", schedule)).await.unwrap();
    let d = h.engine.describe_job(describe("later")).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Scheduled);
    assert_eq!(d.job.job_process_details.number_of_queued_things, 0, "no execution before the start time");
}

#[tokio::test]
async fn typed_configs_echo_as_sent_and_survive_a_restart() {
    let h = harness();
    h.thing("pi").await;
    // The harness clock is 2023-11-14T22:13:20Z.
    let configs = json!({
        "presignedUrlConfig": {"roleArn": "arn:aws:iam::123456789012:role/S3Download", "expiresInSec": 600},
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 100, "exponentialRate":
            {"baseRatePerMinute": 10, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfSucceededThings": 5}}},
        "abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 12.5,
            "minNumberOfExecutedThings": 3}]},
        "timeoutConfig": {"inProgressTimeoutInMinutes": 60},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]},
        "schedulingConfig": {"startTime": "2023-11-15T22:13", "endTime": "2023-11-20T22:13", "endBehavior": "STOP_ROLLOUT",
            "maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]},
    });
    let mut request_members = json!({"jobId": "all", "targets": ["arn:aws:iot:::thing/pi"], "document": "{}"});
    request_members.as_object_mut().unwrap().extend(configs.as_object().unwrap().clone());
    h.engine.create_job(request(request_members).unwrap()).await.unwrap();
    let echoed = |d: &DescribeJobResponse| serde_json::to_value(&d.job.configs).unwrap();
    let d = h.engine.describe_job(describe("all")).await.unwrap();
    assert_eq!(echoed(&d), configs);
    assert_eq!(echoed(&d)["jobExecutionsRolloutConfig"]["exponentialRate"]["incrementFactor"].to_string(), "2");

    // A maintenance window that only looks like cron, and UpdateJob raising retries, change nothing.
    let bad_cron = json!({"schedulingConfig": {"startTime": "2023-11-15T22:13",
        "maintenanceWindows": [{"startTime": "cron(0 2 * * SAT *)", "durationInMinutes": 60}]},
        "jobId": "cron", "targets": ["arn:aws:iot:::thing/pi"], "document": "{}"});
    let err = h.engine.create_job(request(bad_cron).unwrap()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("Day-of-month"), "{}", err.message);
    for bad in [
        json!({"jobId": "all", "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}}),
        json!({"jobId": "all", "abortConfig": {"criteriaList": [{"failureType": "NOPE", "action": "CANCEL",
            "thresholdPercentage": 1, "minNumberOfExecutedThings": 1}]}}),
        json!({"jobId": "all", "timeoutConfig": {"inProgressTimeoutInMinutes": "60"}}),
    ] {
        let err = match request::<UpdateJobRequest>(bad.clone()) {
            Ok(r) => h.engine.update_job(r).await.unwrap_err(),
            Err(refused_by_type) => refused_by_type,
        };
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{bad}");
    }
    let update = request(json!({"jobId": "all", "timeoutConfig": {"inProgressTimeoutInMinutes": 5},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 0}]}}));
    h.engine.update_job(update.unwrap()).await.unwrap();
    let mut expected = configs.clone();
    expected["timeoutConfig"] = json!({"inProgressTimeoutInMinutes": 5});
    expected["jobExecutionsRetryConfig"] =
        json!({"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 0}]});

    let h = h.reopen();
    let d = h.engine.describe_job(describe("all")).await.unwrap();
    assert_eq!(echoed(&d), expected, "the store keeps the typed configs");
    let err = h.engine.describe_job(describe("cron")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn event_configuration_switches_events() {
    use fleetjobs_core::ops::event_configurations::*;
    let switch = |event_type: &str, enabled: bool| UpdateEventConfigurationsRequest {
        event_configurations: Some([(event_type.to_string(), Configuration { enabled: Some(enabled) })].into()),
    };
    let mut h = harness();
    h.thing("pi").await;
    let d = h.engine.describe_event_configurations(DescribeEventConfigurationsRequest {}).await.unwrap();
    assert_eq!(d.event_configurations["JOB"].enabled, Some(true));
    assert_eq!(d.event_configurations["THING"].enabled, Some(false));
    h.engine.update_event_configurations(switch("JOB_EXECUTION", false)).await.unwrap();
    h.job("job1", &["pi"]).await.unwrap();
    h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "FAILED"})).await;
    let p = h.published();
    assert!(!topics(&p).iter().any(|t| t.starts_with("$aws/events/jobExecution")));
    assert!(topics(&p).contains(&"$aws/events/job/job1/completed"));
    let err = h.engine.update_event_configurations(switch("NOPE", true)).await;
    assert_eq!(err.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn devices_authenticate_by_active_certificate_and_policy() {
    use fleetjobs_core::ops::{certificates::*, policies::*};
    let h = harness();
    h.thing("pi").await;
    let created = h.engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await;
    let created = created.unwrap();
    let arn = created.certificate_arn.clone();
    let der = pem_to_der(&created.certificate_pem);
    let err = h.engine.authenticate_device(Some(&der), "pi").unwrap_err();
    assert!(matches!(err, DeviceAuthError::ConnectDenied(_)), "no policy, no access");

    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"}]});
    let p = CreatePolicyRequest { policy_name: "p".into(), policy_document: policy.to_string() };
    h.engine.create_policy(p).await.unwrap();
    h.engine.attach_policy(PolicyTargetRequest { policy_name: "p".into(), target: arn.clone() }).await.unwrap();
    assert!(h.engine.authenticate_device(Some(&der), "pi").is_err(), "thing not attached yet: no ThingName variable");
    h.engine.attach_thing_principal(principal_request("pi", &arn)).await.unwrap();
    let things = h
        .engine
        .list_principal_things(ListPrincipalThingsRequest { principal: arn.to_string(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(things.things, ["pi"]);
    let session = h.engine.authenticate_device(Some(&der), "pi").unwrap();
    use fleetjobs_core::policy::IotAction;
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "$aws/things/pi/jobs/get"));
    assert!(h.engine.authorize_device(&session, IotAction::Receive, "$aws/things/pi/jobs/notify-next"));
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "$aws/things/other/jobs/get"));

    // Detaching the thing takes what the attachment gave at the live session's next action
    // (its publishes and its notifications), and re-attaching gives it back.
    h.engine.detach_thing_principal(principal_request("pi", &arn)).await.unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "$aws/things/pi/jobs/get"));
    assert!(!h.engine.authorize_device(&session, IotAction::Receive, "$aws/things/pi/jobs/notify-next"));
    h.engine.attach_thing_principal(principal_request("pi", &arn)).await.unwrap();
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "$aws/things/pi/jobs/get"));

    let id = created.certificate_id;
    h.engine
        .update_certificate(UpdateCertificateRequest { certificate_id: id, new_status: "INACTIVE".into() })
        .await
        .unwrap();
    assert!(matches!(h.engine.authenticate_device(Some(&der), "pi"), Err(DeviceAuthError::NotActive(_))));
    assert!(
        !h.engine.authorize_device(&session, IotAction::Publish, "$aws/things/pi/jobs/get"),
        "live sessions lose access"
    );
    let other = CertificateAuthority::generate().unwrap().issue_device_cert().unwrap();
    assert!(matches!(
        h.engine.authenticate_device(Some(&other.cert_der), "pi"),
        Err(DeviceAuthError::UnknownCertificate(_))
    ));
}

pub(crate) fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

#[tokio::test]
async fn a_refused_commit_changes_nothing_and_writes_recover_by_themselves() {
    let mut h = harness();
    h.thing("pi").await;
    h.job("job1", &["pi"]).await.unwrap();
    h.mqtt("$aws/things/pi/jobs/start-next", json!({})).await;
    h.published();

    h.full.store(true, Ordering::SeqCst);
    let err = h.engine.create_thing(thing_request("lost")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServiceUnavailable);
    assert!(err.message.contains("disk is full"), "the cause is named: {}", err.message);
    let err = h.engine.describe_thing(DescribeThingRequest { thing_name: "lost".into() }).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound, "the refused thing is not visible");
    let things = h.engine.list_things(ListThingsRequest::default()).await.unwrap();
    assert_eq!(things.things.len(), 1, "reads go on: {things:?}");

    // While the store refuses, writes are refused at once, whatever their kind.
    h.full.store(false, Ordering::SeqCst);
    let err = h.engine.create_thing(thing_request("lost")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServiceUnavailable, "refused within the probe interval");
    h.full.store(true, Ordering::SeqCst);
    h.tick(health::PROBE_INTERVAL);
    let err = h.job("job2", &["pi"]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServiceUnavailable);
    h.tick(health::PROBE_INTERVAL);
    let (t, r) = h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "SUCCEEDED"})).await;
    assert_eq!((t.as_str(), r["code"].as_str()), ("$aws/things/pi/jobs/job1/update/rejected", Some("InternalError")));
    assert!(h.published().is_empty(), "nothing refused is announced");
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.status, JobStatus::InProgress, "the refused SUCCEEDED did not complete the job");
    let e = h.engine.describe_job_execution(execution("job1", "pi")).await.unwrap();
    assert_eq!(e.execution.status, JobExecutionStatus::InProgress);
    assert_eq!(h.engine.get_job_document(describe("job2")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.describe_job(describe("job2")).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    // Space returns: the next write after the interval goes through, and so do retries.
    h.full.store(false, Ordering::SeqCst);
    h.tick(health::PROBE_INTERVAL);
    h.engine.create_thing(thing_request("lost")).await.unwrap();
    h.job("job2", &["pi"]).await.expect("a retried create-job is created, not a conflict");
    let (t, _) = h.mqtt("$aws/things/pi/jobs/job1/update", json!({"status": "SUCCEEDED"})).await;
    assert_eq!(t, "$aws/things/pi/jobs/job1/update/accepted");
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!((d.job.status, d.job.job_process_details.number_of_succeeded_things), (JobStatus::Completed, 1));

    // What every answer said is what the store holds.
    let h = h.reopen();
    h.engine.describe_thing(DescribeThingRequest { thing_name: "lost".into() }).await.unwrap();
    let d = h.engine.describe_job(describe("job1")).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Completed);
    let d = h.engine.describe_job(describe("job2")).await.unwrap();
    assert_eq!(d.job.job_process_details.number_of_queued_things, 1);
}

#[tokio::test]
async fn writes_in_flight_behind_a_refused_one_are_refused_too() {
    let h = harness();
    h.thing("pi").await;
    h.full.store(true, Ordering::SeqCst);
    // Two writes race: the second may build on the first's changes (the job needs the thing).
    let engine = h.engine.clone();
    let first = tokio::spawn(async move { engine.create_thing(thing_request("new")).await });
    let engine = h.engine.clone();
    let full = h.full.clone();
    let second = tokio::spawn(async move {
        full.store(false, Ordering::SeqCst);
        engine.create_job(CreateJobRequest { document: Some("{}".into()), ..job_request("j", &["new"]) }).await
    });
    // On this single-threaded runtime the first submits and waits, then the second runs
    // against memory that still holds the first's thing, before the store has answered.
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(first.unwrap_err().code, ErrorCode::ServiceUnavailable);
    assert_eq!(second.unwrap_err().code, ErrorCode::ServiceUnavailable, "built on a refused write");
    let e = h.engine.describe_thing(DescribeThingRequest { thing_name: "new".into() }).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.describe_job(describe("j")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let h = h.reopen();
    assert!(h.engine.describe_thing(DescribeThingRequest { thing_name: "new".into() }).await.is_err());
    assert!(h.engine.describe_job(describe("j")).await.is_err());
}

#[tokio::test]
async fn replacing_attributes_drops_those_given_empty() {
    use fleetjobs_core::ops::things::{AttributePayload, DescribeThingRequest, UpdateThingRequest};
    let h = harness();
    let mut create = thing_request("attrs");
    create.attribute_payload = Some(AttributePayload {
        attributes: [("a".into(), "1".into()), ("b".into(), "2".into())].into(),
        merge: false,
    });
    h.engine.create_thing(create).await.unwrap();
    let payload =
        AttributePayload { attributes: [("a".into(), "".into()), ("c".into(), "3".into())].into(), merge: false };
    let update =
        UpdateThingRequest { thing_name: "attrs".into(), attribute_payload: Some(payload), ..Default::default() };
    h.engine.update_thing(update).await.unwrap();
    let d = h.engine.describe_thing(DescribeThingRequest { thing_name: "attrs".into() }).await.unwrap();
    assert_eq!(
        d.attributes,
        [("c".to_string(), "3".to_string())].into(),
        "b replaced away, a dropped, not kept as \"\""
    );
}

#[tokio::test]
async fn fleet_stats_count_jobs_and_executions_by_status() {
    let h = harness();
    for name in ["s1", "s2", "s3"] {
        h.thing(name).await;
    }
    h.job("stats-a", &["s1", "s2"]).await.unwrap();
    h.job("stats-b", &["s3"]).await.unwrap();
    h.mqtt("$aws/things/s1/jobs/stats-a/update", json!({"status": "SUCCEEDED"})).await;
    h.mqtt("$aws/things/s3/jobs/stats-b/update", json!({"status": "FAILED"})).await;

    let stats = h.engine.fleet_stats().unwrap();
    assert_eq!(stats.things, 3);
    let jobs = |status| stats.jobs[JOB_STATUSES.iter().position(|s| *s == status).unwrap()];
    assert_eq!((jobs(JobStatus::InProgress), jobs(JobStatus::Completed)), (1, 1));
    use JobExecutionStatus::*;
    let executions: Vec<i64> = [Queued, Succeeded, Failed, InProgress].map(|s| stats.executions.get(s)).to_vec();
    assert_eq!(executions, [1, 1, 1, 0]);
    assert_eq!((stats.rollouts_in_progress, stats.rollout_pending_things), (0, 0));
}
