//! What devices are told after a commit: domain facts captured under the state lock (owned
//! snapshots, no JSON), rendered into topics and payloads by the device plane once the commit
//! is durable, outside the lock.

use std::sync::Arc;

use fleetjobs_core::events::{self, Event};
use fleetjobs_core::model::JobExecution;
use fleetjobs_core::{topics, Millis};
use serde_json::{json, Value};

use crate::wire;

#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// `jobs/notify`: the thing's pending executions changed; `pending` in `$next` order.
    Notify { thing: String, pending: Vec<JobExecution>, at: Millis },
    /// `jobs/notify-next`: the thing's next pending execution changed; `None` when nothing
    /// is pending any more. The document is the job's, parsed once.
    NotifyNext { thing: String, head: Option<(JobExecution, Option<Arc<Value>>)>, at: Millis },
    /// A JOB_EXECUTION event: `execution` reached a terminal status, or was `deleted`.
    ExecutionEvent { execution: JobExecution, thing_arn: String, deleted: bool, at: Millis },
    /// A JOB event, shaped when it happened: it carries the job's counts of that moment.
    JobEvent(Event),
}

impl Notification {
    /// The topic and the payload, or `None` for an event AWS does not send (an execution
    /// event for a status that has none).
    pub fn render(&self) -> Option<(String, Vec<u8>)> {
        let (topic, payload) = match self {
            Notification::Notify { thing, pending, at } => {
                let pending: Vec<&JobExecution> = pending.iter().collect();
                (topics::notify(thing), wire::notify_payload(&pending, *at))
            }
            Notification::NotifyNext { thing, head, at } => {
                let payload = match head {
                    Some((head, document)) => json!({
                        "timestamp": wire::secs(*at),
                        "execution": wire::mqtt_execution(head, document.as_deref()),
                    }),
                    None => json!({ "timestamp": wire::secs(*at) }),
                };
                (topics::notify_next(thing), payload)
            }
            Notification::ExecutionEvent { execution, thing_arn, deleted, at } => {
                let id = uuid::Uuid::new_v4().to_string();
                let event = events::execution_event(execution, thing_arn, *deleted, &id, *at)?;
                (event.topic, event.payload)
            }
            Notification::JobEvent(event) => (event.topic.clone(), event.payload.clone()),
        };
        Some((topic, serde_json::to_vec(&payload).unwrap_or_default()))
    }
}
