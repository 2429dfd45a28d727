//! Which batch last wrote each job (its record or any of its executions), so that a read of one
//! job waits only for the durability of the batches that could have changed what it shows; and
//! each job's execution counts as of the batches still committing, so that DescribeJob can
//! answer from the durable view without waiting at all.
//!
//! Under device load a batch is almost always in flight; a read that waited for the newest
//! batch of all (the old rule) queued behind device updates of other jobs it could not see.
//! Every change to memory comes with a store mutation (what is not stored would be lost at a
//! restart), so the mutations of a batch name every job whose shown state it changed: a `job`
//! record by its key, an `execution` record by the job id that leads its key. The per-job
//! counts are derived from the executions, so they are covered too.

use std::collections::VecDeque;

// Keyed by job ids, which operators choose: foldhash, as the state's maps (see `state`).
use foldhash::HashMap;

use fleetjobs_core::events::ExecutionCounts;
use fleetjobs_store::Mutation;

use crate::state;

/// Jobs at most this many (or twice the live ones) before the settled ones of deleted jobs go.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
pub struct Watermarks {
    /// Job id -> what the batches did to it. An absent job was not written since the state was
    /// loaded, or was deleted by a batch that had settled when it was pruned.
    jobs: HashMap<String, JobMarks>,
    /// Prune when `jobs` grows past this.
    prune_at: usize,
}

#[derive(Default)]
struct JobMarks {
    /// The last batch that wrote the job's record or one of its executions.
    any: u64,
    /// The last batch that wrote the job's record.
    record: u64,
    /// The job's execution counts after each batch that wrote its executions, oldest first:
    /// the newest settled one (once there is one), then those still committing.
    counts: VecDeque<(u64, ExecutionCounts)>,
}

impl Watermarks {
    /// Note that batch `seq` carries `mutations`, `counts` being each job's execution counts
    /// once they are applied; `settled` is the newest settled batch (older history may go),
    /// `exists` whether a job is still there (the marks of deleted jobs go once settled).
    pub fn note(
        &mut self,
        seq: u64,
        mutations: &[Mutation],
        settled: u64,
        counts: impl Fn(&str) -> ExecutionCounts,
        exists: impl Fn(&str) -> bool,
    ) {
        for (job, is_record) in mutations.iter().filter_map(job_of) {
            if !self.jobs.contains_key(job) {
                self.jobs.insert(job.to_string(), JobMarks::default());
            }
            let Some(marks) = self.jobs.get_mut(job) else { continue };
            marks.any = seq;
            if is_record {
                marks.record = seq;
            } else if marks.counts.back().is_none_or(|(s, _)| *s != seq) {
                marks.counts.push_back((seq, counts(job)));
                // Keep one settled entry: what the counts were before the batches in flight.
                while marks.counts.get(1).is_some_and(|(s, _)| *s <= settled) {
                    marks.counts.pop_front();
                }
            }
        }
        if self.jobs.len() > self.prune_at.max(PRUNE_FLOOR) {
            self.jobs.retain(|job, marks| marks.any > settled || exists(job));
            self.prune_at = 2 * self.jobs.len();
        }
    }

    /// The last batch that wrote `job` (0: none since the state was loaded, or settled long ago).
    pub fn of_job(&self, job: &str) -> u64 {
        self.jobs.get(job).map_or(0, |m| m.any)
    }

    /// The job's execution counts as of batch `settled`, if its record is durable as it is in
    /// memory (`current`: the counts in memory): then the job record in memory and these counts
    /// are exactly what the store holds. `None` when that cannot be told without waiting (the
    /// record itself is being written, or no settled count is known from before the batches
    /// in flight).
    pub fn durable_counts(&self, job: &str, settled: u64, current: ExecutionCounts) -> Option<ExecutionCounts> {
        let Some(marks) = self.jobs.get(job) else { return Some(current) };
        if marks.record > settled {
            return None;
        }
        match marks.counts.iter().rev().find(|(s, _)| *s <= settled) {
            Some((_, counts)) => Some(*counts),
            None if marks.counts.is_empty() => Some(current),
            // Every known count is still committing, and what came before is not known.
            None => None,
        }
    }

    /// Forget the count history: memory was re-read from the store after a refused commit, so
    /// the counts in memory are the stored ones (the watermarks stay: waiting longer is safe).
    pub fn forget_counts(&mut self) {
        for marks in self.jobs.values_mut() {
            marks.counts.clear();
        }
    }
}

/// The job a mutation changes, and whether it is the job's own record (else an execution).
fn job_of(m: &Mutation) -> Option<(&str, bool)> {
    let (kind, key) = match m {
        Mutation::Put { kind, key, .. } | Mutation::Delete { kind, key } => (*kind, key.as_str()),
    };
    match kind {
        state::JOB => Some((key, true)),
        state::EXECUTION => key.split('\n').next().map(|job| (job, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetjobs_core::model::JobExecutionStatus;

    fn put(kind: &'static str, key: &str) -> Mutation {
        Mutation::Put { kind, key: key.into(), value: "{}".into() }
    }

    fn counts(succeeded: i64) -> ExecutionCounts {
        let mut c = ExecutionCounts::default();
        c.add(JobExecutionStatus::Succeeded, succeeded);
        c
    }

    #[test]
    fn jobs_and_executions_mark_their_job_and_nothing_else() {
        let mut w = Watermarks::default();
        let (none, yes) = (|_: &str| ExecutionCounts::default(), |_: &str| true);
        w.note(1, &[put(state::JOB, "a")], 0, none, yes);
        w.note(2, &[put(state::EXECUTION, "b\nthing\n1"), put("thing", "a")], 0, none, yes);
        w.note(3, &[Mutation::Delete { kind: state::EXECUTION, key: "a\nthing\n1".into() }], 0, none, yes);
        assert_eq!((w.of_job("a"), w.of_job("b"), w.of_job("c")), (3, 2, 0));
    }

    #[test]
    fn deleted_jobs_go_once_settled_and_read_as_zero() {
        let mut w = Watermarks::default();
        let floor = PRUNE_FLOOR as u64;
        for i in 0..=floor {
            let exists = |_: &str| false;
            w.note(i + 1, &[put(state::JOB, &format!("j{i}"))], floor, |_| ExecutionCounts::default(), exists);
        }
        assert!(w.jobs.len() <= 1, "only the unsettled batch's job stays: {}", w.jobs.len());
        assert_eq!(w.of_job("j0"), 0);
        assert_eq!(w.of_job(&format!("j{floor}")), floor + 1);
    }

    #[test]
    fn durable_counts_are_those_of_the_last_settled_batch() {
        let mut w = Watermarks::default();
        let yes = |_: &str| true;
        // Batch 1 creates the job and its executions (0 succeeded); 2 and 3 are device updates.
        w.note(1, &[put(state::JOB, "j"), put(state::EXECUTION, "j\nt1\n1")], 0, |_| counts(0), yes);
        assert_eq!(w.durable_counts("j", 0, counts(0)), None, "the job itself is not durable");
        w.note(2, &[put(state::EXECUTION, "j\nt1\n1")], 1, |_| counts(1), yes);
        w.note(3, &[put(state::EXECUTION, "j\nt2\n1")], 1, |_| counts(2), yes);
        assert_eq!(w.durable_counts("j", 1, counts(2)), Some(counts(0)));
        assert_eq!(w.durable_counts("j", 2, counts(2)), Some(counts(1)));
        assert_eq!(w.durable_counts("j", 3, counts(2)), Some(counts(2)));
        // Settled history goes but for the newest settled entry.
        w.note(4, &[put(state::EXECUTION, "j\nt3\n1")], 3, |_| counts(3), yes);
        assert_eq!(w.jobs["j"].counts.len(), 2);
        assert_eq!(w.durable_counts("j", 3, counts(3)), Some(counts(2)));
        // A job never written since the load: memory is the store.
        assert_eq!(w.durable_counts("other", 0, counts(7)), Some(counts(7)));
        // A change to the record in flight: no durable answer without waiting.
        w.note(5, &[put(state::JOB, "j")], 4, |_| counts(3), yes);
        assert_eq!(w.durable_counts("j", 4, counts(3)), None);
    }

    #[test]
    fn without_a_settled_count_before_the_batches_in_flight_there_is_no_durable_answer() {
        let mut w = Watermarks::default();
        // The first device update since the state was loaded: the count before it is not kept.
        w.note(7, &[put(state::EXECUTION, "j\nt\n1")], 6, |_| counts(1), |_| true);
        assert_eq!(w.durable_counts("j", 6, counts(1)), None);
        assert_eq!(w.durable_counts("j", 7, counts(1)), Some(counts(1)));
        w.forget_counts();
        assert_eq!(w.durable_counts("j", 6, counts(0)), Some(counts(0)), "re-read: memory is the store");
    }
}
