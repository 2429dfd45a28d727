//! Sends the journal's outbox to the server, oldest first, one at a time, for ever.
//!
//! An update leaves the outbox only when the server accepted it (or can never take it).
//! Every update carries `expectedVersion` when the execution's version is known, and asks for
//! `includeJobExecutionState` to learn the next one. The rejections are handled so that the
//! queue can never wedge:
//! - `VersionMismatch`: the rejected `executionState` says where the server is. If it already
//!   shows what this update wanted (a re-send of an update whose `accepted` was lost), the
//!   update is done; else the execution is described to make sure the job id does not name
//!   another execution now (a deleted job's id reused: its updates would land on the new
//!   one), which is handled as gone; else the version is taken from the rejection and the
//!   update is sent again (after three mismatches in a row, without `expectedVersion`). An
//!   update with no known version is checked the same way before it is sent.
//! - `InvalidStateTransition` / `ResourceNotFound`: the execution is terminal or gone. If it is
//!   terminal with the status this update wanted, the update is done; otherwise the server
//!   canceled or removed it: every update of that execution is dropped and the agent is told
//!   ([`UplinkEvent::Gone`]) so that it stops the job.
//! - Other rejections (`InvalidRequest`, ...): the update is dropped (logged in the journal).
//! - Timeout, offline, throttling, internal errors: retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use crate::execution_status::ReportedStatus;
use crate::identity::{why_gone, ExecKey, Origin};
use crate::jobs_client::{backoff, ExecutionState, JobsClient, Rejection, RequestError, UpdateRequest};
use crate::journal::{Journal, OutboxEntry, SharedJournal};

/// Mismatches in a row after which an update is sent without `expectedVersion`.
const MAX_MISMATCHES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEvent {
    /// The server no longer has this execution pending (canceled, removed, deleted, timed
    /// out, its job id reused), for this reason.
    Gone { key: ExecKey, why: String },
    /// The outbox became empty.
    Drained,
}

/// Wakes the uplink task (new update queued, connection back).
#[derive(Clone, Default)]
pub struct UplinkHandle {
    wake: Arc<Notify>,
}

impl UplinkHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

pub fn spawn(
    journal: SharedJournal,
    client: JobsClient,
    origin: Origin,
    events: mpsc::UnboundedSender<UplinkEvent>,
    reconnect_max: Duration,
) -> UplinkHandle {
    let handle = UplinkHandle::default();
    let task = Uplink { journal, client, origin, events, wake: handle.wake.clone(), reconnect_max };
    tokio::spawn(task.run());
    handle
}

struct Uplink {
    journal: SharedJournal,
    client: JobsClient,
    origin: Origin,
    events: mpsc::UnboundedSender<UplinkEvent>,
    wake: Arc<Notify>,
    reconnect_max: Duration,
}

enum Step {
    /// Sent (or settled); go on with the next one at once.
    Next,
    /// Try again after this pause (or a wake-up).
    Retry(Duration),
}

impl Uplink {
    async fn run(self) {
        let mut failures = 0u32;
        let mut mismatches = 0u32;
        let mut sent_any = false;
        loop {
            let front = self.journal.with(|j| j.front().cloned());
            let Some(entry) = front else {
                if sent_any {
                    sent_any = false;
                    let _ = self.events.send(UplinkEvent::Drained);
                }
                self.wake.notified().await;
                continue;
            };
            if !self.client.is_connected() {
                // Woken by the agent on reconnect; poll too in case that wake-up raced.
                let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
                continue;
            }
            match self.send(&entry, &mut mismatches).await {
                Step::Next => {
                    failures = 0;
                    sent_any = true;
                }
                Step::Retry(pause) => {
                    failures += 1;
                    let pause = pause.max(backoff(failures, self.reconnect_max));
                    let _ = tokio::time::timeout(pause, self.wake.notified()).await;
                }
            }
        }
    }

    async fn send(&self, entry: &OutboxEntry, mismatches: &mut u32) -> Step {
        let version = if *mismatches >= MAX_MISMATCHES { None } else { self.journal.with(|j| j.version(&entry.key)) };
        // Without expectedVersion nothing stops the update from landing on another execution
        // that reuses the job id; a journal without identity cannot tell them apart anyway.
        if version.is_none() && !entry.key.is_bare() {
            match self.replaced(&entry.key).await {
                Ok(None) => {}
                Ok(Some(why)) => return self.gone(entry, &why),
                Err(e) => return Self::unverified(entry, &e),
            }
        }
        let req = UpdateRequest {
            status: entry.status,
            status_details: entry.details.to_json(),
            expected_version: version,
            execution_number: Some(entry.key.execution_number),
            step_timeout_in_minutes: entry.step_timeout_minutes,
        };
        debug!(key = %entry.key, seq = entry.seq, status = %entry.status, ?version, "sending update");
        match self.client.update(&entry.key.job_id, &req).await {
            Ok(state) => {
                *mismatches = 0;
                let new_version = state.and_then(|s| s.version_number).or(version.map(|v| v + 1));
                self.settle(|j| j.acknowledge(entry.seq, new_version));
                Step::Next
            }
            Err(RequestError::Rejected(r)) => match judge(&r, entry) {
                Verdict::AlreadyApplied(v) => {
                    *mismatches = 0;
                    info!(key = %entry.key, code = %r.code, "update was already applied");
                    self.settle(|j| j.acknowledge(entry.seq, v));
                    Step::Next
                }
                Verdict::Resync(v) => {
                    match self.replaced(&entry.key).await {
                        Ok(None) => {}
                        Ok(Some(why)) => {
                            *mismatches = 0;
                            return self.gone(entry, &why);
                        }
                        Err(e) => return Self::unverified(entry, &e),
                    }
                    *mismatches += 1;
                    if let Some(v) = v {
                        self.settle(|j| j.set_version(&entry.key, v));
                    }
                    warn!(key = %entry.key, mismatches = *mismatches, "version mismatch; resynced");
                    Step::Next
                }
                Verdict::Gone(status) => {
                    *mismatches = 0;
                    let why = status.map(|s| format!("execution is {s}")).unwrap_or_else(|| r.to_string());
                    self.gone(entry, &why)
                }
                Verdict::Retry => Step::Retry(Duration::from_secs(2)),
                Verdict::Refused => {
                    *mismatches = 0;
                    warn!(key = %entry.key, rejection = %r, "update refused; dropped");
                    self.settle(|j| j.drop_update(entry.seq, &r.to_string()));
                    Step::Next
                }
            },
            Err(e @ (RequestError::Timeout | RequestError::Offline | RequestError::Malformed(_))) => {
                debug!(key = %entry.key, error = %e, "update not answered; will retry");
                Step::Retry(Duration::from_millis(500))
            }
        }
    }

    /// The execution of `entry` takes no more updates: drop all of its updates and tell the
    /// agent (which cancels the job when it runs it).
    fn gone(&self, entry: &OutboxEntry, why: &str) -> Step {
        warn!(key = %entry.key, why, "execution is no longer pending");
        let _ = self.events.send(UplinkEvent::Gone { key: entry.key.clone(), why: why.to_owned() });
        self.settle(|j| j.drop_updates_for(&entry.key, why));
        Step::Next
    }

    /// Why `key`'s execution can take no more updates (deleted, terminal, or its job id now
    /// names another execution); `Ok(None)` when it is still there; `Err` when the server did
    /// not say (the update then waits: unchecked, it could land on another execution).
    async fn replaced(&self, key: &ExecKey) -> Result<Option<String>, RequestError> {
        let answer = self.client.describe(&key.job_id, key.execution_number, true).await;
        match why_gone(key, &answer, &self.origin) {
            Some(why) => Ok(Some(why)),
            None => answer.map(|_| None),
        }
    }

    fn unverified(entry: &OutboxEntry, error: &RequestError) -> Step {
        debug!(key = %entry.key, error = %error, "cannot check the execution's identity; will retry");
        Step::Retry(Duration::from_millis(500))
    }

    fn settle(&self, f: impl FnOnce(&mut Journal) -> Result<(), crate::journal::JournalError>) {
        if let Err(e) = self.journal.with(f) {
            warn!(error = %e, "journal write failed");
        }
    }
}

/// What a rejected update means for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// The server already shows what the update asked for (its `accepted` was lost): done,
    /// at this version.
    AlreadyApplied(Option<u64>),
    /// Stale `expectedVersion`: take the server's version and send again.
    Resync(Option<u64>),
    /// The execution is terminal (with this status) or gone: nothing more can be sent for it.
    Gone(Option<ReportedStatus>),
    /// A transient server condition: send again later.
    Retry,
    /// The server will never take this update (e.g. InvalidRequest): drop it.
    Refused,
}

fn judge(r: &Rejection, entry: &OutboxEntry) -> Verdict {
    let state = r.execution_state.as_ref();
    if state.is_some_and(|s| shows(s, entry)) {
        return Verdict::AlreadyApplied(state.and_then(|s| s.version_number));
    }
    match r.code.as_str() {
        "VersionMismatch" => Verdict::Resync(state.and_then(|s| s.version_number)),
        "InvalidStateTransition" | "ResourceNotFound" | "TerminalStateReached" => {
            Verdict::Gone(state.map(|s| s.status.clone()))
        }
        "RequestThrottled" | "InternalError" => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// Whether the server's state is what `entry` asked for (same status and details).
fn shows(state: &ExecutionState, entry: &OutboxEntry) -> bool {
    if state.status.known() != Some(entry.status) {
        return false;
    }
    let want = entry.details.to_map();
    let have = state.status_details.clone().unwrap_or_default();
    have.len() == want.len() && want.iter().all(|(k, v)| have.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::details::Details;
    use crate::execution_status::ExecutionStatus::{self, Canceled, InProgress, Succeeded};

    fn entry() -> OutboxEntry {
        OutboxEntry {
            seq: 1,
            key: ExecKey::bare("j", 1),
            status: Succeeded,
            details: Details::new().with("step", "2/2"),
            step_timeout_minutes: None,
            coalesce: false,
            created_at: 0,
        }
    }

    fn rejection(code: &str, state: Option<(ExecutionStatus, Value, u64)>) -> Rejection {
        Rejection {
            code: code.into(),
            message: String::new(),
            execution_state: state.map(|(status, details, v)| ExecutionState {
                status: status.into(),
                status_details: details.as_object().cloned(),
                version_number: Some(v),
            }),
        }
    }

    #[test]
    fn rejections_never_wedge_the_outbox() {
        let done = serde_json::json!({"step": "2/2"});
        let other = serde_json::json!({"step": "1/2"});
        // A re-sent update whose first `accepted` was lost.
        assert_eq!(
            judge(&rejection("VersionMismatch", Some((Succeeded, done.clone(), 4))), &entry()),
            Verdict::AlreadyApplied(Some(4))
        );
        assert_eq!(
            judge(&rejection("InvalidStateTransition", Some((Succeeded, done, 4))), &entry()),
            Verdict::AlreadyApplied(Some(4))
        );
        // Someone else changed the execution: resync.
        assert_eq!(
            judge(&rejection("VersionMismatch", Some((InProgress, other, 5))), &entry()),
            Verdict::Resync(Some(5))
        );
        // Canceled or deleted under us.
        assert_eq!(
            judge(&rejection("InvalidStateTransition", Some((Canceled, Value::Null, 6))), &entry()),
            Verdict::Gone(Some(Canceled.into()))
        );
        assert_eq!(judge(&rejection("ResourceNotFound", None), &entry()), Verdict::Gone(None));
        let mut unknown = rejection("InvalidStateTransition", None);
        unknown.execution_state = Some(ExecutionState {
            status: ReportedStatus::Unknown("PAUSED".into()),
            status_details: None,
            version_number: Some(7),
        });
        assert_eq!(judge(&unknown, &entry()), Verdict::Gone(Some(ReportedStatus::Unknown("PAUSED".into()))));
        assert_eq!(judge(&rejection("RequestThrottled", None), &entry()), Verdict::Retry);
        assert_eq!(judge(&rejection("InvalidRequest", None), &entry()), Verdict::Refused);
    }

    #[test]
    fn shows_compares_status_and_details() {
        let state = |status: ExecutionStatus, details: Value| ExecutionState {
            status: status.into(),
            status_details: details.as_object().cloned(),
            version_number: Some(3),
        };
        assert!(shows(&state(Succeeded, serde_json::json!({"step": "2/2"})), &entry()));
        assert!(!shows(&state(Canceled, serde_json::json!({"step": "2/2"})), &entry()));
        assert!(!shows(&state(Succeeded, serde_json::json!({"step": "1/2"})), &entry()));
        assert!(!shows(&state(Succeeded, serde_json::json!({"step": "2/2", "x": "y"})), &entry()));
    }
}
