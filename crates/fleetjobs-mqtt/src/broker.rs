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
use tracing::{debug, warn};

use crate::connection;
use crate::error::ConnectionError;
use crate::hooks::{Action, ConnectInfo, ConnectRefusal, DeviceHooks, PeerInfo, Reply};
use crate::retain::RetainedStore;
use crate::session::{Limits, Link, Message, Session};
use crate::topic::{self, TopicTree};

/// Tunables of a [`Broker`].
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
            connect_timeout: Duration::from_secs(10),
            persistent_session_expiry: Duration::from_secs(3600),
        }
    }
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
    retained: RetainedStore,
    connections: AtomicUsize,
    next_id: AtomicU64,
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
    pub fn new(hooks: Arc<H>, config: BrokerConfig) -> Arc<Self> {
        Arc::new(Broker {
            hooks,
            config,
            sessions: Mutex::default(),
            subscriptions: RwLock::default(),
            retained: RetainedStore::default(),
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        })
    }

    /// Serve one already-accepted byte stream (TLS stream, TCP stream, or `tokio::io::duplex`
    /// for tests and benchmarks) until it ends. The future does not borrow the broker: it can be
    /// awaited or handed to `tokio::spawn` directly.
    pub fn serve_connection<S>(self: &Arc<Self>, stream: S, peer: PeerInfo) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        connection::serve(Arc::clone(self), stream, peer)
    }

    /// In-process publish from the service (job notifications, events) to every matching
    /// subscriber that `authorize(Receive, topic)` allows, at min(`qos`, granted QoS; QoS 2 is
    /// treated as 1). Never blocks; returns how many sessions it was queued for (offline
    /// persistent sessions included).
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

    /// Live connections that completed CONNECT.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
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
                let limits =
                    Limits { max_inflight: self.config.max_inflight, max_queued: self.config.max_queued_per_session };
                let session =
                    Arc::new(Session::new(self.next_id(), Arc::clone(&client_id), !clean, Arc::clone(&hook), limits));
                sessions.insert(client_id, Arc::clone(&session));
                session
            }
        };
        session.attach(Arc::clone(&link), Arc::clone(&hook), Connack::new(present, ConnectReturnCode::Accepted));
        drop(sessions);
        self.connections.fetch_add(1, Ordering::Relaxed);
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
            match self.publish_from(&session, &hook, will.into()).await {
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
    /// route it to subscribers.
    pub(crate) async fn publish_from(
        &self,
        session: &Session<H::Session>,
        hook: &H::Session,
        message: Message,
    ) -> Result<(), ConnectionError> {
        if !self.hooks.authorize(hook, Action::Publish, &message.topic) {
            return Err(ConnectionError::PublishDenied(message.topic.to_string()));
        }
        match self.hooks.handle_request(hook, &message.topic, message.payload.clone()) {
            Some(request) => {
                let replies = request.await;
                self.deliver_replies(session, hook, replies);
            }
            None => {
                if message.retain {
                    self.retained.store(&message);
                }
                self.route(&message);
            }
        }
        Ok(())
    }

    /// Queue `message` for every session with a matching subscription, once per session at the
    /// highest QoS granted, if the session may receive it.
    fn route(&self, message: &Message) -> usize {
        let mut targets = Vec::new();
        self.index().for_each_match(&message.topic, |id, subscriber| {
            targets.push((id, subscriber.qos, Arc::clone(&subscriber.session)));
        });
        targets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        targets.dedup_by_key(|(id, _, _)| *id);
        targets
            .into_iter()
            .filter(|(_, granted, session)| {
                self.hooks.authorize(&session.hook(), Action::Receive, &message.topic)
                    && session.enqueue(message.delivery(*granted, false))
            })
            .count()
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

    /// Subscribe `session` to `filter` if valid and authorized. Returns the granted QoS.
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
        if !self.hooks.authorize(hook, Action::Subscribe, filter) {
            debug!(client_id = %session.client_id, filter, "subscription not authorized");
            return None;
        }
        let qos = requested.min(QoS::Level1);
        let subscribed = session.subscribe(filter, qos, || {
            let subscriber = Subscriber { qos, session: Arc::clone(session) };
            self.index_mut().insert(filter, session.id, subscriber);
        });
        subscribed.then_some(qos)
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
