//! Job events (`$aws/events/job/{jobId}/{operation}` and
//! `$aws/events/jobExecution/{jobId}/{operation}`), built exactly as the AWS IoT developer
//! guide shows them: `timestamp` in epoch seconds, the job's `createdAt`/`lastUpdatedAt`/
//! `completedAt` in epoch milliseconds, a fresh `eventId` per event.

use serde_json::{json, Map, Value};

use crate::model::{Job, JobExecution, JobExecutionStatus, JobStatus};
use crate::Millis;

/// Per-status execution counts of a job (`jobProcessDetails`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionCounts {
    pub by_status: [i64; 8],
}

impl ExecutionCounts {
    fn index(status: JobExecutionStatus) -> usize {
        JobExecutionStatus::ALL.iter().position(|s| *s == status).expect("every status is listed")
    }
    pub fn get(&self, status: JobExecutionStatus) -> i64 {
        self.by_status[Self::index(status)]
    }
    pub fn add(&mut self, status: JobExecutionStatus, delta: i64) {
        self.by_status[Self::index(status)] += delta;
    }
    /// Executions not yet terminal.
    pub fn pending(&self) -> i64 {
        self.get(JobExecutionStatus::Queued) + self.get(JobExecutionStatus::InProgress)
    }
}

/// The operations of JOB events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    Completed,
    Canceled,
    CancellationInProgress,
    DeletionInProgress,
    Deleted,
}

impl JobEvent {
    pub fn operation(self) -> &'static str {
        match self {
            JobEvent::Completed => "completed",
            JobEvent::Canceled => "canceled",
            JobEvent::CancellationInProgress => "cancellation_in_progress",
            JobEvent::DeletionInProgress => "deletion_in_progress",
            JobEvent::Deleted => "deleted",
        }
    }
    fn status(self) -> &'static str {
        match self {
            JobEvent::Completed => JobStatus::Completed.as_str(),
            JobEvent::Canceled => JobStatus::Canceled.as_str(),
            JobEvent::CancellationInProgress => "CANCELLATION_IN_PROGRESS",
            JobEvent::DeletionInProgress => JobStatus::DeletionInProgress.as_str(),
            JobEvent::Deleted => "DELETED",
        }
    }
}

/// An event ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub topic: String,
    pub payload: Value,
}

/// A JOB event.
pub fn job_event(kind: JobEvent, job: &Job, counts: &ExecutionCounts, event_id: &str, now: Millis) -> Event {
    let mut p = Map::new();
    p.insert("eventType".into(), json!("JOB"));
    p.insert("eventId".into(), json!(event_id));
    p.insert("timestamp".into(), json!(now / 1000));
    p.insert("operation".into(), json!(kind.operation()));
    p.insert("jobId".into(), json!(job.job_id));
    p.insert("status".into(), json!(kind.status()));
    p.insert("targetSelection".into(), json!(job.target_selection.as_str()));
    p.insert("targets".into(), json!(job.targets));
    if let Some(d) = &job.description {
        p.insert("description".into(), json!(d));
    }
    p.insert("createdAt".into(), json!(job.created_at));
    p.insert("lastUpdatedAt".into(), json!(job.last_updated_at));
    if kind == JobEvent::Completed {
        p.insert("completedAt".into(), json!(job.completed_at.unwrap_or(now)));
        use JobExecutionStatus::*;
        let d: Map<String, Value> = [
            ("numberOfCanceledThings", Canceled),
            ("numberOfRejectedThings", Rejected),
            ("numberOfFailedThings", Failed),
            ("numberOfRemovedThings", Removed),
            ("numberOfSucceededThings", Succeeded),
            ("numberOfTimedOutThings", TimedOut),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), json!(counts.get(s))))
        .collect();
        p.insert("jobProcessDetails".into(), Value::Object(d));
    }
    if kind != JobEvent::Completed && kind != JobEvent::Canceled {
        if let Some(c) = &job.comment {
            p.insert("comment".into(), json!(c));
        }
    }
    Event { topic: crate::topics::job_event(&job.job_id, kind.operation()), payload: Value::Object(p) }
}

/// The JOB_EXECUTION event for an execution that reached `exec.status` (a terminal status),
/// or for its deletion when `deleted`. QUEUED / IN_PROGRESS have no events.
pub fn execution_event(
    exec: &JobExecution,
    thing_arn: &str,
    deleted: bool,
    event_id: &str,
    now: Millis,
) -> Option<Event> {
    let operation = if deleted {
        "deleted"
    } else {
        match exec.status {
            JobExecutionStatus::Queued | JobExecutionStatus::InProgress => return None,
            JobExecutionStatus::Succeeded => "succeeded",
            JobExecutionStatus::Failed => "failed",
            JobExecutionStatus::Rejected => "rejected",
            JobExecutionStatus::Canceled => "canceled",
            JobExecutionStatus::TimedOut => "timed_out",
            JobExecutionStatus::Removed => "removed",
        }
    };
    let payload = json!({
        "eventType": "JOB_EXECUTION",
        "eventId": event_id,
        "timestamp": now / 1000,
        "operation": operation,
        "jobId": exec.job_id,
        "thingArn": thing_arn,
        "status": exec.status.as_str(),
        "statusDetails": exec.status_details,
    });
    Some(Event { topic: crate::topics::execution_event(&exec.job_id, operation), payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobConfigs, TargetSelection};

    fn job() -> Job {
        Job {
            job_id: "example-job-01".into(),
            job_arn: "arn:aws:iot:us-east-1:123456789012:job/example-job-01".into(),
            targets: vec!["arn:aws:iot:us-east-1:123456789012:thing/MyRaspberryPi".into()],
            document: "{}".into(),
            document_source: None,
            description: Some("My First test job".into()),
            target_selection: TargetSelection::Snapshot,
            status: JobStatus::Completed,
            force_canceled: false,
            reason_code: None,
            comment: None,
            created_at: 1_700_000_000_123,
            last_updated_at: 1_700_000_001_456,
            completed_at: Some(1_700_000_001_456),
            namespace_id: None,
            job_template_arn: None,
            document_parameters: None,
            destination_package_versions: None,
            tags: None,
            configs: JobConfigs::default(),
        }
    }

    #[test]
    fn completed_job_event_matches_the_dev_guide_shape() {
        let mut counts = ExecutionCounts::default();
        counts.add(JobExecutionStatus::Succeeded, 1);
        let e = job_event(JobEvent::Completed, &job(), &counts, "id-1", 1_700_000_002_999);
        assert_eq!(e.topic, "$aws/events/job/example-job-01/completed");
        let p = &e.payload;
        assert_eq!(p["eventType"], "JOB");
        assert_eq!(p["eventId"], "id-1");
        assert_eq!(p["timestamp"], 1_700_000_002);
        assert_eq!(p["operation"], "completed");
        assert_eq!(p["status"], "COMPLETED");
        assert_eq!(p["targetSelection"], "SNAPSHOT");
        assert_eq!(p["description"], "My First test job");
        assert_eq!(p["createdAt"], 1_700_000_000_123i64);
        assert_eq!(p["completedAt"], 1_700_000_001_456i64);
        assert_eq!(p["jobProcessDetails"]["numberOfSucceededThings"], 1);
        assert_eq!(p["jobProcessDetails"]["numberOfFailedThings"], 0);
    }

    #[test]
    fn cancellation_events_carry_the_comment_not_counters() {
        let mut j = job();
        j.comment = Some("why".into());
        let e = job_event(JobEvent::CancellationInProgress, &j, &ExecutionCounts::default(), "x", 0);
        assert_eq!(e.payload["status"], "CANCELLATION_IN_PROGRESS");
        assert_eq!(e.payload["comment"], "why");
        assert!(e.payload.get("jobProcessDetails").is_none());
        let d = job_event(JobEvent::Deleted, &j, &ExecutionCounts::default(), "x", 0);
        assert_eq!(
            (d.topic.as_str(), d.payload["status"].as_str()),
            ("$aws/events/job/example-job-01/deleted", Some("DELETED"))
        );
    }

    #[test]
    fn execution_events_for_terminal_statuses_only() {
        let mut e = JobExecution::queued("j", "t", 1, 0);
        assert!(execution_event(&e, "arn", false, "x", 0).is_none());
        e.status = JobExecutionStatus::InProgress;
        assert!(execution_event(&e, "arn", false, "x", 0).is_none());
        e.status = JobExecutionStatus::Succeeded;
        e.status_details.insert("step".into(), "done".into());
        let ev = execution_event(&e, "arn:t", false, "x", 5_000).unwrap();
        assert_eq!(ev.topic, "$aws/events/jobExecution/j/succeeded");
        assert_eq!(ev.payload["status"], "SUCCEEDED");
        assert_eq!(ev.payload["thingArn"], "arn:t");
        assert_eq!(ev.payload["statusDetails"]["step"], "done");
        assert_eq!(ev.payload["timestamp"], 5);
        for (status, op) in [
            (JobExecutionStatus::Failed, "failed"),
            (JobExecutionStatus::Rejected, "rejected"),
            (JobExecutionStatus::Canceled, "canceled"),
            (JobExecutionStatus::TimedOut, "timed_out"),
            (JobExecutionStatus::Removed, "removed"),
        ] {
            e.status = status;
            assert_eq!(execution_event(&e, "a", false, "x", 0).unwrap().payload["operation"], op);
        }
        let del = execution_event(&e, "a", true, "x", 0).unwrap();
        assert_eq!(del.topic, "$aws/events/jobExecution/j/deleted");
    }

    #[test]
    fn counts() {
        let mut c = ExecutionCounts::default();
        c.add(JobExecutionStatus::Queued, 2);
        c.add(JobExecutionStatus::InProgress, 1);
        c.add(JobExecutionStatus::Queued, -1);
        assert_eq!(c.pending(), 2);
        let details = crate::ops::jobs::JobProcessDetails::from(&c);
        assert_eq!((details.number_of_queued_things, details.number_of_in_progress_things), (1, 1));
    }
}
