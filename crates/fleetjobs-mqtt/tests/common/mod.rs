//! A test `DeviceHooks` and an MQTT client speaking over `tokio::io::duplex`.

// Test and benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use fleetjobs_mqtt::{
    Action, BoxFuture, Broker, BrokerConfig, ConnectInfo, ConnectRefusal, DeviceHooks, PeerInfo, Reply, RetainedChange,
    RetainedMessage,
};
use mqtt_proto::v3::{Connack, Connect, Packet, Publish, Subscribe, SubscribeReturnCode};
use mqtt_proto::{Pid, QoS, QosPid, TopicFilter, TopicName};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

/// Rules, by prefix:
/// - client ids `refuse-auth*`, `refuse-creds*`, `refuse-unavailable*` are refused;
/// - publishing to `forbidden/...`, subscribing to `secret/...`, receiving `hidden/...` are denied;
/// - `req/<name>` is a service request answered on `reply/<name>` (or `hidden/<name>` for
///   `req/hidden`) with the request payload; a payload starting with `slow` takes 200 ms;
/// - retained messages are kept in `durable_retained` (what a restart finds), after 200 ms for
///   topics `slow-storage/...`; for topics `unstorable/...` keeping them fails.
#[derive(Default)]
pub struct TestHooks {
    pub connects: Mutex<Vec<(ConnectInfo, PeerInfo)>>,
    pub disconnected: Mutex<Vec<String>>,
    pub durable_retained: Mutex<BTreeMap<String, RetainedMessage>>,
}

#[derive(Debug)]
pub struct TestSession {
    pub client_id: String,
}

impl DeviceHooks for TestHooks {
    type Session = TestSession;

    fn connect(&self, peer: &PeerInfo, connect: &ConnectInfo) -> Result<TestSession, ConnectRefusal> {
        self.connects.lock().unwrap().push((connect.clone(), peer.clone()));
        let id = &connect.client_id;
        if id.starts_with("refuse-auth") {
            Err(ConnectRefusal::NotAuthorized)
        } else if id.starts_with("refuse-creds") {
            Err(ConnectRefusal::BadCredentials)
        } else if id.starts_with("refuse-unavailable") {
            Err(ConnectRefusal::ServerUnavailable)
        } else {
            Ok(TestSession { client_id: id.clone() })
        }
    }

    fn authorize(&self, _session: &TestSession, action: Action, topic: &str) -> bool {
        let denied_prefix = match action {
            Action::Publish => "forbidden/",
            Action::Subscribe => "secret/",
            Action::Receive => "hidden/",
            Action::RetainPublish => "volatile/",
        };
        !topic.starts_with(denied_prefix)
    }

    fn handle_request<'a>(
        &'a self,
        _session: &'a TestSession,
        topic: &'a str,
        payload: Bytes,
    ) -> Option<BoxFuture<'a, Vec<Reply>>> {
        let name = topic.strip_prefix("req/")?;
        Some(Box::pin(async move {
            if payload.starts_with(b"slow") {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let topic = if name == "hidden" { "hidden/reply".to_owned() } else { format!("reply/{name}") };
            vec![Reply { topic, payload }]
        }))
    }

    fn disconnected(&self, session: &TestSession) {
        self.disconnected.lock().unwrap().push(session.client_id.clone());
    }

    fn load_retained(&self) -> Vec<RetainedMessage> {
        self.durable_retained.lock().unwrap().values().cloned().collect()
    }

    fn persist_retained(&self, change: RetainedChange) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let topic = match &change {
                RetainedChange::Put(message) => &message.topic,
                RetainedChange::Delete { topic } => topic,
            };
            if topic.starts_with("unstorable/") {
                return Err(std::io::Error::other("no space left on device"));
            }
            if topic.starts_with("slow-storage/") {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut durable = self.durable_retained.lock().unwrap();
            match change {
                RetainedChange::Put(message) => durable.insert(message.topic.clone(), message),
                RetainedChange::Delete { topic } => durable.remove(&topic),
            };
            Ok(())
        })
    }
}

pub type TestBroker = Arc<Broker<TestHooks>>;

pub fn broker() -> (TestBroker, Arc<TestHooks>) {
    broker_with(BrokerConfig::default())
}

pub fn broker_with(config: BrokerConfig) -> (TestBroker, Arc<TestHooks>) {
    let hooks = Arc::new(TestHooks::default());
    (Broker::new(Arc::clone(&hooks), config), hooks)
}

/// Wait (polling, with a deadline) until `condition` holds.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long a client waits for an expected packet.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long a client waits to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(500);

pub fn topic(name: &str) -> TopicName {
    TopicName::try_from(name).unwrap()
}

pub fn pid(value: u16) -> Pid {
    Pid::try_from(value).unwrap()
}

pub fn connect_packet(client_id: &str, clean_session: bool) -> Connect {
    let mut connect = Connect::new(client_id.into(), 0);
    connect.clean_session = clean_session;
    connect
}

pub fn publish_packet(topic_name: &str, payload: &str, qos_pid: QosPid) -> Publish {
    Publish::new(qos_pid, topic(topic_name), Bytes::copy_from_slice(payload.as_bytes()))
}

pub struct Client {
    io: DuplexStream,
    buf: BytesMut,
    next_pid: Pid,
}

impl Client {
    /// Open a connection to `broker` (no CONNECT sent yet).
    pub fn open(broker: &TestBroker) -> Client {
        let (client, server) = duplex(256 * 1024);
        let broker = Arc::clone(broker);
        tokio::spawn(async move { broker.serve_connection(server, PeerInfo::default()).await });
        Client { io: client, buf: BytesMut::new(), next_pid: Pid::default() }
    }

    /// Connect and return the client with the CONNACK.
    pub async fn connect_with(broker: &TestBroker, connect: Connect) -> (Client, Connack) {
        match Client::try_connect_with(broker, connect).await {
            (client, Some(connack)) => (client, connack),
            (_, None) => panic!("connection closed instead of a CONNACK"),
        }
    }

    /// Send CONNECT; `None` if the server closed the connection without a CONNACK.
    pub async fn try_connect_with(broker: &TestBroker, connect: Connect) -> (Client, Option<Connack>) {
        let mut client = Client::open(broker);
        client.send_or_closed(connect).await;
        match timeout(PATIENCE, client.next()).await {
            Ok(Some(Packet::Connack(connack))) => (client, Some(connack)),
            Ok(None) => (client, None),
            Ok(Some(other)) => panic!("expected CONNACK, got {other:?}"),
            Err(_) => panic!("neither CONNACK nor close in time"),
        }
    }

    /// Send a packet, ignoring a connection the server already closed.
    pub async fn send_or_closed(&mut self, packet: impl Into<Packet>) {
        let bytes = packet.into().encode().unwrap();
        let _ = self.io.write_all(bytes.as_ref()).await;
    }

    /// Connect, asserting the connection is accepted.
    pub async fn connect(broker: &TestBroker, client_id: &str) -> Client {
        Client::connect_session(broker, client_id, true).await.0
    }

    /// Connect with the given clean-session flag; returns the session-present flag.
    pub async fn connect_session(broker: &TestBroker, client_id: &str, clean: bool) -> (Client, bool) {
        let (client, connack) = Client::connect_with(broker, connect_packet(client_id, clean)).await;
        assert_eq!(connack.code, mqtt_proto::v3::ConnectReturnCode::Accepted, "{client_id}");
        (client, connack.session_present)
    }

    pub async fn send(&mut self, packet: impl Into<Packet>) {
        let bytes = packet.into().encode().unwrap();
        self.send_raw(bytes.as_ref()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next packet, or `None` if the server closed the connection.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) = Packet::decode(&self.buf).expect("server sent an undecodable packet") {
                self.buf.advance(packet.encode_len().unwrap());
                return Some(packet);
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next packet; panics if none arrives in time or the connection closes.
    pub async fn recv(&mut self) -> Packet {
        match timeout(PATIENCE, self.next()).await {
            Ok(Some(packet)) => packet,
            Ok(None) => panic!("connection closed while expecting a packet"),
            Err(_) => panic!("no packet in time"),
        }
    }

    /// The next PUBLISH; panics on anything else.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Assert that nothing arrives for a while (and the connection stays open).
    pub async fn expect_nothing(&mut self) {
        if let Ok(next) = timeout(QUIET, self.next()).await {
            panic!("expected silence, got {next:?}");
        }
    }

    /// Wait for the server to close the connection; returns the packets received before.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut received = Vec::new();
        loop {
            match timeout(PATIENCE, self.next()).await {
                Ok(Some(packet)) => received.push(packet),
                Ok(None) => return received,
                Err(_) => panic!("connection not closed; received {received:?}"),
            }
        }
    }

    fn take_pid(&mut self) -> Pid {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Subscribe and return the SUBACK return codes.
    pub async fn subscribe(&mut self, filters: &[(&str, QoS)]) -> Vec<SubscribeReturnCode> {
        let pid = self.take_pid();
        let topics = filters.iter().map(|(f, qos)| (TopicFilter::try_from(*f).unwrap(), *qos)).collect();
        self.send(Subscribe::new(pid, topics)).await;
        match self.recv().await {
            Packet::Suback(suback) => {
                assert_eq!(suback.pid, pid);
                suback.topics
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publish at QoS 0.
    pub async fn publish(&mut self, topic_name: &str, payload: &str) {
        self.send(publish_packet(topic_name, payload, QosPid::Level0)).await;
    }

    /// Publish at QoS 1 and wait for the PUBACK.
    pub async fn publish_qos1(&mut self, topic_name: &str, payload: &str) {
        let pid = self.take_pid();
        self.send(publish_packet(topic_name, payload, QosPid::Level1(pid))).await;
        assert_eq!(self.recv().await, Packet::Puback(pid));
    }

    /// Send PINGREQ and wait for PINGRESP: every packet sent before has been handled.
    pub async fn sync(&mut self) {
        self.send(Packet::Pingreq).await;
        assert_eq!(self.recv().await, Packet::Pingresp);
    }

    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect).await;
        self.expect_closed().await;
    }
}
