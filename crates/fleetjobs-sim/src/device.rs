//! One simulated device, behaving like AWS's `jobs-example.js`: subscribe to `notify-next` and
//! the Jobs answers, ask `$next/get`, then for each job: update IN_PROGRESS, work, update
//! SUCCEEDED (or FAILED / REJECTED at the configured rates), and take the next one
//! `notify-next` offers. Its job survives a dropped connection, like a real device's: after
//! reconnecting it asks `$next/get` again and resumes, or resends a final update whose answer
//! it missed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqtt_proto::v3::Packet;
use mqtt_proto::QosPid;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use crate::fleet::Fleetwide;
use crate::mqtt::{Connection, MqttError};
use crate::stats::Stats;

/// Keep-alive the devices announce; they ping well within it.
pub(crate) const KEEP_ALIVE_SECS: u16 = 300;
const PING_EVERY: Duration = Duration::from_secs(240);
/// How long a SUBACK may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between connection attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most messages a device keeps for `--trace`.
const TRACE_LEN: usize = 24;

/// What a device's behaviour is drawn from.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// How long a job takes between IN_PROGRESS and the final update.
    pub work: Duration,
    /// Share of jobs reported FAILED (after working).
    pub fail_rate: f64,
    /// Share of jobs REJECTED (instead of starting).
    pub reject_rate: f64,
    /// Random connection drops per connected device per second (0: none).
    pub disconnect_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Succeeded,
    Failed,
    Rejected,
}

impl Status {
    fn wire(self) -> &'static str {
        match self {
            Status::InProgress => "IN_PROGRESS",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Rejected => "REJECTED",
        }
    }
}

/// The job a device is working on.
#[derive(Debug)]
struct Current {
    job_id: String,
    /// The final status this job will get.
    outcome: Status,
    /// The last update sent and not yet answered.
    sent: Option<Status>,
    /// IN_PROGRESS was accepted (counted in `in_progress`).
    started: bool,
    /// When the work is done.
    done_at: Option<Instant>,
    /// Another job was offered meanwhile. That offer may be the only one the device gets (no
    /// later `notify-next` need name the job again), so after finishing it asks `$next/get`,
    /// as `jobs-example.js` does.
    next_offered: bool,
    /// Which execution of the job it is (see [`Finished`]).
    number: Option<u64>,
    queued_at: Option<u64>,
    /// The execution's `versionNumber` as last known: the offer's, plus one per accepted update.
    version: Option<u64>,
}

impl Current {
    /// Whether `offer` names this execution.
    fn is(&self, offer: &Offered) -> bool {
        self.job_id == offer.job_id && self.number == offer.number && self.queued_at == offer.queued_at
    }
}

/// The execution a device finished last, and the `versionNumber` its final update gave it.
/// The server's `notify-next` travels apart from the answers to updates (as on AWS, whose
/// delivery is unordered), so the `notify-next` a job's creation caused can arrive after the
/// device has already taken that job through `$next/get` and finished it. Such a stale offer
/// names this execution with an older version; taking it would send IN_PROGRESS to a terminal
/// execution (`InvalidStateTransition`), as `jobs-example.js` does (it never reads the
/// rejection). An execution is its job id, `executionNumber` and `queuedAt`: a retry of the
/// job is a new execution (the next number, version 1 again), and so is the execution of a job
/// deleted and created again under the same id (number 1, a later `queuedAt`); both are work.
#[derive(Debug)]
struct Finished {
    job_id: String,
    number: Option<u64>,
    queued_at: Option<u64>,
    version: u64,
}

/// What an offer (`notify-next`, `$next/get/accepted`) names.
#[derive(Debug, Clone, Copy)]
struct Offered<'a> {
    job_id: &'a str,
    /// `IN_PROGRESS` or `QUEUED`.
    status: &'a str,
    number: Option<u64>,
    queued_at: Option<u64>,
    version: Option<u64>,
}

impl<'a> Offered<'a> {
    /// The offer in an `execution` object; `None` without one (an empty queue's `{timestamp}`).
    fn of(execution: &'a Value) -> Option<Offered<'a>> {
        let number = |k: &str| execution.get(k).and_then(Value::as_u64);
        Some(Offered {
            job_id: execution.get("jobId").and_then(Value::as_str)?,
            status: execution.get("status").and_then(Value::as_str)?,
            number: number("executionNumber"),
            queued_at: number("queuedAt"),
            version: number("versionNumber"),
        })
    }
}

/// Whether `offer` names the device's last finished execution at the version its final update
/// gave it, or an older one.
fn is_stale(finished: Option<&Finished>, offer: &Offered) -> bool {
    match (finished, offer.version) {
        (Some(f), Some(v)) => {
            f.job_id == offer.job_id && f.number == offer.number && f.queued_at == offer.queued_at && v <= f.version
        }
        _ => false,
    }
}

/// A device's recent messages, kept only with `--trace` (`start` set), and printed when
/// something goes wrong: which messages a device saw in which order is what explains a
/// rejected update.
struct Trace {
    start: Option<std::time::Instant>,
    lines: VecDeque<String>,
}

impl Trace {
    fn new(start: Option<std::time::Instant>) -> Trace {
        Trace { start, lines: VecDeque::new() }
    }

    /// Keep `line()` (built only when tracing), with the time since the simulator started.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(start) = self.start {
            if self.lines.len() == TRACE_LEN {
                self.lines.pop_front();
            }
            self.lines.push_back(format!("{:>8} ms {}", start.elapsed().as_millis(), line()));
        }
    }

    /// Print why, then the kept lines, as one write (devices print concurrently).
    fn dump(&self, thing: &str, why: &str) {
        if self.start.is_some() {
            let mut out = format!("trace {thing}: {why}\n");
            for line in &self.lines {
                out.push_str(&format!("trace {thing}:   {line}\n"));
            }
            eprint!("{out}");
        }
    }
}

/// One message's gist for the trace: its execution's job, status and version, or its code.
fn gist(body: &Value) -> String {
    let execution = body.get("execution").or_else(|| body.get("executionState"));
    let field = |v: Option<&Value>, k: &str| v.and_then(|e| e.get(k)).map(|x| x.to_string()).unwrap_or_default();
    let mut out = String::new();
    for (key, value) in [
        ("job", field(execution, "jobId")),
        ("status", field(execution, "status").trim_matches('"').to_string()),
        ("n", field(execution, "executionNumber")),
        ("v", field(execution, "versionNumber")),
        ("code", field(Some(body), "code").trim_matches('"').to_string()),
        ("status", field(Some(body), "status").trim_matches('"').to_string()),
    ] {
        if !value.is_empty() {
            out.push_str(&format!(" {key}={value}"));
        }
    }
    out
}

/// What a device keeps across its sessions besides its job.
struct Memory {
    finished: Option<Finished>,
    trace: Trace,
}

/// How a session ended.
enum End {
    Stop,
    Dropped,
}

/// A device's whole life: connect (through the fleet's gate), run sessions, reconnect after
/// drops, until the fleet stops.
pub async fn run(thing: String, fleet: Arc<Fleetwide>) {
    let mut stop = fleet.stop.clone();
    let mut storm = fleet.storm.clone();
    let mut current: Option<Current> = None;
    let mut memory = Memory { finished: None, trace: Trace::new(fleet.trace) };
    let mut failures = 0u32;
    let stats = &fleet.stats;
    loop {
        if *stop.borrow() {
            return;
        }
        let opened = tokio::select! {
            c = fleet.open(&thing) => c,
            _ = changed(&mut stop) => return,
        };
        let conn = match opened {
            Ok(c) => c,
            Err(e) => {
                Stats::add(&stats.connect_errors);
                stats.error(&format!("connect: {}", error_kind(&e)));
                failures = failures.saturating_add(1);
                let backoff = Duration::from_millis(100u64 << failures.min(6)).min(MAX_BACKOFF);
                let jitter = backoff.mul_f64(rand::random::<f64>());
                tokio::select! {
                    _ = sleep(backoff / 2 + jitter / 2) => continue,
                    _ = changed(&mut stop) => return,
                }
            }
        };
        failures = 0;
        Stats::add(&stats.connects);
        stats.connected.fetch_add(1, Ordering::Relaxed);
        storm.mark_unchanged();
        memory.trace.note(|| "connected".to_string());
        let end = session(&thing, conn, &mut current, &mut memory, &fleet, &mut stop, &mut storm).await;
        stats.connected.fetch_sub(1, Ordering::Relaxed);
        match end {
            End::Stop => return,
            End::Dropped => Stats::add(&stats.disconnects),
        }
    }
}

/// The next change of a signal; never, once its sender is gone (a finished storm timer).
async fn changed<T>(signal: &mut watch::Receiver<T>) {
    if signal.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn error_kind(e: &MqttError) -> &'static str {
    match e {
        MqttError::Io(_) => "io",
        MqttError::Timeout(_) => "timeout",
        MqttError::Refused(_) => "refused",
        MqttError::SubscribeRefused => "subscribe refused",
        MqttError::Closed => "closed",
        MqttError::Unexpected(_) => "unexpected packet",
        MqttError::Codec(_) => "codec",
    }
}

/// Seconds until the next random drop: exponential with the configured rate.
fn next_drop(rate: f64) -> Option<Duration> {
    (rate > 0.0).then(|| Duration::from_secs_f64(-(1.0 - rand::random::<f64>()).ln() / rate))
}

fn draw_outcome(b: &Behaviour) -> Status {
    let r: f64 = rand::random();
    if r < b.reject_rate {
        Status::Rejected
    } else if r < b.reject_rate + b.fail_rate {
        Status::Failed
    } else {
        Status::Succeeded
    }
}

/// One connection's worth of a device's behaviour. Its handlers only decide: the requests they
/// make wait in `outgoing` until the session loop [`send`](Session::send)s them, so the
/// behaviour can be driven message by message without a connection (the tests do).
struct Session<'a> {
    thing: &'a str,
    prefix: String,
    fleet: &'a Fleetwide,
    memory: &'a mut Memory,
    /// Requests made and not yet sent: (topic, payload).
    outgoing: Vec<(String, Vec<u8>)>,
}

impl Session<'_> {
    fn request(&mut self, suffix: &str, payload: Value) {
        let topic = format!("{}{suffix}", self.prefix);
        self.memory.trace.note(|| format!("-> {suffix}{}", gist(&payload)));
        self.outgoing.push((topic, payload.to_string().into_bytes()));
    }

    /// Publish the requests made so far, in order.
    async fn send(&mut self, conn: &mut Connection) -> Result<(), MqttError> {
        for (topic, payload) in std::mem::take(&mut self.outgoing) {
            conn.publish(&topic, payload, true).await?;
        }
        Ok(())
    }

    fn next_get(&mut self) {
        self.request("$next/get", json!({ "clientToken": self.thing }))
    }

    fn update(&mut self, job: &mut Current, status: Status) {
        job.sent = Some(status);
        let payload = json!({
            "status": status.wire(),
            "statusDetails": { "simulator": "fleetjobs-sim" },
            "clientToken": self.thing,
        });
        self.request(&format!("{}/update", job.job_id), payload)
    }

    /// Take `execution` (from `notify-next` or `$next/get`) as the job to work on.
    fn offer(&mut self, current: &mut Option<Current>, execution: &Value) {
        let Some(offer) = Offered::of(execution) else { return };
        if is_stale(self.memory.finished.as_ref(), &offer) {
            // Counted, not hidden: `jobs-example.js` would start the job again here and have
            // both its updates rejected (`InvalidStateTransition`), on AWS as here.
            Stats::add(&self.fleet.stats.stale_offers);
            self.memory.trace.dump(self.thing, "ignored a stale offer");
            return;
        }
        let in_progress = offer.status == "IN_PROGRESS";
        match current {
            Some(job) if job.is(&offer) => {
                // An offer may be older than what the device knows (notifications and replies
                // are not ordered): keep the newest version.
                job.version = job.version.max(offer.version);
                // The server still has our job: resume what the last session left off.
                if job.sent.is_none() && job.done_at.is_none() {
                    self.start(job, in_progress);
                }
            }
            // Busy with another job (or another execution of this one: its retry, offered
            // before the answer to the final update that caused it): finish it first, then ask
            // for the next one.
            Some(job) => job.next_offered = true,
            None => {
                let mut job = Current {
                    job_id: offer.job_id.to_string(),
                    outcome: draw_outcome(&self.fleet.behaviour),
                    sent: None,
                    started: false,
                    done_at: None,
                    next_offered: false,
                    number: offer.number,
                    queued_at: offer.queued_at,
                    version: offer.version,
                };
                self.start(&mut job, in_progress);
                *current = Some(job);
            }
        }
    }

    fn start(&mut self, job: &mut Current, already_in_progress: bool) {
        if already_in_progress {
            self.in_progress(job);
        } else if job.outcome == Status::Rejected {
            self.update(job, Status::Rejected);
        } else {
            self.update(job, Status::InProgress);
        }
    }

    /// The work on the current job is done: send its final update.
    fn work_done(&mut self, current: &mut Option<Current>) {
        if let Some(job) = current.as_mut() {
            job.done_at = None;
            let outcome = job.outcome;
            self.update(job, outcome);
        }
    }

    fn in_progress(&self, job: &mut Current) {
        if !job.started {
            job.started = true;
            self.fleet.stats.in_progress.fetch_add(1, Ordering::Relaxed);
        }
        job.done_at = Some(Instant::now() + self.fleet.behaviour.work);
    }

    /// Remember `job` as the last execution done with, to tell its stale offers.
    fn remember(&mut self, job: &Current) {
        self.memory.finished = job.version.map(|version| Finished {
            job_id: job.job_id.clone(),
            number: job.number,
            queued_at: job.queued_at,
            version,
        });
    }

    fn finished(&mut self, job: Current) {
        self.remember(&job);
        let stats = &self.fleet.stats;
        if job.started {
            stats.in_progress.fetch_sub(1, Ordering::Relaxed);
        }
        Stats::add(match job.outcome {
            Status::Failed => &stats.failed,
            Status::Rejected => &stats.rejected,
            _ => &stats.succeeded,
        });
    }

    fn on_publish(&mut self, current: &mut Option<Current>, topic: &str, payload: &[u8]) {
        let Some(suffix) = topic.strip_prefix(&self.prefix) else { return };
        let body: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        self.memory.trace.note(|| format!("<- {suffix}{}", gist(&body)));
        match suffix {
            "notify-next" | "$next/get/accepted" => {
                let execution = body.get("execution").cloned().unwrap_or(Value::Null);
                self.offer(current, &execution)
            }
            "$next/get/rejected" => {
                self.memory.trace.dump(self.thing, "$next/get was rejected");
                self.fleet.stats.error(&format!("$next/get rejected: {}", code(&body)));
            }
            _ => {
                let Some((job_id, answer)) = suffix.split_once("/update/") else { return };
                let Some(mut job) = current.take_if(|j| j.job_id == job_id) else { return };
                let sent = job.sent.take();
                if answer == "accepted" {
                    job.version = job.version.map(|v| v + 1);
                } else {
                    job.version = version_of(&body).or(job.version);
                }
                match (answer, sent) {
                    ("accepted", Some(Status::InProgress)) => self.in_progress(&mut job),
                    // The next job, if any, comes with the `notify-next` this change causes,
                    // unless that came already while this job was busy.
                    ("accepted", Some(_)) => {
                        let ask = job.next_offered;
                        self.finished(job);
                        if ask {
                            self.next_get();
                        }
                        return;
                    }
                    ("rejected", Some(s)) if state_of(&body) == Some(s.wire()) => {
                        // A resent final update: the first one was applied.
                        self.finished(job);
                        return self.next_get();
                    }
                    ("rejected", _) => {
                        self.fleet.stats.error(&format!("update rejected: {}", code(&body)));
                        self.memory.trace.dump(self.thing, "an update was rejected");
                        self.remember(&job);
                        if job.started {
                            self.fleet.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
                        }
                        return self.next_get();
                    }
                    _ => {}
                }
                *current = Some(job);
            }
        }
    }
}

fn code(body: &Value) -> String {
    body.get("code").and_then(Value::as_str).unwrap_or("?").to_string()
}

fn state_of(body: &Value) -> Option<&str> {
    body.get("executionState").and_then(|s| s.get("status")).and_then(Value::as_str)
}

fn version_of(body: &Value) -> Option<u64> {
    body.get("executionState").and_then(|s| s.get("versionNumber")).and_then(Value::as_u64)
}

async fn session(
    thing: &str,
    mut conn: Connection,
    current: &mut Option<Current>,
    memory: &mut Memory,
    fleet: &Fleetwide,
    stop: &mut watch::Receiver<bool>,
    storm: &mut watch::Receiver<u64>,
) -> End {
    let prefix = format!("$aws/things/{thing}/jobs/");
    let mut s = Session { thing, prefix, fleet, memory, outgoing: Vec::new() };
    let filters: Vec<String> =
        ["notify-next", "$next/get/accepted", "$next/get/rejected", "+/update/accepted", "+/update/rejected"]
            .iter()
            .map(|f| format!("{}{f}", s.prefix))
            .collect();
    if let Err(e) = conn.subscribe(&filters, SUBSCRIBE_TIMEOUT).await {
        fleet.stats.error(&format!("subscribe: {}", error_kind(&e)));
        return End::Dropped;
    }
    s.memory.trace.note(|| "subscribed".to_string());
    // Resend a final update whose answer the last session missed; otherwise ask what is next.
    let resend = current.as_mut().and_then(|job| job.sent.take().map(|status| (job, status)));
    match resend {
        Some((job, status)) if status != Status::InProgress => s.update(job, status),
        _ => {
            if let Some(job) = current.as_mut() {
                job.sent = None;
                job.done_at = None;
            }
            s.next_get()
        }
    }
    if s.send(&mut conn).await.is_err() {
        return End::Dropped;
    }
    let drop_at = next_drop(fleet.behaviour.disconnect_rate).map(|d| Instant::now() + d);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let done_at = current.as_ref().and_then(|j| j.done_at);
        let result = tokio::select! {
            packet = conn.recv() => match packet {
                None => return End::Dropped,
                Some(Packet::Publish(p)) => {
                    if let QosPid::Level1(pid) = p.qos_pid {
                        if conn.puback(pid).await.is_err() {
                            return End::Dropped;
                        }
                    }
                    s.on_publish(current, &p.topic_name, &p.payload);
                    Ok(())
                }
                Some(_) => Ok(()),
            },
            _ = sleep_until(done_at.unwrap_or(far)), if done_at.is_some() => {
                s.work_done(current);
                Ok(())
            }
            _ = sleep_until(drop_at.unwrap_or(far)), if drop_at.is_some() => return End::Dropped,
            _ = changed(storm) => return End::Dropped,
            _ = changed(stop) => {
                conn.disconnect().await;
                return End::Stop;
            }
            _ = ping.tick() => conn.ping().await,
        };
        let result = match result {
            Ok(()) => s.send(&mut conn).await,
            failed => failed,
        };
        if result.is_err() {
            return End::Dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn outcomes_follow_the_rates() {
        let b =
            |fail_rate, reject_rate| Behaviour { work: Duration::ZERO, fail_rate, reject_rate, disconnect_rate: 0.0 };
        assert!((0..100).all(|_| draw_outcome(&b(0.0, 0.0)) == Status::Succeeded));
        assert!((0..100).all(|_| draw_outcome(&b(1.0, 0.0)) == Status::Failed));
        assert!((0..100).all(|_| draw_outcome(&b(0.0, 1.0)) == Status::Rejected));
        let failed = (0..10_000).filter(|_| draw_outcome(&b(0.3, 0.0)) == Status::Failed).count();
        assert!((2_500..3_500).contains(&failed), "{failed}");
    }

    #[test]
    fn an_offer_of_the_execution_just_finished_is_stale_unless_newer() {
        let offer = |job_id, number, queued_at, version| Offered {
            job_id,
            status: "QUEUED",
            number: Some(number),
            queued_at: Some(queued_at),
            version: Some(version),
        };
        // Job r2's execution 1 (queued at 100) finished at version 3.
        let finished = Finished { job_id: "r2".to_string(), number: Some(1), queued_at: Some(100), version: 3 };
        assert!(is_stale(Some(&finished), &offer("r2", 1, 100, 1)));
        assert!(is_stale(Some(&finished), &offer("r2", 1, 100, 3)));
        assert!(!is_stale(Some(&finished), &offer("r2", 1, 100, 4)));
        // A retry is the next execution, at version 1 again; a job created again under the same
        // id is execution 1 queued later; another job is new work.
        assert!(!is_stale(Some(&finished), &offer("r2", 2, 200, 1)));
        assert!(!is_stale(Some(&finished), &offer("r2", 1, 500, 1)));
        assert!(!is_stale(Some(&finished), &offer("r3", 1, 100, 1)));
        // Nothing finished yet, or an offer without a version: take it.
        assert!(!is_stale(None, &offer("r2", 1, 100, 1)));
        assert!(!is_stale(Some(&finished), &Offered { version: None, ..offer("r2", 1, 100, 1) }));
    }

    const PREFIX: &str = "$aws/things/t/jobs/";

    /// One device driven message by message, without a connection.
    struct Device {
        fleet: Fleetwide,
        memory: Memory,
        current: Option<Current>,
    }

    impl Device {
        fn new(fail_rate: f64) -> Device {
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            let fleet = Fleetwide {
                stats: Stats::default(),
                behaviour: Behaviour { work: Duration::ZERO, fail_rate, reject_rate: 0.0, disconnect_rate: 0.0 },
                mqtt_addr: "127.0.0.1:8883".to_string(),
                server_name: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                gate: crate::fleet::ConnectGate::new(None, 1),
                stop: watch::channel(false).1,
                storm: watch::channel(0).1,
                trace: None,
            };
            Device { fleet, memory: Memory { finished: None, trace: Trace::new(None) }, current: None }
        }

        fn session(&mut self) -> Session<'_> {
            Session {
                thing: "t",
                prefix: PREFIX.to_string(),
                fleet: &self.fleet,
                memory: &mut self.memory,
                outgoing: Vec::new(),
            }
        }

        /// The requests a session made: topic suffix, then the status of an update.
        fn sent(session: Session) -> Vec<String> {
            session
                .outgoing
                .iter()
                .map(|(topic, payload)| {
                    let body: Value = serde_json::from_slice(payload).unwrap();
                    let suffix = topic.strip_prefix(PREFIX).unwrap();
                    match body.get("status").and_then(Value::as_str) {
                        Some(status) => format!("{suffix} {status}"),
                        None => suffix.to_string(),
                    }
                })
                .collect()
        }

        /// Deliver one message; what the device sent in answer.
        fn deliver(&mut self, suffix: &str, body: Value) -> Vec<String> {
            let mut current = self.current.take();
            let mut session = self.session();
            session.on_publish(&mut current, &format!("{PREFIX}{suffix}"), body.to_string().as_bytes());
            let sent = Device::sent(session);
            self.current = current;
            sent
        }

        /// The work on the current job is done; what the device sent.
        fn work_done(&mut self) -> Vec<String> {
            let mut current = self.current.take();
            let mut session = self.session();
            session.work_done(&mut current);
            let sent = Device::sent(session);
            self.current = current;
            sent
        }

        fn count(&self, counter: &AtomicU64) -> u64 {
            counter.load(Ordering::Relaxed)
        }
    }

    fn offer(job_id: &str, number: u64, queued_at: u64, status: &str, version: u64) -> Value {
        json!({ "execution": {
            "jobId": job_id, "thingName": "t", "status": status, "executionNumber": number, "queuedAt": queued_at,
            "versionNumber": version, "jobDocument": { "operation": "x" },
        }})
    }

    /// Take an offered job to its end: IN_PROGRESS, the work, the final update.
    fn run_job(d: &mut Device, via: &str, offered: Value, outcome: &str) {
        let job_id = offered["execution"]["jobId"].as_str().unwrap().to_string();
        assert_eq!(d.deliver(via, offered), [format!("{job_id}/update IN_PROGRESS")]);
        assert_eq!(d.deliver(&format!("{job_id}/update/accepted"), json!({})), Vec::<String>::new());
        assert_eq!(d.work_done(), [format!("{job_id}/update {outcome}")]);
        assert_eq!(d.deliver(&format!("{job_id}/update/accepted"), json!({})), Vec::<String>::new());
    }

    #[test]
    fn the_notify_next_of_a_jobs_creation_after_the_device_finished_it_is_not_taken_again() {
        // The sequence `--trace` showed (2,000 EC devices, debug build): one of the last devices
        // to connect asks `$next/get` as the job is created, gets it QUEUED at version 1, takes
        // it to SUCCEEDED (version 3); only then does the job creation's `notify-next` reach it,
        // followed by the empty one its own SUCCEEDED caused.
        let mut d = Device::new(0.0);
        run_job(&mut d, "$next/get/accepted", offer("j", 1, 100, "QUEUED", 1), "SUCCEEDED");
        assert_eq!(d.count(&d.fleet.stats.succeeded), 1);
        assert_eq!(d.deliver("notify-next", offer("j", 1, 100, "QUEUED", 1)), Vec::<String>::new());
        assert_eq!(d.deliver("notify-next", json!({ "timestamp": 1 })), Vec::<String>::new());
        assert_eq!(d.count(&d.fleet.stats.stale_offers), 1);
        assert!(d.current.is_none());
        assert_eq!(d.fleet.stats.errors(), BTreeMap::new());
    }

    #[test]
    fn a_retry_of_the_job_just_failed_is_taken() {
        // A retry is a new execution of the same job (the next executionNumber) at version 1,
        // older than the failed one's version 3: still work to do.
        let mut d = Device::new(1.0);
        run_job(&mut d, "notify-next", offer("j", 1, 100, "QUEUED", 1), "FAILED");
        run_job(&mut d, "notify-next", offer("j", 2, 200, "QUEUED", 1), "FAILED");
        assert_eq!(d.count(&d.fleet.stats.failed), 2);
        assert_eq!(d.count(&d.fleet.stats.stale_offers), 0);
    }

    #[test]
    fn a_retry_offered_before_the_answer_to_the_final_update_is_taken_after_it() {
        // The retry's `notify-next` comes through the outbox, the answer to FAILED straight
        // back: either may come first.
        let mut d = Device::new(1.0);
        assert_eq!(d.deliver("notify-next", offer("j", 1, 100, "QUEUED", 1)), ["j/update IN_PROGRESS"]);
        assert_eq!(d.deliver("j/update/accepted", json!({})), Vec::<String>::new());
        assert_eq!(d.work_done(), ["j/update FAILED"]);
        assert_eq!(d.deliver("notify-next", offer("j", 2, 200, "QUEUED", 1)), Vec::<String>::new());
        assert_eq!(d.deliver("j/update/accepted", json!({})), ["$next/get"]);
        run_job(&mut d, "$next/get/accepted", offer("j", 2, 200, "QUEUED", 1), "FAILED");
        assert_eq!(d.count(&d.fleet.stats.failed), 2);
    }

    #[test]
    fn a_job_created_again_under_the_same_id_is_taken() {
        let mut d = Device::new(0.0);
        run_job(&mut d, "notify-next", offer("j", 1, 100, "QUEUED", 1), "SUCCEEDED");
        run_job(&mut d, "notify-next", offer("j", 1, 500, "QUEUED", 1), "SUCCEEDED");
        assert_eq!(d.count(&d.fleet.stats.succeeded), 2);
        assert_eq!(d.count(&d.fleet.stats.stale_offers), 0);
    }

    #[test]
    fn drops_are_exponential_and_off_at_rate_zero() {
        assert_eq!(next_drop(0.0), None);
        let mean = (0..10_000).map(|_| next_drop(2.0).unwrap().as_secs_f64()).sum::<f64>() / 10_000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
