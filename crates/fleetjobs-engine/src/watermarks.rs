//! Which batch last wrote each job (its record or any of its executions), so that a read of one
//! job waits only for the durability of the batches that could have changed what it shows.
//!
//! Under device load a batch is almost always in flight; a read that waited for the newest
//! batch of all (the old rule) queued behind device updates of other jobs it could not see.
//! Every change to memory comes with a store mutation (what is not stored would be lost at a
//! restart), so the mutations of a batch name every job whose shown state it changed: a `job`
//! record by its key, an `execution` record by the job id that leads its key. The per-job
//! counts are derived from the executions, so they are covered too.

use std::collections::HashMap;

use fleetjobs_store::Mutation;

use crate::state;

/// Entries at most this many (or twice the live ones) before the settled ones are dropped.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
pub struct Watermarks {
    /// Job id -> sequence number of the last batch whose mutations touched it. An absent job
    /// was last written by a batch that had settled when it was pruned (or never): 0.
    last: HashMap<String, u64>,
    /// Prune when `last` grows past this.
    prune_at: usize,
}

impl Watermarks {
    /// Note that batch `seq` carries `mutations`; `settled` is the newest settled batch, below
    /// which entries carry no information and may go (the map stays bounded by the jobs
    /// written while their batches are in flight, not by every job ever written).
    pub fn note(&mut self, seq: u64, mutations: &[fleetjobs_store::Mutation], settled: u64) {
        for job in mutations.iter().filter_map(job_of) {
            match self.last.get_mut(job) {
                Some(last) => *last = seq,
                None => {
                    self.last.insert(job.to_string(), seq);
                }
            }
        }
        if self.last.len() > self.prune_at.max(PRUNE_FLOOR) {
            self.last.retain(|_, last| *last > settled);
            self.prune_at = 2 * self.last.len();
        }
    }

    /// The last batch that wrote `job` (0: none that is not settled).
    pub fn of_job(&self, job: &str) -> u64 {
        self.last.get(job).copied().unwrap_or(0)
    }
}

/// The job a mutation changes, if any.
fn job_of(m: &Mutation) -> Option<&str> {
    let (kind, key) = match m {
        Mutation::Put { kind, key, .. } | Mutation::Delete { kind, key } => (*kind, key.as_str()),
    };
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
        w.note(1, &[put(state::JOB, "a")], 0);
        w.note(2, &[put(state::EXECUTION, "b\nthing\n1"), put("thing", "a")], 0);
        w.note(3, &[Mutation::Delete { kind: state::EXECUTION, key: "a\nthing\n1".into() }], 0);
        assert_eq!((w.of_job("a"), w.of_job("b"), w.of_job("c")), (3, 2, 0));
    }

    #[test]
    fn settled_entries_are_pruned_and_read_as_zero() {
        let mut w = Watermarks::default();
        for i in 0..=PRUNE_FLOOR as u64 {
            w.note(i + 1, &[put(state::JOB, &format!("j{i}"))], PRUNE_FLOOR as u64);
        }
        assert!(w.last.len() <= 1, "only the unsettled batch's job stays: {}", w.last.len());
        assert_eq!(w.of_job("j0"), 0);
        assert_eq!(w.of_job(&format!("j{PRUNE_FLOOR}")), PRUNE_FLOOR as u64 + 1);
    }
}
