//! Job events (`$aws/events/job/{jobId}/{operation}` and
//! `$aws/events/jobExecution/{jobId}/{operation}`), built exactly as the AWS IoT developer
//! guide shows them: `timestamp` in epoch seconds, the job's `createdAt`/`lastUpdatedAt`/
//! `completedAt` in epoch milliseconds, a fresh `eventId` per event.

use serde::Serialize;

use crate::model::{Job, JobExecution, JobExecutionStatus, JobStatus, StatusDetails, TargetSelection};
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

/// `jobProcessDetails` of a `completed` JOB event (six counters, as the guide shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedCounts {
    pub number_of_canceled_things: i64,
    pub number_of_rejected_things: i64,
    pub number_of_failed_things: i64,
    pub number_of_removed_things: i64,
    pub number_of_succeeded_things: i64,
    pub number_of_timed_out_things: i64,
}

impl From<&ExecutionCounts> for CompletedCounts {
    fn from(c: &ExecutionCounts) -> Self {
        use JobExecutionStatus::*;
        CompletedCounts {
            number_of_canceled_things: c.get(Canceled),
            number_of_rejected_things: c.get(Rejected),
            number_of_failed_things: c.get(Failed),
            number_of_removed_things: c.get(Removed),
            number_of_succeeded_things: c.get(Succeeded),
            number_of_timed_out_things: c.get(TimedOut),
        }
    }
}

/// A JOB event's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEventPayload {
    pub event_type: &'static str,
    pub event_id: String,
    /// Epoch seconds.
    pub timestamp: i64,
    pub operation: &'static str,
    pub job_id: String,
    pub status: &'static str,
    pub target_selection: TargetSelection,
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Epoch milliseconds, as the guide shows.
    pub created_at: Millis,
    pub last_updated_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_process_details: Option<CompletedCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A JOB_EXECUTION event's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEventPayload {
    pub event_type: &'static str,
    pub event_id: String,
    pub timestamp: i64,
    pub operation: &'static str,
    pub job_id: String,
    pub thing_arn: String,
    pub status: JobExecutionStatus,
    pub status_details: StatusDetails,
}

/// An event's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    Job(JobEventPayload),
    Execution(ExecutionEventPayload),
}

/// An event ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub topic: String,
    pub payload: EventPayload,
}

/// A JOB event.
pub fn job_event(kind: JobEvent, job: &Job, counts: &ExecutionCounts, event_id: &str, now: Millis) -> Event {
    let completed = kind == JobEvent::Completed;
    let payload = JobEventPayload {
        event_type: "JOB",
        event_id: event_id.to_string(),
        timestamp: now / 1000,
        operation: kind.operation(),
        job_id: job.job_id.clone(),
        status: kind.status(),
        target_selection: job.target_selection,
        targets: job.targets.clone(),
        description: job.description.clone(),
        created_at: job.created_at,
        last_updated_at: job.last_updated_at,
        completed_at: completed.then(|| job.completed_at.unwrap_or(now)),
        job_process_details: completed.then(|| CompletedCounts::from(counts)),
        // The guide's completed and canceled events carry counters, not the comment.
        comment: job.comment.clone().filter(|_| !matches!(kind, JobEvent::Completed | JobEvent::Canceled)),
    };
    Event { topic: crate::topics::job_event(&job.job_id, kind.operation()), payload: EventPayload::Job(payload) }
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
    let payload = ExecutionEventPayload {
        event_type: "JOB_EXECUTION",
        event_id: event_id.to_string(),
        timestamp: now / 1000,
        operation,
        job_id: exec.job_id.clone(),
        thing_arn: thing_arn.to_string(),
        status: exec.status,
        status_details: exec.status_details.clone(),
    };
    Some(Event {
        topic: crate::topics::execution_event(&exec.job_id, operation),
        payload: EventPayload::Execution(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(e: &Event) -> Value {
        serde_json::to_value(&e.payload).unwrap()
    }
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
            document_before_substitution: None,
            rollout: None,
        }
    }

    #[test]
    fn completed_job_event_matches_the_dev_guide_shape() {
        let mut counts = ExecutionCounts::default();
        counts.add(JobExecutionStatus::Succeeded, 1);
        let e = job_event(JobEvent::Completed, &job(), &counts, "id-1", 1_700_000_002_999);
        assert_eq!(e.topic, "$aws/events/job/example-job-01/completed");
        let p = &json(&e);
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
        let p = json(&e);
        assert_eq!(p["status"], "CANCELLATION_IN_PROGRESS");
        assert_eq!(p["comment"], "why");
        assert!(p.get("jobProcessDetails").is_none());
        assert!(p.get("completedAt").is_none());
        let c = json(&job_event(JobEvent::Canceled, &j, &ExecutionCounts::default(), "x", 0));
        assert!(c.get("comment").is_none(), "canceled events carry no comment");
        let d = job_event(JobEvent::Deleted, &j, &ExecutionCounts::default(), "x", 0);
        assert_eq!(
            (d.topic.as_str(), json(&d)["status"].as_str()),
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
        let p = json(&ev);
        assert_eq!(p["status"], "SUCCEEDED");
        assert_eq!(p["thingArn"], "arn:t");
        assert_eq!(p["statusDetails"]["step"], "done");
        assert_eq!(p["timestamp"], 5);
        for (status, op) in [
            (JobExecutionStatus::Failed, "failed"),
            (JobExecutionStatus::Rejected, "rejected"),
            (JobExecutionStatus::Canceled, "canceled"),
            (JobExecutionStatus::TimedOut, "timed_out"),
            (JobExecutionStatus::Removed, "removed"),
        ] {
            e.status = status;
            assert_eq!(json(&execution_event(&e, "a", false, "x", 0).unwrap())["operation"], op);
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
