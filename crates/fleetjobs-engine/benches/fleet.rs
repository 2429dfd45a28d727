//! Fleets (issue 8): CreateJob on one static thing group of N things, a CONTINUOUS job's burst
//! of group joins, and what `abortConfig` costs per finished execution as the job grows; the
//! real `Engine` over a real `SqliteStore` (WAL, synchronous=FULL) in a temporary directory.
//!
//! `cargo bench -p fleetjobs-engine --bench fleet -- [things=100000] [burst=10000]
//! [abort=1000,10000,100000] [finish=0 (all)] [concurrency=100] [phases=create,burst,abort]
//! [variants=without,with]`
//!
//! Each phase prints `fleet phase=... key=value ...` lines.

// Test and benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::job_config::AbortConfig;
use fleetjobs_core::model::TargetSelection;
use fleetjobs_core::ops::jobs::{CreateJobRequest, DescribeJobRequest};
use fleetjobs_core::ops::thing_groups::{CreateThingGroupRequest, ThingGroupMemberRequest};
use fleetjobs_core::ops::things::CreateThingRequest;
use fleetjobs_engine::{system_clock, DeviceCommand, Engine, EngineConfig};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::{Batch, Record, SqliteStore, Store, StoreError};

/// Batches of at least this many mutations are recorded (a CreateJob over a group, whose
/// executions come in chunks of at least 500; the setup's single-thing batches are not).
const BIG_BATCH: usize = 500;

/// The last big batch: its size, when it was submitted (the operation's work under the
/// state lock is done then) and how long from submit to durable.
#[derive(Debug, Clone, Copy)]
struct BigBatch {
    mutations: usize,
    bytes: usize,
    submitted: Instant,
    commit: Option<Duration>,
}

/// The SQLite store, with the size and commit time of big batches visible to the bench.
struct Measured {
    inner: SqliteStore,
    last_big: Arc<Mutex<Option<BigBatch>>>,
}

impl Store for Measured {
    fn load(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.load()
    }

    fn submit(&self, batch: Batch) {
        if batch.mutations.len() < BIG_BATCH {
            return self.inner.submit(batch);
        }
        let bytes = batch.mutations.iter().map(fleetjobs_store::Mutation::size).sum();
        let submitted = Instant::now();
        *self.last_big.lock().unwrap() =
            Some(BigBatch { mutations: batch.mutations.len(), bytes, submitted, commit: None });
        let last_big = self.last_big.clone();
        let on_durable = batch.on_durable;
        self.inner.submit(Batch {
            epoch: batch.epoch,
            mutations: batch.mutations,
            on_durable: Box::new(move |r| {
                if let Some(b) = last_big.lock().unwrap().as_mut() {
                    b.commit = Some(submitted.elapsed());
                }
                on_durable(r)
            }),
        });
    }
}

/// What the outbox has received, by kind.
#[derive(Default)]
struct OutboxCounts {
    notify: AtomicU64,
    notify_next: AtomicU64,
    other: AtomicU64,
}

impl OutboxCounts {
    fn notifies(&self) -> (u64, u64) {
        (self.notify.load(Ordering::Relaxed), self.notify_next.load(Ordering::Relaxed))
    }

    /// Wait until `notify` and `notify-next` have each reached `target` (polled every ms).
    async fn wait_for(&self, target: (u64, u64)) {
        loop {
            let (n, nn) = self.notifies();
            if n >= target.0 && nn >= target.1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

struct Fleet {
    engine: Arc<Engine>,
    last_big: Arc<Mutex<Option<BigBatch>>>,
    outbox: Arc<OutboxCounts>,
    dir: PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static FLEETS: AtomicUsize = AtomicUsize::new(0);

/// A fresh engine over a fresh database.
fn open_fleet() -> Fleet {
    let n = FLEETS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fleetjobs-bench-fleet-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let last_big = Arc::new(Mutex::new(None));
    let store =
        Arc::new(Measured { inner: SqliteStore::open(&dir.join("bench.db")).unwrap(), last_big: last_big.clone() });
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost".into(),
        jobs_endpoint: "localhost:8443".into(),
        http_endpoint: "http://localhost".into(),
    };
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let (engine, mut rx) = Engine::open(config, store, ca, [1; 32], system_clock()).unwrap();
    let outbox = Arc::new(OutboxCounts::default());
    let counts = outbox.clone();
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            let counter = match &c {
                DeviceCommand::Publish { topic, .. } if topic.ends_with("/jobs/notify") => &counts.notify,
                DeviceCommand::Publish { topic, .. } if topic.ends_with("/jobs/notify-next") => &counts.notify_next,
                _ => &counts.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Fleet { engine, last_big, outbox, dir }
}

fn thing(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

/// Run `f(i)` for every i in `0..n`, at most `concurrency` at a time.
async fn bounded<F, Fut>(n: usize, concurrency: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let workers = concurrency.min(n).max(1);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                f(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Create group `group` (ARN returned) and `n` things `{prefix}-i`, members of it unless
/// `join` is false; prints the setup rate.
async fn populate(fleet: &Fleet, group: &str, prefix: &str, n: usize, join: bool, concurrency: usize) -> String {
    let start = Instant::now();
    let arn = fleet
        .engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: group.into(), ..Default::default() })
        .await
        .unwrap()
        .thing_group_arn;
    let (engine, group_name, prefix) = (fleet.engine.clone(), group.to_string(), prefix.to_string());
    bounded(n, concurrency, move |i| {
        let (engine, group, name) = (engine.clone(), group_name.clone(), thing(&prefix, i));
        async move {
            engine.create_thing(CreateThingRequest { thing_name: name.clone(), ..Default::default() }).await.unwrap();
            if join {
                engine.add_thing_to_thing_group(member(&group, name)).await.unwrap();
            }
        }
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fleet phase=setup group={group} things={n} joined={join} seconds={secs:.2} things_per_sec={:.0}",
        n as f64 / secs
    );
    arn
}

fn member(group: &str, thing: String) -> ThingGroupMemberRequest {
    ThingGroupMemberRequest { thing_group_name: Some(group.into()), thing_name: Some(thing), ..Default::default() }
}

async fn queued(engine: &Engine, job: &str) -> i64 {
    let d = engine.describe_job(DescribeJobRequest { job_id: job.into(), before_substitution: false }).await.unwrap();
    d.job.job_process_details.number_of_queued_things
}

fn document() -> Option<String> {
    Some("{\"op\":\"update\",\"url\":\"https://example.com/firmware-1.2.3.bin\"}".to_string())
}

/// Phase 1: CreateJob over a group of `n` things, no rollout config: every execution is created
/// before CreateJob answers, in chunks of one transaction each (above 500 things). `submit_ms`:
/// from the call to the last chunk's submission (check, targets, executions, `Txn::finish` of
/// every chunk, each under the state lock); `commit_ms`: from that submission to durable
/// (SQLite, while the task renders the notifications); `commit_mutations`, `commit_bytes`: the
/// last chunk's.
async fn create_job_on_group(n: usize, concurrency: usize) {
    let fleet = open_fleet();
    let arn = populate(&fleet, "fleet", "dev", n, true, concurrency).await;
    let before = fleet.outbox.notifies();
    let start = Instant::now();
    fleet
        .engine
        .create_job(CreateJobRequest {
            job_id: "fleet-job".into(),
            targets: vec![arn],
            document: document(),
            ..Default::default()
        })
        .await
        .unwrap();
    let answer = start.elapsed().as_secs_f64();
    fleet.outbox.wait_for((before.0 + n as u64, before.1 + n as u64)).await;
    let outbox = start.elapsed().as_secs_f64();
    assert_eq!(queued(&fleet.engine, "fleet-job").await, n as i64);
    let big = fleet.last_big.lock().unwrap().expect("CreateJob's batch");
    println!(
        "fleet phase=create_job_on_group things={n} answer_ms={:.0} executions_per_sec={:.0} outbox_all_notified_ms={:.0} \
         submit_ms={:.0} commit_ms={:.0} commit_mutations={} commit_bytes={}",
        answer * 1e3,
        n as f64 / answer,
        outbox * 1e3,
        big.submitted.duration_since(start).as_secs_f64() * 1e3,
        big.commit.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        big.mutations,
        big.bytes,
    );
}

/// Phase 2: a CONTINUOUS job on an empty group, then `n` existing things join it all at once.
async fn continuous_burst(n: usize, concurrency: usize) {
    let fleet = open_fleet();
    let arn = populate(&fleet, "burst", "dev", n, false, concurrency).await;
    fleet
        .engine
        .create_job(CreateJobRequest {
            job_id: "continuous".into(),
            targets: vec![arn],
            document: document(),
            target_selection: Some(TargetSelection::Continuous),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = fleet.outbox.notifies();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let engine = fleet.engine.clone();
        tasks
            .push(tokio::spawn(async move { engine.add_thing_to_thing_group(member("burst", thing("dev", i))).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let answered = start.elapsed().as_secs_f64();
    fleet.outbox.wait_for((before.0 + n as u64, before.1 + n as u64)).await;
    let notified = start.elapsed().as_secs_f64();
    assert_eq!(queued(&fleet.engine, "continuous").await, n as i64);
    println!(
        "fleet phase=continuous_burst joins={n} all_queued_ms={:.0} joins_per_sec={:.0} outbox_all_notified_ms={:.0}",
        answered * 1e3,
        n as f64 / answered,
        notified * 1e3,
    );
}

/// Phase 3: a job over `n` things (with or without an `abortConfig` that never trips); `finish`
/// devices (0: all `n`) run `start-next` then `update SUCCEEDED`, `concurrency` at a time.
async fn abort_cost(n: usize, with_abort: bool, finish: usize, concurrency: usize) {
    let fleet = open_fleet();
    let arn = populate(&fleet, "fleet", "dev", n, true, concurrency).await;
    // 100 % FAILED: every execution here succeeds, so the criterion is evaluated at every
    // finish and never cancels the job.
    let abort_config: Option<AbortConfig> = with_abort.then(|| {
        serde_json::from_str(
            r#"{"criteriaList":[{"failureType":"FAILED","action":"CANCEL","thresholdPercentage":100,"minNumberOfExecutedThings":1}]}"#,
        )
        .unwrap()
    });
    fleet
        .engine
        .create_job(CreateJobRequest {
            job_id: "job".into(),
            targets: vec![arn],
            document: document(),
            abort_config,
            ..Default::default()
        })
        .await
        .unwrap();
    // 0: every execution of the job (the last one completes it).
    let finish = if finish == 0 { n } else { finish.min(n) };
    let start = Instant::now();
    let engine = fleet.engine.clone();
    bounded(finish, concurrency, move |i| {
        let engine = engine.clone();
        async move {
            let t = thing("dev", i);
            let r = engine.handle_jobs_request(&format!("$aws/things/{t}/jobs/start-next"), b"{}").await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&r[0].1).unwrap();
            assert_eq!(v["execution"]["jobId"], "job", "{}", String::from_utf8_lossy(&r[0].1));
            let r = engine
                .handle_jobs_request(&format!("$aws/things/{t}/jobs/job/update"), br#"{"status":"SUCCEEDED"}"#)
                .await
                .unwrap();
            assert!(r[0].0.ends_with("/accepted"), "{}", String::from_utf8_lossy(&r[0].1));
        }
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    let d = fleet.engine.describe_job(DescribeJobRequest { job_id: "job".into(), before_substitution: false }).await;
    let d = d.unwrap().job;
    assert_eq!(d.job_process_details.number_of_succeeded_things, finish as i64);
    assert_eq!(d.status.as_str(), if finish == n { "COMPLETED" } else { "IN_PROGRESS" });
    println!(
        "fleet phase=abort_cost things={n} abort_config={with_abort} finished={finish} concurrency={concurrency} \
         seconds={secs:.2} us_per_finished_execution={:.1} durable_updates_per_sec={:.0}",
        secs * 1e6 / finish as f64,
        (finish * 2) as f64 / secs,
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: HashMap<String, String> =
        std::env::args().skip(1).filter_map(|a| a.split_once('=').map(|(k, v)| (k.into(), v.into()))).collect();
    let num = |k: &str, default: usize| args.get(k).map_or(default, |v| v.parse().unwrap());
    let things = num("things", 100_000);
    let burst = num("burst", 10_000);
    let finish = num("finish", 0);
    let concurrency = num("concurrency", 100);
    let sizes: Vec<usize> =
        args.get("abort").map_or("1000,10000,100000", String::as_str).split(',').map(|s| s.parse().unwrap()).collect();
    let phases = args.get("phases").map_or("create,burst,abort", String::as_str);
    // Which abort_cost jobs: `without` (no abortConfig), `with`, or both (to profile one).
    let variants = args.get("variants").map_or("without,with", String::as_str);

    if phases.contains("create") {
        create_job_on_group(things, concurrency).await;
    }
    if phases.contains("burst") {
        continuous_burst(burst, concurrency).await;
    }
    if phases.contains("abort") {
        for &n in &sizes {
            for with_abort in [false, true] {
                if variants.split(',').any(|v| v == if with_abort { "with" } else { "without" }) {
                    abort_cost(n, with_abort, finish, concurrency).await;
                }
            }
        }
    }
}
