//! The fleet simulator: provisions N things through the public `iot` API, connects N real
//! mutual-TLS MQTT devices from one process, each acting like AWS's `jobs-example.js`,
//! optionally creates a job on the fleet's group, and reports what happened.
//!
//! The API is [`run`]: a [`SimConfig`] in, a [`Summary`] out (with [`chart::svg`] to draw it).
//! `provision` makes the fleet (one shared certificate, see there), `fleet` holds what the
//! devices share (TLS identity, connection pacing, stop and storm signals), `device` is one
//! device's behaviour, `mqtt` its client connection, `stats` the counters and timeline, and
//! `progress` the live display. `load` is apart: a QoS 1 broker load generator (the
//! `fleetjobs-mqtt-load` binary) on the same client.

mod api;
pub mod chart;
mod device;
mod fleet;
pub mod load;
mod mqtt;
mod progress;
mod provision;
mod server_cpu;
mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use api::ApiError;
pub use device::Behaviour;
pub use fleet::TlsSetupError;
pub use fleetjobs_api::credentials::Credentials;
pub use progress::ProgressMode;
pub use provision::{DeviceKeyType, ProvisionError};
pub use stats::Sample;

use fleet::{ConnectGate, FleetTickets, Fleetwide};
use progress::Progress;
use stats::{Stats, Timeline};

/// How often the timeline is sampled (at first; it coarsens on long runs).
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// How long devices get to disconnect cleanly at the end.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The job the simulator creates on the fleet's group.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub job_id: String,
    /// The job document (JSON text).
    pub document: String,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The `iot` API, e.g. `http://127.0.0.1:8080`.
    pub endpoint: String,
    /// The MQTT mutual-TLS listener, `host:port`.
    pub mqtt: String,
    pub region: String,
    pub credentials: Credentials,
    /// The server's CA (PEM), which devices verify the server with.
    pub root_ca_pem: Vec<u8>,
    /// How many devices.
    pub things: usize,
    /// Thing names are `{prefix}-NNNNNN`; the group is `{prefix}`, the policy `{prefix}-policy`.
    pub prefix: String,
    pub behaviour: Behaviour,
    /// Connection attempts per second (`None`: as fast as `connect_in_flight` allows).
    pub connect_rate: Option<f64>,
    /// TLS handshakes in flight at once.
    pub connect_in_flight: usize,
    /// Concurrent API calls while provisioning.
    pub api_concurrency: usize,
    /// The shared certificate's key: the server's choice, or EC P-256 through a CSR.
    pub key_type: DeviceKeyType,
    /// Reconnects present a TLS 1.3 session ticket from an earlier connection (see
    /// `fleet::FleetTickets`); `false`: every handshake is a full one.
    pub resumption: bool,
    pub job: Option<JobSpec>,
    /// With a job: drop every connection at once this long after creating it (and reconnect).
    /// Without: this long after every device is connected, and the reconnect phase is
    /// measured ([`ReconnectSummary`]).
    pub storm_after: Option<Duration>,
    /// Without a job: how long to stay connected once every device is (the devices still take
    /// any job created meanwhile). With a job: ignored.
    pub hold: Duration,
    /// Longest wait for all devices to connect, and again for all executions to finish.
    pub timeout: Duration,
    pub progress: ProgressMode,
    /// The server's process id, when it runs on this machine: its CPU time per phase is
    /// reported (`/proc/PID/stat`).
    pub server_pid: Option<u32>,
    /// Print a device's recent messages to stderr when one of its updates is rejected or it
    /// ignores a stale offer.
    pub trace: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("provisioning: {0}")]
    Provision(#[from] ProvisionError),
    #[error("creating the job: {0}")]
    Api(#[from] ApiError),
    #[error("device TLS: {0}")]
    Tls(#[from] TlsSetupError),
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectSummary {
    /// First attempt → every device connected (or the timeout).
    pub seconds: f64,
    pub all_connected: bool,
    /// Successful connects in that phase, per second.
    pub connects_per_second: f64,
    /// Successful connects over the whole run (reconnects included).
    pub connects: u64,
    pub errors: u64,
    pub disconnects: u64,
}

/// A reconnect storm without a job: every device drops its connection at once and reconnects.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectSummary {
    /// The storm → every device connected again (or the timeout).
    pub seconds: f64,
    pub all_reconnected: bool,
    pub reconnects_per_second: f64,
    /// Of those reconnects, how many presented a session ticket (an attempt to resume).
    pub tickets_presented: u64,
    /// The server's CPU time over the phase, per reconnect.
    pub server_cpu_ms_per_reconnect: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    pub job_id: String,
    /// The create-job call's answer time.
    pub create_call_ms: f64,
    /// create-job sent → every execution terminal as devices saw it accepted (or the timeout).
    pub completion_seconds: f64,
    pub all_terminal: bool,
    pub executions_per_second: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub rejected: u64,
    /// The server's own count (`describe-job` → `jobProcessDetails`) at the end.
    pub server_job_process_details: Value,
    /// ms since the start when the job was created (for the chart).
    pub created_at_ms: u64,
}

/// The server's CPU time (user + system) per phase, when its pid was given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCpu {
    /// From the first connection attempt until every device is connected.
    pub connect_ms: Option<f64>,
    pub connect_ms_per_connect: Option<f64>,
    /// From create-job until every execution is terminal.
    pub job_ms: Option<f64>,
    pub job_ms_per_execution: Option<f64>,
}

/// What a run did. `timeline` is what the chart draws.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub things: usize,
    pub group: String,
    /// The certificate every device shares.
    pub certificate_arn: String,
    pub provision_seconds: f64,
    /// `server` (create-keys-and-certificate) or `ec-p256` (a CSR).
    pub key_type: &'static str,
    pub connect: ConnectSummary,
    pub reconnect: Option<ReconnectSummary>,
    pub job: Option<JobSummary>,
    pub server_cpu: ServerCpu,
    /// The counters at the end.
    pub last: Sample,
    /// `/rejected` answers and connection failures, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Offers (`notify-next`, `$next/get/accepted`) of an execution the device had already
    /// finished, at the version its final update gave it or older: mostly the `notify-next` a
    /// job's creation caused, delivered after the device took the job through its first
    /// `$next/get` and finished it (replies and notifications are not ordered, on AWS either).
    /// Ignored; `jobs-example.js` would start the job again and get `InvalidStateTransition`.
    pub stale_offers: u64,
    pub sample_interval_ms: u64,
    pub timeline: Vec<Sample>,
}

impl Summary {
    /// The chart of this run.
    pub fn chart(&self) -> String {
        let title = format!("fleetjobs-sim: {} devices", self.things);
        chart::svg(&chart::ChartInput {
            title: &title,
            samples: &self.timeline,
            executions: self.job.as_ref().map(|_| self.things as u64),
            job_created_ms: self.job.as_ref().map(|j| j.created_at_ms),
        })
    }
}

/// Sample the counters into the timeline and the progress display until `stop`.
async fn monitor(
    stats: Arc<Fleetwide>,
    timeline: Arc<std::sync::Mutex<Timeline>>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) {
    let start = timeline.lock().map(|t| t.start).unwrap_or_else(|_| std::time::Instant::now());
    loop {
        let interval = timeline.lock().map(|t| t.interval()).unwrap_or(SAMPLE_EVERY);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        let sample = stats.stats.sample(start.elapsed());
        if let Ok(mut t) = timeline.lock() {
            t.push(sample);
        }
        progress.devices(&sample);
    }
}

/// `total / count` to 4 decimals (0 for no count).
fn per(total: f64, count: f64) -> f64 {
    if count > 0.0 {
        (total / count * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Wait until `done(sample)` or `timeout`; `true` if done.
async fn wait_for(stats: &Stats, start: std::time::Instant, timeout: Duration, done: impl Fn(&Sample) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done(&stats.sample(start.elapsed())) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Run one simulation: provision, connect, (create the job and wait,) disconnect, summarize.
pub async fn run(config: SimConfig) -> Result<Summary, SimError> {
    let start = std::time::Instant::now();
    let progress = Arc::new(Progress::new(config.progress, config.things));
    let api = Arc::new(api::Api::new(&config.endpoint, &config.region, config.credentials.clone())?);

    // 1. Provision.
    let provisioned = Arc::new(AtomicUsize::new(0));
    let ticker = progress.clone().tick_provisioning(provisioned.clone());
    let fleet = provision::provision(
        api.clone(),
        &config.prefix,
        config.things,
        config.api_concurrency,
        config.key_type,
        provisioned,
    )
    .await;
    ticker.abort();
    let fleet = fleet?;
    let provision_seconds = secs(start.elapsed());
    progress.line(&format!("provisioned {} things in {provision_seconds:.1} s", config.things));

    // 2. Connect.
    let tickets = config.resumption.then(|| Arc::new(FleetTickets::new(config.things)));
    let mut tls = fleet::client_config(&config.root_ca_pem, &fleet.certificate_pem, &fleet.private_key_pem)?;
    tls.resumption = fleet::resumption(tickets.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let shared = Arc::new(Fleetwide {
        stats: Stats::default(),
        behaviour: config.behaviour.clone(),
        server_name: fleet::server_name(&config.mqtt)?,
        mqtt_addr: config.mqtt.clone(),
        tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        gate: ConnectGate::new(config.connect_rate, config.connect_in_flight),
        stop: stop_rx.clone(),
        storm: storm_rx,
        trace: config.trace.then_some(start),
    });
    let timeline = Arc::new(std::sync::Mutex::new(Timeline::new(start, SAMPLE_EVERY)));
    let monitor_task = tokio::spawn(monitor(shared.clone(), timeline.clone(), progress.clone(), stop_rx.clone()));
    let cpu = || config.server_pid.and_then(server_cpu::cpu_ms);
    let mut server_cpu = ServerCpu::default();
    let cpu_before_connect = cpu();
    let connect_start = std::time::Instant::now();
    let mut devices = JoinSet::new();
    for thing in fleet.things.iter().cloned() {
        devices.spawn(device::run(thing, shared.clone()));
    }
    let n = config.things as i64;
    let all_connected = wait_for(&shared.stats, start, config.timeout, |s| s.connected >= n).await;
    let connect_seconds = connect_start.elapsed();
    let connected_count = shared.stats.sample(start.elapsed()).connected;
    if let (Some(before), Some(after)) = (cpu_before_connect, cpu()) {
        server_cpu.connect_ms = Some(after - before);
        server_cpu.connect_ms_per_connect = Some(per(after - before, connected_count.max(0) as f64));
    }
    // Every device has had its first (full) handshake: reconnects may resume from here on.
    if let Some(tickets) = &tickets {
        tickets.open();
    }
    progress.line(&format!(
        "{connected_count} of {} devices connected in {:.2} s",
        config.things,
        connect_seconds.as_secs_f64()
    ));

    // 3. The job, or a reconnect storm alone.
    let mut job_summary = None;
    let mut reconnect = None;
    if let (None, Some(after), true) = (&config.job, config.storm_after, all_connected) {
        tokio::time::sleep(after).await;
        let presented = || tickets.as_ref().map_or(0, |t| t.presented.load(Ordering::Relaxed));
        let (connects_before, presented_before, cpu_before) =
            (shared.stats.connects.load(Ordering::Relaxed), presented(), cpu());
        let storm_start = std::time::Instant::now();
        storm_tx.send_modify(|g| *g += 1);
        let target = connects_before + config.things as u64;
        // Counted by connects, not the `connected` gauge: the devices drop their connections
        // after the signal, so the gauge may not have fallen yet.
        let all_reconnected =
            wait_for(&shared.stats, start, config.timeout, |_| shared.stats.connects.load(Ordering::Relaxed) >= target)
                .await;
        let took = storm_start.elapsed();
        let reconnects = shared.stats.connects.load(Ordering::Relaxed) - connects_before;
        let server_cpu_ms_per_reconnect = match (cpu_before, cpu()) {
            (Some(before), Some(after)) => Some(per(after - before, reconnects as f64)),
            _ => None,
        };
        progress.line(&format!("{reconnects} reconnects after the storm in {:.2} s", took.as_secs_f64()));
        reconnect = Some(ReconnectSummary {
            seconds: secs(took),
            all_reconnected,
            reconnects_per_second: (reconnects as f64 / took.as_secs_f64()).round(),
            tickets_presented: presented() - presented_before,
            server_cpu_ms_per_reconnect,
        });
    } else if let Some(job) = &config.job {
        let cpu_before_job = cpu();
        let created_at = std::time::Instant::now();
        let created_at_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let document: Value = serde_json::from_str(&job.document).unwrap_or(Value::String(job.document.clone()));
        let body = json!({
            "targets": [fleet.group_arn],
            "document": match &document { Value::String(s) => s.clone(), other => other.to_string() },
            "targetSelection": "SNAPSHOT",
        });
        api.call(Method::PUT, &format!("/jobs/{}", job.job_id), "", Some(&body), &[]).await?;
        let create_call_ms = created_at.elapsed().as_secs_f64() * 1000.0;
        let storm = config.storm_after.map(|after| {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                storm_tx.send_modify(|g| *g += 1);
            })
        });
        let all_terminal =
            wait_for(&shared.stats, start, config.timeout, |s| s.terminal() >= config.things as u64).await;
        let completion = created_at.elapsed();
        if let Some(storm) = storm {
            storm.abort();
        }
        let last = shared.stats.sample(start.elapsed());
        if let (Some(before), Some(after)) = (cpu_before_job, cpu()) {
            server_cpu.job_ms = Some(after - before);
            server_cpu.job_ms_per_execution = Some(per(after - before, last.terminal() as f64));
        }
        let described = api.call(Method::GET, &format!("/jobs/{}", job.job_id), "", None, &[]).await?;
        job_summary = Some(JobSummary {
            job_id: job.job_id.clone(),
            create_call_ms: (create_call_ms * 1000.0).round() / 1000.0,
            completion_seconds: secs(completion),
            all_terminal,
            executions_per_second: (last.terminal() as f64 / completion.as_secs_f64()).round(),
            succeeded: last.succeeded,
            failed: last.failed,
            rejected: last.rejected,
            server_job_process_details: described.pointer("/job/jobProcessDetails").cloned().unwrap_or(Value::Null),
            created_at_ms,
        });
        progress.line(&format!(
            "job {}: {} of {} executions terminal in {:.3} s (create-job answered in {create_call_ms:.1} ms)",
            job.job_id,
            last.terminal(),
            config.things,
            completion.as_secs_f64()
        ));
    } else if !config.hold.is_zero() {
        tokio::time::sleep(config.hold).await;
    }

    // 4. Stop.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, async { while devices.join_next().await.is_some() {} }).await;
    devices.abort_all();
    let _ = monitor_task.await;
    let last = shared.stats.sample(start.elapsed());
    if let Ok(mut t) = timeline.lock() {
        t.push(last);
    }
    progress.finish();
    let stats = &shared.stats;
    let (timeline, sample_interval_ms) = match timeline.lock() {
        Ok(t) => (t.samples().to_vec(), u64::try_from(t.interval().as_millis()).unwrap_or(0)),
        Err(_) => (Vec::new(), 0),
    };
    Ok(Summary {
        things: config.things,
        group: fleet.group_name,
        certificate_arn: fleet.certificate_arn,
        provision_seconds,
        key_type: match config.key_type {
            DeviceKeyType::Server => "server",
            DeviceKeyType::EcP256 => "ec-p256",
        },
        connect: ConnectSummary {
            seconds: secs(connect_seconds),
            all_connected,
            connects_per_second: (connected_count.max(0) as f64 / connect_seconds.as_secs_f64()).round(),
            connects: stats.connects.load(Ordering::Relaxed),
            errors: stats.connect_errors.load(Ordering::Relaxed),
            disconnects: stats.disconnects.load(Ordering::Relaxed),
        },
        reconnect,
        job: job_summary,
        server_cpu,
        last,
        errors: stats.errors(),
        stale_offers: stats.stale_offers.load(Ordering::Relaxed),
        sample_interval_ms,
        timeline,
    })
}
