//! The durable view: each job's record and execution counts, and each access key's secret, as
//! the store holds them after the last batch it settled. DescribeJob and the API's SigV4 check
//! read it without taking the state lock.
//!
//! Why: every transaction holds the state lock, and some hold it for milliseconds (a CreateJob
//! chunk creating hundreds of executions; a device update whose thread the kernel descheduled
//! mid-way). An API read that took the lock waited for them: 10–48 ms at 10,000 working
//! devices, the whole of describe-job's p99 (docs/PERFORMANCE.md). The view changes only when
//! the store's writer reports a batch durable, under a lock of its own that is held for a map
//! update at most; device tasks never take it.
//!
//! Invariant: the view shows exactly what is durable. A batch's changes are taken from the
//! state when it is submitted (under the state lock, so in batch order), and enter the view
//! when the store reports the batch durable, before its writer is answered (an operator reads
//! their own writes); never when the store refused it (memory is then re-read from the store,
//! which the view already matches).

use std::sync::{Arc, Mutex, MutexGuard};

use fleetjobs_core::events::ExecutionCounts;
use fleetjobs_core::model::Job;
use fleetjobs_store::Mutation;
// Keyed by job ids and access key ids: foldhash, as the state's maps (see `state`).
use foldhash::HashMap;

use crate::state::{self, State};
use crate::watermarks::job_of;

#[derive(Default)]
pub struct DurableView {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, DurableJob>,
    /// Access key id -> its secret.
    secrets: HashMap<String, String>,
}

/// A job's record and execution counts as of one settled batch.
#[derive(Clone)]
pub struct DurableJob {
    pub job: Arc<Job>,
    pub counts: ExecutionCounts,
}

/// What one batch changes in the view: for each job it wrote (its record or executions), the
/// record after the batch and the counts, or that it was deleted; the access keys it wrote.
#[derive(Default)]
pub struct ViewChanges {
    jobs: Vec<JobChange>,
    secrets: Vec<(String, Option<String>)>,
}

enum JobChange {
    /// The record (it carries the job's id: a device's update allocates no key) and counts.
    Put(Arc<Job>, ExecutionCounts),
    Deleted(String),
}

impl ViewChanges {
    /// The changes of a batch carrying `mutations`, read from `state` once they are applied
    /// (the state lock held, before any later batch changes it).
    pub fn of(state: &State, mutations: &[Mutation]) -> ViewChanges {
        // Most batches write one job (a device's update; a CreateJob chunk's hundreds of
        // executions of one job): the others are gathered only when there are any.
        let mut first: Option<&str> = None;
        let mut others: Vec<&str> = Vec::new();
        let mut secrets = Vec::new();
        for m in mutations {
            let (kind, key) = m.record();
            if kind == state::ACCESS_KEY {
                secrets.push((key.to_string(), state.admin_keys.get(key).map(|k| k.secret_access_key.clone())));
            }
            match (job_of(m), first) {
                (Some(job), None) => first = Some(job),
                (Some(job), Some(f)) if job != f && others.last() != Some(&job) => others.push(job),
                _ => {}
            }
        }
        others.sort_unstable();
        others.dedup();
        let change = |id: &str| match state.jobs.get(id) {
            Some(job) => JobChange::Put(job.clone(), state.counts(id)),
            None => JobChange::Deleted(id.to_string()),
        };
        let jobs = first.into_iter().chain(others.into_iter().filter(|job| Some(*job) != first)).map(change).collect();
        ViewChanges { jobs, secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.secrets.is_empty()
    }
}

impl DurableView {
    /// The view of a state just loaded from the store (all of it durable).
    pub fn of(state: &State) -> DurableView {
        let jobs = state
            .jobs
            .iter()
            .map(|(id, job)| (id.clone(), DurableJob { job: job.clone(), counts: state.counts(id) }))
            .collect();
        let secrets =
            state.admin_keys.values().map(|k| (k.access_key_id.clone(), k.secret_access_key.clone())).collect();
        DurableView { inner: Mutex::new(Inner { jobs, secrets }) }
    }

    /// Apply the changes of a batch the store reports durable (batches settle in order).
    pub fn apply(&self, changes: ViewChanges) {
        if changes.is_empty() {
            return;
        }
        let mut inner = self.inner();
        for change in changes.jobs {
            match change {
                JobChange::Put(job, counts) => match inner.jobs.get_mut(&job.job_id) {
                    Some(slot) => *slot = DurableJob { job, counts },
                    None => {
                        inner.jobs.insert(job.job_id.clone(), DurableJob { job, counts });
                    }
                },
                JobChange::Deleted(id) => {
                    inner.jobs.remove(&id);
                }
            }
        }
        for (id, secret) in changes.secrets {
            match secret {
                Some(secret) => {
                    inner.secrets.insert(id, secret);
                }
                None => {
                    inner.secrets.remove(&id);
                }
            }
        }
    }

    pub fn job(&self, job_id: &str) -> Option<DurableJob> {
        self.inner().jobs.get(job_id).cloned()
    }

    pub fn secret(&self, access_key_id: &str) -> Option<String> {
        self.inner().secrets.get(access_key_id).cloned()
    }

    /// Nothing here can be left half-changed by a panic (each change is one map operation),
    /// so a poisoned lock's data is as good as any.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::harness;

    fn put(kind: &'static str, key: &str) -> Mutation {
        Mutation::Put { kind, key: key.into(), value: "{}".into() }
    }

    #[tokio::test]
    async fn a_batch_changes_each_job_it_wrote_once_and_drops_the_deleted() {
        let h = harness();
        h.thing("t").await;
        h.job("a", &["t"]).await.unwrap();
        h.job("b", &["t"]).await.unwrap();
        let state = h.engine.state.lock().unwrap();
        let view = DurableView::of(&state);
        // Jobs written in any order, some more than once, and one that no longer exists.
        let batch = [
            put(state::EXECUTION, "b\nt\n1"),
            put(state::EXECUTION, "a\nt\n1"),
            put(state::EXECUTION, "b\nt\n2"),
            put(state::JOB, "a"),
            put("thing", "t"),
            Mutation::Delete { kind: state::JOB, key: "gone".into() },
        ];
        let changes = ViewChanges::of(&state, &batch);
        let ids: Vec<&str> = changes
            .jobs
            .iter()
            .map(|c| match c {
                JobChange::Put(job, _) => job.job_id.as_str(),
                JobChange::Deleted(id) => id.as_str(),
            })
            .collect();
        assert_eq!(ids, ["b", "a", "gone"]);
        assert!(matches!(changes.jobs[2], JobChange::Deleted(_)));
        assert_eq!(changes.jobs.len(), 3);
        view.apply(changes);
        assert_eq!(view.job("a").unwrap().counts.get(fleetjobs_core::model::JobExecutionStatus::Queued), 1);
        assert!(view.job("gone").is_none());
        assert!(ViewChanges::of(&state, &[put("thing", "t")]).is_empty());
    }
}
