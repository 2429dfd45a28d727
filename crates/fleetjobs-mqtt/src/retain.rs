//! Retained messages (§3.3.1.3): the last retained message of each topic, delivered to new
//! subscriptions. Bounded server-wide in count and bytes; a change is made durable through the
//! hooks before it is applied in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use mqtt_proto::TopicName;

use crate::hooks::{RetainedChange, RetainedMessage};
use crate::session::Message;
use crate::topic;

/// Server-wide bounds on retained messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetainLimits {
    pub max_messages: usize,
    /// Topic plus payload bytes of all retained messages.
    pub max_bytes: usize,
}

/// Why a retained message is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RetainRefusal {
    #[error("the server already keeps its maximum of {0} retained messages")]
    TooMany(usize),
    #[error("the retained messages would exceed {0} bytes")]
    TooLarge(usize),
}

#[derive(Debug, Default)]
struct Retained {
    messages: HashMap<TopicName, Message>,
    bytes: usize,
}

#[derive(Debug)]
pub(crate) struct RetainedStore {
    limits: RetainLimits,
    retained: Mutex<Retained>,
    /// Held while a change is made durable, so that changes reach the disk and memory in the
    /// same order.
    pub writing: tokio::sync::Mutex<()>,
}

impl RetainedStore {
    pub fn new(limits: RetainLimits) -> Self {
        RetainedStore { limits, retained: Mutex::default(), writing: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> MutexGuard<'_, Retained> {
        self.retained.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The change that retaining `message` means (an empty payload clears the topic), or `None`
    /// if there is nothing to change; refused if it would break the bounds. A topic that is
    /// already retained may always be replaced by a message that keeps within the bytes.
    pub fn change_for(&self, message: &Message) -> Result<Option<RetainedChange>, RetainRefusal> {
        let retained = self.lock();
        let previous = retained.messages.get(&message.topic);
        if message.payload.is_empty() {
            return Ok(previous.map(|_| RetainedChange::Delete { topic: message.topic.to_string() }));
        }
        if previous.is_none() && retained.messages.len() >= self.limits.max_messages {
            return Err(RetainRefusal::TooMany(self.limits.max_messages));
        }
        if retained.bytes - previous.map_or(0, Message::cost) + message.cost() > self.limits.max_bytes {
            return Err(RetainRefusal::TooLarge(self.limits.max_bytes));
        }
        Ok(Some(RetainedChange::Put(RetainedMessage {
            topic: message.topic.to_string(),
            payload: message.payload.clone(),
            qos: message.qos,
        })))
    }

    /// Keep `message` as the retained message of its topic; an empty payload clears it. The
    /// caller checked the bounds with [`RetainedStore::change_for`].
    pub fn apply(&self, message: &Message) {
        let mut retained = self.lock();
        let removed = if message.payload.is_empty() {
            retained.messages.remove(&message.topic)
        } else {
            retained.bytes += message.cost();
            retained.messages.insert(message.topic.clone(), message.clone())
        };
        retained.bytes -= removed.as_ref().map_or(0, Message::cost);
    }

    /// Take over messages kept by a previous run, within the bounds. Returns how many were
    /// left out.
    pub fn restore(&self, messages: Vec<RetainedMessage>) -> usize {
        let mut left_out = 0;
        for RetainedMessage { topic, payload, qos } in messages {
            let message = match TopicName::try_from(topic.as_str()) {
                Ok(topic) if topic::is_valid_topic_name(&topic) => Message { topic, payload, qos, retain: true },
                _ => {
                    left_out += 1;
                    continue;
                }
            };
            match self.change_for(&message) {
                Ok(Some(_)) => self.apply(&message),
                Ok(None) | Err(_) => left_out += 1,
            }
        }
        left_out
    }

    /// The retained messages whose topic matches `filter`.
    pub fn matching(&self, filter: &str) -> Vec<Message> {
        let retained = self.lock();
        retained.messages.values().filter(|message| topic::matches(filter, &message.topic)).cloned().collect()
    }

    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let retained = self.lock();
        (retained.messages.len(), retained.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mqtt_proto::QoS;

    fn message(topic: &str, payload: &'static [u8]) -> Message {
        Message {
            topic: TopicName::try_from(topic).unwrap(),
            payload: Bytes::from_static(payload),
            qos: QoS::Level0,
            retain: true,
        }
    }

    fn retain(store: &RetainedStore, message: &Message) -> Result<(), RetainRefusal> {
        store.change_for(message)?;
        store.apply(message);
        Ok(())
    }

    #[test]
    fn bounded_in_count_and_bytes_and_accounted_exactly() {
        let store = RetainedStore::new(RetainLimits { max_messages: 2, max_bytes: 10 });
        retain(&store, &message("a", b"1234")).unwrap();
        retain(&store, &message("b", b"12")).unwrap();
        assert_eq!(store.usage(), (2, 8));
        assert_eq!(retain(&store, &message("c", b"1")), Err(RetainRefusal::TooMany(2)));
        // Replacing an existing topic is no new message; the bytes still bind.
        retain(&store, &message("a", b"123456")).unwrap();
        assert_eq!(store.usage(), (2, 10));
        assert_eq!(retain(&store, &message("b", b"123")), Err(RetainRefusal::TooLarge(10)));
        assert_eq!(store.change_for(&message("x", b"")), Ok(None));
        assert!(matches!(store.change_for(&message("a", b"")), Ok(Some(RetainedChange::Delete { .. }))));
        store.apply(&message("a", b""));
        assert_eq!(store.usage(), (1, 3));
        retain(&store, &message("c", b"1")).unwrap();
        assert_eq!(store.usage(), (2, 5));
    }

    #[test]
    fn restore_keeps_what_fits() {
        let store = RetainedStore::new(RetainLimits { max_messages: 2, max_bytes: 100 });
        let kept =
            |topic: &str| RetainedMessage { topic: topic.into(), payload: Bytes::from_static(b"x"), qos: QoS::Level1 };
        assert_eq!(store.restore(vec![kept("a"), kept("bad/#"), kept("b"), kept("c")]), 2);
        assert_eq!(store.usage(), (2, 4));
        assert_eq!(store.matching("a")[0].qos, QoS::Level1);
    }
}
