//! The seam between the broker and the rest of Fleetjobs.
//!
//! The broker knows MQTT: framing, sessions, subscriptions, delivery. It knows nothing about
//! certificates, AWS IoT policies or jobs. Everything it must ask about is here.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use mqtt_proto::QoS;

/// What the transport learned about the peer before the first MQTT byte.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    /// DER of the client's leaf certificate (mutual TLS), if any.
    pub cert_der: Option<Vec<u8>>,
    /// Remote address, for logs.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The TLS session was resumed (a session ticket): the certificate is the one of the
    /// session's full handshake, and the TLS layer's own checks of it did not run again.
    pub resumed: bool,
}

/// The fields of a CONNECT packet that the hooks may base a decision on.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    pub client_id: String,
    pub username: Option<String>,
    pub clean_session: bool,
    pub keep_alive_secs: u16,
}

/// Why a CONNECT is refused. Mapped to CONNACK return codes (3.1.1): `NotAuthorized` → 5,
/// `BadCredentials` → 4, `ServerUnavailable` → 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    NotAuthorized,
    BadCredentials,
    ServerUnavailable,
}

/// An MQTT action that policies authorize (the AWS IoT policy actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A PUBLISH from the client to `topic`.
    Publish,
    /// A SUBSCRIBE of the client to the filter given as `topic`.
    Subscribe,
    /// Delivery of a message on `topic` to the client.
    Receive,
    /// Keeping a PUBLISH from the client as the retained message of `topic` (asked besides
    /// `Publish` when the retain flag is set, as AWS IoT asks `iot:RetainPublish`).
    RetainPublish,
}

/// A boxed future, as returned by [`DeviceHooks::handle_request`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message the service answers a request with. It goes to the requesting session only.
#[derive(Debug, Clone)]
pub struct Reply {
    pub topic: String,
    pub payload: Bytes,
}

/// A retained message as the hooks keep it durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
}

/// A change to the retained messages, to be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetainedChange {
    /// Keep this message as the retained message of its topic (replacing any).
    Put(RetainedMessage),
    /// The topic has no retained message any more.
    Delete { topic: String },
}

/// Implemented by the server binary; called by the broker.
pub trait DeviceHooks: Send + Sync + 'static {
    /// Per-connection state the hooks need later (the certificate, attached things...).
    type Session: Send + Sync + 'static;

    /// Authenticate and authorize a CONNECT. Called once per connection, after TLS.
    fn connect(&self, peer: &PeerInfo, connect: &ConnectInfo) -> Result<Self::Session, ConnectRefusal>;

    /// Authorize one action on one topic (for `Subscribe`, the topic filter).
    fn authorize(&self, session: &Self::Session, action: Action, topic: &str) -> bool;

    /// Offer a PUBLISH (already authorized) to the service. `None`: not a service topic, the
    /// broker routes it to subscribers as usual. `Some(fut)`: the service owns it; the broker
    /// awaits the future **before reading the next packet of this connection** (so one
    /// connection's requests are applied in arrival order) and delivers each reply to the
    /// requesting session only, whether or not it subscribed, if `authorize(Receive)` allows.
    fn handle_request<'a>(
        &'a self,
        session: &'a Self::Session,
        topic: &'a str,
        payload: Bytes,
    ) -> Option<BoxFuture<'a, Vec<Reply>>>;

    /// The connection ended (clean or not).
    fn disconnected(&self, _session: &Self::Session) {}

    /// The retained messages kept durably by a previous run. Called once, by [`Broker::new`].
    /// The default keeps nothing.
    ///
    /// [`Broker::new`]: crate::Broker::new
    fn load_retained(&self) -> Vec<RetainedMessage> {
        Vec::new()
    }

    /// Make one change to the retained messages durable. The broker applies the change in
    /// memory, and acknowledges a QoS 1 PUBLISH, only once this resolves `Ok`; on `Err` the
    /// message is still delivered but not retained. The broker never runs two of these at once.
    /// The default keeps retained messages in memory only.
    fn persist_retained(&self, _change: RetainedChange) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}
