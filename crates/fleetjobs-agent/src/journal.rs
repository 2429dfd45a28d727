//! The durable local journal, in `<state dir>/journal.json`.
//!
//! Design: the whole journal is one small JSON document, replaced atomically on every change
//! (write `journal.json.tmp`, fsync it, rename over `journal.json`, fsync the directory).
//! Every mutating method returns only once the new state is on disk, and the agent calls it
//! *before* the side effect it records (starting a step, sending a status update), so after a
//! `kill -9` or a power cut the file describes either the state before or after the change,
//! never a torn mix. The journal stays small (the current job, the unacknowledged updates, a
//! bounded history), so rewriting it whole is cheap next to the fsyncs.
//!
//! What it holds:
//! - `current`: the job being run (its [`ExecKey`]: jobId, executionNumber and the identity
//!   fields of [`crate::identity`]; document, parsed plan and its hash, per-step status and
//!   details, the last [`StepCheckpoint`] of the running step);
//! - `outbox`: status updates not yet acknowledged by the server, in the order they were
//!   made; they are sent (and re-sent after a reconnect or restart) strictly in that order;
//! - `versions`: the last known `versionNumber` of each execution with pending updates (by
//!   [`ExecKey::journal_id`]: two executions under one reused job id never share one);
//! - `history`: the last [`HISTORY_LEN`] finished jobs with their final status, and `log`:
//!   the last [`LOG_LEN`] notable events, both for `fleetjobs-agent status`.
//!
//! One agent per state directory: [`Journal::open`] takes an exclusive lock on
//! `journal.lock` for the life of the process. [`read_snapshot`] reads without the lock.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::details::Details;
use crate::execution_status::ExecutionStatus;
use crate::executor_api::StepCheckpoint;
pub use crate::identity::ExecKey;
use crate::identity::{document_hash, Origin};
use crate::plan::{Plan, Step};

pub const JOURNAL_FILE: &str = "journal.json";
const LOCK_FILE: &str = "journal.lock";
pub const HISTORY_LEN: usize = 20;

pub const LOG_LEN: usize = 50;

/// The journal as the agent's tasks share it. [`SharedJournal::with`] is the only way in, so
/// the lock is held for one closure at a time and never across an await.
#[derive(Debug, Clone)]
pub struct SharedJournal(std::sync::Arc<std::sync::Mutex<Journal>>);

impl SharedJournal {
    pub fn new(journal: Journal) -> SharedJournal {
        SharedJournal(std::sync::Arc::new(std::sync::Mutex::new(journal)))
    }

    /// Run `f` on the journal, under its lock.
    pub fn with<T>(&self, f: impl FnOnce(&mut Journal) -> T) -> T {
        // A panic while the journal was held leaves its in-memory state unknown: crash too, and
        // restart from the durable file.
        f(&mut self.0.lock().expect("journal lock"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("journal {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("another agent holds the state directory {0} (journal.lock is locked)")]
    Locked(PathBuf),
    #[error("no current job {0}")]
    NoSuchJob(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    Pending,
    Running,
    /// A reboot was issued; done when the boot id has changed.
    RebootPending,
    Succeeded,
    Failed,
    /// Not run because an earlier step failed.
    Skipped,
}

impl StepState {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Skipped)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub name: String,
    pub state: StepState,
    #[serde(default)]
    pub details: Details,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub checkpoint: Option<StepCheckpoint>,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// How many times the step was started (more than 1 = resumed after a restart).
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentJob {
    pub key: ExecKey,
    pub document: serde_json::Value,
    pub plan: Plan,
    pub plan_hash: String,
    /// One record per step, then one for the final step when the plan has one.
    pub steps: Vec<StepRecord>,
    /// Why the job fails (the first failed step that is not `ignoreStepFailure`).
    #[serde(default)]
    pub failure: Option<String>,
    pub started_at: u64,
}

impl CurrentJob {
    /// The plan's steps followed by its final step.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.plan.steps.iter().chain(self.plan.final_step.iter())
    }

    pub fn step(&self, index: usize) -> Option<&Step> {
        self.all_steps().nth(index)
    }

    /// The first step not finished yet.
    pub fn next_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| !s.state.is_finished())
    }

    pub fn is_final_step(&self, index: usize) -> bool {
        self.plan.final_step.is_some() && index + 1 == self.steps.len()
    }

    /// The key to compare with what the server shows. A job journaled by an older agent has
    /// no document hash in its key; the journaled document stands in for it (the hash leaves
    /// out what the agent strips or what a fresh copy changes).
    pub fn identity(&self) -> ExecKey {
        let mut key = self.key.clone();
        if key.document_hash.is_none() {
            key.document_hash = Some(document_hash(&self.document));
        }
        key
    }
}

/// A status update waiting for the server's `accepted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub seq: u64,
    pub key: ExecKey,
    pub status: ExecutionStatus,
    pub details: Details,
    #[serde(default)]
    pub step_timeout_minutes: Option<i64>,
    /// A progress/heartbeat update: a newer one for the same job replaces it while unsent.
    #[serde(default)]
    pub coalesce: bool,
    pub created_at: u64,
}

/// What the agent wants the server to record (before it is given a sequence number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub status: ExecutionStatus,
    pub details: Details,
    pub step_timeout_minutes: Option<i64>,
    pub coalesce: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedJob {
    pub key: ExecKey,
    /// SUCCEEDED, FAILED, REJECTED or CANCELED.
    pub outcome: ExecutionStatus,
    #[serde(default)]
    pub reason: Option<String>,
    /// The final statusDetails sent (re-sent if the server still shows the job pending).
    #[serde(default)]
    pub details: Details,
    pub finished_at: u64,
}

impl FinishedJob {
    /// Whether the server's execution `exec` may be this finished one. A key journaled without
    /// `queuedAt` (older agent) cannot be an execution queued after this one had finished.
    pub fn may_be(&self, exec: &ExecKey) -> bool {
        let queued_later = self.key.queued_at.is_none() && exec.queued_at.is_some_and(|q| q > self.finished_at);
        self.key.same_execution(exec) && !queued_later
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalState {
    #[serde(default)]
    pub current: Option<CurrentJob>,
    #[serde(default)]
    pub outbox: VecDeque<OutboxEntry>,
    #[serde(default)]
    pub versions: BTreeMap<String, u64>,
    #[serde(default)]
    pub history: VecDeque<FinishedJob>,
    #[serde(default)]
    pub log: VecDeque<LogEntry>,
    #[serde(default)]
    pub next_seq: u64,
}

impl JournalState {
    /// The finished job journaled under exactly `key`.
    pub fn finished(&self, key: &ExecKey) -> Option<&FinishedJob> {
        self.history.iter().rev().find(|f| &f.key == key)
    }

    /// The latest finished job that the server's execution `exec` may be.
    pub fn finished_as(&self, exec: &ExecKey) -> Option<&FinishedJob> {
        self.history.iter().rev().find(|f| f.may_be(exec))
    }

    pub fn has_outbox_for(&self, key: &ExecKey) -> bool {
        self.outbox.iter().any(|e| &e.key == key)
    }
}

/// The journal of one state directory, owned by the running agent.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    state: JournalState,
    _lock: File,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// SHA-256 (hex) of the plan's canonical JSON: identifies what was journaled.
pub fn plan_hash(plan: &Plan) -> String {
    let bytes = serde_json::to_vec(plan).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Read the journal of `state_dir` without locking it (for `status`). `None`: no journal yet.
pub fn read_snapshot(state_dir: &Path) -> Result<Option<JournalState>, JournalError> {
    let path = state_dir.join(JOURNAL_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| JournalError::Corrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JournalError::Io { path, source }),
    }
}

impl Journal {
    /// Open (or create) the journal in `dir`, taking the directory's lock.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| JournalError::Io { path: lock_path, source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Locked(dir.to_owned())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut journal = Journal { dir: dir.to_owned(), state: JournalState::default(), _lock: lock };
        match read_snapshot(dir) {
            Ok(state) => journal.state = state.unwrap_or_default(),
            // Unreadable (disk corruption: the atomic replace never leaves a torn file). Refusing
            // to start would make the agent crash-loop for good; set it aside and start afresh
            // (the server still knows the job, which then runs again from its first step).
            Err(JournalError::Corrupt { path, source }) => {
                let aside = dir.join(format!("{JOURNAL_FILE}.corrupt-{}", now_secs()));
                std::fs::rename(&path, &aside).map_err(|e| JournalError::Io { path: path.clone(), source: e })?;
                journal.note(format!("journal was unreadable ({source}); kept as {}", aside.display()))?;
            }
            Err(e) => return Err(e),
        }
        Ok(journal)
    }

    pub fn state(&self) -> &JournalState {
        &self.state
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Apply `change` and make the result durable. On a write error the in-memory state keeps
    /// the change (the agent goes on; the next successful write persists it).
    fn commit(&mut self, note: Option<String>, change: impl FnOnce(&mut JournalState)) -> Result<(), JournalError> {
        change(&mut self.state);
        if let Some(message) = note {
            self.state.log.push_back(LogEntry { at: now_secs(), message });
            while self.state.log.len() > LOG_LEN {
                self.state.log.pop_front();
            }
        }
        self.write()
    }

    fn write(&self) -> Result<(), JournalError> {
        let path = self.dir.join(JOURNAL_FILE);
        let tmp = self.dir.join(format!("{JOURNAL_FILE}.tmp"));
        let io = |source| JournalError::Io { path: path.clone(), source };
        let bytes = serde_json::to_vec_pretty(&self.state).expect("journal state serializes");
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Record a note in the log (durably).
    pub fn note(&mut self, message: String) -> Result<(), JournalError> {
        self.commit(Some(message), |_| {})
    }

    fn push_update(state: &mut JournalState, key: &ExecKey, update: Update) {
        if update.coalesce {
            if let Some(last) = state.outbox.back() {
                if last.coalesce && &last.key == key {
                    state.outbox.pop_back();
                }
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.outbox.push_back(OutboxEntry {
            seq,
            key: key.clone(),
            status: update.status,
            details: update.details,
            step_timeout_minutes: update.step_timeout_minutes,
            coalesce: update.coalesce,
            created_at: now_secs(),
        });
    }

    /// Queue a status update (durably) for the uplink to send.
    pub fn enqueue(&mut self, key: &ExecKey, update: Update) -> Result<(), JournalError> {
        let note = (!update.coalesce).then(|| format!("{key}: report {}", update.status));
        self.commit(note, |s| Self::push_update(s, key, update))
    }

    /// Start a new job: its plan becomes `current` and `first_update` is queued, in one write.
    pub fn begin(
        &mut self,
        key: ExecKey,
        document: serde_json::Value,
        plan: Plan,
        version: Option<u64>,
        first_update: Update,
    ) -> Result<(), JournalError> {
        let steps = plan
            .steps
            .iter()
            .chain(plan.final_step.iter())
            .map(|s| StepRecord {
                name: s.name.clone(),
                state: StepState::Pending,
                details: Details::new(),
                reason: None,
                checkpoint: None,
                started_at: None,
                finished_at: None,
                attempts: 0,
            })
            .collect();
        let job = CurrentJob {
            plan_hash: plan_hash(&plan),
            key: key.clone(),
            document,
            plan,
            steps,
            failure: None,
            started_at: now_secs(),
        };
        let note = format!("{key}: accepted, {} step(s), plan {}", job.steps.len(), &job.plan_hash[..12]);
        self.commit(Some(note), |s| {
            if let Some(v) = version {
                s.versions.insert(key.journal_id(), v);
            }
            s.current = Some(job);
            Self::push_update(s, &key, first_update);
        })
    }

    fn current_mut<'a>(state: &'a mut JournalState, key: &ExecKey) -> Option<&'a mut CurrentJob> {
        state.current.as_mut().filter(|c| &c.key == key)
    }

    fn check_current(&self, key: &ExecKey) -> Result<(), JournalError> {
        match &self.state.current {
            Some(c) if &c.key == key => Ok(()),
            _ => Err(JournalError::NoSuchJob(key.to_string())),
        }
    }

    /// A step is about to run (again): durable before the executor touches anything.
    pub fn step_started(&mut self, key: &ExecKey, index: usize, update: Option<Update>) -> Result<(), JournalError> {
        self.check_current(key)?;
        let name = self.state.current.as_ref().and_then(|c| c.steps.get(index)).map(|s| s.name.clone());
        let note = format!("{key}: step {} ({}) started", index + 1, name.unwrap_or_default());
        self.commit(Some(note), |s| {
            if let Some(rec) = Self::current_mut(s, key).and_then(|c| c.steps.get_mut(index)) {
                rec.state = StepState::Running;
                rec.attempts += 1;
                rec.started_at = Some(now_secs());
            }
            if let Some(u) = update {
                Self::push_update(s, key, u);
            }
        })
    }

    /// A fresh copy of the job's document (e.g. new presigned URLs) with the same steps:
    /// step states and checkpoints are kept. Refused when the steps differ.
    pub fn replace_document(
        &mut self,
        key: &ExecKey,
        document: serde_json::Value,
        plan: Plan,
    ) -> Result<bool, JournalError> {
        self.check_current(key)?;
        let names: Vec<&str> = plan.steps.iter().chain(plan.final_step.iter()).map(|s| s.name.as_str()).collect();
        let same_steps = self
            .state
            .current
            .as_ref()
            .is_some_and(|c| c.steps.len() == names.len() && c.steps.iter().zip(&names).all(|(r, n)| r.name == *n));
        if !same_steps {
            return Ok(false);
        }
        let hash = plan_hash(&plan);
        let note = format!("{key}: fresh job document, plan {}", &hash[..12]);
        self.commit(Some(note), |s| {
            if let Some(job) = Self::current_mut(s, key) {
                job.document = document;
                job.plan = plan;
                job.plan_hash = hash;
            }
        })?;
        Ok(true)
    }

    /// The executor's checkpoint for the running step.
    pub fn checkpoint(&mut self, key: &ExecKey, index: usize, checkpoint: StepCheckpoint) -> Result<(), JournalError> {
        self.check_current(key)?;
        self.commit(None, |s| {
            if let Some(rec) = Self::current_mut(s, key).and_then(|c| c.steps.get_mut(index)) {
                rec.checkpoint = Some(checkpoint);
            }
        })
    }

    /// A step ended (or is waiting for a reboot). `failure` is set when it fails the job.
    pub fn step_finished(
        &mut self,
        key: &ExecKey,
        index: usize,
        state: StepState,
        details: Details,
        reason: Option<String>,
        failure: Option<String>,
    ) -> Result<(), JournalError> {
        self.check_current(key)?;
        let note = format!(
            "{key}: step {} {:?}{}",
            index + 1,
            state,
            reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        );
        self.commit(Some(note), |s| {
            if let Some(job) = Self::current_mut(s, key) {
                if let Some(rec) = job.steps.get_mut(index) {
                    rec.state = state;
                    rec.details = details;
                    rec.reason = reason;
                    if state.is_finished() {
                        rec.finished_at = Some(now_secs());
                    }
                }
                if job.failure.is_none() {
                    job.failure = failure;
                }
            }
        })
    }

    /// The job is over: `current` moves to the history and the final update is queued, in
    /// one write.
    pub fn finish(&mut self, key: &ExecKey, outcome: ExecutionStatus, details: Details) -> Result<(), JournalError> {
        let reason = details.get("reason").map(str::to_owned);
        let note = format!("{key}: finished {outcome}");
        self.commit(Some(note), |s| {
            if s.current.as_ref().is_some_and(|c| &c.key == key) {
                s.current = None;
            }
            Self::push_history(s, key, outcome, reason, details.clone());
            Self::push_update(s, key, Update { status: outcome, details, step_timeout_minutes: None, coalesce: false });
        })
    }

    /// The server canceled or removed the execution: forget it, send nothing more for it.
    pub fn cancel(&mut self, key: &ExecKey, reason: &str) -> Result<(), JournalError> {
        let note = format!("{key}: stopped, nothing more reported: {reason}");
        self.commit(Some(note), |s| {
            if s.current.as_ref().is_some_and(|c| &c.key == key) {
                s.current = None;
            }
            s.outbox.retain(|e| &e.key != key);
            s.versions.remove(&key.journal_id());
            Self::push_history(s, key, ExecutionStatus::Canceled, Some(reason.to_owned()), Details::new());
        })
    }

    fn push_history(
        s: &mut JournalState,
        key: &ExecKey,
        outcome: ExecutionStatus,
        reason: Option<String>,
        details: Details,
    ) {
        s.history.retain(|f| &f.key != key);
        s.history.push_back(FinishedJob { key: key.clone(), outcome, reason, details, finished_at: now_secs() });
        while s.history.len() > HISTORY_LEN {
            s.history.pop_front();
        }
    }

    /// Forget what was journaled for another endpoint or thing than `origin` (the agent was
    /// pointed elsewhere): such a job cannot be reported where it came from, and its updates
    /// must not reach a same-named execution here. The job moves to the history as CANCELED.
    /// Returns the abandoned current job's key, if any.
    pub fn forget_foreign(&mut self, origin: &Origin) -> Result<Option<ExecKey>, JournalError> {
        let current = self.state.current.as_ref().map(|c| c.key.clone()).filter(|k| k.is_foreign(origin));
        let stale = self.state.outbox.iter().filter(|e| e.key.is_foreign(origin)).count();
        if current.is_none() && stale == 0 {
            return Ok(None);
        }
        let note = format!(
            "journaled for another endpoint or thing than {} at {}: abandoned {}, {stale} update(s) dropped",
            origin.thing,
            origin.endpoint,
            current.as_ref().map(ExecKey::to_string).unwrap_or_else(|| "no job".into())
        );
        self.commit(Some(note), |s| {
            let foreign: Vec<ExecKey> =
                s.outbox.iter().map(|e| e.key.clone()).filter(|k| k.is_foreign(origin)).collect();
            s.outbox.retain(|e| !e.key.is_foreign(origin));
            for key in foreign.iter().chain(current.iter()) {
                s.versions.remove(&key.journal_id());
            }
            if let Some(key) = &current {
                s.current = None;
                let why = format!(
                    "journaled for {} at {}",
                    key.thing.as_deref().unwrap_or("?"),
                    key.endpoint.as_deref().unwrap_or("?")
                );
                Self::push_history(s, key, ExecutionStatus::Canceled, Some(why), Details::new());
            }
        })?;
        Ok(current)
    }

    /// The oldest unacknowledged update.
    pub fn front(&self) -> Option<&OutboxEntry> {
        self.state.outbox.front()
    }

    pub fn version(&self, key: &ExecKey) -> Option<u64> {
        self.state.versions.get(&key.journal_id()).copied()
    }

    pub fn set_version(&mut self, key: &ExecKey, version: u64) -> Result<(), JournalError> {
        if self.version(key) == Some(version) {
            return Ok(());
        }
        self.commit(None, |s| {
            s.versions.insert(key.journal_id(), version);
        })
    }

    /// The server accepted update `seq`; `version` is the execution's new versionNumber.
    pub fn acknowledge(&mut self, seq: u64, version: Option<u64>) -> Result<(), JournalError> {
        let note = self
            .state
            .outbox
            .iter()
            .find(|e| e.seq == seq && !e.coalesce)
            .map(|e| format!("{}: server accepted {}", e.key, e.status));
        self.commit(note, |s| {
            let Some(pos) = s.outbox.iter().position(|e| e.seq == seq) else { return };
            let entry = s.outbox.remove(pos).expect("position is valid");
            let name = entry.key.journal_id();
            let still_needed = s.current.as_ref().is_some_and(|c| c.key == entry.key) || s.has_outbox_for(&entry.key);
            match version {
                Some(v) if still_needed => {
                    s.versions.insert(name, v);
                }
                _ if !still_needed => {
                    s.versions.remove(&name);
                }
                _ => {}
            }
        })
    }

    /// Give up on update `seq` (the server will never take it, e.g. InvalidRequest).
    pub fn drop_update(&mut self, seq: u64, why: &str) -> Result<(), JournalError> {
        let note = format!("update {seq} dropped: {why}");
        self.commit(Some(note), |s| s.outbox.retain(|e| e.seq != seq))
    }

    /// The server will take no update of `key` any more (canceled, removed): drop them all.
    pub fn drop_updates_for(&mut self, key: &ExecKey, why: &str) -> Result<(), JournalError> {
        let note = format!("{key}: pending updates dropped: {why}");
        self.commit(Some(note), |s| {
            s.outbox.retain(|e| &e.key != key);
            s.versions.remove(&key.journal_id());
        })
    }

    /// Re-queue a finished job's final status (the server still shows it pending and
    /// nothing is queued for it any more).
    pub fn resend_final(&mut self, key: &ExecKey) -> Result<bool, JournalError> {
        let Some(done) = self.state.finished(key).cloned() else { return Ok(false) };
        if done.outcome == ExecutionStatus::Canceled || self.state.has_outbox_for(key) {
            return Ok(false);
        }
        let status = match done.outcome {
            ExecutionStatus::Succeeded | ExecutionStatus::Rejected => done.outcome,
            _ => ExecutionStatus::Failed,
        };
        self.enqueue(key, Update { status, details: done.details, step_timeout_minutes: None, coalesce: false })?;
        Ok(true)
    }

    /// A job refused before it started (bad document, bad signature): history + REJECTED update.
    pub fn reject(&mut self, key: &ExecKey, version: Option<u64>, details: Details) -> Result<(), JournalError> {
        let reason = details.get("reason").map(str::to_owned);
        let note = format!("{key}: REJECTED ({})", reason.clone().unwrap_or_default());
        self.commit(Some(note), |s| {
            if let Some(v) = version {
                s.versions.insert(key.journal_id(), v);
            }
            Self::push_history(s, key, ExecutionStatus::Rejected, reason, details.clone());
            let update =
                Update { status: ExecutionStatus::Rejected, details, step_timeout_minutes: None, coalesce: false };
            Self::push_update(s, key, update);
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::execution_status::ExecutionStatus::{Canceled, InProgress, Queued, Succeeded};
    use crate::plan::{Action, Step};

    pub(crate) fn plan(n: usize) -> Plan {
        Plan {
            operation: "test".into(),
            steps: (0..n)
                .map(|i| Step { name: format!("s{i}"), action: Action::Noop, ignore_failure: false, timeout: None })
                .collect(),
            final_step: None,
        }
    }

    fn key(id: &str) -> ExecKey {
        ExecKey::bare(id, 1)
    }

    fn origin() -> Origin {
        Origin { endpoint: "iot.example:8883".into(), thing: "dev-1".into() }
    }

    /// `j#1` as the server shows it, queued at `queued_at` with document `{"v": doc}`.
    pub(crate) fn identity(queued_at: u64, doc: u32) -> ExecKey {
        let exec = crate::jobs_client::JobExecution {
            job_id: "j".into(),
            status: Queued.into(),
            status_details: None,
            job_document: Some(serde_json::json!({ "v": doc })),
            version_number: Some(1),
            execution_number: Some(1),
            queued_at: Some(queued_at as f64),
        };
        ExecKey::of(&exec, &origin())
    }

    fn update(status: ExecutionStatus, coalesce: bool) -> Update {
        Update { status, details: Details::new().with("step", status.as_str()), step_timeout_minutes: None, coalesce }
    }

    #[test]
    fn state_survives_reopen_and_steps_resume_where_they_were() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.begin(key("a"), serde_json::json!({"x":1}), plan(3), Some(1), update(InProgress, false)).unwrap();
            j.step_started(&key("a"), 0, None).unwrap();
            j.step_finished(&key("a"), 0, StepState::Succeeded, Details::new(), None, None).unwrap();
            j.step_started(&key("a"), 1, None).unwrap();
            let cp = StepCheckpoint::Marker { value: serde_json::json!(7) };
            j.checkpoint(&key("a"), 1, cp).unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        let cur = j.state().current.as_ref().unwrap();
        assert_eq!(cur.next_step(), Some(1));
        assert_eq!(cur.steps[1].state, StepState::Running);
        assert_eq!(cur.steps[1].checkpoint, Some(StepCheckpoint::Marker { value: serde_json::json!(7) }));
        assert_eq!(cur.plan_hash, plan_hash(&plan(3)));
        assert_eq!(j.version(&key("a")), Some(1));
        assert_eq!(j.front().unwrap().status, InProgress);
        assert!(!dir.path().join("journal.json.tmp").exists());
    }

    #[test]
    fn a_fresh_document_keeps_the_step_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.begin(key("a"), serde_json::json!({"v":1}), plan(2), None, update(InProgress, false)).unwrap();
        j.step_started(&key("a"), 0, None).unwrap();
        j.step_finished(&key("a"), 0, StepState::Succeeded, Details::new(), None, None).unwrap();
        assert!(j.replace_document(&key("a"), serde_json::json!({"v":2}), plan(2)).unwrap());
        let cur = j.state().current.clone().unwrap();
        assert_eq!(cur.document, serde_json::json!({"v":2}));
        assert_eq!(cur.next_step(), Some(1));
        assert!(!j.replace_document(&key("a"), serde_json::json!({"v":3}), plan(3)).unwrap(), "other steps");
        assert_eq!(j.state().current.as_ref().unwrap().document, serde_json::json!({"v":2}));
    }

    #[test]
    fn a_corrupt_journal_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), b"{not json").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.state().current.is_none());
        assert!(j.state().log.back().unwrap().message.contains("unreadable"));
        let aside = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok);
        assert_eq!(aside.filter(|e| e.file_name().to_string_lossy().contains(".corrupt-")).count(), 1);
    }

    #[test]
    fn a_second_agent_cannot_open_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _j = Journal::open(dir.path()).unwrap();
        assert!(matches!(Journal::open(dir.path()), Err(JournalError::Locked(_))));
        assert!(read_snapshot(dir.path()).is_ok());
    }

    #[test]
    fn outbox_keeps_order_and_coalesces_progress() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let k = key("a");
        j.enqueue(&k, update(InProgress, false)).unwrap();
        j.enqueue(&k, update(InProgress, true)).unwrap();
        j.enqueue(&k, update(InProgress, true)).unwrap();
        j.enqueue(&key("b"), update(InProgress, true)).unwrap();
        j.enqueue(&k, update(Succeeded, false)).unwrap();
        let seqs: Vec<u64> = j.state().outbox.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 2, 3, 4]);
        j.acknowledge(0, Some(2)).unwrap();
        assert_eq!(j.front().unwrap().seq, 2);
        j.drop_update(2, "test").unwrap();
        assert_eq!(j.front().unwrap().key, key("b"));
    }

    #[test]
    fn finish_cancel_and_resend() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.begin(key("a"), serde_json::json!({}), plan(1), Some(1), update(InProgress, false)).unwrap();
        j.finish(&key("a"), Succeeded, Details::new().with("step", "done")).unwrap();
        assert!(j.state().current.is_none());
        assert_eq!(j.state().finished(&key("a")).unwrap().outcome, Succeeded);
        assert_eq!(j.state().outbox.len(), 2);
        assert!(!j.resend_final(&key("a")).unwrap(), "still queued: nothing to re-send");
        let seqs: Vec<u64> = j.state().outbox.iter().map(|e| e.seq).collect();
        for s in seqs {
            j.acknowledge(s, Some(3)).unwrap();
        }
        assert_eq!(j.version(&key("a")), None, "versions are forgotten once nothing is pending");
        assert!(j.resend_final(&key("a")).unwrap());
        assert_eq!(j.front().unwrap().status, Succeeded);

        j.begin(key("b"), serde_json::json!({}), plan(2), None, update(InProgress, false)).unwrap();
        j.cancel(&key("b"), "CANCELED").unwrap();
        assert!(j.state().current.is_none());
        assert!(!j.state().has_outbox_for(&key("b")));
        assert!(!j.resend_final(&key("b")).unwrap());

        j.reject(&key("c"), Some(1), Details::new().with("reason", "unknown operation")).unwrap();
        assert_eq!(j.state().finished(&key("c")).unwrap().reason.as_deref(), Some("unknown operation"));
        assert!(j.state().log.len() <= LOG_LEN);
    }

    #[test]
    fn a_reused_job_id_is_not_taken_for_the_finished_execution() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let old = identity(100, 1);
        j.begin(old.clone(), serde_json::json!({"v": 1}), plan(1), Some(1), update(InProgress, false)).unwrap();
        j.finish(&old, Succeeded, Details::new()).unwrap();
        assert!(j.state().finished_as(&identity(100, 1)).is_some());
        assert!(j.state().finished_as(&identity(100, 2)).is_none(), "re-created with another document");
        assert!(j.state().finished_as(&identity(200, 1)).is_none(), "re-created with the same document");
        let mut without_document = identity(100, 1);
        without_document.document_hash = None;
        assert!(j.state().finished_as(&without_document).is_some(), "a payload without the document");
    }

    #[test]
    fn two_executions_under_one_job_id_keep_their_own_updates_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let (old, new) = (identity(100, 1), identity(200, 1));
        j.begin(old.clone(), serde_json::json!({"v": 1}), plan(1), Some(4), update(InProgress, false)).unwrap();
        j.enqueue(&new, update(InProgress, false)).unwrap();
        j.set_version(&new, 1).unwrap();
        assert_eq!((j.version(&old), j.version(&new)), (Some(4), Some(1)));
        j.cancel(&old, "replaced").unwrap();
        assert!(j.state().current.is_none());
        assert!(!j.state().has_outbox_for(&old));
        assert!(j.state().has_outbox_for(&new), "the new execution's update survives the old one's cancel");
        assert_eq!((j.version(&old), j.version(&new)), (None, Some(1)));
        j.drop_updates_for(&new, "gone").unwrap();
        assert!(j.state().outbox.is_empty());
    }

    /// journal.json as the agent wrote it before executions had an identity.
    const OLD_JOURNAL: &str = r#"{
      "current": {"key": {"jobId": "run", "executionNumber": 1}, "document": {"v": 7},
        "plan": {"operation": "test", "steps": [{"name": "s0", "action": {"type": "noop"}}], "final_step": null},
        "planHash": "x", "steps": [{"name": "s0", "state": "running", "attempts": 1}], "startedAt": 50},
      "outbox": [{"seq": 3, "key": {"jobId": "run", "executionNumber": 1}, "status": "IN_PROGRESS",
        "details": [], "createdAt": 50}],
      "versions": {"run#1": 2},
      "history": [{"key": {"jobId": "done", "executionNumber": 1}, "outcome": "SUCCEEDED", "finishedAt": 1000}],
      "log": [], "nextSeq": 4
    }"#;

    #[test]
    fn an_old_journal_loads_and_its_entries_match_only_what_they_can_be() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), OLD_JOURNAL).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let cur = j.state().current.clone().expect("the old current job loads");
        assert!(cur.key.is_bare());
        assert_eq!(j.version(&cur.key), Some(2), "versions keep their old names");
        // The current job: the journaled document stands in for the missing document hash.
        let delivered = |doc: serde_json::Value, queued_at: f64| {
            let exec = crate::jobs_client::JobExecution {
                job_id: "run".into(),
                status: InProgress.into(),
                status_details: None,
                job_document: Some(doc),
                version_number: Some(2),
                execution_number: Some(1),
                queued_at: Some(queued_at),
            };
            ExecKey::of(&exec, &origin())
        };
        assert!(cur.identity().same_execution(&delivered(serde_json::json!({"v": 7}), 40.0)));
        assert!(!cur.identity().same_execution(&delivered(serde_json::json!({"v": 8}), 40.0)));
        // A finished job: the same one only if it was queued before it finished here.
        let done = |queued_at: f64| {
            let mut k = delivered(serde_json::json!({}), queued_at);
            k.job_id = "done".into();
            k
        };
        assert!(j.state().finished_as(&done(900.0)).is_some());
        assert!(j.state().finished_as(&done(1001.0)).is_none(), "queued after it had finished here");
        // Nothing old is foreign; the old job still finishes under its old key.
        assert_eq!(j.forget_foreign(&origin()).unwrap(), None);
        j.finish(&cur.key, Succeeded, Details::new()).unwrap();
        assert!(j.state().finished(&ExecKey::bare("run", 1)).is_some());
    }

    #[test]
    fn the_string_statuses_of_an_old_journal_load_and_are_written_back_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), OLD_JOURNAL).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.front().unwrap().status, InProgress);
        assert_eq!(j.state().history[0].outcome, Succeeded);
        j.note("rewritten".into()).unwrap();
        let read = |path: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(path).unwrap()).unwrap();
        let (old, written) =
            (serde_json::from_str::<serde_json::Value>(OLD_JOURNAL).unwrap(), read(&j.dir().join(JOURNAL_FILE)));
        assert_eq!(written["outbox"][0]["status"], old["outbox"][0]["status"]);
        assert_eq!(written["history"][0]["outcome"], old["history"][0]["outcome"]);
        let state = j.state().clone();
        drop(j);
        assert_eq!(read_snapshot(dir.path()).unwrap(), Some(state), "what was written loads back the same");
    }

    #[test]
    fn what_was_journaled_for_another_endpoint_or_thing_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let mine = identity(100, 1);
        let mut elsewhere = identity(100, 1);
        elsewhere.job_id = "other".into();
        elsewhere.endpoint = Some("old-host:8883".into());
        j.enqueue(&mine, update(Succeeded, false)).unwrap();
        j.begin(elsewhere.clone(), serde_json::json!({}), plan(1), Some(3), update(InProgress, false)).unwrap();
        assert_eq!(j.forget_foreign(&origin()).unwrap(), Some(elsewhere.clone()));
        assert!(j.state().current.is_none());
        assert_eq!(j.state().outbox.iter().map(|e| &e.key).collect::<Vec<_>>(), vec![&mine]);
        assert_eq!(j.version(&elsewhere), None);
        assert_eq!(j.state().finished(&elsewhere).unwrap().outcome, Canceled);
        assert_eq!(j.forget_foreign(&origin()).unwrap(), None, "once");
    }
}
