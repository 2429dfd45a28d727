//! A thing's pending queue (its QUEUED and IN_PROGRESS executions), the `$next` execution,
//! and the rules for `jobs/notify` and `jobs/notify-next`.
//!
//! Order: IN_PROGRESS before QUEUED, each by `queuedAt` (then job id, for a total order).
//! `notify` fires when the *set* of pending executions changes; `notify-next` when the *head*
//! changes. A QUEUED→IN_PROGRESS move of the head changes neither (the AWS worked example).

use crate::model::{JobExecution, JobExecutionStatus};

/// How many pending executions `jobs/get` and `jobs/notify` show.
pub const MAX_PENDING_SHOWN: usize = 10;

/// How many they show when one of them belongs to a job with a `schedulingConfig` (AWS raises
/// the cap for scheduled jobs and maintenance windows).
pub const MAX_PENDING_SHOWN_SCHEDULED: usize = 15;

/// How many of a thing's pending executions are shown, given whether any of them belongs to a
/// scheduled job.
pub fn shown(any_scheduled: bool) -> usize {
    if any_scheduled {
        MAX_PENDING_SHOWN_SCHEDULED
    } else {
        MAX_PENDING_SHOWN
    }
}

/// Identity of an execution: (jobId, executionNumber).
pub type ExecutionKey = (String, i64);

/// Where a pending execution stands in its thing's queue, before the job id that breaks ties:
/// IN_PROGRESS before QUEUED, each by `queuedAt`. Kept beside each pending execution in the
/// engine's index, so that a queue's shape needs no execution record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    class: u8,
    queued_at: i64,
}

impl Place {
    pub fn of(e: &JobExecution) -> Place {
        let class = if e.status == JobExecutionStatus::InProgress { 0 } else { 1 };
        Place { class, queued_at: e.queued_at }
    }
}

fn rank(e: &JobExecution) -> (Place, &str, i64) {
    (Place::of(e), e.job_id.as_str(), e.execution_number)
}

/// Sort pending executions in `$next` order, dropping terminal ones.
pub fn ordered<'a>(executions: impl IntoIterator<Item = &'a JobExecution>) -> Vec<&'a JobExecution> {
    let mut pending: Vec<&JobExecution> = executions.into_iter().filter(|e| e.is_pending()).collect();
    pending.sort_by(|a, b| rank(a).cmp(&rank(b)));
    pending
}

/// What `notify`/`notify-next` need to compare: the pending set and its head.
///
/// The set is a sorted list without duplicates: built twice for every change of a thing's
/// executions (before and after) and only compared, it needs no tree (a thing usually has one
/// or two pending executions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueShape {
    pub set: Vec<ExecutionKey>,
    pub head: Option<ExecutionKey>,
}

impl QueueShape {
    pub fn of<'a>(executions: impl IntoIterator<Item = &'a JobExecution>) -> Self {
        Self::of_places(executions.into_iter().filter(|e| e.is_pending()).map(rank))
    }

    /// The shape of pending executions given as (place, jobId, executionNumber).
    pub fn of_places<'a>(pending: impl IntoIterator<Item = (Place, &'a str, i64)>) -> Self {
        let mut head: Option<(Place, &str, i64)> = None;
        let mut set = Vec::new();
        for p in pending {
            if head.is_none_or(|h| p < h) {
                head = Some(p);
            }
            set.push((p.1.to_string(), p.2));
        }
        // The engine's index yields them in order already: the sort only checks.
        set.sort_unstable();
        set.dedup();
        QueueShape { head: head.map(|(_, job, n)| (job.to_string(), n)), set }
    }
}

/// Which notifications a change of a thing's queue from `before` to `after` publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notifications {
    pub notify: bool,
    pub notify_next: bool,
}

pub fn notifications(before: &QueueShape, after: &QueueShape) -> Notifications {
    Notifications { notify: before.set != after.set, notify_next: before.head != after.head }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{apply_device_update, start, DeviceUpdate};
    use JobExecutionStatus::*;

    struct Thing {
        execs: Vec<JobExecution>,
    }

    impl Thing {
        fn shape(&self) -> QueueShape {
            QueueShape::of(&self.execs)
        }
        fn get(&mut self, job: &str) -> &mut JobExecution {
            self.execs.iter_mut().find(|e| e.job_id == job).unwrap()
        }
        /// Apply `f` and report which notifications fire.
        fn step(&mut self, f: impl FnOnce(&mut Self)) -> (bool, bool) {
            let before = self.shape();
            f(self);
            let n = notifications(&before, &self.shape());
            (n.notify, n.notify_next)
        }
        fn set(&mut self, job: &str, status: JobExecutionStatus, now: i64) {
            let u = DeviceUpdate { status, status_details: None, expected_version: None };
            apply_device_update(self.get(job), &u, now).unwrap();
        }
    }

    /// The dev guide's worked sequence (aws-iot-jobs.md §4.9), row by row.
    #[test]
    fn dev_guide_worked_sequence() {
        let mut t = Thing { execs: vec![] };
        assert_eq!(t.step(|t| t.execs.push(JobExecution::queued("job1", "t", 1, 1))), (true, true));
        assert_eq!(t.step(|t| t.execs.push(JobExecution::queued("job2", "t", 1, 2))), (true, false));
        assert_eq!(
            t.step(|t| {
                start(t.get("job1"), None, 3);
            }),
            (false, false)
        );
        assert_eq!(t.step(|t| t.execs.push(JobExecution::queued("job3", "t", 1, 4))), (true, false));
        assert_eq!(t.step(|t| t.set("job1", Succeeded, 5)), (true, true));
        assert_eq!(t.shape().head, Some(("job2".to_string(), 1)));
        assert_eq!(t.step(|t| t.set("job3", InProgress, 6)), (false, true));
        assert_eq!(t.shape().head, Some(("job3".to_string(), 1)));
        assert_eq!(t.step(|t| t.set("job2", Rejected, 7)), (true, false));
        assert_eq!(t.step(|t| t.execs.retain(|e| e.job_id != "job3")), (true, true));
        assert_eq!(t.shape(), QueueShape::default());
    }

    #[test]
    fn ordering_in_progress_first_then_queue_time() {
        let mut a = JobExecution::queued("a", "t", 1, 10);
        let b = JobExecution::queued("b", "t", 1, 5);
        let mut c = JobExecution::queued("c", "t", 1, 1);
        c.status = Succeeded;
        a.status = InProgress;
        let order: Vec<_> = ordered([&b, &a, &c]).iter().map(|e| e.job_id.clone()).collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn details_only_changes_publish_nothing() {
        let mut t = Thing { execs: vec![JobExecution::queued("job1", "t", 1, 1)] };
        t.set("job1", InProgress, 2);
        assert_eq!(t.step(|t| t.set("job1", InProgress, 3)), (false, false));
    }
}
