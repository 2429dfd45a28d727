//! One client connection: the CONNECT handshake, then a reader and a writer polled together in
//! the same task until either ends or the connection is kicked.
//!
//! The reader handles one packet at a time, awaiting the service's answer to a request (or room
//! in a subscriber's queue for a QoS 1 PUBLISH) before handling the next packet; meanwhile it
//! reads on a little way, applying PUBACKs and parking the rest (see
//! [`Connection::handle_reading_on`]). The writer drains the session queue into the socket.
//! A watchdog ends a connection whose reader waited too long for a packet (keep-alive) or whose
//! writer waited too long for the socket (a peer that stopped reading).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_proto::v3::{Connack, Connect, ConnectReturnCode, Packet, Publish, Suback, SubscribeReturnCode};
use mqtt_proto::{Pid, QosPid};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, Instant};
use tracing::{debug, debug_span, field, info, warn, Instrument, Span};

use crate::broker::{Admission, Broker, Waiting};
use crate::error::{ConnectionError, FrameError};
use crate::frame::{self, ClientPacket, FrameReader, SubscribeRequest, UnsubscribeRequest};
use crate::hooks::{DeviceHooks, PeerInfo};
use crate::metrics::METRICS;
use crate::session::{Link, Message, Session};

/// Bytes the writer encodes before writing them out.
const WRITE_BATCH: usize = 64 * 1024;
/// Packets read on while one is being handled, at most (beyond, the socket is not read).
const MAX_PARKED: usize = 16;
/// Payload bytes of parked packets beyond which the socket is not read.
const MAX_PARKED_BYTES: usize = 64 * 1024;
/// Time allowed to close the stream politely (TLS close_notify) or to deliver a refusal.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The future serving one stream until it ends; the connection counts against the cap until
/// then (`admission`), or is closed at once if it was not admitted.
///
/// The stream is split here, before any future exists, so that the (possibly large, e.g. TLS)
/// stream lives once on the heap rather than inline in every layer of the connection's future.
pub(crate) fn serve<H, S>(
    broker: Arc<Broker<H>>,
    stream: S,
    peer: PeerInfo,
    admission: Option<Admission>,
) -> impl Future<Output = ()> + Send + 'static
where
    H: DeviceHooks,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let span = debug_span!("mqtt", remote = ?peer.remote_addr, client_id = field::Empty);
    let (reader, writer) = tokio::io::split(stream);
    run(broker, reader, writer, peer, admission).instrument(span)
}

async fn run<H, R, W>(broker: Arc<Broker<H>>, reader: R, mut writer: W, peer: PeerInfo, admission: Option<Admission>)
where
    H: DeviceHooks,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Held until the connection ends; without it, the stream is dropped (closed) unread.
    let Some(_admission) = admission else {
        return;
    };
    let mut frames = FrameReader::new(reader, broker.config().max_packet_size);

    let Some(connect) = read_connect(&mut frames, &mut writer, broker.config().connect_timeout).await else {
        return;
    };
    let established = match broker.open_session(&peer, &connect) {
        Ok(established) => established,
        Err(code) => {
            debug!(client_id = %connect.client_id, ?code, "connection refused");
            return refuse(&mut writer, code).await;
        }
    };
    // Only CONNECT needs the peer (its certificate); do not hold it for the connection's life.
    drop(peer);
    Span::current().record("client_id", &*established.session.client_id);
    info!(
        client_id = %established.session.client_id,
        clean_session = connect.clean_session,
        keep_alive = connect.keep_alive,
        "device connected"
    );

    let connection = Connection {
        broker: &broker,
        session: &established.session,
        hook: &established.hook,
        link: &established.link,
        watchdog: Watchdog::new(keep_alive_limit(connect.keep_alive, broker.config().max_keep_alive_secs)),
    };
    // Biased, reader first: what handling a packet queued for this client (its PUBACK, a
    // SUBACK) is written in the same poll, by the writer polled next, rather than one
    // self-wake and a trip through the run queue later.
    let ended = tokio::select! {
        biased;
        ended = connection.read_loop(&mut frames) => ended,
        Err(error) = connection.write_loop(&mut writer) => Ended::Error(error),
        () = established.link.killed() => Ended::Kicked,
        error = connection.watchdog.expired() => Ended::Error(error),
    };
    ended.log(&established.session.client_id);
    let _ = timeout(CLOSE_GRACE, writer.shutdown()).await;
    drop((frames, writer));

    // A will's topic obeys the limits of a PUBLISH's; one beyond them is not published.
    let will = connect.last_will.filter(|will| ended.publishes_will() && broker.is_publishable(&will.topic_name));
    broker.close_session(established, will).await;
}

/// Wait for the CONNECT that must open the connection (§3.1).
async fn read_connect<R, W>(frames: &mut FrameReader<R>, writer: &mut W, limit: Duration) -> Option<Box<Connect>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match timeout(limit, frames.next()).await {
        Ok(Ok(Some(ClientPacket::Connect(connect)))) => return Some(connect),
        Ok(Ok(Some(other))) => warn!(packet = ?other.packet_type(), "first packet is not CONNECT"),
        Ok(Ok(None)) => debug!("closed before CONNECT"),
        Ok(Err(FrameError::UnsupportedProtocol(level))) => {
            warn!(level, "unsupported protocol level");
            refuse(writer, ConnectReturnCode::UnacceptableProtocolVersion).await;
        }
        Ok(Err(error)) => warn!(%error, "invalid CONNECT"),
        Err(_) => debug!("no CONNECT in time"),
    }
    None
}

/// Answer a refused CONNECT and close.
async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, code: ConnectReturnCode) {
    METRICS.refused_connects.increment(1);
    let connack = Packet::Connack(Connack::new(false, code));
    let _ = timeout(CLOSE_GRACE, async {
        frame::write_packet(writer, &connack).await?;
        writer.shutdown().await?;
        Ok::<_, FrameError>(())
    })
    .await;
}

/// §3.1.2.10: silence for one and a half times the keep-alive closes the connection. As AWS IoT
/// Core does, a keep-alive of 0 (none) or above `max_secs` (AWS: 1,200 s) is taken as `max_secs`,
/// so that no connection can sit idle for ever.
fn keep_alive_limit(requested_secs: u16, max_secs: u16) -> Option<Duration> {
    let secs = match requested_secs {
        0 => max_secs,
        requested => requested.min(max_secs),
    };
    (secs > 0).then(|| Duration::from_millis(u64::from(secs) * 1500))
}

/// How a connection ended.
#[derive(Debug)]
enum Ended {
    /// The client sent DISCONNECT: the only ending without the will.
    Disconnect,
    /// The stream ended without DISCONNECT.
    Eof,
    /// Kicked: client id taken over, session discarded, or disconnected by the service.
    Kicked,
    Error(ConnectionError),
}

impl Ended {
    fn publishes_will(&self) -> bool {
        !matches!(self, Ended::Disconnect)
    }

    /// One line per connection end, at info (warn when the client broke the rules), so the
    /// default log shows every device coming and going and why.
    fn log(&self, client_id: &str) {
        match self {
            Ended::Error(error) if error.is_misbehaviour() => {
                warn!(client_id, reason = %error, "device disconnected: it broke the protocol or the limits");
            }
            Ended::Error(error) => info!(client_id, reason = %error, "device disconnected"),
            Ended::Disconnect => info!(client_id, reason = "DISCONNECT", "device disconnected"),
            Ended::Eof => info!(client_id, reason = "connection closed by the client", "device disconnected"),
            Ended::Kicked => {
                info!(client_id, reason = "taken over, or disconnected by the service", "device disconnected")
            }
        }
    }
}

impl ConnectionError {
    /// Whether the client broke the protocol or the rules (as opposed to a network problem).
    fn is_misbehaviour(&self) -> bool {
        match self {
            ConnectionError::Frame(FrameError::Io(_) | FrameError::Truncated) => false,
            ConnectionError::Frame(_) | ConnectionError::Protocol(_) | ConnectionError::PublishDenied(_) => true,
            ConnectionError::Io(_)
            | ConnectionError::KeepAliveExpired
            | ConnectionError::WriteStalled
            | ConnectionError::Superseded => false,
        }
    }
}

/// Packets read while another was being handled, to handle next.
#[derive(Default)]
struct Parked {
    packets: VecDeque<ClientPacket>,
    /// Payload bytes of `packets`.
    bytes: usize,
    /// The stream ended after them.
    ended: bool,
}

/// What a parked packet holds, for [`MAX_PARKED_BYTES`].
fn parked_cost(packet: &ClientPacket) -> usize {
    match packet {
        ClientPacket::Publish(publish) => publish.topic_name.len() + publish.payload.len(),
        _ => 0,
    }
}

/// Whether to keep reading after a packet.
enum Flow {
    Continue,
    Disconnect,
}

/// An established connection.
struct Connection<'a, H: DeviceHooks> {
    broker: &'a Arc<Broker<H>>,
    session: &'a Arc<Session<H::Session>>,
    hook: &'a H::Session,
    link: &'a Link,
    watchdog: Watchdog,
}

/// No wait in progress, in a [`Watchdog`] clock.
const NOT_WAITING: u64 = 0;

/// The keep-alive and write-stall limits of one connection, checked lazily.
///
/// A `tokio::time::timeout` around every packet read and every batch written registered and
/// removed one timer per packet (4.4 % of the broker's instructions under QoS 1 load). Here the
/// reader and the writer only note when they start and stop waiting (a clock read and a store),
/// and one sleep per connection, re-armed only when it fires, ends the connection once a wait
/// has lasted the limit — the same limits, to the timer's millisecond.
struct Watchdog {
    /// 1.5 times the keep-alive; `None`: no limit.
    limit: Option<Duration>,
    origin: Instant,
    /// Since when the reader has been waiting for a packet: nanoseconds after `origin`, plus
    /// one; [`NOT_WAITING`] while it handles one.
    reading_since: AtomicU64,
    /// Since when the writer has been waiting for the socket to take a batch, likewise.
    writing_since: AtomicU64,
}

impl Watchdog {
    fn new(limit: Option<Duration>) -> Self {
        Watchdog {
            limit,
            origin: Instant::now(),
            reading_since: AtomicU64::new(NOT_WAITING),
            writing_since: AtomicU64::new(NOT_WAITING),
        }
    }

    /// Now, as a clock value (never [`NOT_WAITING`]).
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Run `future` as a wait timed by `clock`.
    async fn timing<F: Future>(&self, clock: &AtomicU64, future: F) -> F::Output {
        if self.limit.is_none() {
            return future.await;
        }
        clock.store(self.now(), Ordering::Relaxed);
        let output = future.await;
        clock.store(NOT_WAITING, Ordering::Relaxed);
        output
    }

    /// Resolves once a wait has lasted the limit, with why; never without a limit.
    async fn expired(&self) -> ConnectionError {
        let Some(limit) = self.limit else {
            return std::future::pending().await;
        };
        let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX / 2);
        let sleep = tokio::time::sleep(limit);
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().await;
            let now = self.now();
            let mut next = now.saturating_add(limit_ns);
            let clocks = [
                (&self.reading_since, ConnectionError::KeepAliveExpired),
                (&self.writing_since, ConnectionError::WriteStalled),
            ];
            for (clock, error) in clocks {
                let since = clock.load(Ordering::Relaxed);
                if since == NOT_WAITING {
                    continue;
                }
                let due = since.saturating_add(limit_ns);
                if due <= now {
                    return error;
                }
                next = next.min(due);
            }
            sleep.as_mut().reset(self.origin + Duration::from_nanos(next - 1));
        }
    }
}

impl<H: DeviceHooks> Connection<'_, H> {
    async fn read_loop<R: AsyncRead + Unpin>(&self, frames: &mut FrameReader<R>) -> Ended {
        match self.read_packets(frames).await {
            Ok(ended) => ended,
            Err(error) => Ended::Error(error),
        }
    }

    async fn read_packets<R: AsyncRead + Unpin>(&self, frames: &mut FrameReader<R>) -> Result<Ended, ConnectionError> {
        let mut parked = Parked::default();
        loop {
            let packet = match parked.packets.pop_front() {
                Some(packet) => {
                    parked.bytes -= parked_cost(&packet);
                    packet
                }
                None if parked.ended => return Ok(Ended::Eof),
                None => {
                    let next = self.watchdog.timing(&self.watchdog.reading_since, frames.next()).await;
                    let Some(packet) = next? else {
                        return Ok(Ended::Eof);
                    };
                    packet
                }
            };
            // A PUBACK is applied at once: a subscriber sends one per delivery, and it needs
            // neither the boxed future below nor the read-on loop.
            let packet = match packet {
                ClientPacket::Puback(pid) => {
                    self.on_puback(pid);
                    continue;
                }
                packet => packet,
            };
            // Boxed: handling a packet takes a large future for a short time; keeping it out of
            // line keeps idle connections small.
            if let Flow::Disconnect = Box::pin(self.handle_reading_on(packet, frames, &mut parked)).await? {
                return Ok(Ended::Disconnect);
            }
        }
    }

    /// Handle `packet`, reading on meanwhile: PUBACKs are applied at once, the other packets
    /// parked (handled next, in order) until [`MAX_PARKED`] or [`MAX_PARKED_BYTES`], then the
    /// socket is left unread. A QoS 1 PUBLISH may wait for room in a subscriber's queue, and
    /// that room may need this client's own PUBACKs (it subscribes to what it publishes, or two
    /// clients publish to each other): they must not queue behind the waiting PUBLISH.
    async fn handle_reading_on<R: AsyncRead + Unpin>(
        &self,
        packet: ClientPacket,
        frames: &mut FrameReader<R>,
        parked: &mut Parked,
    ) -> Result<Flow, ConnectionError> {
        let handling = self.handle(packet);
        tokio::pin!(handling);
        loop {
            let room = !parked.ended && parked.packets.len() < MAX_PARKED && parked.bytes < MAX_PARKED_BYTES;
            tokio::select! {
                biased;
                flow = &mut handling => return flow,
                // `FrameReader::next` is cancel-safe: what it read stays in its buffer.
                next = frames.next(), if room => match next? {
                    None => parked.ended = true,
                    Some(ClientPacket::Puback(pid)) => self.on_puback(pid),
                    Some(packet) => {
                        parked.bytes += parked_cost(&packet);
                        parked.packets.push_back(packet);
                    }
                },
            }
        }
    }

    async fn handle(&self, packet: ClientPacket) -> Result<Flow, ConnectionError> {
        match packet {
            ClientPacket::Publish(publish) => {
                METRICS.received.increment(1);
                self.on_publish(publish).await?
            }
            ClientPacket::Puback(pid) => self.on_puback(pid),
            ClientPacket::Subscribe(request) => self.on_subscribe(request).await?,
            ClientPacket::Unsubscribe(request) => self.on_unsubscribe(request).await?,
            ClientPacket::Pingreq => self.send(Packet::Pingresp).await?,
            ClientPacket::Disconnect => return Ok(Flow::Disconnect),
            ClientPacket::Connect(_) => return Err(ConnectionError::Protocol("second CONNECT")),
        }
        Ok(Flow::Continue)
    }

    fn on_puback(&self, pid: Pid) {
        if !self.session.ack(pid) {
            debug!(pid = pid.value(), "PUBACK for a packet id not in flight");
        }
    }

    async fn send(&self, packet: Packet) -> Result<(), ConnectionError> {
        Ok(self.session.send(self.link, packet).await?)
    }

    async fn on_publish(&self, publish: Publish) -> Result<(), ConnectionError> {
        let pid = match publish.qos_pid {
            QosPid::Level0 => None,
            QosPid::Level1(pid) => Some(pid),
            QosPid::Level2(_) => return Err(ConnectionError::Protocol("QoS 2 is not supported")),
        };
        if !self.broker.is_publishable(&publish.topic_name) {
            return Err(ConnectionError::Protocol("invalid topic name, or beyond the size or slash limit"));
        }
        // A QoS 1 PUBLISH is acknowledged only once every delivery is queued: a full subscriber
        // queue holds the PUBACK (and this client's next packets) back rather than losing it.
        let waiting = if pid.is_some() { Waiting::ForRoom } else { Waiting::No };
        self.broker.publish_from(self.session, self.hook, Message::from(publish), waiting).await?;
        if let Some(pid) = pid {
            self.send(Packet::Puback(pid)).await?;
        }
        Ok(())
    }

    /// Filters after the first [`BrokerConfig::max_filters_per_subscribe`] get 0x80: AWS
    /// documents the limit of 8 per SUBSCRIBE but not its answer; failing the extra filters
    /// keeps the connection and tells the client which ones did not take.
    ///
    /// [`BrokerConfig::max_filters_per_subscribe`]: crate::BrokerConfig::max_filters_per_subscribe
    async fn on_subscribe(&self, request: SubscribeRequest) -> Result<(), ConnectionError> {
        let max_filters = self.broker.config().max_filters_per_subscribe;
        if request.filters.len() > max_filters {
            debug!(filters = request.filters.len(), max_filters, "too many filters in one SUBSCRIBE");
        }
        let granted: Vec<_> = request
            .filters
            .iter()
            .enumerate()
            .map(|(i, (filter, qos))| {
                (i < max_filters).then(|| self.broker.subscribe(self.session, self.hook, filter, *qos)).flatten()
            })
            .collect();
        let codes = granted.iter().map(|qos| qos.map_or(SubscribeReturnCode::Failure, Into::into)).collect();
        self.send(Suback::new(request.pid, codes).into()).await?;
        for ((filter, _), granted) in request.filters.iter().zip(granted) {
            if let Some(qos) = granted {
                self.broker.deliver_retained(self.session, self.hook, filter, qos);
            }
        }
        Ok(())
    }

    async fn on_unsubscribe(&self, request: UnsubscribeRequest) -> Result<(), ConnectionError> {
        for filter in &request.filters {
            self.broker.unsubscribe(self.session, filter);
        }
        self.send(Packet::Unsuback(request.pid)).await
    }

    /// Write whatever the session queue holds for this connection, batch by batch. Ends only on
    /// an error: the peer went away, did not take a batch within 1.5 times the keep-alive (a
    /// peer that stopped reading), or the session moved to another connection.
    async fn write_loop<W: AsyncWrite + Unpin>(&self, writer: &mut W) -> Result<Infallible, ConnectionError> {
        let mut buf = BytesMut::new();
        loop {
            self.session.drain_into(self.link, &mut buf, WRITE_BATCH)?;
            if buf.is_empty() {
                // Idle: hold no buffer while waiting.
                buf = BytesMut::new();
                self.link.woken().await;
                continue;
            }
            let write = async {
                writer.write_all(&buf).await?;
                writer.flush().await
            };
            self.watchdog.timing(&self.watchdog.writing_since, write).await?;
            buf.clear();
            self.link.notify_drained();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_zero_or_above_the_maximum_is_the_maximum() {
        let secs = |requested| keep_alive_limit(requested, 1200).map(|limit| limit.as_secs());
        assert_eq!(secs(0), Some(1800));
        assert_eq!(secs(u16::MAX), Some(1800));
        assert_eq!(secs(1200), Some(1800));
        assert_eq!(secs(10), Some(15));
        assert_eq!(keep_alive_limit(0, 0), None);
    }
}
