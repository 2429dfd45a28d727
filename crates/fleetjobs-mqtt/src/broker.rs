//! The broker: the session registry (client ids, takeover, expiry), the subscription index and
//! message routing.
//!
//! Lock order, never reversed: session registry → one session's state → subscription index.
//! Hooks are never called with a lock held.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::v3::{Connack, Connect, ConnectReturnCode, LastWill};
use mqtt_proto::{QoS, TopicName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use crate::connection;
use crate::error::ConnectionError;
use crate::hooks::{Action, ConnectInfo, ConnectRefusal, DeviceHooks, PeerInfo, Reply};
use crate::metrics::METRICS;
use crate::retain::{RetainLimits, RetainedStore};
use crate::session::{Limits, Link, Message, Offer, Session, Subscribed};
use crate::tap::{Tap, TapError, Taps};
use crate::throttle::LogThrottle;
use crate::topic::{self, TopicLimits, TopicTree};

/// Tunables of a [`Broker`]. The defaults are AWS IoT Core's message broker limits where AWS
/// has one.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Largest inbound control packet, header included; larger ones close the connection.
    /// Default 128 KiB, AWS IoT's message size limit.
    pub max_packet_size: usize,
    /// Outbound QoS 1 messages sent but not acknowledged, per session. Default 100.
    pub max_inflight: usize,
    /// Outbound items queued per session (waiting for the socket or the in-flight window, or
    /// stored while a persistent session is offline). Beyond it, messages are dropped.
    /// Default 1000.
    pub max_queued_per_session: usize,
    /// Topic and payload bytes a session may hold (queued, waiting for the in-flight window, in
    /// flight, or stored offline). Beyond it the oldest queued QoS 0 messages are dropped, then
    /// new messages. Default 1 MiB (eight messages of the largest size).
    pub max_queued_bytes_per_session: usize,
    /// A connection whose queue stays full of QoS 1 messages this long is disconnected.
    /// Default 30 s.
    pub stalled_reader_grace: Duration,
    /// Longest client id; a longer one is refused with CONNACK 2 (identifier rejected).
    /// Default 128 bytes (AWS).
    pub max_client_id_len: usize,
    /// Longest topic name or filter, not counting the prefix of AWS's reserved per-thing and
    /// Basic Ingest topics. A PUBLISH beyond it closes the connection, a SUBSCRIBE gets 0x80
    /// for the filter. Default 256 bytes (AWS).
    pub max_topic_len: usize,
    /// Most forward slashes in a topic name or filter, counted as [`max_topic_len`] is.
    /// Default 7 (AWS).
    ///
    /// [`max_topic_len`]: BrokerConfig::max_topic_len
    pub max_topic_slashes: usize,
    /// Filters honoured in one SUBSCRIBE; the ones after get 0x80. Default 8 (AWS).
    pub max_filters_per_subscribe: usize,
    /// Subscriptions per session; further new filters get 0x80. Default 50 (AWS).
    pub max_subscriptions_per_session: usize,
    /// Retained messages kept server-wide; beyond it a message on a new topic is delivered but
    /// not retained. Default 50,000.
    pub max_retained_messages: usize,
    /// Topic and payload bytes of all retained messages. Default 64 MiB.
    pub max_retained_bytes: usize,
    /// Keep-alive used when a client asks for 0 (none) or for more: AWS's 1,200 s.
    pub max_keep_alive_secs: u16,
    /// Connections served at once, counted from accept (TLS handshakes included); beyond it new
    /// connections are closed at once. Default 10,000.
    pub max_connections: usize,
    /// Time allowed after accept to complete the TLS handshake (in [`serve_tls`]) and then to
    /// send CONNECT. Default 10 s.
    ///
    /// [`serve_tls`]: crate::serve_tls
    pub connect_timeout: Duration,
    /// How long a persistent session (`clean_session = 0`) survives offline. Default 1 h.
    pub persistent_session_expiry: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: 128 * 1024,
            max_inflight: 100,
            max_queued_per_session: 1000,
            max_queued_bytes_per_session: 1 << 20,
            stalled_reader_grace: Duration::from_secs(30),
            max_client_id_len: 128,
            max_topic_len: 256,
            max_topic_slashes: 7,
            max_filters_per_subscribe: 8,
            max_subscriptions_per_session: 50,
            max_retained_messages: 50_000,
            max_retained_bytes: 64 << 20,
            max_keep_alive_secs: 1200,
            max_connections: 10_000,
            connect_timeout: Duration::from_secs(10),
            persistent_session_expiry: Duration::from_secs(3600),
        }
    }
}

/// Whether a publish may wait for room in its subscribers' queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// A client's QoS 1 PUBLISH: its PUBACK is withheld until every delivery is queued (or
    /// the subscriber is gone), which is how a slow subscriber slows its publishers down.
    ForRoom,
    /// Nobody waits for an answer (QoS 0, wills): a full queue drops the message, counted.
    No,
}

/// One subscription in the index.
struct Subscriber<S> {
    qos: QoS,
    session: Arc<Session<S>>,
}

/// Sessions by client id.
type SessionMap<S> = HashMap<Arc<str>, Arc<Session<S>>>;
/// Subscriptions by filter.
type SubscriptionIndex<S> = TopicTree<Subscriber<S>>;

/// A connection that passed CONNECT.
pub(crate) struct Established<S> {
    pub session: Arc<Session<S>>,
    pub link: Arc<Link>,
    pub hook: Arc<S>,
}

/// An MQTT 3.1.1 broker with AWS IoT Core semantics, driven by [`DeviceHooks`].
pub struct Broker<H: DeviceHooks> {
    hooks: Arc<H>,
    config: BrokerConfig,
    sessions: Mutex<SessionMap<H::Session>>,
    subscriptions: RwLock<SubscriptionIndex<H::Session>>,
    session_limits: Arc<Limits>,
    retained: RetainedStore,
    /// Retained messages refused for the bounds (logged once per interval).
    retained_refusals: LogThrottle,
    connections: AtomicUsize,
    /// One permit per connection served, from accept to close.
    admission: Arc<Semaphore>,
    /// Connections refused for the cap (logged once per interval).
    admission_refusals: LogThrottle,
    next_id: AtomicU64,
    taps: Arc<Taps>,
}

/// Taps open at once (each a console page's MQTT client).
const MAX_TAPS: usize = 16;

/// A connection counted against [`BrokerConfig::max_connections`], until dropped.
pub(crate) struct Admission {
    _permit: OwnedSemaphorePermit,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn refusal_code(refusal: ConnectRefusal) -> ConnectReturnCode {
    match refusal {
        ConnectRefusal::NotAuthorized => ConnectReturnCode::NotAuthorized,
        ConnectRefusal::BadCredentials => ConnectReturnCode::BadUserNameOrPassword,
        ConnectRefusal::ServerUnavailable => ConnectReturnCode::ServerUnavailable,
    }
}

impl<H: DeviceHooks> Broker<H> {
    /// A broker with the retained messages that `hooks.load_retained()` returns (within the
    /// bounds).
    pub fn new(hooks: Arc<H>, config: BrokerConfig) -> Arc<Self> {
        // Register the counters now, so that a scrape shows them (at 0) before the first client.
        std::sync::LazyLock::force(&METRICS);
        let retained = RetainedStore::new(RetainLimits {
            max_messages: config.max_retained_messages,
            max_bytes: config.max_retained_bytes,
        });
        let loaded = hooks.load_retained();
        let total = loaded.len();
        let left_out = retained.restore(loaded);
        if left_out > 0 {
            warn!(left_out, total, "retained messages beyond the bounds or invalid were not restored");
        }
        let session_limits = Limits {
            max_inflight: config.max_inflight,
            max_queued: config.max_queued_per_session,
            max_queued_bytes: config.max_queued_bytes_per_session,
            stalled_grace: config.stalled_reader_grace,
            max_subscriptions: config.max_subscriptions_per_session,
        };
        Arc::new(Broker {
            hooks,
            session_limits: Arc::new(session_limits.clamped()),
            admission: Arc::new(Semaphore::new(config.max_connections.min(Semaphore::MAX_PERMITS))),
            config,
            sessions: Mutex::default(),
            subscriptions: RwLock::default(),
            retained,
            retained_refusals: LogThrottle::default(),
            connections: AtomicUsize::new(0),
            admission_refusals: LogThrottle::default(),
            next_id: AtomicU64::new(1),
            taps: Arc::new(Taps::new(MAX_TAPS)),
        })
    }

    /// Serve one already-accepted byte stream (TLS stream, TCP stream, or `tokio::io::duplex`
    /// for tests and benchmarks) until it ends. The future does not borrow the broker: it can be
    /// awaited or handed to `tokio::spawn` directly. Beyond [`BrokerConfig::max_connections`],
    /// the stream is closed at once.
    pub fn serve_connection<S>(self: &Arc<Self>, stream: S, peer: PeerInfo) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let admission = self.admit(&peer);
        connection::serve(Arc::clone(self), stream, peer, admission)
    }

    /// Count a new connection against [`BrokerConfig::max_connections`]; `None` (logged once
    /// per interval) when the server is full and the connection must be closed.
    pub(crate) fn admit(&self, peer: &PeerInfo) -> Option<Admission> {
        match Arc::clone(&self.admission).try_acquire_owned() {
            Ok(permit) => Some(Admission { _permit: permit }),
            Err(_) => {
                METRICS.refused_at_capacity.increment(1);
                if let Some(also_refused) = self.admission_refusals.check() {
                    warn!(
                        remote = ?peer.remote_addr,
                        max_connections = self.config.max_connections,
                        also_refused,
                        "connection limit reached: refusing new connections"
                    );
                }
                None
            }
        }
    }

    /// In-process publish from the service (job notifications, events) to every matching
    /// subscriber that `authorize(Receive, topic)` allows, at min(`qos`, granted QoS; QoS 2 is
    /// treated as 1). Never waits: a subscriber whose queue is full loses it (counted in
    /// `fleetjobs_mqtt_messages_dropped_total`), so that the engine is never held up by a
    /// client. Returns how many sessions it was queued for (offline persistent sessions
    /// included).
    pub fn publish(&self, topic: &str, payload: Bytes, qos: QoS) -> usize {
        let topic = match TopicName::try_from(topic) {
            Ok(topic) if topic::is_valid_topic_name(&topic) => topic,
            _ => {
                warn!(topic, "not publishing to an invalid topic name");
                return 0;
            }
        };
        self.route(&Message { topic, payload, qos: qos.min(QoS::Level1), retain: false })
    }

    /// Whether a message published to a topic under `prefix` (whole levels, e.g.
    /// `$aws/events`) could reach anyone now: a subscription whose filter could match such a
    /// topic (wildcards included), or any open tap. Answered from the subscription index
    /// without allocating, so that the service can skip building messages nobody would
    /// receive; a subscription counts from its insertion, before its SUBACK.
    pub fn has_audience_under(&self, prefix: &str) -> bool {
        self.taps.any_open() || self.index().could_match_under(prefix)
    }

    /// Watch the messages routed to `filters` in-process (at most `capacity` waiting; more
    /// are dropped and counted), as an administrator would with a subscription that every
    /// policy allows. Closed when the [`Tap`] is dropped; at most 16 open at once.
    pub fn tap(&self, filters: Vec<String>, capacity: usize) -> Result<Tap, TapError> {
        self.taps.open(filters, capacity)
    }

    /// Disconnect every live connection whose hooks session matches `pred` (e.g. its
    /// certificate was set INACTIVE). Returns how many.
    pub fn disconnect_where(&self, pred: impl Fn(&H::Session) -> bool) -> usize {
        let sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
        let mut disconnected = 0;
        for session in sessions {
            if let Some((hook, link)) = session.live() {
                if pred(&hook) {
                    debug!(client_id = %session.client_id, "disconnecting on request of the service");
                    link.kill();
                    disconnected += 1;
                }
            }
        }
        disconnected
    }

    /// Whether a connection with this client id is live now. AWS tells a thing's connectivity
    /// by client id, which the device SDKs' samples set to the thing's name.
    pub fn is_connected(&self, client_id: &str) -> bool {
        let session = lock(&self.sessions).get(client_id).cloned();
        session.is_some_and(|s| s.live().is_some())
    }

    /// Live connections that completed CONNECT.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn topic_limits(&self) -> TopicLimits {
        TopicLimits { max_len: self.config.max_topic_len, max_slashes: self.config.max_topic_slashes }
    }

    /// Whether a client may publish to `topic`: a valid topic name within AWS's limits.
    pub(crate) fn is_publishable(&self, topic: &str) -> bool {
        topic::is_valid_topic_name(topic) && self.topic_limits().allows(topic)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn index(&self) -> RwLockReadGuard<'_, SubscriptionIndex<H::Session>> {
        self.subscriptions.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, SubscriptionIndex<H::Session>> {
        self.subscriptions.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Authenticate a CONNECT and attach the connection to its session: resumed if persistent
    /// and present, otherwise new. A live connection with the same client id is kicked.
    pub(crate) fn open_session(
        &self,
        peer: &PeerInfo,
        connect: &Connect,
    ) -> Result<Established<H::Session>, ConnectReturnCode> {
        let clean = connect.clean_session;
        let client_id: Arc<str> = match &*connect.client_id {
            "" if clean => format!("fleetjobs-anonymous-{}", self.next_id()).into(),
            "" => return Err(ConnectReturnCode::IdentifierRejected),
            long if long.len() > self.config.max_client_id_len => return Err(ConnectReturnCode::IdentifierRejected),
            _ => Arc::clone(&connect.client_id),
        };
        let info = ConnectInfo {
            client_id: client_id.to_string(),
            username: connect.username.as_deref().map(str::to_owned),
            clean_session: clean,
            keep_alive_secs: connect.keep_alive,
        };
        let hook = Arc::new(self.hooks.connect(peer, &info).map_err(refusal_code)?);
        let link = Arc::new(Link::new(self.next_id()));

        let mut sessions = lock(&self.sessions);
        let resumable = sessions
            .get(&client_id)
            .filter(|session| {
                !clean && session.persistent && !session.is_expired(self.config.persistent_session_expiry)
            })
            .cloned();
        let present = resumable.is_some();
        let session = match resumable {
            Some(session) => session,
            None => {
                if let Some(previous) = sessions.remove(&client_id) {
                    self.discard(&previous);
                }
                let session = Arc::new(Session::new(
                    self.next_id(),
                    Arc::clone(&client_id),
                    !clean,
                    Arc::clone(&hook),
                    Arc::clone(&self.session_limits),
                ));
                sessions.insert(client_id, Arc::clone(&session));
                session
            }
        };
        session.attach(Arc::clone(&link), Arc::clone(&hook), Connack::new(present, ConnectReturnCode::Accepted));
        drop(sessions);
        self.connections.fetch_add(1, Ordering::Relaxed);
        METRICS.connects.increment(1);
        Ok(Established { session, link, hook })
    }

    /// The connection ended: detach it, end or schedule the expiry of its session, publish the
    /// will if given, and tell the hooks.
    pub(crate) async fn close_session(self: &Arc<Self>, established: Established<H::Session>, will: Option<LastWill>) {
        let Established { session, link, hook } = established;
        self.connections.fetch_sub(1, Ordering::Relaxed);
        if session.detach(&link) {
            if session.persistent {
                self.schedule_expiry(&session);
            } else {
                self.remove_session(&session);
            }
        }
        if let Some(will) = will {
            // Nobody waits for a will's PUBACK: it is not held back for a full queue.
            match self.publish_from(&session, &hook, will.into(), Waiting::No).await {
                Ok(()) => debug!(client_id = %session.client_id, "will published"),
                Err(error) => debug!(client_id = %session.client_id, %error, "will not published"),
            }
        }
        self.hooks.disconnected(&hook);
    }

    fn schedule_expiry(self: &Arc<Self>, session: &Session<H::Session>) {
        let broker: Weak<Self> = Arc::downgrade(self);
        let (client_id, id) = (Arc::clone(&session.client_id), session.id);
        let expiry = self.config.persistent_session_expiry;
        tokio::spawn(async move {
            tokio::time::sleep(expiry).await;
            if let Some(broker) = broker.upgrade() {
                broker.expire(&client_id, id);
            }
        });
    }

    fn expire(&self, client_id: &str, id: u64) {
        let mut sessions = lock(&self.sessions);
        let expired = sessions
            .get(client_id)
            .is_some_and(|session| session.id == id && session.is_expired(self.config.persistent_session_expiry));
        if !expired {
            return;
        }
        if let Some(session) = sessions.remove(client_id) {
            debug!(client_id, "persistent session expired");
            self.discard(&session);
        }
    }

    fn remove_session(&self, session: &Arc<Session<H::Session>>) {
        let mut sessions = lock(&self.sessions);
        if sessions.get(&session.client_id).is_some_and(|current| Arc::ptr_eq(current, session)) {
            sessions.remove(&session.client_id);
            self.discard(session);
        }
    }

    fn discard(&self, session: &Session<H::Session>) {
        session.discard(|subscriptions| {
            let mut index = self.index_mut();
            for (filter, _) in subscriptions {
                index.remove(filter, session.id);
            }
        });
    }

    /// A PUBLISH from a client (or its will): authorize it, then hand it to the service or
    /// route it to subscribers; with [`Waiting::ForRoom`], a QoS 1 delivery to a connected
    /// subscriber whose queue is full waits for room (the caller withholds the PUBACK meanwhile).
    pub(crate) async fn publish_from(
        &self,
        session: &Session<H::Session>,
        hook: &H::Session,
        message: Message,
        waiting: Waiting,
    ) -> Result<(), ConnectionError> {
        let allowed = self.hooks.authorize(hook, Action::Publish, &message.topic)
            && (!message.retain || self.hooks.authorize(hook, Action::RetainPublish, &message.topic));
        if !allowed {
            return Err(ConnectionError::PublishDenied(message.topic.to_string()));
        }
        match self.hooks.handle_request(hook, &message.topic, message.payload.clone()) {
            Some(request) => {
                let replies = request.await;
                self.deliver_replies(session, hook, replies);
            }
            None => {
                if message.retain {
                    self.retain(&session.client_id, &message).await;
                }
                match waiting {
                    Waiting::ForRoom => self.route_waiting(&message).await,
                    Waiting::No => {
                        self.route(&message);
                    }
                }
            }
        }
        Ok(())
    }

    /// Keep `message` as its topic's retained message (an empty payload clears it): durably
    /// through the hooks first, then in memory. Beyond the bounds, or if it cannot be made
    /// durable, it is not retained (and logged); the caller delivers it all the same.
    async fn retain(&self, client_id: &str, message: &Message) {
        // One change at a time, so that the durable order is the in-memory order.
        let _writing = self.retained.writing.lock().await;
        let change = match self.retained.change_for(message) {
            Ok(Some(change)) => change,
            Ok(None) => return,
            Err(refusal) => {
                if let Some(also_refused) = self.retained_refusals.check() {
                    warn!(client_id, topic = %message.topic, %refusal, also_refused, "message delivered but not retained");
                }
                return;
            }
        };
        match self.hooks.persist_retained(change).await {
            Ok(()) => self.retained.apply(message),
            Err(error) => {
                warn!(client_id, topic = %message.topic, %error, "retained message not stored: delivered but not retained")
            }
        }
    }

    /// The sessions `message` goes to: every session with a matching subscription, once, at
    /// the highest QoS granted, if it may receive it. The taps see it too.
    /// An iterator, not a second `Vec`: `route` runs for every message the engine publishes.
    fn targets<'a>(&'a self, message: &'a Message) -> impl Iterator<Item = (Arc<Session<H::Session>>, QoS)> + 'a {
        self.taps.offer(&message.topic, &message.payload);
        let mut targets = Vec::new();
        self.index().for_each_match(&message.topic, |id, subscriber| {
            targets.push((id, subscriber.qos, Arc::clone(&subscriber.session)));
        });
        targets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        targets.dedup_by_key(|(id, _, _)| *id);
        targets
            .into_iter()
            .filter(move |(_, _, session)| self.hooks.authorize(&session.hook(), Action::Receive, &message.topic))
            .map(|(_, granted, session)| (session, granted))
    }

    /// Queue `message` for its subscribers without waiting (a full queue drops it, counted).
    /// Returns for how many sessions it was queued.
    fn route(&self, message: &Message) -> usize {
        self.targets(message).filter(|(session, granted)| session.enqueue(message.delivery(*granted, false))).count()
    }

    /// Queue `message` for its subscribers, waiting for room in the full queues of connected
    /// ones for the QoS 1 deliveries: the others first, then each full one in turn (their
    /// stalled-grace clocks run meanwhile, so the whole wait stays within about one grace).
    async fn route_waiting(&self, message: &Message) {
        let mut full = Vec::new();
        for (session, granted) in self.targets(message) {
            if let Offer::Full(delivery) = session.offer(message.delivery(granted, false)) {
                full.push((session, delivery));
            }
        }
        for (session, delivery) in full {
            session.enqueue_waiting(delivery).await;
        }
    }

    /// Replies to a request go to the requesting session only, at the QoS its subscriptions
    /// grant for the reply topic (0 if none).
    fn deliver_replies(&self, session: &Session<H::Session>, hook: &H::Session, replies: Vec<Reply>) {
        for Reply { topic, payload } in replies {
            let topic = match TopicName::try_from(topic.as_str()) {
                Ok(name) if topic::is_valid_topic_name(&name) => name,
                _ => {
                    warn!(topic, "dropping a reply to an invalid topic name");
                    continue;
                }
            };
            if !self.hooks.authorize(hook, Action::Receive, &topic) {
                debug!(client_id = %session.client_id, %topic, "reply not authorized for receive");
                continue;
            }
            let qos = session.granted_qos(&topic).unwrap_or(QoS::Level0);
            session.enqueue(Message { topic, payload, qos, retain: false });
        }
    }

    /// Subscribe `session` to `filter` if valid, within the limits and authorized. Returns the
    /// granted QoS.
    pub(crate) fn subscribe(
        &self,
        session: &Arc<Session<H::Session>>,
        hook: &H::Session,
        filter: &str,
        requested: QoS,
    ) -> Option<QoS> {
        if !topic::is_valid_filter(filter) {
            warn!(client_id = %session.client_id, filter, "invalid topic filter");
            return None;
        }
        if !self.topic_limits().allows(filter) {
            debug!(client_id = %session.client_id, filter, "topic filter beyond the size or slash limit");
            return None;
        }
        if !self.hooks.authorize(hook, Action::Subscribe, filter) {
            debug!(client_id = %session.client_id, filter, "subscription not authorized");
            return None;
        }
        let qos = requested.min(QoS::Level1);
        let subscribed = session.subscribe(filter, qos, || {
            let subscriber = Subscriber { qos, session: Arc::clone(session) };
            self.index_mut().insert(filter, session.id, subscriber);
        });
        match subscribed {
            Subscribed::Yes => Some(qos),
            Subscribed::TooMany => {
                debug!(
                    client_id = %session.client_id,
                    filter,
                    max = self.config.max_subscriptions_per_session,
                    "too many subscriptions"
                );
                None
            }
            Subscribed::Discarded => None,
        }
    }

    pub(crate) fn unsubscribe(&self, session: &Session<H::Session>, filter: &str) {
        session.unsubscribe(filter, || {
            self.index_mut().remove(filter, session.id);
        });
    }

    /// Queue the retained messages matching a new subscription.
    pub(crate) fn deliver_retained(
        &self,
        session: &Session<H::Session>,
        hook: &H::Session,
        filter: &str,
        granted: QoS,
    ) {
        for message in self.retained.matching(filter) {
            if self.hooks.authorize(hook, Action::Receive, &message.topic) {
                session.enqueue(message.delivery(granted, true));
            }
        }
    }
}
