//! The web console's own reads (no AWS operation has their shape): the Jobs page's rows in one
//! lock and one pass over the jobs, and a job's execution statuses over time.

use fleetjobs_core::model::Job;
use fleetjobs_core::ops::console::*;
use fleetjobs_core::status_history;
use fleetjobs_core::{ApiResult, Millis};

use super::job_not_found;
use crate::Engine;

impl Engine {
    /// Every job the filter selects, newest first (as ListJobs orders them), with its
    /// description and counts: what the Jobs page shows, for the cost of one read however many
    /// jobs it lists (its live re-render runs this at every durable change).
    pub async fn list_job_overviews(&self, r: ListJobOverviewsRequest) -> ApiResult<ListJobOverviewsResponse> {
        r.check(self.now())?;
        let needle = r.text.as_deref().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
        self.read(|s| {
            let matches = |j: &Job| needle.as_deref().is_none_or(|n| job_matches(j, n));
            let mut jobs: Vec<&Job> = s
                .jobs
                .values()
                .map(|j| &**j)
                .filter(|j| r.status.is_none_or(|st| j.status == st))
                .filter(|j| matches(j))
                .collect();
            jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.job_id.cmp(&b.job_id)));
            let truncated = jobs.len() > r.max_results;
            let jobs =
                jobs.into_iter().take(r.max_results).map(|j| JobOverview::new(j, &s.counts(&j.job_id))).collect();
            Ok(ListJobOverviewsResponse { jobs, truncated })
        })
        .await
    }

    /// The job's executions by status at `samples` instants from its creation to its
    /// completion (or now), derived from the execution records' timestamps
    /// (`fleetjobs_core::status_history`): one pass over the job's executions, bounded output.
    pub async fn job_status_history(&self, r: JobStatusHistoryRequest) -> ApiResult<JobStatusHistoryResponse> {
        r.check(self.now())?;
        let now = self.now();
        self.read(|s| {
            let job = s.jobs.get(&r.job_id).ok_or_else(|| job_not_found(&r.job_id))?;
            // A finished job's chart ends when it finished (or at a later execution change, so
            // that the last sample is what jobProcessDetails counts); a running one's, now.
            let end = match job.completed_at {
                Some(done) => s.executions_of_job(&job.job_id).map(|e| e.last_updated_at).fold(done, Millis::max),
                None => now,
            };
            let times = status_history::sample_times(job.created_at, end, r.samples);
            let counts = status_history::sample(&times, s.executions_of_job(&job.job_id));
            let samples =
                times.into_iter().zip(counts).map(|(at, c)| StatusSample { at, counts: (&c).into() }).collect();
            Ok(JobStatusHistoryResponse { samples })
        })
        .await
    }
}
