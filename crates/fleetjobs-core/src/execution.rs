//! The job execution state machine. Each function takes the execution and `now`, checks the
//! transition, and applies it; a rejected transition leaves the execution untouched.
//!
//! ```text
//!            start-next / update IN_PROGRESS
//!   QUEUED ───────────────────────────────▶ IN_PROGRESS ──▶ SUCCEEDED | FAILED | REJECTED (device)
//!     │  └─▶ SUCCEEDED | FAILED | REJECTED     │   └──────▶ TIMED_OUT (service timer)
//!     └─▶ CANCELED | REMOVED (service)         └──────────▶ CANCELED (force) | REMOVED
//! ```
//! Every accepted change bumps `versionNumber`; terminal executions never change again.

use crate::model::{JobExecution, JobExecutionStatus, StatusDetails};
use crate::Millis;

/// Why a transition was refused. Each adapter maps it to its wire form (MQTT `code`, HTTP
/// exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `expectedVersion` did not match `versionNumber`.
    VersionMismatch,
    /// The requested status cannot follow the current one.
    InvalidStateTransition(String),
}

/// An UpdateJobExecution request from a device, already validated field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUpdate {
    pub status: JobExecutionStatus,
    pub status_details: Option<StatusDetails>,
    pub expected_version: Option<i64>,
}

/// Statuses a device may report (UpdateJobExecution).
pub fn is_device_settable(status: JobExecutionStatus) -> bool {
    use JobExecutionStatus::*;
    matches!(status, Queued | InProgress | Succeeded | Failed | Rejected)
}

fn check_version(exec: &JobExecution, expected: Option<i64>) -> Result<(), Rejection> {
    match expected {
        Some(v) if v != exec.version_number => Err(Rejection::VersionMismatch),
        _ => Ok(()),
    }
}

fn touch(exec: &mut JobExecution, now: Millis) {
    exec.version_number += 1;
    exec.last_updated_at = now;
}

/// Apply a device's status update.
pub fn apply_device_update(exec: &mut JobExecution, update: &DeviceUpdate, now: Millis) -> Result<(), Rejection> {
    check_version(exec, update.expected_version)?;
    if exec.status.is_terminal() {
        return Err(Rejection::InvalidStateTransition(format!(
            "Job execution is in a terminal state {} and cannot be updated",
            exec.status.as_str()
        )));
    }
    if update.status == JobExecutionStatus::Queued || !is_device_settable(update.status) {
        return Err(Rejection::InvalidStateTransition(format!(
            "Cannot update job execution status from {} to {}",
            exec.status.as_str(),
            update.status.as_str()
        )));
    }
    if update.status == JobExecutionStatus::InProgress && exec.started_at.is_none() {
        exec.started_at = Some(now);
    }
    exec.status = update.status;
    if let Some(details) = &update.status_details {
        exec.status_details = details.clone();
    }
    touch(exec, now);
    Ok(())
}

/// StartNextPendingJobExecution on the execution `$next` picked: a QUEUED one starts (its
/// `statusDetails` replaced when given); an IN_PROGRESS one is returned unchanged. Returns
/// whether it changed.
pub fn start(exec: &mut JobExecution, status_details: Option<&StatusDetails>, now: Millis) -> bool {
    if exec.status != JobExecutionStatus::Queued {
        return false;
    }
    exec.status = JobExecutionStatus::InProgress;
    exec.started_at = Some(now);
    if let Some(details) = status_details {
        exec.status_details = details.clone();
    }
    touch(exec, now);
    true
}

/// CancelJobExecution, and CancelJob for each of its executions. QUEUED executions cancel;
/// IN_PROGRESS ones only with `force`.
pub fn cancel(
    exec: &mut JobExecution,
    force: bool,
    expected_version: Option<i64>,
    status_details: Option<&StatusDetails>,
    now: Millis,
) -> Result<(), Rejection> {
    check_version(exec, expected_version)?;
    match exec.status {
        JobExecutionStatus::Queued => {}
        JobExecutionStatus::InProgress if force => exec.force_canceled = true,
        JobExecutionStatus::InProgress => {
            return Err(Rejection::InvalidStateTransition(
                "Cannot cancel an IN_PROGRESS job execution without force".to_string(),
            ))
        }
        terminal => {
            return Err(Rejection::InvalidStateTransition(format!(
                "Cannot cancel a job execution in terminal state {}",
                terminal.as_str()
            )))
        }
    }
    exec.status = JobExecutionStatus::Canceled;
    if let Some(details) = status_details {
        exec.status_details = details.clone();
    }
    touch(exec, now);
    Ok(())
}

/// The thing was deleted (or left a CONTINUOUS target): a pending execution becomes REMOVED.
/// Returns whether it changed.
pub fn remove(exec: &mut JobExecution, now: Millis) -> bool {
    if exec.status.is_terminal() {
        return false;
    }
    exec.status = JobExecutionStatus::Removed;
    touch(exec, now);
    true
}

/// The device's step timer (`stepTimeoutInMinutes` on start-next or update, validated): a new
/// value replaces the running timer, `-1` cancels it, none leaves it. Only an IN_PROGRESS
/// execution keeps a timer.
pub fn set_step_timer(exec: &mut JobExecution, minutes: Option<i64>, now: Millis) {
    match minutes {
        _ if exec.status != JobExecutionStatus::InProgress => exec.step_timeout_at = None,
        Some(-1) => exec.step_timeout_at = None,
        Some(m) => exec.step_timeout_at = Some(now + m * MINUTE),
        None => {}
    }
}

const MINUTE: Millis = 60_000;

/// When an IN_PROGRESS execution times out: the in-progress timer of its job
/// (`inProgressTimeoutInMinutes`, from `startedAt`), and the device's step timer, which can
/// never extend past the in-progress deadline. `None`: no timer runs.
pub fn deadline(exec: &JobExecution, in_progress_timeout_minutes: Option<i64>) -> Option<Millis> {
    if exec.status != JobExecutionStatus::InProgress {
        return None;
    }
    let in_progress = in_progress_timeout_minutes.zip(exec.started_at).map(|(m, started)| started + m * MINUTE);
    match (in_progress, exec.step_timeout_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `approximateSecondsBeforeTimedOut`: whole seconds until `deadline`, rounded up, never
/// negative.
pub fn seconds_before(deadline: Millis, now: Millis) -> i64 {
    ((deadline - now).max(0) + 999) / 1000
}

/// A timer expired: an IN_PROGRESS execution becomes TIMED_OUT. Returns whether it changed.
pub fn time_out(exec: &mut JobExecution, now: Millis) -> bool {
    if exec.status != JobExecutionStatus::InProgress {
        return false;
    }
    exec.status = JobExecutionStatus::TimedOut;
    exec.step_timeout_at = None;
    touch(exec, now);
    true
}

/// May this execution be deleted (DeleteJobExecution)? IN_PROGRESS needs `force`.
pub fn can_delete(exec: &JobExecution, force: bool) -> Result<(), Rejection> {
    if exec.status == JobExecutionStatus::InProgress && !force {
        return Err(Rejection::InvalidStateTransition(
            "Cannot delete an IN_PROGRESS job execution without force".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobExecutionStatus::*;

    fn exec(status: JobExecutionStatus) -> JobExecution {
        let mut e = JobExecution::queued("j", "t", 1, 1_000);
        e.status = status;
        e
    }

    fn update(status: JobExecutionStatus) -> DeviceUpdate {
        DeviceUpdate { status, status_details: None, expected_version: None }
    }

    /// The full device-update matrix: from every status to every status.
    #[test]
    fn device_update_matrix() {
        for from in JobExecutionStatus::ALL {
            for to in JobExecutionStatus::ALL {
                let mut e = exec(from);
                let before = e.clone();
                let result = apply_device_update(&mut e, &update(to), 2_000);
                let allowed = !from.is_terminal() && matches!(to, InProgress | Succeeded | Failed | Rejected);
                if allowed {
                    assert_eq!(result, Ok(()), "{from:?} -> {to:?}");
                    assert_eq!(e.status, to);
                    assert_eq!(e.version_number, before.version_number + 1);
                    assert_eq!(e.last_updated_at, 2_000);
                } else {
                    assert!(matches!(result, Err(Rejection::InvalidStateTransition(_))), "{from:?} -> {to:?}");
                    assert_eq!(e, before, "a rejected update changes nothing");
                }
            }
        }
    }

    #[test]
    fn started_at_is_set_once() {
        let mut e = exec(Queued);
        apply_device_update(&mut e, &update(InProgress), 2_000).unwrap();
        apply_device_update(&mut e, &update(InProgress), 3_000).unwrap();
        assert_eq!(e.started_at, Some(2_000));
        assert_eq!(e.version_number, 3);
        let mut direct = exec(Queued);
        apply_device_update(&mut direct, &update(Succeeded), 2_000).unwrap();
        assert_eq!(direct.started_at, None, "QUEUED -> SUCCEEDED never started");
    }

    #[test]
    fn status_details_replace_only_when_given() {
        let mut e = exec(Queued);
        let details: StatusDetails = [("step".to_string(), "1".to_string())].into();
        let u = DeviceUpdate { status: InProgress, status_details: Some(details.clone()), expected_version: None };
        apply_device_update(&mut e, &u, 2_000).unwrap();
        apply_device_update(&mut e, &update(Succeeded), 3_000).unwrap();
        assert_eq!(e.status_details, details);
    }

    #[test]
    fn version_mismatch_wins_over_state_and_changes_nothing() {
        let mut e = exec(Succeeded);
        let u = DeviceUpdate { status: InProgress, status_details: None, expected_version: Some(7) };
        assert_eq!(apply_device_update(&mut e, &u, 2_000), Err(Rejection::VersionMismatch));
        let mut e = exec(InProgress);
        let u = DeviceUpdate { status: Succeeded, status_details: None, expected_version: Some(1) };
        assert_eq!(apply_device_update(&mut e, &u, 2_000), Ok(()));
    }

    #[test]
    fn start_next_starts_queued_only() {
        let mut e = exec(Queued);
        let details: StatusDetails = [("k".to_string(), "v".to_string())].into();
        assert!(start(&mut e, Some(&details), 5_000));
        assert_eq!((e.status, e.started_at, e.version_number), (InProgress, Some(5_000), 2));
        assert_eq!(e.status_details, details);
        let before = e.clone();
        assert!(!start(&mut e, None, 6_000), "an IN_PROGRESS execution comes back unchanged");
        assert_eq!(e, before);
    }

    #[test]
    fn cancel_matrix() {
        for from in JobExecutionStatus::ALL {
            for force in [false, true] {
                let mut e = exec(from);
                let before = e.clone();
                let result = cancel(&mut e, force, None, None, 2_000);
                let allowed = from == Queued || (from == InProgress && force);
                if allowed {
                    assert_eq!(result, Ok(()));
                    assert_eq!(e.status, Canceled);
                    assert_eq!(e.force_canceled, from == InProgress);
                    assert_eq!(e.version_number, 2);
                } else {
                    assert!(matches!(result, Err(Rejection::InvalidStateTransition(_))), "{from:?} force={force}");
                    assert_eq!(e, before);
                }
            }
        }
        let mut e = exec(Queued);
        assert_eq!(cancel(&mut e, false, Some(9), None, 2_000), Err(Rejection::VersionMismatch));
    }

    #[test]
    fn remove_and_delete_rules() {
        for from in JobExecutionStatus::ALL {
            let mut e = exec(from);
            assert_eq!(remove(&mut e, 2_000), !from.is_terminal());
            assert_eq!(can_delete(&exec(from), false).is_ok(), from != InProgress);
            assert!(can_delete(&exec(from), true).is_ok());
        }
    }

    /// The developer guide's example: in-progress timer 20 min from 12:00; step 7 min at 12:05
    /// → 12:12; step 5 at 12:10 → 12:15; step 9 at 12:13 → 12:20 (capped by the in-progress
    /// deadline); `-1` cancels the step timer and leaves the in-progress one.
    #[test]
    fn step_timers_replace_each_other_within_the_in_progress_deadline() {
        let at = |h: i64, m: i64| (h * 60 + m) * MINUTE;
        let mut e = exec(Queued);
        assert!(start(&mut e, None, at(12, 0)));
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 20)));
        assert_eq!(deadline(&e, None), None, "no timer without a timeout");
        set_step_timer(&mut e, Some(7), at(12, 5));
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 12)));
        set_step_timer(&mut e, Some(5), at(12, 10));
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 15)));
        set_step_timer(&mut e, None, at(12, 11));
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 15)), "no new value: the timer runs on");
        set_step_timer(&mut e, Some(9), at(12, 13));
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 20)));
        assert_eq!(deadline(&e, None), Some(at(12, 22)), "a step timer alone");
        set_step_timer(&mut e, Some(-1), at(12, 14));
        assert_eq!(deadline(&e, None), None);
        assert_eq!(deadline(&e, Some(20)), Some(at(12, 20)));
    }

    #[test]
    fn only_in_progress_executions_time_out() {
        for status in JobExecutionStatus::ALL {
            let mut e = exec(status);
            e.started_at = Some(1_000);
            e.step_timeout_at = Some(2_000);
            let timed_out = time_out(&mut e, 5_000);
            assert_eq!(timed_out, status == InProgress, "{status:?}");
            if timed_out {
                assert_eq!((e.status, e.step_timeout_at, e.version_number), (TimedOut, None, 2));
                assert_eq!(deadline(&e, Some(1)), None, "a terminal execution runs no timer");
            }
        }
        let mut queued = exec(Queued);
        set_step_timer(&mut queued, Some(5), 0);
        assert_eq!(queued.step_timeout_at, None, "a QUEUED execution keeps no step timer");
    }
}
