//! An execution's timers (aws-iot-jobs.md §5.5): the in-progress timer runs from the moment it
//! enters IN_PROGRESS for `inProgressTimeoutInMinutes`; a step timer is set by each
//! `stepTimeoutInMinutes` (StartNext, UpdateJobExecution), replacing the previous one, and `-1`
//! cancels it. A step timer never outlives the in-progress deadline: the effective deadline is
//! the earlier of the two. Both stop when the execution becomes terminal (the caller stops
//! asking).

use fleetjobs_core::Millis;

use crate::MINUTE;

/// The step timer a `stepTimeoutInMinutes` sets at `now`: `None` for `-1`, which cancels it.
/// Call only when the member is present (absent keeps the previous timer); values outside
/// 1..10080 are refused before this, and any other non-positive one sets no timer.
pub fn step_deadline(now: Millis, step_minutes: i64) -> Option<Millis> {
    (step_minutes > 0).then(|| now.saturating_add(step_minutes.saturating_mul(MINUTE)))
}

/// The effective deadline of an execution: the in-progress deadline (`in_progress_started_at`
/// + the job's `inProgressTimeoutInMinutes`, when both are known) capped by the step timer's.
pub fn deadline(
    in_progress_started_at: Option<Millis>,
    in_progress_timeout_minutes: Option<i64>,
    step_deadline: Option<Millis>,
) -> Option<Millis> {
    let in_progress = match (in_progress_started_at, in_progress_timeout_minutes) {
        (Some(start), Some(minutes)) => Some(start.saturating_add(minutes.saturating_mul(MINUTE))),
        _ => None,
    };
    [in_progress, step_deadline].into_iter().flatten().min()
}

/// `approximateSecondsBeforeTimedOut`: whole seconds left until `deadline`, rounded down, never
/// negative (an overdue execution the timer loop has not yet timed out reports 0).
pub fn approximate_seconds_before_timed_out(deadline: Millis, now: Millis) -> i64 {
    (deadline - now).max(0) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: Millis = 1_764_504_000_000; // 2025-11-30T12:00Z

    fn clock(minutes: i64) -> Millis {
        NOON + minutes * MINUTE
    }

    #[test]
    fn the_documented_example() {
        // In progress at 12:00 with a 20-minute timeout: deadline 12:20.
        let (started, timeout) = (Some(clock(0)), Some(20));
        assert_eq!(deadline(started, timeout, None), Some(clock(20)));
        // Step 7 at 12:05 → 12:12.
        let step = step_deadline(clock(5), 7);
        assert_eq!(deadline(started, timeout, step), Some(clock(12)));
        // Step 5 at 12:10 → 12:15 (replaces 12:12).
        let step = step_deadline(clock(10), 5);
        assert_eq!(deadline(started, timeout, step), Some(clock(15)));
        // Step 9 at 12:13 → 12:22, capped by the in-progress deadline at 12:20.
        let step = step_deadline(clock(13), 9);
        assert_eq!(step, Some(clock(22)));
        assert_eq!(deadline(started, timeout, step), Some(clock(20)));
        assert_eq!(approximate_seconds_before_timed_out(clock(20), clock(13)), 7 * 60);
    }

    #[test]
    fn minus_one_cancels_the_step_timer() {
        assert_eq!(step_deadline(clock(0), -1), None);
        assert_eq!(deadline(Some(clock(0)), Some(20), step_deadline(clock(1), -1)), Some(clock(20)));
        assert_eq!(deadline(None, None, step_deadline(clock(1), -1)), None, "no timer at all");
        assert_eq!(step_deadline(clock(0), 0), None);
    }

    #[test]
    fn either_timer_alone() {
        assert_eq!(deadline(None, None, None), None);
        assert_eq!(deadline(Some(clock(0)), None, None), None, "no in-progress timeout");
        assert_eq!(deadline(None, Some(20), None), None, "QUEUED: the in-progress timer has not started");
        assert_eq!(deadline(None, Some(20), step_deadline(clock(0), 3)), Some(clock(3)));
        assert_eq!(deadline(Some(clock(0)), Some(10_080), None), Some(clock(10_080)));
    }

    #[test]
    fn seconds_before_timed_out_round_down_and_stop_at_zero() {
        assert_eq!(approximate_seconds_before_timed_out(clock(1), clock(0)), 60);
        assert_eq!(approximate_seconds_before_timed_out(clock(1), clock(1) - 1), 0);
        assert_eq!(approximate_seconds_before_timed_out(clock(1), clock(1) - 1001), 1);
        assert_eq!(approximate_seconds_before_timed_out(clock(1), clock(2)), 0, "overdue");
    }
}
