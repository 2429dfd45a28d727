//! `fleet` mode of `mqtt_jobs`: fleet completion in memory, the scenario of `fleetjobs-sim`
//! (`bench/fleet_completion.py`) without sockets or TLS, so that 100,000 devices fit.
//!
//! `cargo bench -p fleetjobs --bench mqtt_jobs -- fleet [devices] [concurrency]`
//! (defaults 10000, 100).
//!
//! N things in one thing group, one certificate attached to every thing, the policy on
//! `${iot:Connection.Thing.ThingName}` (as the simulator provisions them). Each device
//! connects over a `tokio::io::duplex` pipe to the real [`Broker::serve_connection`],
//! subscribes (QoS 1) to `notify-next`, `$next/get/accepted|rejected` and
//! `+/update/accepted|rejected`, asks `$next/get` and waits for its answer; `concurrency`
//! devices at a time. Then the engine's typed `CreateJob` on the group's ARN, and the clock
//! runs until every device has its `SUCCEEDED` update accepted (each answer is sent after the
//! update is durable). On `notify-next` (or a `$next/get` answer) naming a job, a device does
//! what the simulator does with work time 0: `{jobId}/update` IN_PROGRESS, on `/accepted`
//! `{jobId}/update` SUCCEEDED. Any `/rejected` panics, and so does an engine count other than
//! "all SUCCEEDED" at the end.
//!
//! Server CPU: the devices run on a runtime of their own (one thread, named
//! [`CLIENT_THREAD`]); the server's CPU is the process's utime + stime (`/proc/self/stat`)
//! minus those of the client threads (`/proc/self/task/*/stat`), in clock ticks (10 ms). It
//! holds the broker, the hooks, the engine, the store's writer and the server halves of the
//! pipes, and also this bench's main task (asleep while it waits). For instruction counts, the
//! job phase lies between the bench's callgrind marks `jobs_phase_starts` and `jobs_phase_ends`.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use fleetjobs_core::model::JobStatus;
use fleetjobs_core::ops::jobs::{CreateJobRequest, DescribeJobRequest};
use fleetjobs_core::ops::thing_groups::{CreateThingGroupRequest, ThingGroupMemberRequest};
use fleetjobs_core::ops::things::{CreateThingRequest, ThingPrincipalRequest};
use fleetjobs_mqtt::PeerInfo;
use serde_json::{json, Value};
use tokio::io::DuplexStream;
use tokio::sync::{Notify, Semaphore};

use super::{
    open_device_path, pool, shared_certificate, thing_name, Device, Incoming, PIPE_CAPACITY, SETUP_CONCURRENCY,
};

/// The name of the devices' threads, whose CPU is not the server's.
const CLIENT_THREAD: &str = "fleet-client";
const GROUP: &str = "fleet";
const JOB: &str = "fleet-job";
/// What the devices subscribe to besides `notify-next`, as `fleetjobs-sim` does.
const ANSWERS: [&str; 4] = ["$next/get/accepted", "$next/get/rejected", "+/update/accepted", "+/update/rejected"];

/// Counts down to zero; `wait` returns once it got there.
struct Countdown {
    left: AtomicUsize,
    zero: Notify,
}

impl Countdown {
    fn new(n: usize) -> Arc<Self> {
        let c = Arc::new(Countdown { left: AtomicUsize::new(n), zero: Notify::new() });
        if n == 0 {
            c.zero.notify_one();
        }
        c
    }

    fn down(&self) {
        if self.left.fetch_sub(1, Relaxed) == 1 {
            // `notify_one` keeps a permit when nobody waits yet.
            self.zero.notify_one();
        }
    }

    async fn wait(&self) {
        self.zero.notified().await;
    }
}

/// utime + stime in clock ticks of one `/proc/.../stat` line (fields 14 and 15, counted after
/// the command name, which may hold spaces).
fn ticks(stat: &str) -> u64 {
    let rest = &stat[stat.rfind(')').expect("a stat line") + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok()).expect("utime and stime");
    next() + next()
}

/// (server, client) CPU milliseconds so far: the process minus the client threads.
fn cpu_ms() -> (f64, f64) {
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat"));
    let mut client = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == CLIENT_THREAD {
            client += std::fs::read_to_string(task.path().join("stat")).map(|s| ticks(&s)).unwrap_or(0);
        }
    }
    // Linux reports ticks of USER_HZ = 100.
    ((process - client) as f64 * 10.0, client as f64 * 10.0)
}

impl Device {
    /// SUBSCRIBE to `filters` at QoS 1 in one packet and wait for all of them granted.
    async fn subscribe_all(&mut self, filters: &[String]) {
        let pid = self.pid();
        let mut body = pid.to_be_bytes().to_vec();
        for filter in filters {
            super::put_str(&mut body, filter);
            body.push(1);
        }
        self.send(&super::packet(0x82, &body)).await;
        match self.next().await {
            Incoming::Suback { pid: p, codes } if p == pid && codes.iter().all(|c| *c == 1) => {}
            other => panic!("SUBSCRIBE {filters:?} not granted at QoS 1: {other:?}"),
        }
    }

    async fn publish_json(&mut self, topic: &str, payload: &Value) {
        let pid = self.pid();
        let bytes = serde_json::to_vec(payload).expect("json");
        self.send(&super::publish_qos1_packet(pid, topic, &bytes)).await;
    }

    /// The next PUBLISH (acknowledged if QoS 1), skipping PUBACKs.
    async fn next_publish(&mut self) -> (String, Value) {
        loop {
            match self.next().await {
                Incoming::Publish { topic, pid, payload } => {
                    if let Some(pid) = pid {
                        self.send(&super::puback_packet(pid)).await;
                    }
                    let body = serde_json::from_slice(&payload).expect("JSON from the server");
                    return (topic, body);
                }
                Incoming::Puback => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// Opens a device's pipe, its other end served by the broker.
type Open = Arc<dyn Fn() -> DuplexStream + Send + Sync>;

/// One device: open its pipe, connect and subscribe, ask `$next/get` (all that holding a
/// `gate` permit: the broker closes a connection that sends no CONNECT in time), report
/// itself `connected`, then work the job it is offered and report it `done`.
async fn device(
    i: usize,
    open: Open,
    gate: Arc<Semaphore>,
    connected: Arc<Countdown>,
    done: Arc<Countdown>,
) -> DuplexStream {
    let thing = thing_name(i);
    let prefix = format!("$aws/things/{thing}/jobs/");
    let permit = gate.acquire().await.expect("the gate stays open");
    let mut device = Device::new(open());
    device.connect(&thing).await;
    device.subscribe_all(&ANSWERS.map(|a| format!("{prefix}{a}"))).await;
    device.publish_json(&format!("{prefix}$next/get"), &json!({ "clientToken": thing })).await;
    match device.next_publish().await {
        (t, body) if t.ends_with("/$next/get/accepted") && body.get("execution").is_none() => {}
        other => panic!("{thing}: $next/get before any job: {other:?}"),
    }
    drop(permit);
    connected.down();
    let update =
        |status: &str| json!({"status": status, "statusDetails": {"simulator": "mqtt_jobs"}, "clientToken": thing});
    let accepted = format!("{JOB}/update/accepted");
    let mut sent: Option<&str> = None;
    loop {
        let (topic, body) = device.next_publish().await;
        let suffix = topic.strip_prefix(&prefix).unwrap_or_else(|| panic!("{thing}: a message on {topic}"));
        match suffix {
            "notify-next" | "$next/get/accepted" => {
                let job = body.pointer("/execution/jobId").and_then(Value::as_str);
                if job == Some(JOB) && sent.is_none() {
                    device.publish_json(&format!("{prefix}{JOB}/update"), &update("IN_PROGRESS")).await;
                    sent = Some("IN_PROGRESS");
                }
            }
            s if s == accepted => {
                assert_eq!(body["clientToken"], json!(thing), "{thing}: {body}");
                if sent == Some("IN_PROGRESS") {
                    device.publish_json(&format!("{prefix}{JOB}/update"), &update("SUCCEEDED")).await;
                    sent = Some("SUCCEEDED");
                } else {
                    done.down();
                    return device.stream;
                }
            }
            other => panic!("{thing}: {other}: {body}"),
        }
    }
}

/// The whole `fleet` mode; prints one `key=value` line per phase.
pub async fn completion(devices: usize, concurrency: usize) {
    // A device's panic ends the bench (instead of leaving the countdowns waiting).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));

    // --- setup: things in a group, the certificate attached to each ----------------------
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("fleetjobs-bench-fleet-{}", std::process::id()));
    let (store, engine, broker, pump_task) = open_device_path(&dir, devices).await;
    let (cert_arn, cert_der) = shared_certificate(&engine, "${iot:Connection.Thing.ThingName}").await;
    let group = engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: GROUP.into(), ..Default::default() })
        .await
        .unwrap();
    let e = engine.clone();
    pool(SETUP_CONCURRENCY, (0..devices).collect(), move |i| {
        let (e, principal) = (e.clone(), cert_arn.clone());
        async move {
            let thing_name = thing_name(i);
            e.create_thing(CreateThingRequest { thing_name: thing_name.clone(), ..Default::default() }).await.unwrap();
            let member = ThingGroupMemberRequest {
                thing_group_name: Some(GROUP.into()),
                thing_name: Some(thing_name.clone()),
                ..Default::default()
            };
            e.add_thing_to_thing_group(member).await.unwrap();
            let r = ThingPrincipalRequest { thing_name, principal, thing_principal_type: None };
            e.attach_thing_principal(r).await.unwrap();
        }
    })
    .await;
    println!(
        "mqtt_jobs mode=fleet phase=setup devices={devices} group={GROUP} certificates=1 \
         policy=${{iot:Connection.Thing.ThingName}} seconds={:.2}",
        started.elapsed().as_secs_f64()
    );

    // --- connect: the devices on their own runtime ----------------------------------------
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (gate, connected, done) =
        (Arc::new(Semaphore::new(concurrency)), Countdown::new(devices), Countdown::new(devices));
    let (server_runtime, b) = (tokio::runtime::Handle::current(), broker.clone());
    let open: Open = Arc::new(move || {
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        let peer = PeerInfo { cert_der: Some(cert_der.to_vec()), ..PeerInfo::default() };
        server_runtime.spawn(b.serve_connection(server, peer));
        client
    });
    let mut handles = Vec::with_capacity(devices);
    for i in 0..devices {
        handles.push(clients.spawn(device(i, open.clone(), gate.clone(), connected.clone(), done.clone())));
    }
    connected.wait().await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(broker.connection_count(), devices);
    println!(
        "mqtt_jobs mode=fleet phase=connect devices={devices} concurrency={concurrency} seconds={secs:.2} \
         connects_per_sec={:.0} (CONNECT+CONNACK, SUBSCRIBE 5 filters QoS 1+SUBACK, $next/get+accepted)",
        devices as f64 / secs
    );

    // --- job: create-job on the group until every execution is SUCCEEDED --------------------
    let (server_before, client_before) = cpu_ms();
    super::jobs_phase_starts();
    let started = Instant::now();
    let request = CreateJobRequest {
        job_id: JOB.into(),
        targets: vec![group.thing_group_arn.clone()],
        document: Some("{\"operation\":\"mqtt_jobs\"}".into()),
        ..Default::default()
    };
    engine.create_job(request).await.unwrap();
    let create_call = started.elapsed();
    done.wait().await;
    let secs = started.elapsed().as_secs_f64();
    super::jobs_phase_ends();
    let (server_after, client_after) = cpu_ms();
    let server_ms = server_after - server_before;

    let job = engine.describe_job(DescribeJobRequest { job_id: JOB.into(), ..Default::default() }).await.unwrap().job;
    let d = &job.job_process_details;
    assert_eq!(d.number_of_succeeded_things, devices as i64, "{d:?}");
    assert_eq!(super::not_succeeded(d), 0, "{d:?}");
    assert_eq!(job.status, JobStatus::Completed);
    println!(
        "mqtt_jobs mode=fleet phase=job devices={devices} create_call_ms={:.1} completion_seconds={secs:.3} \
         executions_per_sec={:.0} server_cpu_ms={server_ms:.0} server_cpu_ms_per_execution={:.4} \
         client_cpu_ms={:.0} engine_succeeded={} job_status=COMPLETED",
        create_call.as_secs_f64() * 1000.0,
        devices as f64 / secs,
        server_ms / devices as f64,
        client_after - client_before,
        d.number_of_succeeded_things,
    );

    // --- the end: close the pipes, stop the devices' runtime ------------------------------
    let mut streams = Vec::with_capacity(devices);
    for h in handles {
        streams.push(h.await.expect("a device panicked"));
    }
    drop(streams);
    clients.shutdown_background();
    pump_task.abort();
    drop((broker, engine));
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
}
