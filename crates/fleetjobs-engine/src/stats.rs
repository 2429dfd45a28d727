//! What the fleet looks like right now, for monitoring: jobs and executions by status, and how
//! far the rollouts still have to go. Read under the lock without waiting for durability (a
//! gauge may show a change a moment before it is on disk).

use fleetjobs_core::events::ExecutionCounts;
use fleetjobs_core::model::{JobExecutionStatus, JobStatus};

use crate::Engine;

/// The aggregates one scrape of the metrics reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStats {
    pub things: usize,
    /// Jobs by status, in [`JOB_STATUSES`] order.
    pub jobs: [usize; JOB_STATUSES.len()],
    /// Executions of all jobs by status ([`JobExecutionStatus::ALL`] order).
    pub executions: ExecutionCounts,
    /// Jobs whose rollout still has things waiting for an execution.
    pub rollouts_in_progress: usize,
    /// Things still waiting for an execution across those rollouts (known once a rollout has
    /// resolved its targets).
    pub rollout_pending_things: usize,
}

pub const JOB_STATUSES: [JobStatus; 5] = [
    JobStatus::InProgress,
    JobStatus::Canceled,
    JobStatus::Completed,
    JobStatus::DeletionInProgress,
    JobStatus::Scheduled,
];

impl Engine {
    /// O(jobs): the per-job execution counts are kept up to date by every commit.
    pub fn fleet_stats(&self) -> Result<FleetStats, fleetjobs_core::ApiError> {
        let state = self.lock()?;
        let mut stats = FleetStats { things: state.things.len(), ..FleetStats::default() };
        for job in state.jobs.values() {
            if let Some(i) = JOB_STATUSES.iter().position(|s| *s == job.status) {
                stats.jobs[i] += 1;
            }
            let pending = job.rollout.as_ref().and_then(|r| r.pending.as_ref()).map_or(0, Vec::len);
            if pending > 0 {
                stats.rollouts_in_progress += 1;
                stats.rollout_pending_things += pending;
            }
        }
        for counts in state.counts.values() {
            for status in JobExecutionStatus::ALL {
                stats.executions.add(status, counts.get(status));
            }
        }
        Ok(stats)
    }
}
