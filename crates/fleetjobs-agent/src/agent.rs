//! The agent loop: which job to run, and running it step by step against the journal.
//!
//! - Work arrives from `$next/get` (on every connect, after every job, on a jittered timer),
//!   and from `notify-next`. Jobs run one at a time, each in its own task, so the loop keeps
//!   listening (for cancel) while a step runs.
//! - A new execution is admitted or REJECTED at once: signature policy, then
//!   [`document::parse`], then [`executor::preflight`] (every handler exists). Rejected jobs never
//!   block the queue: the loop asks for the next one right away.
//! - An admitted job is journaled (plan + first IN_PROGRESS update) before anything runs. Each
//!   step is journaled as started before the executor touches the device, its checkpoints are
//!   journaled when the executor makes them, and its end is journaled before the next step.
//!   After a crash, the journaled job is resumed where it was: finished steps are never run
//!   again, the interrupted step is run again from its last checkpoint (steps are idempotent
//!   or resumable), a reboot step is checked by boot id.
//! - Status updates go through the journal's outbox (see [`crate::uplink`]); progress is
//!   rate-limited and coalesced, and doubles as the `stepTimeoutInMinutes` heartbeat.
//! - Cancel: when the server shows another head (or none) while a job runs, the loop
//!   describes the running execution; if it is terminal, gone, or replaced by another
//!   execution under the same job id and number (a deleted job's id reused), or the uplink saw
//!   an update rejected as such, the step's cancel flag is raised, the executor kills the
//!   step's process group, and the job is journaled as canceled with nothing more reported.
//! - Identity: the journal knows executions by [`ExecKey`] (job id and number, `queuedAt`,
//!   document hash, endpoint, thing; see [`crate::identity`]). An execution the journal does
//!   not recognize as one it finished is run; one it abandoned (CANCELED here) is run again
//!   when the server shows it pending; so nothing journaled can hold the queue.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::AgentConfig;
use crate::details::Details;
use crate::document;
use crate::execution_status::{ExecutionStatus, ReportedStatus};
use crate::executor;
use crate::executor_api::{Progress, StepCheckpoint, StepContext, StepOutcome, StepRunner};
use crate::identity::{why_gone, ExecKey, Origin};
use crate::jobs_client::{jitter, ClientError, ClientEvent, JobExecution, JobsClient, RequestError};
use crate::journal::{now_secs, Journal, JournalError, JournalState, SharedJournal, StepState, Update};
use crate::plan::{Plan, Step};
use crate::signature::{self, TrustStore};
use crate::status::RuntimeStatus;
use crate::uplink::{self, UplinkEvent, UplinkHandle};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot read the boot id from {path}: {source}")]
    BootId { path: std::path::PathBuf, source: std::io::Error },
}

/// `stepTimeoutInMinutes` for a step that may take `timeout`: rounded up, plus one minute of
/// slack, within AWS's 1..=10080.
pub fn step_timeout_minutes(timeout: Duration) -> i64 {
    let minutes = timeout.as_secs().div_ceil(60) as i64 + 1;
    minutes.clamp(1, 10080)
}

/// How often a healthy long step refreshes its server-side step timer when it reports no
/// progress: half of the (rounded) timer, at least every 30 s, at most every 10 min.
fn heartbeat_interval(timeout: Duration) -> Duration {
    let timer = Duration::from_secs(step_timeout_minutes(timeout) as u64 * 60);
    (timer / 2).clamp(Duration::from_secs(30), Duration::from_secs(600))
}

/// What every job task needs.
struct Env {
    cfg: AgentConfig,
    runner: Arc<dyn StepRunner>,
    trust: Option<TrustStore>,
    boot_id: String,
    /// The endpoint and thing every execution key is made for.
    origin: Origin,
    /// Read through [`SharedJournal::with`], changed through [`Env::record`] (which logs a
    /// failed write).
    journal: SharedJournal,
    uplink: UplinkHandle,
    runtime: Arc<Mutex<RuntimeStatus>>,
    /// For fetching a fresh copy of a job's document.
    client: JobsClient,
}

impl Env {
    /// Change the journal with `f`; a failed write is logged (the agent goes on).
    fn record<T>(&self, f: impl FnOnce(&mut Journal) -> Result<T, JournalError>) -> Result<T, JournalError> {
        let r = self.journal.with(f);
        if let Err(e) = &r {
            error!(error = %e, "journal write failed");
        }
        r
    }

    /// Change `runtime.json` (best effort: it is only for `status`).
    fn runtime(&self, change: impl FnOnce(&mut RuntimeStatus)) {
        let mut rt = self.runtime.lock().expect("runtime lock");
        let before = rt.clone();
        change(&mut rt);
        if *rt != before {
            let _ = rt.save(&self.cfg.state_dir);
        }
    }

    fn set_progress(&self, text: Option<String>) {
        self.runtime(|rt| rt.progress = text);
    }
}

/// The cancel flag of a running job (the executor watches the flag) and why it was raised.
#[derive(Clone)]
struct Cancel {
    flag: watch::Sender<bool>,
    reason: Arc<Mutex<String>>,
}

impl Cancel {
    fn new() -> Cancel {
        Cancel { flag: watch::channel(false).0, reason: Arc::new(Mutex::new(String::new())) }
    }

    fn raise(&self, why: &str) {
        *self.reason.lock().expect("cancel reason lock") = why.to_owned();
        self.flag.send_replace(true);
    }

    fn is_raised(&self) -> bool {
        *self.flag.borrow()
    }

    fn reason(&self) -> String {
        let why = self.reason.lock().expect("cancel reason lock").clone();
        if why.is_empty() {
            "canceled by the server".to_owned()
        } else {
            why
        }
    }
}

/// How a job task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobEnd {
    /// SUCCEEDED, FAILED or REJECTED: journaled, the final update queued.
    Finished,
    /// A reboot was issued; the job resumes when the agent starts again.
    AwaitingReboot,
    Canceled,
    /// The journal could not be written; the job is resumed later.
    Stalled,
}

enum Start {
    New(Box<JobExecution>),
    Resume,
}

struct Running {
    key: ExecKey,
    /// What the server's execution is compared with (see [`crate::journal::CurrentJob::identity`]).
    identity: ExecKey,
    cancel: Cancel,
    /// `false` while waiting for a reboot (no task).
    active: bool,
}

/// Read the kernel boot id (or the test's stand-in file).
pub fn read_boot_id(path: &Path) -> Result<String, AgentError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| AgentError::BootId { path: path.to_owned(), source })
}

/// Run the agent until `shutdown` resolves. Returns early only on a startup error.
pub async fn run(
    cfg: AgentConfig,
    runner: Arc<dyn StepRunner>,
    trust: Option<TrustStore>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let origin = Origin { endpoint: format!("{}:{}", cfg.endpoint, cfg.port), thing: cfg.thing_name.clone() };
    let mut opened = Journal::open(&cfg.state_dir)?;
    if let Some(key) = opened.forget_foreign(&origin)? {
        warn!(job = %key, "the journaled job belongs to another endpoint or thing: abandoned");
    }
    let journal = SharedJournal::new(opened);
    let boot_id = read_boot_id(&cfg.boot_id_file)?;
    let (client, mut client_events) = JobsClient::start(&cfg)?;
    let (uplink_tx, mut uplink_events) = mpsc::unbounded_channel();
    let uplink = uplink::spawn(journal.clone(), client.clone(), origin.clone(), uplink_tx, cfg.reconnect_max);
    let runtime = RuntimeStatus {
        pid: std::process::id(),
        started_at: now_secs(),
        thing_name: cfg.thing_name.clone(),
        endpoint: origin.endpoint.clone(),
        ..RuntimeStatus::default()
    };
    let _ = runtime.save(&cfg.state_dir);
    info!(thing = %cfg.thing_name, boot_id = %boot_id, state_dir = %cfg.state_dir.display(), "agent started");
    let runtime = Arc::new(Mutex::new(runtime));
    let env = Arc::new(Env { cfg, runner, trust, boot_id, origin, journal, uplink, runtime, client });
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut agent = Agent { env: env.clone(), running: None, done_tx, settled: HashSet::new() };
    let _ = env.record(|j| j.note(format!("agent started (pid {})", std::process::id())));
    agent.resume_if_journaled();

    tokio::pin!(shutdown);
    let mut next_poll = tokio::time::Instant::now() + jitter(env.cfg.poll_interval, 0.2);
    loop {
        tokio::select! {
            Some(event) = client_events.recv() => agent.on_client_event(event).await,
            Some(event) = uplink_events.recv() => agent.on_uplink_event(event).await,
            Some((key, end)) = done_rx.recv() => agent.on_job_end(key, end).await,
            _ = tokio::time::sleep_until(next_poll) => {
                next_poll = tokio::time::Instant::now() + jitter(env.cfg.poll_interval, 0.2);
                agent.retry_reboot_step();
                agent.poll().await;
            }
            () = &mut shutdown => break,
        }
    }
    info!("agent stopping");
    env.runtime(|rt| {
        rt.connected = false;
        rt.last_disconnect = Some("agent stopped".into());
    });
    let _ = env.record(|j| j.note("agent stopped".into()));
    Ok(())
}

struct Agent {
    env: Arc<Env>,
    running: Option<Running>,
    done_tx: mpsc::UnboundedSender<(ExecKey, JobEnd)>,
    /// History entries acted on again in this process: a final status re-sent, an abandoned
    /// execution run again. Once each, so a server that keeps contradicting the journal (a
    /// status it refuses, a job it calls gone yet shows pending) cannot make the agent loop.
    settled: HashSet<ExecKey>,
}

impl Agent {
    /// On the poll timer, a job waiting for a reboot runs its reboot step again: the executor
    /// completes it if the boot id changed, or issues the reboot again once enough time has
    /// passed since the last one (a reboot command that did nothing does not wedge the job).
    fn retry_reboot_step(&mut self) {
        if self.running.as_ref().is_some_and(|r| !r.active) {
            let key = self.running.take().expect("checked").key;
            self.spawn(key, Start::Resume);
        }
    }

    async fn on_client_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Connected { protocol, session_present } => {
                self.env.runtime(|rt| {
                    rt.connected = true;
                    rt.protocol = Some(protocol.to_owned());
                    rt.last_connected_at = Some(now_secs());
                });
                let _ =
                    self.env.record(|j| j.note(format!("connected ({protocol}, session present: {session_present})")));
                self.env.uplink.wake();
                self.poll().await;
            }
            ClientEvent::Disconnected { reason } => self.env.runtime(|rt| {
                rt.connected = false;
                rt.last_disconnect = Some(reason);
            }),
            ClientEvent::NextChanged(exec) => self.consider(exec.map(|e| *e)).await,
        }
    }

    async fn on_uplink_event(&mut self, event: UplinkEvent) {
        match event {
            UplinkEvent::Drained => self.poll().await,
            UplinkEvent::Gone { key, why } => {
                if self.running.as_ref().is_some_and(|r| r.key == key) {
                    self.cancel_running(&why);
                }
            }
        }
    }

    async fn on_job_end(&mut self, key: ExecKey, end: JobEnd) {
        let Some(running) = self.running.as_mut().filter(|r| r.key == key) else { return };
        info!(job = %key, ?end, "job task ended");
        match end {
            JobEnd::AwaitingReboot => running.active = false,
            JobEnd::Finished | JobEnd::Canceled | JobEnd::Stalled => {
                self.running = None;
                if end != JobEnd::Stalled {
                    self.poll().await;
                }
            }
        }
    }

    /// `$next/get` and act on the answer.
    async fn poll(&mut self) {
        self.resume_if_journaled();
        if !self.env.client.is_connected() {
            return;
        }
        self.env.runtime(|rt| rt.last_poll_at = Some(now_secs()));
        match self.env.client.describe_next().await {
            Ok(exec) => self.consider(exec).await,
            Err(RequestError::Offline) => {}
            Err(e) => warn!(error = %e, "$next/get failed"),
        }
    }

    /// The server's head of the queue is `exec`.
    async fn consider(&mut self, exec: Option<JobExecution>) {
        let key = exec.as_ref().map(|e| ExecKey::of(e, &self.env.origin));
        if let Some(running) = &self.running {
            if !key.as_ref().is_some_and(|k| running.identity.same_execution(k)) {
                self.check_running().await;
            }
            return;
        }
        let (Some(exec), Some(key)) = (exec, key) else { return };
        let decision = self.env.journal.with(|j| decide(j.state(), &key, &exec.status, &self.settled));
        match decision {
            HeadDecision::Ignore => {}
            HeadDecision::Run => self.spawn(key, Start::New(Box::new(exec))),
            HeadDecision::RunAgain(abandoned) => {
                info!(job = %key, "abandoned here earlier, pending on the server: running it again");
                self.settled.insert(abandoned);
                self.spawn(key, Start::New(Box::new(exec)));
            }
            HeadDecision::AwaitUplink => self.env.uplink.wake(),
            HeadDecision::Resend(done) => {
                // Done here, but the server still shows it pending: our final update was lost.
                if self.env.record(|j| j.resend_final(&done)).unwrap_or(false) {
                    info!(job = %done, "re-sending the final status");
                }
                self.settled.insert(done);
                self.env.uplink.wake();
            }
        }
    }

    /// Describe the running execution; stop it when the server has canceled, removed or
    /// replaced it.
    async fn check_running(&mut self) {
        let Some(running) = self.running.as_ref() else { return };
        let (key, identity) = (running.key.clone(), running.identity.clone());
        let answer = self.env.client.describe(&key.job_id, key.execution_number, true).await;
        match why_gone(&identity, &answer, &self.env.origin) {
            Some(why) => self.cancel_running(&why),
            None => {
                if let Err(e) = answer {
                    warn!(job = %key, error = %e, "describe failed");
                }
            }
        }
    }

    fn cancel_running(&mut self, why: &str) {
        let Some(running) = self.running.as_ref() else { return };
        if running.cancel.is_raised() {
            // Already stopping (several events can tell the same thing while the step winds down).
            return;
        }
        warn!(job = %running.key, why, "canceling the running job");
        if running.active {
            // The task sees the flag (the executor kills the step's process group), journals
            // the cancel and ends with JobEnd::Canceled.
            running.cancel.raise(why);
        } else {
            let key = running.key.clone();
            let _ = self.env.record(|j| j.cancel(&key, why));
            self.running = None;
        }
    }

    fn resume_if_journaled(&mut self) {
        if self.running.is_some() {
            return;
        }
        let current = self.env.journal.with(|j| j.state().current.as_ref().map(|c| c.key.clone()));
        if let Some(key) = current {
            info!(job = %key, "resuming the journaled job");
            self.spawn(key, Start::Resume);
        }
    }

    fn spawn(&mut self, key: ExecKey, start: Start) {
        let cancel = Cancel::new();
        let identity = match start {
            Start::New(_) => key.clone(),
            Start::Resume => self.env.journal.with(|j| {
                j.state().current.as_ref().filter(|c| c.key == key).map(|c| c.identity()).unwrap_or_else(|| key.clone())
            }),
        };
        self.running = Some(Running { key: key.clone(), identity, cancel: cancel.clone(), active: true });
        let env = self.env.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let end = run_job(&env, &key, start, cancel).await;
            env.set_progress(None);
            let _ = done.send((key, end));
        });
    }
}

/// What to do about the server's head of the queue while no job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HeadDecision {
    /// Not pending: nothing to do.
    Ignore,
    /// An execution the journal has not finished: admit and run it.
    Run,
    /// The execution this history key abandoned (CANCELED here, nothing reported), pending
    /// again on the server: run it (once per process).
    RunAgain(ExecKey),
    /// Finished here; its final status is queued (or was re-sent already): let the uplink work.
    AwaitUplink,
    /// Finished here (this history key) but the server missed the final status: queue it again.
    Resend(ExecKey),
}

/// The journal's view of the server's head `head` (in `status`). Only a finished execution
/// that may be this very one holds it back, and then only to deliver its final status; one
/// abandoned here (CANCELED: the server said it was gone) that the server shows pending
/// again is run, since nothing was reported for it. `settled`: see [`Agent::settled`].
fn decide(state: &JournalState, head: &ExecKey, status: &ReportedStatus, settled: &HashSet<ExecKey>) -> HeadDecision {
    if status.is_terminal() {
        return HeadDecision::Ignore;
    }
    match state.finished_as(head) {
        None => HeadDecision::Run,
        Some(done) if settled.contains(&done.key) || state.has_outbox_for(&done.key) => HeadDecision::AwaitUplink,
        Some(done) if done.outcome == ExecutionStatus::Canceled => HeadDecision::RunAgain(done.key.clone()),
        Some(done) => HeadDecision::Resend(done.key.clone()),
    }
}

/// Admit (when new) and run a job to its end, a reboot, or a cancel.
async fn run_job(env: &Env, key: &ExecKey, start: Start, cancel: Cancel) -> JobEnd {
    if let Start::New(exec) = start {
        let version = exec.version_number;
        match admit(env, &exec) {
            Err(details) => {
                warn!(job = %key, reason = details.get("reason").unwrap_or(""), "rejecting the job");
                let r = env.record(|j| j.reject(key, version, details));
                env.uplink.wake();
                return if r.is_ok() { JobEnd::Finished } else { JobEnd::Stalled };
            }
            Ok((document, plan)) => {
                info!(job = %key, operation = %plan.operation, steps = plan.steps.len(), "starting the job");
                let first = Update {
                    status: ExecutionStatus::InProgress,
                    details: Details::new().with("operation", &plan.operation).with("step", "accepted"),
                    step_timeout_minutes: None,
                    coalesce: false,
                };
                if env.record(|j| j.begin(key.clone(), document, plan, version, first)).is_err() {
                    return JobEnd::Stalled;
                }
                env.uplink.wake();
            }
        }
    }
    execute(env, key, cancel).await
}

/// The verified, parsed document, or the statusDetails of a REJECTED update.
fn admit(env: &Env, exec: &JobExecution) -> Result<(Value, Plan), Details> {
    admit_document(env, exec.job_document.as_ref())
}

fn admit_document(env: &Env, doc: Option<&Value>) -> Result<(Value, Plan), Details> {
    let reject = |operation: Option<&str>, reason: String| {
        let mut d = Details::new();
        if let Some(op) = operation {
            d.set("operation", op);
        }
        d.set("reason", reason);
        d
    };
    let Some(doc) = doc else {
        return Err(reject(None, "the execution carries no jobDocument".into()));
    };
    let operation = doc.get("operation").and_then(Value::as_str);
    let doc = match &env.trust {
        Some(trust) => signature::enforce(doc, trust, env.cfg.require_signed)
            .map_err(|e| reject(operation, format!("signature: {e}")))?,
        None => {
            let mut doc = doc.clone();
            if let Some(obj) = doc.as_object_mut() {
                obj.remove(signature::SIGNATURE_MEMBER);
            }
            doc
        }
    };
    let plan = document::parse(&doc).map_err(|e| reject(operation, format!("invalid job document: {e}")))?;
    executor::preflight(&plan, &env.cfg.handler_dir).map_err(|e| reject(operation, e.0))?;
    Ok((doc, plan))
}

/// What `execute` needs to know about the next step, read from the journal.
struct NextStep {
    index: usize,
    total: usize,
    step: Step,
    operation: String,
    document: Value,
    checkpoint: Option<StepCheckpoint>,
    skip: bool,
    /// Why the latest failed step failed (an `ignoreStepFailure` step, or the one that fails
    /// the job before the final step).
    last_error: Option<String>,
}

fn next_step(env: &Env, key: &ExecKey) -> Option<NextStep> {
    env.journal.with(|j| {
        let job = j.state().current.as_ref().filter(|c| &c.key == key)?;
        let index = job.next_step()?;
        Some(NextStep {
            index,
            total: job.steps.len(),
            step: job.step(index)?.clone(),
            operation: job.plan.operation.clone(),
            document: job.document.clone(),
            checkpoint: job.steps[index].checkpoint.clone(),
            skip: job.failure.is_some() && !job.is_final_step(index),
            last_error: job.steps[..index].iter().rev().find_map(|s| s.reason.clone()),
        })
    })
}

async fn execute(env: &Env, key: &ExecKey, cancel: Cancel) -> JobEnd {
    let mut refreshes = 0;
    loop {
        if cancel.is_raised() {
            let _ = env.record(|j| j.cancel(key, &cancel.reason()));
            return JobEnd::Canceled;
        }
        let Some(next) = next_step(env, key) else { break };
        let label = format!("{}/{} {}", next.index + 1, next.total, next.step.name);
        if next.skip {
            if env.record(|j| j.step_finished(key, next.index, StepState::Skipped, Details::new(), None, None)).is_err()
            {
                return JobEnd::Stalled;
            }
            continue;
        }
        let timeout = next.step.timeout.unwrap_or(env.cfg.step_timeout);
        let mut base = Details::new().with("operation", &next.operation).with("step", &label);
        if let Some(e) = &next.last_error {
            base.set("lastError", e);
        }
        let started = Update {
            status: ExecutionStatus::InProgress,
            details: base.clone(),
            step_timeout_minutes: Some(step_timeout_minutes(timeout)),
            coalesce: false,
        };
        if env.record(|j| j.step_started(key, next.index, Some(started))).is_err() {
            return JobEnd::Stalled;
        }
        env.uplink.wake();
        info!(job = %key, step = %label, resumed = next.checkpoint.is_some(), "running step");
        let outcome = run_step(env, key, &next, &base, timeout, cancel.flag.subscribe()).await;
        info!(job = %key, step = %label, ?outcome, "step ended");
        let recorded = match outcome {
            StepOutcome::Succeeded { details } => {
                env.record(|j| j.step_finished(key, next.index, StepState::Succeeded, to_details(&details), None, None))
            }
            StepOutcome::Failed { details, .. }
                if refreshes < MAX_REFRESHES && needs_fresh_document(&details) && refresh_document(env, key).await =>
            {
                refreshes += 1;
                info!(job = %key, step = %label, "download refused (expired URL?): retrying with a fresh document");
                continue;
            }
            StepOutcome::Failed { reason, details } => {
                let failure = (!next.step.ignore_failure).then(|| format!("step {label} failed: {reason}"));
                env.record(|j| {
                    j.step_finished(key, next.index, StepState::Failed, to_details(&details), Some(reason), failure)
                })
            }
            StepOutcome::TimedOut => {
                let reason = format!("TIMED_OUT: step {label} exceeded its {}s timeout", timeout.as_secs());
                let failure = (!next.step.ignore_failure).then(|| reason.clone());
                env.record(|j| {
                    j.step_finished(key, next.index, StepState::Failed, Details::new(), Some(reason), failure)
                })
            }
            StepOutcome::Canceled => {
                let _ = env.record(|j| j.cancel(key, &cancel.reason()));
                return JobEnd::Canceled;
            }
            StepOutcome::RebootPending => {
                let details = Details::new().with("operation", &next.operation).with("step", &label);
                let r = env.record(|j| {
                    j.step_finished(key, next.index, StepState::RebootPending, details, Some("rebooting".into()), None)
                });
                return if r.is_ok() { JobEnd::AwaitingReboot } else { JobEnd::Stalled };
            }
        };
        if recorded.is_err() {
            return JobEnd::Stalled;
        }
    }
    if cancel.is_raised() {
        let _ = env.record(|j| j.cancel(key, &cancel.reason()));
        return JobEnd::Canceled;
    }
    let finished = env.record(|j| {
        let job =
            j.state().current.clone().filter(|c| &c.key == key).ok_or(JournalError::NoSuchJob(key.to_string()))?;
        let (outcome, details) = final_details(&job);
        j.finish(key, outcome, details)
    });
    env.uplink.wake();
    if finished.is_ok() {
        JobEnd::Finished
    } else {
        JobEnd::Stalled
    }
}

/// Fresh documents fetched for one job run before its failures count.
const MAX_REFRESHES: u32 = 2;

/// A download refused with 401/403: typically an expired presigned URL.
fn needs_fresh_document(details: &[(String, String)]) -> bool {
    details.iter().any(|(k, v)| k == "statusCode" && matches!(v.as_str(), "401" | "403"))
}

/// Fetch the job's document again (`{jobId}/get` with the document); when it differs from the
/// journaled one (new presigned URLs) and has the same steps, journal it. `true`: run the step
/// again with it (the executor resumes its partial download when the resource is the same).
async fn refresh_document(env: &Env, key: &ExecKey) -> bool {
    let identity = env.journal.with(|j| j.state().current.as_ref().map(|c| c.identity()));
    let fresh = match env.client.describe(&key.job_id, key.execution_number, true).await {
        // Only a copy of this very execution (not of a job that reuses its id).
        Ok(Some(exec)) if identity.is_some_and(|i| i.same_execution(&ExecKey::of(&exec, &env.origin))) => {
            exec.job_document
        }
        Ok(Some(_)) => return false,
        Ok(None) => return false,
        Err(e) => {
            warn!(job = %key, error = %e, "cannot fetch a fresh job document");
            return false;
        }
    };
    let Ok((document, plan)) = admit_document(env, fresh.as_ref()) else { return false };
    let unchanged = env.journal.with(|j| j.state().current.as_ref().is_some_and(|c| c.document == document));
    if unchanged {
        return false;
    }
    env.record(|j| j.replace_document(key, document, plan)).unwrap_or(false)
}

/// The final status and its statusDetails: operation, step, reason (on failure), then the
/// steps' own details, the failing or last step's first.
fn final_details(job: &crate::journal::CurrentJob) -> (ExecutionStatus, Details) {
    let n = job.steps.len();
    let mut d = Details::new().with("operation", &job.plan.operation);
    let failed_at = job.steps.iter().position(|s| s.state == StepState::Failed && job.failure.is_some());
    let outcome = match (&job.failure, failed_at) {
        (Some(reason), at) => {
            let at = at.unwrap_or(n.saturating_sub(1));
            d.set("step", format!("{}/{n} {}", at + 1, job.steps.get(at).map(|s| s.name.as_str()).unwrap_or("")));
            d.set("reason", reason);
            d.fill(job.steps.get(at).map(|s| s.details.pairs()).unwrap_or_default());
            ExecutionStatus::Failed
        }
        (None, _) => {
            d.set("step", format!("{n}/{n} finished all steps"));
            ExecutionStatus::Succeeded
        }
    };
    for s in job.steps.iter().rev() {
        d.fill(s.details.pairs());
    }
    (outcome, d)
}

fn to_details(pairs: &[(String, String)]) -> Details {
    let mut d = Details::new();
    d.fill(pairs);
    d
}

/// statusDetails for a progress update.
fn progress_details(base: &Details, p: &Progress) -> Details {
    let mut d = base.clone();
    if let Some(pc) = p.percent {
        d.set("progress", format!("{pc}%"));
    }
    if let Some(b) = p.bytes {
        d.set("bytes", b.to_string());
    }
    if let Some(t) = p.total {
        d.set("total", t.to_string());
    }
    if let Some(m) = &p.message {
        d.set("message", m);
    }
    d
}

fn progress_text(p: &Progress) -> String {
    let mut parts = Vec::new();
    if let Some(pc) = p.percent {
        parts.push(format!("{pc}%"));
    }
    match (p.bytes, p.total) {
        (Some(b), Some(t)) => parts.push(format!("{b}/{t} bytes")),
        (Some(b), None) => parts.push(format!("{b} bytes")),
        _ => {}
    }
    if let Some(m) = &p.message {
        parts.push(m.clone());
    }
    parts.join(", ")
}

/// Run one step with the executor while sending rate-limited progress and heartbeats.
async fn run_step(
    env: &Env,
    key: &ExecKey,
    next: &NextStep,
    base: &Details,
    timeout: Duration,
    cancel: watch::Receiver<bool>,
) -> StepOutcome {
    let latest: Arc<Mutex<Option<Progress>>> = Arc::new(Mutex::new(None));
    let journal = env.journal.clone();
    let (ck_key, ck_index) = (key.clone(), next.index);
    let checkpoint = move |cp: StepCheckpoint| {
        if let Err(e) = journal.with(|j| j.checkpoint(&ck_key, ck_index, cp)) {
            error!(error = %e, "checkpoint not journaled");
        }
    };
    let slot = latest.clone();
    let progress = move |p: Progress| {
        *slot.lock().expect("progress lock") = Some(p);
    };
    let ctx = StepContext {
        job_id: &key.job_id,
        document: &next.document,
        handler_dir: &env.cfg.handler_dir,
        state_dir: &env.cfg.state_dir,
        default_timeout: env.cfg.step_timeout,
        boot_id: &env.boot_id,
        reboot_command: &env.cfg.reboot_command,
        shutdown_command: &env.cfg.shutdown_command,
        resume: next.checkpoint.as_ref(),
        checkpoint: &checkpoint,
        progress: &progress,
        cancel,
    };
    let run = env.runner.run(&next.step, &ctx);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(env.cfg.progress_interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let heartbeat = heartbeat_interval(timeout);
    let mut last_sent = Instant::now();
    let mut last: Option<Progress> = None;
    loop {
        tokio::select! {
            outcome = &mut run => return outcome,
            _ = tick.tick() => {
                let now = latest.lock().expect("progress lock").clone();
                let changed = now.is_some() && now != last;
                if !changed && last_sent.elapsed() < heartbeat {
                    continue;
                }
                let details = now.as_ref().map(|p| progress_details(base, p)).unwrap_or_else(|| base.clone());
                env.set_progress(now.as_ref().map(progress_text));
                let update = Update {
                    status: ExecutionStatus::InProgress,
                    details,
                    step_timeout_minutes: Some(step_timeout_minutes(timeout)),
                    coalesce: true,
                };
                if env.record(|j| j.enqueue(key, update)).is_ok() {
                    env.uplink.wake();
                }
                last_sent = Instant::now();
                last = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution_status::ExecutionStatus::{Failed, InProgress, Queued, Succeeded};
    use crate::journal::{CurrentJob, StepRecord};

    #[test]
    fn step_timer_minutes() {
        assert_eq!(step_timeout_minutes(Duration::from_secs(3)), 2);
        assert_eq!(step_timeout_minutes(Duration::from_secs(3600)), 61);
        assert_eq!(step_timeout_minutes(Duration::from_secs(30 * 86400)), 10080);
        assert_eq!(heartbeat_interval(Duration::from_secs(3)), Duration::from_secs(60));
        assert_eq!(heartbeat_interval(Duration::from_secs(86400)), Duration::from_secs(600));
    }

    fn record(name: &str, state: StepState, details: Details) -> StepRecord {
        StepRecord {
            name: name.into(),
            state,
            details,
            reason: None,
            checkpoint: None,
            started_at: None,
            finished_at: None,
            attempts: 1,
        }
    }

    #[test]
    fn final_details_name_the_failing_step() {
        let plan = crate::journal::tests::plan(2);
        let mut job = CurrentJob {
            key: ExecKey::bare("j", 1),
            document: Value::Null,
            plan_hash: String::new(),
            plan,
            steps: vec![
                record("s0", StepState::Succeeded, Details::new().with("uptime", "5")),
                record("s1", StepState::Succeeded, Details::new().with("stdout", "hi")),
            ],
            failure: None,
            started_at: 0,
        };
        let (outcome, d) = final_details(&job);
        assert_eq!(outcome, Succeeded);
        assert_eq!(d.get("step"), Some("2/2 finished all steps"));
        assert_eq!(d.get("stdout"), Some("hi"));
        assert_eq!(d.get("uptime"), Some("5"));
        job.steps[1].state = StepState::Failed;
        job.failure = Some("step 2/2 s1 failed: exit 3".into());
        let (outcome, d) = final_details(&job);
        assert_eq!(outcome, Failed);
        assert_eq!(d.get("step"), Some("2/2 s1"));
        assert_eq!(d.get("reason"), Some("step 2/2 s1 failed: exit 3"));
    }

    #[test]
    fn only_refused_downloads_ask_for_a_fresh_document() {
        let d = |code: &str| {
            vec![("errorCode".to_owned(), "ERR_DOWNLOAD_FAILED".to_owned()), ("statusCode".to_owned(), code.to_owned())]
        };
        assert!(needs_fresh_document(&d("403")));
        assert!(needs_fresh_document(&d("401")));
        assert!(!needs_fresh_document(&d("404")));
        assert!(!needs_fresh_document(&[]));
    }

    #[test]
    fn progress_goes_into_aws_shaped_details() {
        let base = Details::new().with("operation", "install").with("step", "1/2 download");
        let p = Progress { percent: Some(42), bytes: Some(420), total: Some(1000), message: Some("retrying".into()) };
        let d = progress_details(&base, &p);
        assert_eq!(d.get("progress"), Some("42%"));
        assert_eq!(d.get("bytes"), Some("420"));
        assert_eq!(d.get("total"), Some("1000"));
        assert_eq!(d.get("message"), Some("retrying"));
        assert_eq!(progress_text(&p), "42%, 420/1000 bytes, retrying");
    }

    #[test]
    fn a_reused_job_id_runs_again_and_nothing_journaled_holds_the_queue() {
        use crate::journal::tests::identity;
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let settled = HashSet::new();
        let (first, again) = (identity(100, 1), identity(100, 1));
        assert_eq!(decide(j.state(), &first, &Queued.into(), &settled), HeadDecision::Run);
        let first_update =
            Update { status: InProgress, details: Details::new(), step_timeout_minutes: None, coalesce: false };
        j.begin(first.clone(), serde_json::json!({"v": 1}), crate::journal::tests::plan(1), Some(1), first_update)
            .unwrap();
        j.finish(&first, Succeeded, Details::new().with("result", "old")).unwrap();
        // (a) finished, deleted, re-created with another document or later: run it.
        assert_eq!(decide(j.state(), &identity(100, 2), &Queued.into(), &settled), HeadDecision::Run);
        assert_eq!(decide(j.state(), &identity(300, 1), &Queued.into(), &settled), HeadDecision::Run);
        // The very execution: deliver the final status, never run it again.
        assert_eq!(decide(j.state(), &again, &InProgress.into(), &settled), HeadDecision::AwaitUplink, "still queued");
        let seqs: Vec<u64> = j.state().outbox.iter().map(|e| e.seq).collect();
        for seq in seqs {
            j.acknowledge(seq, Some(3)).unwrap();
        }
        assert_eq!(decide(j.state(), &again, &InProgress.into(), &settled), HeadDecision::Resend(first.clone()));
        let once = HashSet::from([first.clone()]);
        assert_eq!(decide(j.state(), &again, &InProgress.into(), &once), HeadDecision::AwaitUplink);
        assert_eq!(decide(j.state(), &again, &Succeeded.into(), &settled), HeadDecision::Ignore);
        let unknown = ReportedStatus::Unknown("PAUSED".into());
        assert_eq!(decide(j.state(), &identity(300, 1), &unknown, &settled), HeadDecision::Ignore, "not ours to run");
        // (b) abandoned here (deleted while it ran): whatever the server shows pending runs.
        let running = identity(400, 1);
        let update =
            Update { status: InProgress, details: Details::new(), step_timeout_minutes: None, coalesce: false };
        j.begin(running.clone(), serde_json::json!({"v": 1}), crate::journal::tests::plan(1), Some(1), update).unwrap();
        j.cancel(&running, "the execution no longer exists").unwrap();
        assert_eq!(decide(j.state(), &identity(500, 1), &Queued.into(), &settled), HeadDecision::Run);
        // The abandoned execution itself, shown pending again: run once, then leave it be.
        let again = HeadDecision::RunAgain(running.clone());
        assert_eq!(decide(j.state(), &identity(400, 1), &Queued.into(), &settled), again);
        let legacy = ExecKey::bare("j", 1);
        assert_eq!(decide(j.state(), &legacy, &Queued.into(), &settled), again, "the latest entry it may be");
        let once = HashSet::from([running]);
        assert_eq!(decide(j.state(), &identity(400, 1), &Queued.into(), &once), HeadDecision::AwaitUplink);
        assert_eq!(decide(j.state(), &identity(500, 1), &Queued.into(), &once), HeadDecision::Run);
    }
}
