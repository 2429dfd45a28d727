//! Taps: in-process subscribers that see the messages the broker routes (a client's publish,
//! the service's notifications and events) without being a client, for the console's MQTT
//! test client. Each tap has its filters and a bounded queue: a tap that falls behind loses
//! messages (counted), it never slows the broker. The number of taps is bounded too.
//!
//! A tap sees what is routed; replies to a client's own requests go to that client only, as
//! for every subscriber.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::topic;

/// Filters per tap (as a SUBSCRIBE's AWS limit).
pub const MAX_TAP_FILTERS: usize = 8;

/// One message a tap saw.
#[derive(Debug, Clone)]
pub struct TapMessage {
    pub topic: String,
    pub payload: Bytes,
    pub at: SystemTime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TapError {
    #[error("'{0}' is not a valid topic filter")]
    InvalidFilter(String),
    #[error("a tap takes between 1 and {MAX_TAP_FILTERS} filters")]
    FilterCount,
    #[error("{0} taps are open already")]
    TooMany(usize),
}

struct Entry {
    id: u64,
    filters: Vec<String>,
    tx: mpsc::Sender<TapMessage>,
    dropped: Arc<AtomicU64>,
}

/// Every open tap.
pub(crate) struct Taps {
    entries: Mutex<Vec<Entry>>,
    /// Read without the lock on every routed message: no tap, no cost.
    open: AtomicUsize,
    next_id: AtomicU64,
    max: usize,
}

/// An open tap; closed when dropped.
pub struct Tap {
    id: u64,
    rx: mpsc::Receiver<TapMessage>,
    dropped: Arc<AtomicU64>,
    taps: Arc<Taps>,
}

impl Tap {
    /// The next message, `None` once the broker is gone.
    pub async fn recv(&mut self) -> Option<TapMessage> {
        self.rx.recv().await
    }

    /// Messages lost because this tap's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let mut entries = self.taps.entries();
        entries.retain(|e| e.id != self.id);
        self.taps.open.store(entries.len(), Ordering::Relaxed);
    }
}

impl Taps {
    pub(crate) fn new(max: usize) -> Self {
        Taps { entries: Mutex::new(Vec::new()), open: AtomicUsize::new(0), next_id: AtomicU64::new(1), max }
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn open(self: &Arc<Self>, filters: Vec<String>, capacity: usize) -> Result<Tap, TapError> {
        if filters.is_empty() || filters.len() > MAX_TAP_FILTERS {
            return Err(TapError::FilterCount);
        }
        if let Some(bad) = filters.iter().find(|f| !topic::is_valid_filter(f)) {
            return Err(TapError::InvalidFilter(bad.clone()));
        }
        let mut entries = self.entries();
        if entries.len() >= self.max {
            return Err(TapError::TooMany(self.max));
        }
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        entries.push(Entry { id, filters, tx, dropped: dropped.clone() });
        self.open.store(entries.len(), Ordering::Relaxed);
        Ok(Tap { id, rx, dropped, taps: self.clone() })
    }

    /// Whether any tap is open (whatever its filters: taps are few).
    pub(crate) fn any_open(&self) -> bool {
        self.open.load(Ordering::Relaxed) > 0
    }

    /// Offer a routed message to every tap with a matching filter (never waits).
    pub(crate) fn offer(&self, topic_name: &str, payload: &Bytes) {
        if !self.any_open() {
            return;
        }
        let at = SystemTime::now();
        for e in self.entries().iter() {
            if e.filters.iter().any(|f| topic::matches(f, topic_name)) {
                let message = TapMessage { topic: topic_name.to_string(), payload: payload.clone(), at };
                if e.tx.try_send(message).is_err() {
                    e.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn taps_see_matching_messages_within_their_bounds() {
        let taps = Arc::new(Taps::new(2));
        let mut events = taps.open(vec!["$aws/events/#".into()], 2).unwrap();
        let mut other = taps.open(vec!["a/+".into()], 8).unwrap();
        assert_eq!(taps.open(vec!["b".into()], 1).err(), Some(TapError::TooMany(2)));
        for i in 0..3 {
            taps.offer(&format!("$aws/events/job/j{i}/completed"), &Bytes::from_static(b"{}"));
        }
        taps.offer("a/b", &Bytes::from_static(b"x"));
        assert_eq!(events.recv().await.unwrap().topic, "$aws/events/job/j0/completed");
        assert_eq!(events.recv().await.unwrap().topic, "$aws/events/job/j1/completed");
        assert_eq!(events.dropped(), 1, "the third did not fit");
        assert_eq!(other.recv().await.unwrap().payload, Bytes::from_static(b"x"));
        drop(other);
        assert!(taps.open(vec!["b".into()], 1).is_ok(), "a closed tap frees its place");
    }

    #[test]
    fn filters_are_checked() {
        let taps = Arc::new(Taps::new(4));
        assert_eq!(taps.open(vec!["a/#/b".into()], 1).err(), Some(TapError::InvalidFilter("a/#/b".into())));
        assert_eq!(taps.open(vec![], 1).err(), Some(TapError::FilterCount));
        assert_eq!(taps.open(vec!["a".into(); 9], 1).err(), Some(TapError::FilterCount));
        // `#` does not match `$` topics (MQTT §4.7.2), as for every subscriber.
        let tap = taps.open(vec!["#".into()], 1).unwrap();
        taps.offer("$aws/events/x", &Bytes::new());
        assert_eq!(tap.rx.len(), 0);
    }
}
