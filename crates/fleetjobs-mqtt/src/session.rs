//! Per-client session state: subscriptions, the outbound queue and the QoS 1 in-flight window.
//!
//! A [`Session`] outlives its connections when the client asked for a persistent session
//! (`clean_session = 0`). The connection currently serving it is its [`Link`]: producers push
//! onto the session queue and wake the link's writer, which drains the queue into the socket.
//! Everything here is synchronous and guarded by one short-lived mutex per session; the only
//! wait is [`Session::enqueue_waiting`]'s, outside the lock: a client's QoS 1 PUBLISH waits for
//! room in a connected subscriber's queue instead of being acknowledged and dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_proto::v3::{Connack, LastWill, Packet, Publish};
use mqtt_proto::{Pid, QoS, QosPid, TopicName};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::Superseded;
use crate::frame;
use crate::metrics::{DropReason, METRICS};
use crate::topic;

/// Shortest wait between two offers of a message waiting for room.
const MIN_RECHECK: Duration = Duration::from_millis(100);

/// An application message on its way to one or more sessions.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
}

impl Message {
    /// This message as delivered to one subscriber: QoS capped by the grant, RETAIN as given.
    pub fn delivery(&self, granted: QoS, retain: bool) -> Message {
        Message { qos: self.qos.min(granted), retain, ..self.clone() }
    }

    /// What holding this message costs, in bytes (a session queue's or the retained store's).
    pub(crate) fn cost(&self) -> usize {
        self.topic.len() + self.payload.len()
    }

    /// Append this message as a PUBLISH to `buf`; an unencodable one (only possible for absurd
    /// sizes) is not, and says so.
    fn encode(&self, qos_pid: QosPid, buf: &mut BytesMut) -> bool {
        match frame::encode_publish(buf, false, qos_pid, self.retain, &self.topic, &self.payload) {
            Ok(()) => true,
            Err(error) => {
                warn!(%error, "dropping unencodable outbound message");
                false
            }
        }
    }

    fn to_packet(&self, qos_pid: QosPid, dup: bool) -> Packet {
        Packet::Publish(Publish {
            dup,
            retain: self.retain,
            qos_pid,
            topic_name: self.topic.clone(),
            payload: self.payload.clone(),
        })
    }
}

impl From<Publish> for Message {
    fn from(publish: Publish) -> Self {
        Message {
            topic: publish.topic_name,
            payload: publish.payload,
            qos: publish.qos_pid.qos(),
            retain: publish.retain,
        }
    }
}

impl From<LastWill> for Message {
    fn from(will: LastWill) -> Self {
        Message {
            topic: will.topic_name,
            payload: will.message,
            // QoS 2 is not supported: a QoS 2 will is delivered at QoS 1.
            qos: will.qos.min(QoS::Level1),
            retain: will.retain,
        }
    }
}

/// Bounds of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Unacknowledged outbound QoS 1 messages.
    pub max_inflight: usize,
    /// Queued outbound items (not yet written, or waiting for the in-flight window).
    pub max_queued: usize,
    /// Topic and payload bytes of the messages the session holds: queued, waiting for the
    /// in-flight window, or in flight (sent, not acknowledged).
    pub max_queued_bytes: usize,
    /// A connection whose queue stays full of QoS 1 messages this long is disconnected.
    pub stalled_grace: Duration,
    /// Subscriptions (distinct filters).
    pub max_subscriptions: usize,
}

impl Limits {
    /// These limits, made workable: below 65535 in flight, a free packet id always exists, and
    /// a queue has room for at least one item.
    pub fn clamped(self) -> Self {
        Limits {
            max_inflight: self.max_inflight.clamp(1, usize::from(u16::MAX)),
            max_queued: self.max_queued.max(1),
            ..self
        }
    }
}

/// The outcome of [`Session::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribed {
    Yes,
    /// A new filter beyond [`Limits::max_subscriptions`].
    TooMany,
    /// The session was discarded meanwhile.
    Discarded,
}

/// The outcome of [`Session::offer`].
#[derive(Debug)]
pub(crate) enum Offer {
    Queued,
    /// Not queued, for good (counted as a drop unless the session was discarded).
    Dropped,
    /// A QoS 1 message for a connected session whose queue has no room now: handed back, for
    /// a sender that can wait ([`Session::enqueue_waiting`]) or drop it ([`Session::enqueue`]).
    Full(Message),
}

/// The connection currently serving a session.
#[derive(Debug)]
pub(crate) struct Link {
    pub id: u64,
    /// Something was queued for the writer.
    wake: Notify,
    /// The writer wrote a batch: there is room in the queue again.
    drained: Notify,
    /// The connection must close (taken over, discarded, disconnected by the service).
    kill: Notify,
}

impl Link {
    pub fn new(id: u64) -> Self {
        Link { id, wake: Notify::new(), drained: Notify::new(), kill: Notify::new() }
    }

    pub fn kill(&self) {
        self.kill.notify_one();
    }

    pub async fn killed(&self) {
        self.kill.notified().await;
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The writer wrote a batch.
    pub fn notify_drained(&self) {
        self.drained.notify_one();
    }
}

/// An item of the outbound queue.
#[derive(Debug)]
enum Outbound {
    /// Written as is (acknowledgements, CONNACK, re-sent in-flight messages).
    Packet(Packet),
    /// An application message; a QoS 1 one gets a packet id and waits for the in-flight window.
    Message(Message),
}

impl Outbound {
    fn survives_disconnect(&self) -> bool {
        matches!(self, Outbound::Message(message) if message.qos == QoS::Level1)
    }
}

/// The state of one client session. `S` is the hooks' per-connection session.
#[derive(Debug)]
pub(crate) struct Session<S> {
    pub id: u64,
    pub client_id: Arc<str>,
    pub persistent: bool,
    /// Shared by all sessions: one pointer per session instead of a copy.
    limits: Arc<Limits>,
    state: Mutex<State<S>>,
    /// Room was made in the queue (or the session went offline) while a sender waited.
    room: Notify,
}

#[derive(Debug)]
struct State<S> {
    /// The hooks session of the latest connection; kept while offline to authorize deliveries.
    hook: Arc<S>,
    link: Option<Arc<Link>>,
    /// Removed from the broker: accepts nothing any more.
    discarded: bool,
    subscriptions: Vec<(Box<str>, QoS)>,
    queue: VecDeque<Outbound>,
    /// QoS 1 messages waiting for room in the in-flight window, in order.
    held: VecDeque<Message>,
    /// Sent QoS 1 messages not acknowledged yet, oldest first.
    inflight: VecDeque<(Pid, Message)>,
    next_pid: Pid,
    offline_since: Option<Instant>,
    /// Bytes of the messages in `queue`, `held` and `inflight` (see [`Limits::max_queued_bytes`]).
    bytes: usize,
    /// Since when a message could not be queued for lack of room, while connected.
    full_since: Option<Instant>,
    /// A sender waits on `Session::room`: notify it when room is made (otherwise, making room
    /// costs nothing more).
    room_wanted: bool,
}

impl<S> State<S> {
    fn is_current(&self, link: &Link) -> bool {
        self.link.as_ref().is_some_and(|current| current.id == link.id)
    }

    fn wake_writer(&self) {
        if let Some(link) = &self.link {
            link.wake.notify_one();
        }
    }

    /// Drop what only made sense for the connection that went away.
    fn keep_offline_items(&mut self) {
        self.queue.retain(Outbound::survives_disconnect);
        self.full_since = None;
        self.recount();
    }

    fn recount(&mut self) {
        let queued = self.queue.iter().filter_map(|item| match item {
            Outbound::Message(message) => Some(message.cost()),
            Outbound::Packet(_) => None,
        });
        let held = self.held.iter().map(Message::cost);
        let inflight = self.inflight.iter().map(|(_, message)| message.cost());
        self.bytes = queued.chain(held).chain(inflight).sum();
    }

    /// Drop the oldest queued QoS 0 message. Returns whether there was one.
    fn drop_oldest_qos0(&mut self) -> bool {
        let oldest = self.queue.iter().position(|item| matches!(item, Outbound::Message(m) if m.qos == QoS::Level0));
        match oldest.and_then(|position| self.queue.remove(position)) {
            Some(Outbound::Message(message)) => {
                self.bytes -= message.cost();
                true
            }
            _ => false,
        }
    }

    fn allocate_pid(&mut self) -> Pid {
        loop {
            let pid = self.next_pid;
            self.next_pid += 1;
            if !self.inflight.iter().any(|(used, _)| *used == pid) {
                return pid;
            }
        }
    }

    fn send_qos1(&mut self, message: Message, buf: &mut BytesMut) {
        let pid = self.allocate_pid();
        if message.encode(QosPid::Level1(pid), buf) {
            self.inflight.push_back((pid, message));
        } else {
            self.bytes -= message.cost();
        }
    }
}

/// Append `packet` to `buf`; an unencodable packet (only possible for absurd sizes) is dropped.
fn encode(packet: &Packet, buf: &mut BytesMut) -> bool {
    match frame::encode(packet, buf) {
        Ok(()) => true,
        Err(error) => {
            warn!(%error, "dropping unencodable outbound packet");
            false
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S> Session<S> {
    pub fn new(id: u64, client_id: Arc<str>, persistent: bool, hook: Arc<S>, limits: Arc<Limits>) -> Self {
        Session {
            id,
            client_id,
            persistent,
            // Below 65535 in flight, a free packet id always exists.
            limits,
            state: Mutex::new(State {
                hook,
                link: None,
                discarded: false,
                subscriptions: Vec::new(),
                queue: VecDeque::new(),
                held: VecDeque::new(),
                inflight: VecDeque::new(),
                next_pid: Pid::default(),
                offline_since: None,
                bytes: 0,
                full_since: None,
                room_wanted: false,
            }),
            room: Notify::new(),
        }
    }

    /// Wake the senders waiting for room, if any (they try again).
    fn made_room(&self, state: &mut State<S>) {
        if std::mem::take(&mut state.room_wanted) {
            self.room.notify_waiters();
        }
    }

    fn state(&self) -> MutexGuard<'_, State<S>> {
        lock(&self.state)
    }

    /// The hooks session to authorize deliveries with.
    pub fn hook(&self) -> Arc<S> {
        Arc::clone(&self.state().hook)
    }

    /// The hooks session and link, if a connection is serving this session.
    pub fn live(&self) -> Option<(Arc<S>, Arc<Link>)> {
        let state = self.state();
        let link = state.link.clone()?;
        Some((Arc::clone(&state.hook), link))
    }

    /// Make `link` the serving connection (kicking the previous one) and queue, in order: the
    /// CONNACK, the unacknowledged messages again (DUP set, same ids), then the rest.
    pub fn attach(&self, link: Arc<Link>, hook: Arc<S>, connack: Connack) {
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(previous) = state.link.replace(link) {
            previous.kill();
        }
        state.hook = hook;
        state.offline_since = None;
        state.keep_offline_items();
        // In front of what is queued, last first: no second queue is built (whose capacity the
        // session would then keep for its life).
        for message in state.held.drain(..).rev() {
            state.queue.push_front(Outbound::Message(message));
        }
        for (pid, message) in state.inflight.iter().rev() {
            state.queue.push_front(Outbound::Packet(message.to_packet(QosPid::Level1(*pid), true)));
        }
        state.queue.push_front(Outbound::Packet(connack.into()));
        state.recount();
        self.made_room(state);
    }

    /// The connection `link` ended. Returns whether it was still the serving one (then the
    /// session is now offline).
    pub fn detach(&self, link: &Link) -> bool {
        let mut state = self.state();
        if !state.is_current(link) {
            return false;
        }
        state.link = None;
        state.offline_since = Some(Instant::now());
        state.keep_offline_items();
        // Waiting senders now meet the offline rules.
        self.made_room(&mut state);
        true
    }

    /// Offline for at least `expiry`.
    pub fn is_expired(&self, expiry: Duration) -> bool {
        let state = self.state();
        state.link.is_none() && state.offline_since.is_some_and(|since| since.elapsed() >= expiry)
    }

    /// End the session for good: kick its connection, drop its messages and hand its
    /// subscriptions to `unindex` (called under the session lock so that no subscription can be
    /// added concurrently).
    pub fn discard(&self, unindex: impl FnOnce(&[(Box<str>, QoS)])) {
        let mut state = self.state();
        if state.discarded {
            return;
        }
        state.discarded = true;
        if let Some(link) = state.link.take() {
            link.kill();
        }
        unindex(&std::mem::take(&mut state.subscriptions));
        state.queue = VecDeque::new();
        state.held = VecDeque::new();
        state.inflight = VecDeque::new();
        state.bytes = 0;
        self.made_room(&mut state);
    }

    /// Record a subscription (replacing the QoS of an existing one, which is always allowed)
    /// and call `index` under the session lock.
    pub fn subscribe(&self, filter: &str, qos: QoS, index: impl FnOnce()) -> Subscribed {
        let mut state = self.state();
        if state.discarded {
            return Subscribed::Discarded;
        }
        let count = state.subscriptions.len();
        match state.subscriptions.iter_mut().find(|(existing, _)| **existing == *filter) {
            Some((_, granted)) => *granted = qos,
            None if count >= self.limits.max_subscriptions => return Subscribed::TooMany,
            None => state.subscriptions.push((filter.into(), qos)),
        }
        index();
        Subscribed::Yes
    }

    /// Remove a subscription; `unindex` is called under the session lock if it existed.
    pub fn unsubscribe(&self, filter: &str, unindex: impl FnOnce()) {
        let mut state = self.state();
        let before = state.subscriptions.len();
        state.subscriptions.retain(|(existing, _)| **existing != *filter);
        if state.subscriptions.len() != before {
            unindex();
        }
    }

    /// The highest QoS granted by this session's subscriptions matching `topic`.
    pub fn granted_qos(&self, topic: &str) -> Option<QoS> {
        let state = self.state();
        state.subscriptions.iter().filter(|(filter, _)| topic::matches(filter, topic)).map(|(_, qos)| *qos).max()
    }

    /// Whether `message` fits in the queue's count and bytes bounds.
    fn fits(&self, state: &State<S>, message: &Message) -> bool {
        // QoS 0 only waits for the writer; QoS 1 also for the in-flight window.
        let backlog = state.queue.len() + if message.qos == QoS::Level1 { state.held.len() } else { 0 };
        backlog < self.limits.max_queued && state.bytes + message.cost() <= self.limits.max_queued_bytes
    }

    /// Queue a message without waiting. Offline, only a persistent session keeps QoS 1
    /// messages. When the queue is full, the oldest queued QoS 0 messages are dropped to make
    /// room; if that is not enough, a QoS 1 message for a connected session is handed back
    /// ([`Offer::Full`]), any other is dropped, and a connection whose queue stays full for
    /// [`Limits::stalled_grace`] is disconnected (checked when a message finds no room). Every
    /// drop but a discarded session's is counted, by reason.
    pub fn offer(&self, message: Message) -> Offer {
        let mut guard = self.state();
        let state = &mut *guard;
        let qos1 = message.qos == QoS::Level1;
        let offline = state.link.is_none();
        if state.discarded {
            return Offer::Dropped;
        }
        if offline && !(qos1 && self.persistent) {
            METRICS.dropped(DropReason::Offline, message.qos).increment(1);
            return Offer::Dropped;
        }
        let can_fit = message.cost() <= self.limits.max_queued_bytes;
        let fits = can_fit
            && loop {
                if self.fits(state, &message) {
                    break true;
                }
                if !state.drop_oldest_qos0() {
                    break false;
                }
            };
        if !fits {
            if offline {
                METRICS.dropped(DropReason::OfflineQueueFull, message.qos).increment(1);
                debug!(client_id = %self.client_id, topic = %message.topic, "offline session queue full, dropping");
                return Offer::Dropped;
            }
            self.check_stalled(state);
            if qos1 && can_fit {
                state.room_wanted = true;
                return Offer::Full(message);
            }
            METRICS.dropped(DropReason::QueueFull, message.qos).increment(1);
            debug!(client_id = %self.client_id, topic = %message.topic, "session queue full, dropping message");
            return Offer::Dropped;
        }
        state.full_since = None;
        state.bytes += message.cost();
        state.queue.push_back(Outbound::Message(message));
        state.wake_writer();
        Offer::Queued
    }

    /// [`Session::offer`] for senders that cannot wait (the service's outbox, wills, replies,
    /// retained messages): a QoS 1 message that finds no room is dropped and counted. Returns
    /// whether it was queued.
    pub fn enqueue(&self, message: Message) -> bool {
        match self.offer(message) {
            Offer::Queued => true,
            Offer::Dropped => false,
            Offer::Full(message) => {
                METRICS.dropped(DropReason::QueueFull, message.qos).increment(1);
                warn!(client_id = %self.client_id, topic = %message.topic, "session queue full, dropping QoS 1 message");
                false
            }
        }
    }

    /// [`Session::offer`], waiting while a connected session's queue has no room for a QoS 1
    /// message: until the client takes messages, goes offline (then the offline rules apply),
    /// or is disconnected by the stalled rule, so the wait ends within about
    /// [`Limits::stalled_grace`] of the queue filling up. No lock is held while waiting.
    /// Returns whether it was queued.
    pub async fn enqueue_waiting(&self, mut message: Message) -> bool {
        let mut counted = false;
        loop {
            // Registered before the offer, so that room made in between is not missed.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            message = match self.offer(message) {
                Offer::Queued => return true,
                Offer::Dropped => return false,
                Offer::Full(message) => message,
            };
            if !std::mem::replace(&mut counted, true) {
                METRICS.publish_waits.increment(1);
            }
            // On timeout, the next offer applies the stalled rule (the floor keeps a zero grace
            // from spinning until the killed connection has detached).
            let _ = tokio::time::timeout(self.limits.stalled_grace.max(MIN_RECHECK), room).await;
        }
    }

    /// The queue had no room: disconnect a connection that has not made room for
    /// [`Limits::stalled_grace`].
    fn check_stalled(&self, state: &mut State<S>) {
        let Some(link) = &state.link else {
            return;
        };
        let now = Instant::now();
        let since = *state.full_since.get_or_insert(now);
        if now.duration_since(since) >= self.limits.stalled_grace {
            warn!(client_id = %self.client_id, "client does not take its messages: disconnecting");
            METRICS.stalled_disconnects.increment(1);
            link.kill();
            state.full_since = None;
        }
    }

    /// Queue a control packet for `link`'s writer, waiting while the queue is full so that a
    /// client that does not read cannot make it grow without bound.
    pub async fn send(&self, link: &Link, packet: Packet) -> Result<(), Superseded> {
        loop {
            {
                let mut state = self.state();
                if !state.is_current(link) {
                    return Err(Superseded);
                }
                if state.queue.len() < self.limits.max_queued {
                    state.queue.push_back(Outbound::Packet(packet));
                    state.wake_writer();
                    return Ok(());
                }
            }
            link.drained.notified().await;
        }
    }

    /// A PUBACK arrived. Returns whether `pid` was in flight.
    pub fn ack(&self, pid: Pid) -> bool {
        let mut state = self.state();
        let Some(position) = state.inflight.iter().position(|(used, _)| *used == pid) else {
            return false;
        };
        if let Some((_, message)) = state.inflight.remove(position) {
            state.bytes -= message.cost();
        }
        if !state.held.is_empty() {
            state.wake_writer();
        }
        self.made_room(&mut state);
        true
    }

    /// Encode what `link` may send now into `buf`, stopping once it holds `max_bytes`.
    pub fn drain_into(&self, link: &Link, buf: &mut BytesMut, max_bytes: usize) -> Result<(), Superseded> {
        let mut guard = self.state();
        if !guard.is_current(link) {
            return Err(Superseded);
        }
        let state = &mut *guard;
        let max_inflight = self.limits.max_inflight;
        let before = state.inflight.len();
        let mut sent_qos0 = 0;
        while state.inflight.len() < max_inflight && buf.len() < max_bytes {
            let Some(message) = state.held.pop_front() else {
                break;
            };
            state.send_qos1(message, buf);
        }
        while buf.len() < max_bytes {
            let Some(item) = state.queue.pop_front() else {
                break;
            };
            match item {
                Outbound::Packet(packet) => {
                    encode(&packet, buf);
                }
                Outbound::Message(message) if message.qos == QoS::Level0 => {
                    state.bytes -= message.cost();
                    message.encode(QosPid::Level0, buf);
                    sent_qos0 += 1;
                }
                Outbound::Message(message) if state.held.is_empty() && state.inflight.len() < max_inflight => {
                    state.send_qos1(message, buf);
                }
                Outbound::Message(message) => state.held.push_back(message),
            }
        }
        // Drained: an idle session holds no queue memory (massif: 512 bytes per connection).
        if state.queue.is_empty() {
            state.queue = VecDeque::new();
        }
        // QoS 1 messages sent now are the ones that entered the in-flight window.
        METRICS.sent.increment(sent_qos0 + state.inflight.len().saturating_sub(before) as u64);
        self.made_room(state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::v3::ConnectReturnCode;

    const LIMITS: Limits = Limits {
        max_inflight: 2,
        max_queued: 4,
        max_queued_bytes: 1 << 20,
        stalled_grace: Duration::from_secs(30),
        max_subscriptions: 3,
    };

    fn message(topic: &str, qos: QoS) -> Message {
        Message { topic: TopicName::try_from(topic).unwrap(), payload: Bytes::from_static(b"x"), qos, retain: false }
    }

    fn connack(present: bool) -> Connack {
        Connack::new(present, ConnectReturnCode::Accepted)
    }

    fn session(persistent: bool) -> (Session<()>, Arc<Link>) {
        session_with(persistent, LIMITS)
    }

    fn session_with(persistent: bool, limits: Limits) -> (Session<()>, Arc<Link>) {
        let session = Session::new(1, "c".into(), persistent, Arc::new(()), Arc::new(limits.clamped()));
        let link = Arc::new(Link::new(10));
        session.attach(Arc::clone(&link), Arc::new(()), connack(false));
        (session, link)
    }

    fn drain(session: &Session<()>, link: &Link) -> Vec<Packet> {
        let mut buf = BytesMut::new();
        session.drain_into(link, &mut buf, usize::MAX).unwrap();
        let mut packets = Vec::new();
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let packet = Packet::decode(rest).unwrap().unwrap();
            rest = &rest[packet.encode_len().unwrap()..];
            packets.push(packet);
        }
        packets
    }

    fn publish_pids(packets: &[Packet]) -> Vec<(Option<u16>, bool)> {
        packets
            .iter()
            .filter_map(|packet| match packet {
                Packet::Publish(publish) => Some((publish.qos_pid.pid().map(Pid::value), publish.dup)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn inflight_window_holds_qos1_but_not_qos0() {
        let (session, link) = session(false);
        assert!(matches!(drain(&session, &link)[..], [Packet::Connack(_)]));
        for _ in 0..3 {
            assert!(session.enqueue(message("t", QoS::Level1)));
        }
        assert!(session.enqueue(message("t", QoS::Level0)));
        let sent = drain(&session, &link);
        assert_eq!(publish_pids(&sent), vec![(Some(1), false), (Some(2), false), (None, false)]);
        assert!(drain(&session, &link).is_empty());
        assert!(session.ack(Pid::try_from(1).unwrap()));
        assert!(!session.ack(Pid::try_from(1).unwrap()));
        assert_eq!(publish_pids(&drain(&session, &link)), vec![(Some(3), false)]);
    }

    #[test]
    fn queue_is_bounded() {
        let (session, _link) = session(false);
        // The CONNACK occupies one slot.
        for _ in 0..3 {
            assert!(session.enqueue(message("t", QoS::Level1)));
        }
        assert!(!session.enqueue(message("t", QoS::Level1)));
        assert!(!session.enqueue(message("t", QoS::Level0)));
    }

    #[test]
    fn persistent_session_keeps_qos1_offline_and_resends_unacked() {
        let (session, link) = session(true);
        session.enqueue(message("t", QoS::Level1));
        assert_eq!(publish_pids(&drain(&session, &link)), vec![(Some(1), false)]);
        assert!(session.detach(&link));
        assert!(!session.enqueue(message("t", QoS::Level0)));
        assert!(session.enqueue(message("t", QoS::Level1)));

        let link2 = Arc::new(Link::new(11));
        session.attach(Arc::clone(&link2), Arc::new(()), connack(true));
        assert!(session.drain_into(&link, &mut BytesMut::new(), usize::MAX).is_err());
        let sent = drain(&session, &link2);
        assert!(matches!(sent[0], Packet::Connack(Connack { session_present: true, .. })));
        assert_eq!(publish_pids(&sent), vec![(Some(1), true), (Some(2), false)]);
    }

    #[test]
    fn clean_session_keeps_nothing_offline_and_discard_unindexes() {
        let (session, link) = session(false);
        assert_eq!(session.subscribe("a/+", QoS::Level1, || {}), Subscribed::Yes);
        assert_eq!(session.subscribe("a/#", QoS::Level0, || {}), Subscribed::Yes);
        assert_eq!(session.granted_qos("a/b"), Some(QoS::Level1));
        assert_eq!(session.granted_qos("b"), None);
        assert!(session.detach(&link));
        assert!(!session.enqueue(message("t", QoS::Level1)));
        let mut unindexed = Vec::new();
        session.discard(|subscriptions| unindexed.extend(subscriptions.iter().map(|(f, _)| f.to_string())));
        assert_eq!(unindexed, vec!["a/+", "a/#"]);
        assert_eq!(
            session.subscribe("x", QoS::Level0, || panic!("indexed a discarded session")),
            Subscribed::Discarded
        );
    }

    #[test]
    fn subscriptions_are_bounded_but_replacing_one_is_not_a_new_one() {
        let (session, _link) = session(false);
        for filter in ["a", "b", "c"] {
            assert_eq!(session.subscribe(filter, QoS::Level0, || {}), Subscribed::Yes);
        }
        assert_eq!(session.subscribe("d", QoS::Level0, || panic!("indexed beyond the bound")), Subscribed::TooMany);
        assert_eq!(session.subscribe("a", QoS::Level1, || {}), Subscribed::Yes);
        session.unsubscribe("b", || {});
        assert_eq!(session.subscribe("d", QoS::Level0, || {}), Subscribed::Yes);
    }

    fn sized(topic: &str, qos: QoS, payload_len: usize) -> Message {
        Message { payload: Bytes::from(vec![b'x'; payload_len]), ..message(topic, qos) }
    }

    fn payload_topics(packets: &[Packet]) -> Vec<String> {
        packets
            .iter()
            .filter_map(|packet| match packet {
                Packet::Publish(publish) => Some(publish.topic_name.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn bytes_bound_drops_the_oldest_qos0_first_and_counts_unacked_messages() {
        // Each message costs 1 (topic) + 9 (payload) bytes; room for four.
        let limits = Limits { max_queued: 100, max_queued_bytes: 40, ..LIMITS };
        let (session, link) = session_with(false, limits);
        drain(&session, &link);
        assert!(session.enqueue(sized("a", QoS::Level0, 9)));
        assert!(session.enqueue(sized("b", QoS::Level1, 9)));
        assert!(session.enqueue(sized("c", QoS::Level0, 9)));
        assert!(session.enqueue(sized("d", QoS::Level1, 9)));
        // Full: "a", then "c" make room.
        assert!(session.enqueue(sized("e", QoS::Level1, 9)));
        assert!(session.enqueue(sized("f", QoS::Level0, 9)));
        assert_eq!(payload_topics(&drain(&session, &link)), vec!["b", "d", "f"]);
        // "b" and "d" in flight, "e" held for the window: together with a new QoS 1 message,
        // still four. Nothing QoS 0 is left to drop, so the next one is refused.
        assert!(session.enqueue(sized("g", QoS::Level1, 9)));
        assert!(!session.enqueue(sized("h", QoS::Level0, 9)));
        assert!(!session.enqueue(sized("i", QoS::Level1, 9)));
        // An acknowledgement makes room.
        assert!(session.ack(Pid::try_from(1).unwrap()));
        assert!(session.enqueue(sized("j", QoS::Level0, 9)));
        // A message larger than the whole bound never drops the others.
        assert!(!session.enqueue(sized("k", QoS::Level0, 40)));
        assert_eq!(payload_topics(&drain(&session, &link)), vec!["e", "j"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_full_of_qos1_for_the_grace_period_is_disconnected() {
        let limits = Limits { max_queued_bytes: 20, ..LIMITS };
        let (session, link) = session_with(false, limits);
        assert!(session.enqueue(sized("a", QoS::Level1, 9)));
        assert!(session.enqueue(sized("b", QoS::Level1, 9)));
        assert!(!session.enqueue(sized("c", QoS::Level1, 9)));
        tokio::time::sleep(LIMITS.stalled_grace - Duration::from_secs(1)).await;
        assert!(!session.enqueue(sized("c", QoS::Level1, 9)));
        let killed = link.killed();
        tokio::pin!(killed);
        assert!(futures_poll_once(killed.as_mut()).is_pending());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!session.enqueue(sized("c", QoS::Level1, 9)));
        assert!(futures_poll_once(killed.as_mut()).is_ready());
    }

    /// Poll a future once without waiting.
    fn futures_poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        future.poll(&mut std::task::Context::from_waker(waker))
    }
}
