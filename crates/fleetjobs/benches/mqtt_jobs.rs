//! The device path end to end in one process: N simulated devices, each a minimal MQTT 3.1.1
//! client speaking bytes over `tokio::io::duplex` to [`Broker::serve_connection`]: the real
//! broker, the real `device_plane::Hooks`, the real [`Engine`] over SQLite (WAL,
//! `synchronous=FULL`, group commit) in a temporary directory. No kernel sockets (a process
//! here may hold at most 20,000), so 100k sessions fit.
//!
//! `cargo bench -p fleetjobs --bench mqtt_jobs -- [sessions] [jobs_per_device] [concurrency]
//! [client-id|thing-name]` (defaults 10000, 1, 100, client-id). `-- fleet [devices]
//! [concurrency]` is another scenario on the same client: fleet completion on a thing group
//! (see `mqtt_jobs/fleet.rs`); what follows is about the default one.
//!
//! Phases, one `key=value` line each:
//!
//! 1. `setup` (not the focus): one certificate shared by all devices, one policy attached to
//!    it, the things (client id = thing name), jobs of at most 100 targets each. `client-id`:
//!    the policy's resources use `${iot:ClientId}` and the certificate is attached to no thing.
//!    `thing-name`: they use `${iot:Connection.Thing.ThingName}` and the certificate is
//!    attached to every thing (which that variable needs).
//! 2. `connect`: every device CONNECTs with the certificate's DER as its TLS peer certificate,
//!    waits for CONNACK, SUBSCRIBEs to `$aws/things/{thing}/jobs/notify-next` at QoS 1 and
//!    waits for SUBACK; `concurrency` devices at a time.
//! 3. `idle_memory`: VmRSS and live heap bytes (a counting allocator: bytes requested, not
//!    the allocator's overhead) before and after the connect phase, per session. Both include
//!    both halves of every connection: the broker's session and connection task, the hooks'
//!    session, the client's duplex handle and the two in-memory pipes (which stand in for the
//!    kernel socket buffers). An idle client holds nothing but its duplex handle; the pipes'
//!    share is measured apart by pushing the same bytes through fresh pipes.
//! 4. `jobs`: every device publishes (QoS 1) `start-next` with a clientToken and waits for
//!    `/accepted`, then `{jobId}/update` `{"status":"SUCCEEDED"}` and waits for `/accepted`,
//!    once per job; `concurrency` devices at a time. Each request is one durable update.
//!    Any `/rejected`, a missing clientToken or an engine count other than "all SUCCEEDED"
//!    at the end panics: the bench cannot silently measure failures.
//! 5. `disconnect`: the clients close their pipes; time until the broker has no connection.
//!
//! Instructions per execution (machine load does not change them): run under callgrind with
//! a dump at each edge of the jobs phase, so that the second dump holds that phase alone (all
//! threads: broker, hooks, engine, the store's writer, and the clients):
//!
//! ```sh
//! valgrind --tool=callgrind --dump-before='*jobs_phase_starts*' --dump-before='*jobs_phase_ends*' \
//!     target/release/deps/mqtt_jobs-HASH 5000 1
//! callgrind_annotate --inclusive=yes callgrind.out.PID.2
//! ```

// Test and benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Fleet completion in memory (issue 11): its own mode on this bench's client and setup.
#[path = "mqtt_jobs/fleet.rs"]
mod fleet;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetjobs::device_plane::{pump, Hooks};
use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::model::JobStatus;
use fleetjobs_core::ops::certificates::CreateKeysAndCertificateRequest;
use fleetjobs_core::ops::jobs::{CreateJobRequest, DescribeJobRequest, JobProcessDetails};
use fleetjobs_core::ops::policies::{CreatePolicyRequest, PolicyTargetRequest};
use fleetjobs_core::ops::things::{CreateThingRequest, ThingPrincipalRequest};
use fleetjobs_engine::{system_clock, Engine, EngineConfig};
use fleetjobs_mqtt::{Broker, BrokerConfig, PeerInfo};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::SqliteStore;
use mimalloc::MiMalloc;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinSet;

/// Most bytes a pipe holds in one direction before the writer waits.
const PIPE_CAPACITY: usize = 8 * 1024;
/// Concurrent control-plane calls during setup (so that group commit batches them).
const SETUP_CONCURRENCY: usize = 256;
/// Keep-alive the devices announce (AWS IoT's maximum); no PINGREQ is needed within it.
const KEEP_ALIVE_SECS: u16 = 1200;
/// The device policy; `{ID}` becomes the policy variable that names the device.
const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/{ID}"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/$aws/things/{ID}/jobs/*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/$aws/things/{ID}/jobs/*"}
  ]
}"#;
// --- live heap bytes: a counting allocator, sharded so that the two cores do not fight over
// one cache line ----------------------------------------------------------------------------

struct Counting;

#[repr(align(128))]
struct Shard(AtomicIsize);

const SHARDS: usize = 16;
static LIVE: [Shard; SHARDS] = [const { Shard(AtomicIsize::new(0)) }; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialized and without `Drop`: usable from inside the allocator.
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count(delta: isize) {
    let shard = MY_SHARD
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS);
            }
            s.get()
        })
        .unwrap_or(0);
    LIVE[shard].0.fetch_add(delta, Relaxed);
}

fn live_heap_bytes() -> isize {
    LIVE.iter().map(|s| s.0.load(Relaxed)).sum()
}

// SAFETY: every call forwards to `MiMalloc` (the server binary's allocator) unchanged; the
// counting has no effect on memory.
#[allow(unsafe_code)] // a counting allocator: GlobalAlloc is an unsafe trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `MiMalloc`.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        let new = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/self/status");
    let kib: i64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}

// --- a minimal MQTT 3.1.1 client codec ------------------------------------------------------

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(12 + client_id.len());
    put_str(&mut body, "MQTT");
    body.push(4); // protocol level 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&KEEP_ALIVE_SECS.to_be_bytes());
    put_str(&mut body, client_id);
    packet(0x10, &body)
}

fn subscribe_packet(pid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    put_str(&mut body, filter);
    body.push(qos);
    packet(0x82, &body)
}

fn publish_qos1_packet(pid: u16, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + topic.len() + payload.len());
    put_str(&mut body, topic);
    body.extend_from_slice(&pid.to_be_bytes());
    body.extend_from_slice(payload);
    packet(0x32, &body)
}

fn puback_packet(pid: u16) -> Vec<u8> {
    packet(0x40, &pid.to_be_bytes())
}

#[derive(Debug)]
enum Incoming {
    Connack {
        code: u8,
    },
    Suback {
        pid: u16,
        codes: Vec<u8>,
    },
    Publish {
        topic: String,
        pid: Option<u16>,
        payload: Vec<u8>,
    },
    Puback,
    /// Any other packet, by type; only ever shown (`Debug`) in a panic.
    #[allow(dead_code)]
    Other(u8),
}

/// Split one whole packet off the front of `buf`, if it holds one.
fn parse(buf: &mut Vec<u8>) -> Option<Incoming> {
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let byte = *buf.get(at)?;
        len |= usize::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        assert!(shift < 28, "malformed remaining length");
    }
    if buf.len() < at + len {
        return None;
    }
    let first = buf[0];
    let body: Vec<u8> = buf.drain(..at + len).skip(at).collect();
    let u16_at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    Some(match first >> 4 {
        2 => Incoming::Connack { code: body[1] },
        9 => Incoming::Suback { pid: u16_at(0), codes: body[2..].to_vec() },
        3 => {
            let topic_len = usize::from(u16_at(0));
            let topic = String::from_utf8(body[2..2 + topic_len].to_vec()).expect("UTF-8 topic");
            let qos = (first >> 1) & 3;
            let (pid, rest) =
                if qos > 0 { (Some(u16_at(2 + topic_len)), 4 + topic_len) } else { (None, 2 + topic_len) };
            Incoming::Publish { topic, pid, payload: body[rest..].to_vec() }
        }
        4 => Incoming::Puback,
        other => Incoming::Other(other),
    })
}

/// A device while it is busy: its pipe end and a read buffer. An idle device keeps only the
/// pipe end.
struct Device {
    stream: DuplexStream,
    buf: Vec<u8>,
    next_pid: u16,
}

impl Device {
    fn new(stream: DuplexStream) -> Self {
        Device { stream, buf: Vec::new(), next_pid: 1 }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("the broker closed the pipe");
    }

    async fn next(&mut self) -> Incoming {
        loop {
            if let Some(packet) = parse(&mut self.buf) {
                return packet;
            }
            let mut chunk = [0u8; 2048];
            let n = self.stream.read(&mut chunk).await.expect("read from the pipe");
            assert!(n > 0, "the broker closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn pid(&mut self) -> u16 {
        let pid = self.next_pid;
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        pid
    }

    async fn connect(&mut self, thing: &str) {
        self.send(&connect_packet(thing)).await;
        match self.next().await {
            Incoming::Connack { code: 0 } => {}
            other => panic!("{thing}: CONNECT not accepted: {other:?}"),
        }
        let pid = self.pid();
        self.send(&subscribe_packet(pid, &format!("$aws/things/{thing}/jobs/notify-next"), 1)).await;
        match self.next().await {
            Incoming::Suback { pid: p, codes } if p == pid && codes == [1] => {}
            other => panic!("{thing}: SUBSCRIBE not granted at QoS 1: {other:?}"),
        }
    }

    /// Publish a Jobs request and wait for its `/accepted` answer (anything else panics).
    /// Notifications arriving meanwhile are acknowledged and skipped.
    async fn request(&mut self, topic: &str, payload: Value) -> (Duration, Value) {
        let token = payload["clientToken"].as_str().expect("a clientToken").to_string();
        let bytes = serde_json::to_vec(&payload).expect("json");
        let pid = self.pid();
        let start = Instant::now();
        self.send(&publish_qos1_packet(pid, topic, &bytes)).await;
        let accepted = format!("{topic}/accepted");
        loop {
            match self.next().await {
                Incoming::Publish { topic: t, pid: qos1, payload } => {
                    if let Some(pid) = qos1 {
                        self.send(&puback_packet(pid)).await;
                    }
                    if t == accepted {
                        let elapsed = start.elapsed();
                        let answer: Value = serde_json::from_slice(&payload).expect("JSON answer");
                        assert_eq!(answer["clientToken"], json!(token), "{t}: {answer}");
                        return (elapsed, answer);
                    }
                    assert!(!t.starts_with(topic), "{topic}: answered on {t}: {}", String::from_utf8_lossy(&payload));
                }
                Incoming::Puback => {}
                other => panic!("{topic}: unexpected {other:?}"),
            }
        }
    }
}

// --- helpers ----------------------------------------------------------------------------------

fn thing_name(i: usize) -> String {
    format!("dev-{i}")
}

/// Run `f` over `items`, `workers` at a time; the results in no particular order.
async fn pool<I, T, F, Fut>(workers: usize, items: Vec<I>, f: F) -> Vec<T>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
{
    let queue = Arc::new(Mutex::new(items.into_iter()));
    let f = Arc::new(f);
    let mut set = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (queue, f) = (queue.clone(), f.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            loop {
                let item = queue.lock().unwrap().next();
                let Some(item) = item else { break };
                out.push(f(item).await);
            }
            out
        });
    }
    let mut results = Vec::new();
    while let Some(done) = set.join_next().await {
        results.extend(done.expect("a worker panicked"));
    }
    results
}

/// Write `bytes` into one end of a pipe and read them out of the other.
async fn pass(from: &mut DuplexStream, to: &mut DuplexStream, bytes: &[u8]) {
    let mut scratch = vec![0u8; bytes.len()];
    from.write_all(bytes).await.unwrap();
    to.read_exact(&mut scratch).await.unwrap();
}

/// Callgrind's `--dump-before` marks (see the module doc): never inlined, so that their
/// symbols exist for callgrind to find.
#[inline(never)]
fn jobs_phase_starts() {
    std::hint::black_box(());
}

#[inline(never)]
fn jobs_phase_ends() {
    std::hint::black_box(());
}

/// A job's executions in any state but SUCCEEDED.
fn not_succeeded(d: &JobProcessDetails) -> i64 {
    d.number_of_queued_things
        + d.number_of_in_progress_things
        + d.number_of_failed_things
        + d.number_of_rejected_things
        + d.number_of_canceled_things
        + d.number_of_removed_things
        + d.number_of_timed_out_things
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// The server side in `dir`: SQLite store, engine, and a broker over the real hooks that
/// serves `sessions` connections at once, with the pump that carries the engine's messages to
/// it.
async fn open_device_path(
    dir: &std::path::Path,
    sessions: usize,
) -> (Arc<SqliteStore>, Arc<Engine>, Arc<Broker<Hooks>>, tokio::task::JoinHandle<()>) {
    std::fs::create_dir_all(dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("bench.db")).unwrap());
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost".into(),
        jobs_endpoint: "localhost:8443".into(),
        http_endpoint: "http://localhost".into(),
    };
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let (engine, outbox) = Engine::open(config, store.clone(), ca, [1; 32], system_clock()).unwrap();
    // Every session is served at once: the connection cap is the count, not the default.
    let broker_config = BrokerConfig { max_connections: sessions, ..BrokerConfig::default() };
    let broker = Broker::new(Arc::new(Hooks { engine: engine.clone(), retained: None }), broker_config);
    let pump_task = tokio::spawn(pump(&engine, outbox, broker.clone()));
    (store, engine, broker, pump_task)
}

/// The one certificate every device presents, with the device policy (`variable` names the
/// device) attached: its ARN and DER.
async fn shared_certificate(engine: &Engine, variable: &str) -> (String, Arc<[u8]>) {
    let cert =
        engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await.unwrap();
    let cert_der: Arc<[u8]> =
        CertificateDer::from_pem_slice(cert.certificate_pem.as_bytes()).expect("certificate PEM").to_vec().into();
    let policy = POLICY.replace("{ID}", variable);
    let name = "bench-device".to_string();
    engine.create_policy(CreatePolicyRequest { policy_name: name.clone(), policy_document: policy }).await.unwrap();
    engine
        .attach_policy(PolicyTargetRequest { policy_name: name, target: cert.certificate_arn.clone() })
        .await
        .unwrap();
    (cert.certificate_arn, cert_der)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sessions = args.first().copied().unwrap_or(10_000);
    let jobs_per_device = args.get(1).copied().unwrap_or(1);
    let concurrency = args.get(2).copied().unwrap_or(100).clamp(1, sessions);
    if std::env::args().skip(1).any(|a| a == "fleet") {
        // `-- fleet [devices] [concurrency]`: see `mqtt_jobs/fleet.rs`.
        let concurrency = args.get(1).copied().unwrap_or(100).clamp(1, sessions);
        return fleet::completion(sessions, concurrency).await;
    }
    let by_thing_name = match std::env::args()
        .skip(1)
        // `cargo bench` passes `--bench`.
        .find(|a| !a.starts_with('-') && a.parse::<usize>().is_err())
        .as_deref()
    {
        None | Some("client-id") => false,
        Some("thing-name") => true,
        Some(other) => panic!("unknown policy mode {other} (client-id or thing-name)"),
    };
    let variable = if by_thing_name { "${iot:Connection.Thing.ThingName}" } else { "${iot:ClientId}" };

    // --- 1. setup --------------------------------------------------------------------------
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("fleetjobs-bench-mqtt-{}", std::process::id()));
    let (store, engine, broker, pump_task) = open_device_path(&dir, sessions).await;
    let (cert_arn, cert_der) = shared_certificate(&engine, variable).await;

    let e = engine.clone();
    pool(SETUP_CONCURRENCY, (0..sessions).collect(), move |i| {
        let (e, cert_arn) = (e.clone(), cert_arn.clone());
        async move {
            e.create_thing(CreateThingRequest { thing_name: thing_name(i), ..Default::default() }).await.unwrap();
            if by_thing_name {
                let principal = cert_arn.clone();
                let r = ThingPrincipalRequest { thing_name: thing_name(i), principal, thing_principal_type: None };
                e.attach_thing_principal(r).await.unwrap();
            }
        }
    })
    .await;
    let mut job_ids = Vec::new();
    let mut job_specs = Vec::new();
    for j in 0..jobs_per_device {
        for first in (0..sessions).step_by(100) {
            let id = format!("job-{j}-{first}");
            let targets: Vec<String> = (first..(first + 100).min(sessions))
                .map(|d| format!("arn:aws:iot:us-east-1:123456789012:thing/{}", thing_name(d)))
                .collect();
            job_ids.push(id.clone());
            job_specs.push((id, targets));
        }
    }
    let e = engine.clone();
    // Jobs of one round before the next, so each device's queue has them in round order.
    for round in job_specs.chunks(sessions.div_ceil(100)) {
        let e = e.clone();
        pool(SETUP_CONCURRENCY, round.to_vec(), move |(id, targets)| {
            let e = e.clone();
            async move {
                let document = Some("{\"op\":\"x\"}".to_string());
                e.create_job(CreateJobRequest { job_id: id, targets, document, ..Default::default() }).await.unwrap();
            }
        })
        .await;
    }
    println!(
        "mqtt_jobs phase=setup sessions={sessions} jobs_per_device={jobs_per_device} jobs={} targets_per_job<=100 \
         certificates=1 policy={variable} things_attached_to_certificate={} seconds={:.2}",
        job_ids.len(),
        if by_thing_name { sessions } else { 0 },
        started.elapsed().as_secs_f64()
    );

    // --- 2. connect, 3. idle memory --------------------------------------------------------
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss_before, heap_before) = (rss_bytes(), live_heap_bytes());
    let started = Instant::now();
    let b = broker.clone();
    let der = cert_der.clone();
    let clients: Vec<(usize, DuplexStream)> = pool(concurrency, (0..sessions).collect(), move |i| {
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        tokio::spawn(b.serve_connection(server, PeerInfo { cert_der: Some(der.to_vec()), ..PeerInfo::default() }));
        async move {
            let mut device = Device::new(client);
            device.connect(&thing_name(i)).await;
            (i, device.stream)
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(broker.connection_count(), sessions);
    println!(
        "mqtt_jobs phase=connect sessions={sessions} concurrency={concurrency} seconds={secs:.2} connects_per_sec={:.0} \
         (CONNECT+CONNACK, SUBSCRIBE notify-next QoS 1+SUBACK)",
        sessions as f64 / secs
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_after, heap_after) = (rss_bytes(), live_heap_bytes());
    // The pipes alone: the same bytes through fresh pipes, kept open.
    let sample = sessions.min(10_000);
    let heap_pipes_before = live_heap_bytes();
    let mut pipes = Vec::with_capacity(sample);
    for i in 0..sample {
        let (mut client, mut server) = tokio::io::duplex(PIPE_CAPACITY);
        let thing = thing_name(i);
        pass(&mut client, &mut server, &connect_packet(&thing)).await;
        pass(&mut server, &mut client, &[0x20, 2, 0, 0]).await;
        pass(&mut client, &mut server, &subscribe_packet(1, &format!("$aws/things/{thing}/jobs/notify-next"), 1)).await;
        pass(&mut server, &mut client, &[0x90, 3, 0, 1, 1]).await;
        pipes.push((client, server));
    }
    let pipe_bytes = (live_heap_bytes() - heap_pipes_before) as f64 / sample as f64;
    drop(pipes);
    // The broker's per-connection future (boxed in its task), never polled here.
    let future_bytes = std::mem::size_of_val(&broker.serve_connection(tokio::io::duplex(1).0, PeerInfo::default()));
    let per = |delta: f64| delta / sessions as f64;
    let heap_per_session = per((heap_after - heap_before) as f64);
    let client_handle = std::mem::size_of::<(usize, DuplexStream)>() as f64;
    println!(
        "mqtt_jobs phase=idle_memory sessions={sessions} rss_before_bytes={rss_before} rss_after_bytes={rss_after} \
         rss_bytes_per_session={:.0} heap_bytes_per_session={heap_per_session:.0} pipe_heap_bytes_per_session={pipe_bytes:.0} \
         client_handle_bytes_per_session={client_handle:.0} server_heap_bytes_per_session={:.0} \
         of_which_connection_future_bytes={future_bytes} \
         (rss and heap include both halves: broker+hooks, client handle, the two pipes)",
        per((rss_after - rss_before) as f64),
        heap_per_session - pipe_bytes - client_handle,
    );

    // --- 4. jobs round trips ---------------------------------------------------------------
    jobs_phase_starts();
    let started = Instant::now();
    let results: Vec<(DuplexStream, Vec<Duration>)> = pool(concurrency, clients, move |(i, stream)| async move {
        let thing = thing_name(i);
        let mut device = Device::new(stream);
        let mut latencies = Vec::with_capacity(2 * jobs_per_device);
        for j in 0..jobs_per_device {
            let (took, answer) = device
                .request(
                    &format!("$aws/things/{thing}/jobs/start-next"),
                    json!({"clientToken": format!("{i}-{j}-start")}),
                )
                .await;
            latencies.push(took);
            let job = answer["execution"]["jobId"].as_str().unwrap_or_else(|| panic!("{thing}: no job: {answer}"));
            assert_eq!(answer["execution"]["status"], "IN_PROGRESS", "{thing}: {answer}");
            let (took, answer) = device
                .request(
                    &format!("$aws/things/{thing}/jobs/{job}/update"),
                    json!({"status": "SUCCEEDED", "clientToken": format!("{i}-{j}-done")}),
                )
                .await;
            latencies.push(took);
            assert!(answer.get("timestamp").is_some(), "{thing}: {answer}");
        }
        (device.stream, latencies)
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    jobs_phase_ends();
    let (clients, latencies): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    let mut latencies: Vec<Duration> = latencies.into_iter().flatten().collect();
    latencies.sort_unstable();
    let requests = latencies.len();
    assert_eq!(requests, sessions * jobs_per_device * 2);

    // Every execution SUCCEEDED, as the engine counts them.
    let mut succeeded = 0;
    for id in &job_ids {
        let job =
            engine.describe_job(DescribeJobRequest { job_id: id.clone(), ..Default::default() }).await.unwrap().job;
        let d = job.job_process_details;
        succeeded += d.number_of_succeeded_things;
        assert_eq!(not_succeeded(&d), 0, "{id}: {d:?}");
        assert_eq!(job.status, JobStatus::Completed, "{id}");
    }
    assert_eq!(succeeded, (sessions * jobs_per_device) as i64);
    println!(
        "mqtt_jobs phase=jobs sessions={sessions} jobs_per_device={jobs_per_device} concurrency={concurrency} \
         durable_updates={requests} seconds={secs:.2} updates_per_sec={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} \
         all_accepted=true engine_succeeded={succeeded}",
        requests as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );

    // --- 5. disconnect ---------------------------------------------------------------------
    let started = Instant::now();
    drop(clients);
    while broker.connection_count() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("mqtt_jobs phase=disconnect sessions={sessions} seconds={:.2}", started.elapsed().as_secs_f64());

    pump_task.abort();
    drop((broker, engine));
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
}
