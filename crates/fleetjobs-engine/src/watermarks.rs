//! Which batch last wrote each job (its record or any of its executions), so that a read of one
//! job waits only for the durability of the batches that could have changed what it shows.
//!
//! Under device load a batch is almost always in flight; a read that waited for the newest
//! batch of all (the old rule) queued behind device updates of other jobs it could not see.
//! Every change to memory comes with a store mutation (what is not stored would be lost at a
//! restart), so the mutations of a batch name every job whose shown state it changed: a `job`
//! record by its key, an `execution` record by the job id that leads its key. The per-job
//! counts are derived from the executions, so they are covered too. (DescribeJob does not
//! wait at all: it reads the durable view, `crate::durable_view`.)

// Keyed by job ids, which operators choose: foldhash, as the state's maps (see `state`).
use foldhash::HashMap;

use fleetjobs_store::Mutation;

use crate::state;

/// Jobs at most this many (or twice the live ones) before the settled ones of deleted jobs go.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
pub struct Watermarks {
    /// Job id -> the last batch that wrote its record or one of its executions. An absent job
    /// was not written since the state was loaded, or was deleted by a batch that had settled
    /// when it was pruned.
    jobs: HashMap<String, u64>,
    /// Prune when `jobs` grows past this.
    prune_at: usize,
}

impl Watermarks {
    /// Note that batch `seq` carries `mutations`; `settled` is the newest settled batch,
    /// `exists` whether a job is still there (the marks of deleted jobs go once settled).
    pub fn note(&mut self, seq: u64, mutations: &[Mutation], settled: u64, exists: impl Fn(&str) -> bool) {
        for job in mutations.iter().filter_map(job_of) {
            match self.jobs.get_mut(job) {
                Some(any) => *any = seq,
                None => {
                    self.jobs.insert(job.to_string(), seq);
                }
            }
        }
        if self.jobs.len() > self.prune_at.max(PRUNE_FLOOR) {
            self.jobs.retain(|job, any| *any > settled || exists(job));
            self.prune_at = 2 * self.jobs.len();
        }
    }

    /// The last batch that wrote `job` (0: none since the state was loaded, or settled long ago).
    pub fn of_job(&self, job: &str) -> u64 {
        self.jobs.get(job).copied().unwrap_or(0)
    }
}

/// The job whose shown state a mutation changes: a `job` record's key, or the job id that
/// leads an `execution` record's key.
pub(crate) fn job_of(m: &Mutation) -> Option<&str> {
    let (kind, key) = m.record();
    match kind {
        state::JOB => Some(key),
        state::EXECUTION => key.split('\n').next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kind: &'static str, key: &str) -> Mutation {
        Mutation::Put { kind, key: key.into(), value: "{}".into() }
    }

    #[test]
    fn jobs_and_executions_mark_their_job_and_nothing_else() {
        let mut w = Watermarks::default();
        let yes = |_: &str| true;
        w.note(1, &[put(state::JOB, "a")], 0, yes);
        w.note(2, &[put(state::EXECUTION, "b\nthing\n1"), put("thing", "a")], 0, yes);
        w.note(3, &[Mutation::Delete { kind: state::EXECUTION, key: "a\nthing\n1".into() }], 0, yes);
        assert_eq!((w.of_job("a"), w.of_job("b"), w.of_job("c")), (3, 2, 0));
    }

    #[test]
    fn deleted_jobs_go_once_settled_and_read_as_zero() {
        let mut w = Watermarks::default();
        let floor = PRUNE_FLOOR as u64;
        for i in 0..=floor {
            w.note(i + 1, &[put(state::JOB, &format!("j{i}"))], floor, |_| false);
        }
        assert!(w.jobs.len() <= 1, "only the unsettled batch's job stays: {}", w.jobs.len());
        assert_eq!(w.of_job("j0"), 0);
        assert_eq!(w.of_job(&format!("j{floor}")), floor + 1);
    }
}
