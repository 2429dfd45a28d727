//! One simulated device, behaving like AWS's `jobs-example.js`: subscribe to `notify-next` and
//! the Jobs answers, ask `$next/get`, then for each job: update IN_PROGRESS, work, update
//! SUCCEEDED (or FAILED / REJECTED at the configured rates), and take the next one
//! `notify-next` offers. Its job survives a dropped connection, like a real device's: after
//! reconnecting it asks `$next/get` again and resumes, or resends a final update whose answer
//! it missed.

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
    /// The execution's `versionNumber` as last known: the offer's, plus one per accepted update.
    version: Option<u64>,
}

/// The execution a device finished last, and the `versionNumber` its final update gave it.
/// The server's `notify-next` travels apart from the answers to updates (as on AWS, whose
/// delivery is unordered), so the `notify-next` a job's creation caused can arrive after the
/// device has already taken that job through `$next/get` and finished it. Such a stale offer
/// names this execution with an older version; taking it would send IN_PROGRESS to a terminal
/// execution (`InvalidStateTransition`).
#[derive(Debug)]
struct Finished {
    job_id: String,
    version: u64,
}

/// Whether an offer of `job_id` at `version` predates the device's last finished execution.
/// A later offer of the same job (a retry) has a newer version and is taken.
fn is_stale(finished: Option<&Finished>, job_id: &str, version: Option<u64>) -> bool {
    match (finished, version) {
        (Some(f), Some(v)) => f.job_id == job_id && v <= f.version,
        _ => false,
    }
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
    let mut finished: Option<Finished> = None;
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
        let end = session(&thing, conn, &mut current, &mut finished, &fleet, &mut stop, &mut storm).await;
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

struct Session<'a> {
    thing: &'a str,
    prefix: String,
    conn: Connection,
    fleet: &'a Fleetwide,
    finished: &'a mut Option<Finished>,
}

impl Session<'_> {
    async fn request(&mut self, suffix: &str, payload: Value) -> Result<(), MqttError> {
        let topic = format!("{}{suffix}", self.prefix);
        self.conn.publish(&topic, payload.to_string().into_bytes(), true).await
    }

    async fn next_get(&mut self) -> Result<(), MqttError> {
        self.request("$next/get", json!({ "clientToken": self.thing })).await
    }

    async fn update(&mut self, job: &mut Current, status: Status) -> Result<(), MqttError> {
        job.sent = Some(status);
        let payload = json!({
            "status": status.wire(),
            "statusDetails": { "simulator": "fleetjobs-sim" },
            "clientToken": self.thing,
        });
        self.request(&format!("{}/update", job.job_id), payload).await
    }

    /// Take `execution` (from `notify-next` or `$next/get`) as the job to work on.
    async fn offer(&mut self, current: &mut Option<Current>, execution: &Value) -> Result<(), MqttError> {
        let (Some(job_id), Some(status)) =
            (execution.get("jobId").and_then(Value::as_str), execution.get("status").and_then(Value::as_str))
        else {
            return Ok(());
        };
        let version = execution.get("versionNumber").and_then(Value::as_u64);
        if is_stale(self.finished.as_ref(), job_id, version) {
            return Ok(());
        }
        match current {
            Some(job) if job.job_id == job_id => {
                job.version = version.or(job.version);
                // The server still has our job: resume what the last session left off.
                if job.sent.is_none() && job.done_at.is_none() {
                    self.start(job, status == "IN_PROGRESS").await?;
                }
                Ok(())
            }
            // Busy with another job: finish it first, then ask for the next one.
            Some(job) => {
                job.next_offered = true;
                Ok(())
            }
            None => {
                let mut job = Current {
                    job_id: job_id.to_string(),
                    outcome: draw_outcome(&self.fleet.behaviour),
                    sent: None,
                    started: false,
                    done_at: None,
                    next_offered: false,
                    version,
                };
                self.start(&mut job, status == "IN_PROGRESS").await?;
                *current = Some(job);
                Ok(())
            }
        }
    }

    async fn start(&mut self, job: &mut Current, already_in_progress: bool) -> Result<(), MqttError> {
        if already_in_progress {
            self.in_progress(job);
            Ok(())
        } else if job.outcome == Status::Rejected {
            self.update(job, Status::Rejected).await
        } else {
            self.update(job, Status::InProgress).await
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
        *self.finished = job.version.map(|version| Finished { job_id: job.job_id.clone(), version });
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

    async fn on_publish(
        &mut self,
        current: &mut Option<Current>,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), MqttError> {
        let Some(suffix) = topic.strip_prefix(&self.prefix) else { return Ok(()) };
        let body: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        match suffix {
            "notify-next" | "$next/get/accepted" => {
                let execution = body.get("execution").cloned().unwrap_or(Value::Null);
                self.offer(current, &execution).await
            }
            "$next/get/rejected" => {
                self.fleet.stats.error(&format!("$next/get rejected: {}", code(&body)));
                Ok(())
            }
            _ => {
                let Some((job_id, answer)) = suffix.split_once("/update/") else { return Ok(()) };
                let Some(mut job) = current.take_if(|j| j.job_id == job_id) else { return Ok(()) };
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
                        return if ask { self.next_get().await } else { Ok(()) };
                    }
                    ("rejected", Some(s)) if state_of(&body) == Some(s.wire()) => {
                        // A resent final update: the first one was applied.
                        self.finished(job);
                        return self.next_get().await;
                    }
                    ("rejected", _) => {
                        self.fleet.stats.error(&format!("update rejected: {}", code(&body)));
                        self.remember(&job);
                        if job.started {
                            self.fleet.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
                        }
                        return self.next_get().await;
                    }
                    _ => {}
                }
                *current = Some(job);
                Ok(())
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
    conn: Connection,
    current: &mut Option<Current>,
    finished: &mut Option<Finished>,
    fleet: &Fleetwide,
    stop: &mut watch::Receiver<bool>,
    storm: &mut watch::Receiver<u64>,
) -> End {
    let prefix = format!("$aws/things/{thing}/jobs/");
    let mut s = Session { thing, prefix, conn, fleet, finished };
    let filters: Vec<String> =
        ["notify-next", "$next/get/accepted", "$next/get/rejected", "+/update/accepted", "+/update/rejected"]
            .iter()
            .map(|f| format!("{}{f}", s.prefix))
            .collect();
    if let Err(e) = s.conn.subscribe(&filters, SUBSCRIBE_TIMEOUT).await {
        fleet.stats.error(&format!("subscribe: {}", error_kind(&e)));
        return End::Dropped;
    }
    // Resend a final update whose answer the last session missed; otherwise ask what is next.
    let resend = current.as_mut().and_then(|job| job.sent.take().map(|status| (job, status)));
    let first = match resend {
        Some((job, status)) if status != Status::InProgress => s.update(job, status).await,
        _ => {
            if let Some(job) = current.as_mut() {
                job.sent = None;
                job.done_at = None;
            }
            s.next_get().await
        }
    };
    if first.is_err() {
        return End::Dropped;
    }
    let drop_at = next_drop(fleet.behaviour.disconnect_rate).map(|d| Instant::now() + d);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let done_at = current.as_ref().and_then(|j| j.done_at);
        let result = tokio::select! {
            packet = s.conn.recv() => match packet {
                None => return End::Dropped,
                Some(Packet::Publish(p)) => {
                    if let QosPid::Level1(pid) = p.qos_pid {
                        if s.conn.puback(pid).await.is_err() {
                            return End::Dropped;
                        }
                    }
                    s.on_publish(current, &p.topic_name, &p.payload).await
                }
                Some(_) => Ok(()),
            },
            _ = sleep_until(done_at.unwrap_or(far)), if done_at.is_some() => {
                match current.as_mut() {
                    Some(job) => {
                        job.done_at = None;
                        let outcome = job.outcome;
                        s.update(job, outcome).await
                    }
                    None => Ok(()),
                }
            }
            _ = sleep_until(drop_at.unwrap_or(far)), if drop_at.is_some() => return End::Dropped,
            _ = changed(storm) => return End::Dropped,
            _ = changed(stop) => {
                s.conn.disconnect().await;
                return End::Stop;
            }
            _ = ping.tick() => s.conn.ping().await,
        };
        if result.is_err() {
            return End::Dropped;
        }
    }
}

#[cfg(test)]
mod tests {
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
        // The trace that showed it: the device took job r2 (version 1) through `$next/get`,
        // updated it IN_PROGRESS (2) and SUCCEEDED (3); then the `notify-next` r2's creation
        // caused arrived, still naming r2 QUEUED at version 1.
        let finished = Finished { job_id: "r2".to_string(), version: 3 };
        assert!(is_stale(Some(&finished), "r2", Some(1)));
        assert!(is_stale(Some(&finished), "r2", Some(3)));
        // A retry of the same job comes back with a newer version; other jobs are new work.
        assert!(!is_stale(Some(&finished), "r2", Some(4)));
        assert!(!is_stale(Some(&finished), "r3", Some(1)));
        // Nothing finished yet, or an offer without a version: take it.
        assert!(!is_stale(None, "r2", Some(1)));
        assert!(!is_stale(Some(&finished), "r2", None));
    }

    #[test]
    fn drops_are_exponential_and_off_at_rate_zero() {
        assert_eq!(next_drop(0.0), None);
        let mean = (0..10_000).map(|_| next_drop(2.0).unwrap().as_secs_f64()).sum::<f64>() / 10_000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
