//! The rollout driver: it applies `fleetjobs-rollout`'s decisions to a job inside a `Txn`.
//! A job whose executions are held back (a `jobExecutionsRolloutConfig` rate, a
//! `schedulingConfig` start, end or maintenance windows) keeps a `Rollout` in its record; the
//! timer loop calls [`Engine::advance_rollout`] when the rules say something is due, and
//! CreateJob calls it once at creation.

use fleetjobs_core::job_config::JobEndBehavior;
use fleetjobs_core::model::{Job, JobExecutionStatus, JobStatus};
use fleetjobs_core::ops::jobs::ScheduledJobRollout;
use fleetjobs_core::Millis;
use fleetjobs_rollout::rate::{self, Progress, RateState};
use fleetjobs_rollout::schedule::{Phase, Schedule};

use crate::ops::queue_executions;
use crate::state::{State, Txn};
use crate::Engine;

/// Jobs the rollout rules may act on: a rollout in progress, or a schedule whose end is ahead.
fn watched(job: &Job) -> bool {
    matches!(job.status, JobStatus::Scheduled | JobStatus::InProgress)
        && (job.rollout.is_some() || job.configs.scheduling_config.as_ref().is_some_and(|s| s.end_time.is_some()))
}

fn schedule(job: &Job) -> Schedule {
    // The config was checked at creation; a stored one that no longer parses schedules nothing.
    Schedule::new(job.configs.scheduling_config.as_ref()).unwrap_or_default()
}

/// When the rules next have something to do for `job` (`None`: nothing ahead).
fn next_change(job: &Job, s: &State, now: Millis) -> Option<Millis> {
    let sched = schedule(job);
    let schedule_change = sched.next_change(now);
    let rate_change = job.rollout.as_ref().and_then(|r| {
        let remaining = r.pending.as_ref().map_or(1, |p| p.len() as i64);
        if !sched.may_create(now) || remaining == 0 {
            return None;
        }
        let state = RateState { window_start: r.window_start, created_in_window: r.created_in_window };
        let progress =
            Progress { notified: r.created, succeeded: s.counts(&job.job_id).get(JobExecutionStatus::Succeeded) };
        let allowance =
            rate::allowance(job.configs.job_executions_rollout_config.as_ref(), &state, progress, remaining, now);
        if allowance.count > 0 {
            Some(now)
        } else {
            allowance.next_at
        }
    });
    // At `endTime` the behaviour applies once: a cancel leaves the job CANCELED (no longer
    // watched), a stop leaves nothing to stop.
    let ended_behaviour_due = match sched.phase(now) {
        Phase::Ended { behavior: JobEndBehavior::StopRollout } => {
            (job.rollout.is_some() || job.status == JobStatus::Scheduled).then_some(now)
        }
        Phase::Ended { .. } => Some(now),
        _ => None,
    };
    // A SCHEDULED job whose start has come leaves SCHEDULED even outside its windows.
    let start_due =
        (job.status == JobStatus::Scheduled && !matches!(sched.phase(now), Phase::Scheduled { .. })).then_some(now);
    [schedule_change, rate_change, ended_behaviour_due, start_due].into_iter().flatten().min()
}

/// `scheduledJobRollouts` of DescribeJob: the next seven starts of the job's maintenance
/// windows, while it may still roll out.
pub(crate) fn scheduled_job_rollouts(job: &Job, now: Millis) -> Option<Vec<ScheduledJobRollout>> {
    let sched = schedule(job);
    if sched.windows().is_empty() || !matches!(job.status, JobStatus::Scheduled | JobStatus::InProgress) {
        return None;
    }
    let starts = fleetjobs_rollout::windows::scheduled_job_rollouts(sched.windows(), now);
    Some(starts.into_iter().map(|start_time| ScheduledJobRollout { start_time }).collect())
}

impl State {
    /// The jobs whose rollout rules are due at `now`, and the earliest instant after that any
    /// other becomes due.
    pub fn rollouts_due(&self, now: Millis) -> (Vec<String>, Option<Millis>) {
        let mut due = Vec::new();
        let mut next: Option<Millis> = None;
        for job in self.jobs.values().filter(|j| watched(j)) {
            match next_change(job, self, now) {
                Some(at) if at <= now => due.push(job.job_id.clone()),
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        (due, next)
    }
}

/// Executions created in one transaction: at most a sixteenth of the job's targets, and never
/// fewer than this. CreateJob on a group of 10,000 things held the state lock for ~50 ms in one
/// transaction, and every read and device request waited behind it; in chunks, a big job costs
/// at most 17 transactions (each rewriting the record's shrinking list of targets still to
/// create), and jobs of up to this many targets are created in one, as before.
pub(crate) const CREATE_CHUNK_MIN: usize = 500;
const CREATE_CHUNKS: usize = 16;

fn creation_chunk(targets: usize) -> usize {
    CREATE_CHUNK_MIN.max(targets.div_ceil(CREATE_CHUNKS))
}

/// What one [`Engine::advance_rollout`] did: executions created, and targets left to create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RolloutStep {
    pub created: usize,
    pub remaining: usize,
}

impl Engine {
    /// Apply what the rollout rules say for `job_id` at the transaction's `now`: leave
    /// SCHEDULED at `startTime`, create the executions the rate and windows allow (at most a
    /// [`creation_chunk`] in this transaction), and at `endTime` apply `endBehavior` (stop the
    /// rollout, cancel, or force-cancel).
    pub(crate) fn advance_rollout(&self, txn: &mut Txn<'_>, job_id: &str) -> RolloutStep {
        let Some(mut job) = txn.s.jobs.get(job_id).filter(|j| watched(j)).map(|j| Job::clone(j)) else {
            return RolloutStep::default();
        };
        let now = txn.now;
        let sched = schedule(&job);
        match sched.phase(now) {
            Phase::Scheduled { .. } => {}
            Phase::Ended { behavior } => {
                let comment = Some(format!("schedulingConfig.endTime reached (endBehavior {})", behavior.as_str()));
                match behavior {
                    JobEndBehavior::StopRollout => {
                        if job.rollout.take().is_some() || job.status == JobStatus::Scheduled {
                            job.status = JobStatus::InProgress;
                            job.last_updated_at = now;
                            txn.put_job(job);
                        }
                    }
                    JobEndBehavior::Cancel => txn.cancel_job(job, false, None, comment),
                    JobEndBehavior::ForceCancel => txn.cancel_job(job, true, None, comment),
                }
            }
            Phase::Rollout => {
                let mut changed = false;
                if job.status == JobStatus::Scheduled {
                    job.status = JobStatus::InProgress;
                    changed = true;
                }
                let mut created = Vec::new();
                let mut remaining = 0;
                if let Some(r) = job.rollout.as_mut().filter(|_| sched.may_create(now)) {
                    // A SNAPSHOT job's targets are resolved when its rollout first runs; a target
                    // deleted since creation is skipped.
                    let pending =
                        r.pending.get_or_insert_with(|| self.resolve_targets(txn.s, &job.targets).unwrap_or_default());
                    let state = RateState { window_start: r.window_start, created_in_window: r.created_in_window };
                    let progress = Progress {
                        notified: r.created,
                        succeeded: txn.s.counts(job_id).get(JobExecutionStatus::Succeeded),
                    };
                    let config = job.configs.job_executions_rollout_config.as_ref();
                    let allowance = rate::allowance(config, &state, progress, pending.len() as i64, now);
                    let chunk = creation_chunk(usize::try_from(r.created).unwrap_or(0) + pending.len());
                    let n = usize::try_from(allowance.count).unwrap_or(0).min(pending.len()).min(chunk);
                    created = pending.drain(..n).collect();
                    remaining = pending.len();
                    let mut state = state;
                    state.record(n as i64, now);
                    (r.window_start, r.created_in_window) = (state.window_start, state.created_in_window);
                    r.created += n as i64;
                    changed |= n > 0 || r.pending.as_ref().is_some_and(Vec::is_empty);
                    if r.pending.as_ref().is_some_and(Vec::is_empty) {
                        job.rollout = None;
                    }
                }
                if changed {
                    job.last_updated_at = now;
                    txn.put_job(job);
                }
                queue_executions(txn, job_id, &created);
                return RolloutStep { created: created.len(), remaining };
            }
        }
        RolloutStep::default()
    }

    /// Apply every rollout rule due at the engine's `now`; returns how many jobs it touched.
    pub(crate) async fn advance_due_rollouts(&self) -> Result<usize, fleetjobs_core::ApiError> {
        let now = self.now();
        let (due, _) = self.lock()?.rollouts_due(now);
        if due.is_empty() {
            return Ok(0);
        }
        self.write(|txn| {
            for job_id in &due {
                let _ = self.advance_rollout(txn, job_id);
            }
            Ok(due.len())
        })
        .await
    }
}
