//! What a transaction announces to devices, as domain values, and their rendering into MQTT
//! topics and payloads.
//!
//! `Txn::finish` produces [`Notification`]s under the state lock: owned snapshots of just what
//! each message shows (cheap clones, the job document shared). The commit pipeline renders
//! them after the lock is released, in the request's task while the store commits the batch
//! ([`Outgoing`]), and hands the rendered commands to the outbox from the store's callback, so
//! that they leave only once durable and in commit order. Rendering neither holds the lock
//! nor runs on the store's writer thread, except when the commit is durable before the task
//! got to it (or the task was dropped): then the callback renders them itself.

use std::sync::{Arc, Mutex};

use fleetjobs_core::events::{self, ExecutionCounts, JobEvent};
use fleetjobs_core::model::{Job, JobExecution};
use fleetjobs_core::{topics, Millis};

use crate::device::{self, Execution};
use crate::{DeviceCommand, EventAudience};

/// One thing the device plane must be told once a transaction is durable.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// `jobs/notify`: the thing's pending set in a job namespace changed; `pending` in
    /// `$next` order.
    Notify { thing: String, namespace: Option<String>, pending: Vec<JobExecution>, at: Millis },
    /// `jobs/notify-next`: the thing's next pending execution in a job namespace changed
    /// (`None`: no more).
    NotifyNext { thing: String, namespace: Option<String>, head: Option<Execution>, at: Millis },
    /// A JOB event (the job as it is after the change).
    JobEvent { kind: JobEvent, job: Box<Job>, counts: ExecutionCounts, at: Millis },
    /// A JOB_EXECUTION event: a terminal status reached, or the execution deleted.
    ExecutionEvent { execution: JobExecution, thing_arn: String, deleted: bool, at: Millis },
    /// Close the connections authenticated with this certificate.
    DisconnectCertificate { certificate_id: String },
    /// A device certificate registered `PENDING_ACTIVATION` at its device's first connect.
    CertificateRegistered { certificate_id: String, ca_certificate_id: String, account_id: String, at: Millis },
}

/// An event that nobody could have received when its batch was rendered, left unrendered
/// (its topic and payload are most of an execution's rendering cost, issue 11). The device
/// plane asks again just before it would publish, and renders it then only if someone listens
/// now: a subscription acknowledged in between still receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnheardEvent(Notification);

impl UnheardEvent {
    /// The publish it becomes (`None`: an event with no topic).
    pub fn render(self) -> Option<DeviceCommand> {
        self.0.render()
    }
}

impl Notification {
    fn is_event(&self) -> bool {
        matches!(self, Notification::JobEvent { .. } | Notification::ExecutionEvent { .. })
    }

    /// The device command this notification becomes (`None`: an event with no topic, such
    /// as a non-terminal execution status).
    pub fn render(self) -> Option<DeviceCommand> {
        let (topic, payload) = match self {
            Notification::Notify { thing, namespace, pending, at } => {
                (topics::notify(&thing, namespace.as_deref()), device::notify(&pending, at))
            }
            Notification::NotifyNext { thing, namespace, head, at } => {
                (topics::notify_next(&thing, namespace.as_deref()), device::notify_next(head, at))
            }
            Notification::JobEvent { kind, job, counts, at } => {
                let ev = events::job_event(kind, &job, &counts, &uuid::Uuid::new_v4().to_string(), at);
                (ev.topic, serde_json::to_vec(&ev.payload).expect("json serializes"))
            }
            Notification::ExecutionEvent { execution, thing_arn, deleted, at } => {
                let id = uuid::Uuid::new_v4().to_string();
                let ev = events::execution_event(&execution, &thing_arn, deleted, &id, at)?;
                (ev.topic, serde_json::to_vec(&ev.payload).expect("json serializes"))
            }
            Notification::DisconnectCertificate { certificate_id } => {
                return Some(DeviceCommand::DisconnectCertificate { certificate_id })
            }
            Notification::CertificateRegistered { certificate_id, ca_certificate_id, account_id, at } => {
                // AWS's just-in-time registration message: epoch seconds, as its other
                // `$aws/events` messages.
                let payload = serde_json::json!({
                    "certificateId": certificate_id,
                    "caCertificateId": ca_certificate_id,
                    "timestamp": at.div_euclid(1000),
                    "certificateStatus": "PENDING_ACTIVATION",
                    "awsAccountId": account_id,
                    "certificateRegistrationTimestamp": at.div_euclid(1000),
                });
                let topic = format!("$aws/events/certificates/registered/{ca_certificate_id}");
                (topic, serde_json::to_vec(&payload).expect("json serializes"))
            }
        };
        Some(DeviceCommand::Publish { topic, payload })
    }
}

/// A batch's notifications on their way out: rendered by whichever comes first, the request
/// task once it has released the lock ([`Outgoing::render`]) or the store's callback when the
/// batch is durable ([`Outgoing::take`]).
pub(crate) struct Outgoing {
    slot: Mutex<Slot>,
    /// Whether events could reach anyone (`None`: always render them).
    audience: Option<EventAudience>,
}

enum Slot {
    Domain(Vec<Notification>),
    Rendered(Vec<DeviceCommand>),
    Taken,
}

/// Render `notifications`, except events when `audience` says nobody could receive them
/// (asked once per batch, and only if it has an event).
fn render_all(notifications: Vec<Notification>, audience: Option<&EventAudience>) -> Vec<DeviceCommand> {
    let mut heard = None;
    notifications
        .into_iter()
        .filter_map(|n| {
            if n.is_event() && !*heard.get_or_insert_with(|| audience.is_none_or(|listening| listening())) {
                return Some(DeviceCommand::Event(UnheardEvent(n)));
            }
            n.render()
        })
        .collect()
}

impl Outgoing {
    pub(crate) fn new(notifications: Vec<Notification>, audience: Option<EventAudience>) -> Arc<Outgoing> {
        Arc::new(Outgoing { slot: Mutex::new(Slot::Domain(notifications)), audience })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Render now unless already rendered or taken.
    pub(crate) fn render(&self) {
        let mut slot = self.slot();
        if let Slot::Domain(n) = &mut *slot {
            let rendered = render_all(std::mem::take(n), self.audience.as_ref());
            *slot = Slot::Rendered(rendered);
        }
    }

    /// The rendered commands, rendering them here if the task has not yet; once.
    pub(crate) fn take(&self) -> Vec<DeviceCommand> {
        match std::mem::replace(&mut *self.slot(), Slot::Taken) {
            Slot::Domain(n) => render_all(n, self.audience.as_ref()),
            Slot::Rendered(c) => c,
            Slot::Taken => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetjobs_core::model::JobExecutionStatus;
    use serde_json::Value;

    fn execution(job: &str, status: JobExecutionStatus) -> JobExecution {
        let mut e = JobExecution::queued(job, "pi", 1, 1_700_000_000_000);
        e.status = status;
        e
    }

    #[test]
    fn notifications_render_to_their_topics() {
        let n = Notification::Notify {
            thing: "pi".into(),
            namespace: None,
            pending: vec![execution("a", JobExecutionStatus::InProgress), execution("b", JobExecutionStatus::Queued)],
            at: 1_700_000_001_500,
        };
        let Some(DeviceCommand::Publish { topic, payload }) = n.render() else { panic!("a publish") };
        assert_eq!(topic, "$aws/things/pi/jobs/notify");
        let p: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(p["timestamp"], 1_700_000_001);
        assert_eq!(p["jobs"]["IN_PROGRESS"][0]["jobId"], "a");
        assert_eq!(p["jobs"]["QUEUED"][0]["jobId"], "b");

        let doc =
            Arc::new(crate::document_source::DeviceDocument::new(serde_json::json!({"operation": "x"}), None, None));
        let head = Execution::new(&execution("a", JobExecutionStatus::Queued), Some(doc));
        let n = Notification::NotifyNext {
            thing: "pi".into(),
            namespace: None,
            head: Some(head.clone()),
            at: 1_700_000_002_000,
        };
        let Some(DeviceCommand::Publish { topic, payload }) = n.render() else { panic!("a publish") };
        assert_eq!(topic, "$aws/things/pi/jobs/notify-next");
        let namespaced =
            Notification::NotifyNext { thing: "pi".into(), namespace: Some("gg".into()), head: Some(head), at: 1 };
        let Some(DeviceCommand::Publish { topic: ns_topic, .. }) = namespaced.render() else { panic!("a publish") };
        assert_eq!(ns_topic, "$aws/things/pi/jobs/notify-next-namespace-gg");
        let p: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(p["execution"]["jobDocument"]["operation"], "x");

        let queued = Notification::ExecutionEvent {
            execution: execution("a", JobExecutionStatus::Queued),
            thing_arn: "arn".into(),
            deleted: false,
            at: 0,
        };
        assert_eq!(queued.render(), None, "a QUEUED execution has no event");
    }

    #[test]
    fn a_batch_renders_once_whoever_comes_first() {
        let disconnect = || Notification::DisconnectCertificate { certificate_id: "c".into() };
        let out = Outgoing::new(vec![disconnect()], None);
        out.render();
        out.render();
        assert_eq!(out.take().len(), 1);
        assert!(out.take().is_empty(), "taken once");
        let out = Outgoing::new(vec![disconnect()], None);
        assert_eq!(out.take().len(), 1, "the callback renders what the task did not");
        out.render();
        assert!(out.take().is_empty());
    }

    #[test]
    fn events_nobody_hears_are_left_unrendered() {
        let event = || Notification::ExecutionEvent {
            execution: execution("a", JobExecutionStatus::Succeeded),
            thing_arn: "arn".into(),
            deleted: false,
            at: 0,
        };
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let audience = |listening: bool| -> EventAudience {
            let asked = asked.clone();
            Arc::new(move || {
                asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                listening
            })
        };
        let disconnect = Notification::DisconnectCertificate { certificate_id: "c".into() };
        let out = Outgoing::new(vec![event(), disconnect.clone(), event()], Some(audience(false)));
        let commands = out.take();
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1, "asked once per batch");
        assert!(matches!(
            commands[..],
            [DeviceCommand::Event(_), DeviceCommand::DisconnectCertificate { .. }, DeviceCommand::Event(_)]
        ));
        let Some(DeviceCommand::Event(unheard)) = commands.into_iter().next() else { panic!("an unheard event") };
        let Some(DeviceCommand::Publish { topic, .. }) = unheard.render() else { panic!("renders later") };
        assert_eq!(topic, "$aws/events/jobExecution/a/succeeded");

        let out = Outgoing::new(vec![event()], Some(audience(true)));
        assert!(matches!(out.take()[..], [DeviceCommand::Publish { .. }]));
        let out = Outgoing::new(vec![disconnect], Some(audience(false)));
        out.take();
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 2, "not asked without an event");
    }
}
