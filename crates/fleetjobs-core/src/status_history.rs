//! A job's execution statuses over time, derived from its executions' own timestamps (no
//! stored samples): the console's chart.
//!
//! An execution record keeps `queuedAt`, `startedAt` and `lastUpdatedAt`, and the state machine
//! only moves forward (QUEUED → IN_PROGRESS → a terminal status, or QUEUED → terminal; a retry
//! is a new record). So each record tells which status it had at any past instant: QUEUED from
//! `queuedAt`, IN_PROGRESS from `startedAt`, and its terminal status from `lastUpdatedAt` (a
//! terminal record is never updated again). Derived this way the history survives restarts,
//! covers jobs older than the process, and costs no memory per job; its one approximation is
//! that a record's terminal moment is its last update.

use crate::events::ExecutionCounts;
use crate::model::{JobExecution, JobExecutionStatus};
use crate::Millis;

/// At most this many samples in one history (the chart's resolution bounds its cost).
pub const MAX_SAMPLES: usize = 240;

/// The statuses `e` went through, each with the instant it began, oldest first (one to three).
pub fn phases(e: &JobExecution) -> Vec<(Millis, JobExecutionStatus)> {
    use JobExecutionStatus::{InProgress, Queued};
    let queued = e.queued_at;
    // Clamped into [queuedAt, lastUpdatedAt]: the phases stay ordered whatever the clocks did.
    let end = e.last_updated_at.max(queued);
    let started = e.started_at.map(|s| s.clamp(queued, end));
    let mut out = vec![(queued, Queued)];
    match e.status {
        Queued => {}
        InProgress => out.push((started.unwrap_or(end), InProgress)),
        terminal => {
            if let Some(s) = started {
                out.push((s, InProgress));
            }
            out.push((end, terminal));
        }
    }
    out
}

/// `n` instants evenly spaced from `from` to `to` (both included; `n` is clamped to
/// 2..=[`MAX_SAMPLES`]; a span of zero gives one instant).
pub fn sample_times(from: Millis, to: Millis, n: usize) -> Vec<Millis> {
    let to = to.max(from);
    let n = n.clamp(2, MAX_SAMPLES);
    if to == from {
        return vec![from];
    }
    let span = (to - from) as i128;
    (0..n).map(|i| from + (span * i as i128 / (n as i128 - 1)) as Millis).collect()
}

/// The count of executions in each status at each instant of `times` (ascending), in one
/// pass over `executions`: each phase adds one to the samples it covers through a difference
/// array, so the cost is O(executions × log samples + samples), not their product.
pub fn sample<'a>(times: &[Millis], executions: impl IntoIterator<Item = &'a JobExecution>) -> Vec<ExecutionCounts> {
    let mut diff = vec![ExecutionCounts::default(); times.len() + 1];
    for e in executions {
        let phases = phases(e);
        for (i, (start, status)) in phases.iter().enumerate() {
            // The samples at or after the phase's start and before the next phase's start.
            let lo = times.partition_point(|t| t < start);
            let hi = phases.get(i + 1).map_or(times.len(), |(next, _)| times.partition_point(|t| t < next));
            if lo < hi {
                diff[lo].add(*status, 1);
                diff[hi].add(*status, -1);
            }
        }
    }
    let mut running = ExecutionCounts::default();
    times
        .iter()
        .zip(diff)
        .map(|(_, d)| {
            for (r, x) in running.by_status.iter_mut().zip(d.by_status) {
                *r += x;
            }
            running
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobExecutionStatus::*;

    fn exec(status: JobExecutionStatus, queued: Millis, started: Option<Millis>, updated: Millis) -> JobExecution {
        JobExecution {
            status,
            started_at: started,
            last_updated_at: updated,
            ..JobExecution::queued("j", "t", 1, queued)
        }
    }

    #[test]
    fn phases_follow_the_timestamps() {
        assert_eq!(phases(&exec(Queued, 10, None, 10)), vec![(10, Queued)]);
        assert_eq!(phases(&exec(InProgress, 10, Some(20), 30)), vec![(10, Queued), (20, InProgress)]);
        assert_eq!(phases(&exec(Succeeded, 10, Some(20), 30)), vec![(10, Queued), (20, InProgress), (30, Succeeded)]);
        // Canceled while queued: never in progress.
        assert_eq!(phases(&exec(Canceled, 10, None, 40)), vec![(10, Queued), (40, Canceled)]);
        // A start before the queueing (clock skew) is clamped.
        assert_eq!(phases(&exec(Failed, 10, Some(5), 30)), vec![(10, Queued), (10, InProgress), (30, Failed)]);
    }

    #[test]
    fn sample_times_cover_the_span_evenly_and_are_bounded() {
        assert_eq!(sample_times(0, 100, 5), vec![0, 25, 50, 75, 100]);
        assert_eq!(sample_times(7, 7, 5), vec![7]);
        assert_eq!(sample_times(10, 0, 5), vec![10]);
        assert_eq!(sample_times(0, 1_000_000, 100_000).len(), MAX_SAMPLES);
        assert_eq!(sample_times(0, 10, 0), vec![0, 10]);
    }

    #[test]
    fn samples_count_each_status_at_each_instant() {
        let times = sample_times(0, 100, 11); // 0, 10, ..., 100
        let executions = [
            exec(Succeeded, 0, Some(20), 50),
            exec(InProgress, 0, Some(40), 90),
            exec(Canceled, 30, None, 60),
            exec(Queued, 95, None, 95),
        ];
        let s = sample(&times, &executions);
        assert_eq!(s.len(), 11);
        let at = |i: usize, st| s[i].get(st);
        assert_eq!((at(0, Queued), at(0, InProgress)), (2, 0));
        assert_eq!((at(2, Queued), at(2, InProgress)), (1, 1)); // t=20: the first started
        assert_eq!((at(3, Queued), at(3, InProgress)), (2, 1)); // t=30: the third queued
        assert_eq!((at(5, Succeeded), at(5, InProgress), at(5, Queued)), (1, 1, 1));
        assert_eq!((at(6, Canceled), at(6, Queued)), (1, 0));
        // The last sample is the records' current statuses, as jobProcessDetails counts them.
        let mut now = ExecutionCounts::default();
        for e in &executions {
            now.add(e.status, 1);
        }
        assert_eq!(s[10], now);
        assert_eq!(sample(&times, &[]).iter().map(|c| c.by_status.iter().sum::<i64>()).sum::<i64>(), 0);
    }
}
