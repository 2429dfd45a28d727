//! Retained messages (§3.3.1.3): the last retained message of each topic, delivered to new
//! subscriptions.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mqtt_proto::TopicName;

use crate::session::Message;
use crate::topic;

#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    messages: Mutex<HashMap<TopicName, Message>>,
}

impl RetainedStore {
    /// Keep `message` as the retained message of its topic; an empty payload clears it.
    pub fn store(&self, message: &Message) {
        let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        if message.payload.is_empty() {
            messages.remove(&message.topic);
        } else {
            messages.insert(message.topic.clone(), message.clone());
        }
    }

    /// The retained messages whose topic matches `filter`.
    pub fn matching(&self, filter: &str) -> Vec<Message> {
        let messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        messages.values().filter(|message| topic::matches(filter, &message.topic)).cloned().collect()
    }
}
