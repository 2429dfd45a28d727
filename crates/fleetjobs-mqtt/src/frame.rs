//! Byte framing: split the inbound stream into control packets and decode them; encode outbound
//! packets.
//!
//! The fixed header is parsed here so that an oversize packet is rejected before its body is
//! buffered. The body is then decoded by `mqtt-proto`, except SUBSCRIBE and UNSUBSCRIBE: their
//! filters are decoded as plain strings so that one invalid filter yields a `0x80` return code
//! instead of an undecodable packet.

use bytes::{Buf, BufMut, BytesMut};
use mqtt_proto::v3::{Connect, Packet, PacketType, Publish, Suback, SubscribeReturnCode};
use mqtt_proto::{Pid, QoS, QosPid};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;

/// A read buffer larger than this is released whenever it is empty, so that idle connections
/// stay small.
const IDLE_BUFFER_LIMIT: usize = 256;
/// Most bytes reserved ahead of a read: a large packet's buffer grows with what actually
/// arrives, not with what its header announces.
const READ_AHEAD: usize = 8 * 1024;
/// Fixed header: one type byte and at most four remaining-length bytes.
const MAX_HEADER_LEN: usize = 5;
/// Room made for a read while the next packet's header is incomplete.
const MIN_READ: usize = 64;
/// The read buffer never holds more than the largest packet allowed, or this (for tiny limits).
#[cfg(test)]
const MIN_BUFFER: usize = MAX_HEADER_LEN + MIN_READ;

const SUBSCRIBE: u8 = 8;
const UNSUBSCRIBE: u8 = 10;
/// The flags SUBSCRIBE and UNSUBSCRIBE must carry (§3.8.1, §3.10.1).
const SUBSCRIBE_FLAGS: u8 = 0b0010;

/// A packet a client may send to the server.
#[derive(Debug)]
pub(crate) enum ClientPacket {
    Connect(Box<Connect>),
    Publish(Publish),
    Puback(Pid),
    Subscribe(SubscribeRequest),
    Unsubscribe(UnsubscribeRequest),
    Pingreq,
    Disconnect,
}

/// A SUBSCRIBE whose filters are not validated yet.
#[derive(Debug)]
pub(crate) struct SubscribeRequest {
    pub pid: Pid,
    pub filters: Vec<(String, QoS)>,
}

/// An UNSUBSCRIBE whose filters are not validated.
#[derive(Debug)]
pub(crate) struct UnsubscribeRequest {
    pub pid: Pid,
    pub filters: Vec<String>,
}

impl ClientPacket {
    /// The packet type, for logs.
    pub fn packet_type(&self) -> PacketType {
        match self {
            ClientPacket::Connect(_) => PacketType::Connect,
            ClientPacket::Publish(_) => PacketType::Publish,
            ClientPacket::Puback(_) => PacketType::Puback,
            ClientPacket::Subscribe(_) => PacketType::Subscribe,
            ClientPacket::Unsubscribe(_) => PacketType::Unsubscribe,
            ClientPacket::Pingreq => PacketType::Pingreq,
            ClientPacket::Disconnect => PacketType::Disconnect,
        }
    }
}

impl TryFrom<Packet> for ClientPacket {
    type Error = FrameError;

    fn try_from(packet: Packet) -> Result<Self, FrameError> {
        Ok(match packet {
            Packet::Connect(connect) => ClientPacket::Connect(Box::new(connect)),
            Packet::Publish(publish) => ClientPacket::Publish(publish),
            Packet::Puback(pid) => ClientPacket::Puback(pid),
            Packet::Pingreq => ClientPacket::Pingreq,
            Packet::Disconnect => ClientPacket::Disconnect,
            other => return Err(FrameError::UnexpectedPacket(other.get_type())),
        })
    }
}

/// Reads whole control packets from a byte stream.
pub(crate) struct FrameReader<R> {
    reader: R,
    buf: BytesMut,
    max_packet_size: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max_packet_size: usize) -> Self {
        Self { reader, buf: BytesMut::new(), max_packet_size }
    }

    /// The next packet, or `None` when the stream ended cleanly between packets.
    pub async fn next(&mut self) -> Result<Option<ClientPacket>, FrameError> {
        loop {
            let wanted = match self.try_decode()? {
                Decoded::Packet(packet) => return Ok(Some(packet)),
                Decoded::Incomplete { wanted } => wanted,
            };
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER_LIMIT {
                self.buf = BytesMut::new();
            }
            self.make_room(wanted);
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
    }

    /// Decode the packet at the front of the buffer if it is complete; otherwise say how many
    /// bytes the buffer should have room for.
    fn try_decode(&mut self) -> Result<Decoded, FrameError> {
        let Some((header_len, remaining_len)) = parse_fixed_header(&self.buf)? else {
            return Ok(Decoded::Incomplete { wanted: self.buf.len() + MIN_READ });
        };
        let size = header_len + remaining_len;
        if size > self.max_packet_size {
            return Err(FrameError::TooLarge { size, max: self.max_packet_size });
        }
        if self.buf.len() < size {
            // Grow with what arrives (doubling, in steps of at most READ_AHEAD), never past
            // the announced size.
            let wanted = (self.buf.len() + READ_AHEAD).max(2 * self.buf.capacity()).min(size);
            return Ok(Decoded::Incomplete { wanted });
        }
        let packet = decode(&self.buf[..size], header_len);
        self.buf.advance(size);
        packet.map(Decoded::Packet)
    }

    /// Give the buffer room for `wanted` bytes: in its own allocation if that is large enough
    /// (moving the unread bytes to its start), else in a new one of exactly that size (not
    /// `BytesMut::reserve`, which may double past the packet size limit). It always has room
    /// for at least one more byte, so that a read never has to allocate on its own.
    fn make_room(&mut self, wanted: usize) {
        let wanted = wanted.max(self.buf.len() + 1);
        if self.buf.capacity() < wanted && !self.buf.try_reclaim(wanted - self.buf.len()) {
            let mut grown = BytesMut::with_capacity(wanted);
            grown.extend_from_slice(&self.buf);
            self.buf = grown;
        }
    }

    #[cfg(test)]
    fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// What [`FrameReader::try_decode`] found.
enum Decoded {
    Packet(ClientPacket),
    Incomplete { wanted: usize },
}

/// Parse a fixed header: `Some((header length, remaining length))`, or `None` if incomplete.
fn parse_fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if matches!(first >> 4, 0 | 15) {
        return Err(FrameError::Malformed("reserved packet type"));
    }
    let mut remaining_len = 0;
    for (i, &byte) in buf[1..].iter().take(MAX_HEADER_LEN - 1).enumerate() {
        remaining_len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 2, remaining_len)));
        }
    }
    if buf.len() >= MAX_HEADER_LEN {
        Err(FrameError::Malformed("remaining length longer than four bytes"))
    } else {
        Ok(None)
    }
}

/// Decode one complete frame.
fn decode(frame: &[u8], header_len: usize) -> Result<ClientPacket, FrameError> {
    let (type_and_flags, body) = (frame[0], &frame[header_len..]);
    match type_and_flags >> 4 {
        SUBSCRIBE => decode_subscribe(type_and_flags, body).map(ClientPacket::Subscribe),
        UNSUBSCRIBE => decode_unsubscribe(type_and_flags, body).map(ClientPacket::Unsubscribe),
        _ => {
            let packet = Packet::decode(frame)
                .map_err(protocol_level_error)?
                .ok_or(FrameError::Malformed("packet shorter than its contents"))?;
            // mqtt-proto ignores bytes after the last field; a well-formed packet has none.
            if packet.encode_len()? != mqtt_proto::total_len(body.len())? {
                return Err(FrameError::Malformed("packet longer than its contents"));
            }
            packet.try_into()
        }
    }
}

/// Distinguish "MQTT, but a version we do not speak" (answered with CONNACK 1) from garbage.
fn protocol_level_error(error: mqtt_proto::Error) -> FrameError {
    match error {
        mqtt_proto::Error::InvalidProtocol(name, level) if &*name == "MQTT" => FrameError::UnsupportedProtocol(level),
        mqtt_proto::Error::UnexpectedProtocol(protocol) => FrameError::UnsupportedProtocol(protocol.to_pair().1),
        other => FrameError::Decode(other),
    }
}

fn decode_subscribe(type_and_flags: u8, body: &[u8]) -> Result<SubscribeRequest, FrameError> {
    let mut body = Body::new(type_and_flags, body)?;
    let pid = body.pid()?;
    let mut filters = Vec::new();
    while !body.is_empty() {
        let filter = body.string()?.to_owned();
        // Bits 2-7 are reserved and must be zero (§3.8.3.1); QoS 3 is malformed too.
        let qos = QoS::from_u8(body.u8()?)?;
        filters.push((filter, qos));
    }
    if filters.is_empty() {
        return Err(FrameError::Malformed("SUBSCRIBE without topic filters"));
    }
    Ok(SubscribeRequest { pid, filters })
}

fn decode_unsubscribe(type_and_flags: u8, body: &[u8]) -> Result<UnsubscribeRequest, FrameError> {
    let mut body = Body::new(type_and_flags, body)?;
    let pid = body.pid()?;
    let mut filters = Vec::new();
    while !body.is_empty() {
        filters.push(body.string()?.to_owned());
    }
    if filters.is_empty() {
        return Err(FrameError::Malformed("UNSUBSCRIBE without topic filters"));
    }
    Ok(UnsubscribeRequest { pid, filters })
}

/// A cursor over the body of a SUBSCRIBE or UNSUBSCRIBE.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn new(type_and_flags: u8, body: &'a [u8]) -> Result<Self, FrameError> {
        if type_and_flags & 0x0f != SUBSCRIBE_FLAGS {
            return Err(FrameError::Malformed("invalid fixed header flags"));
        }
        Ok(Self(body))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Malformed("field runs past the end of the packet"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn pid(&mut self) -> Result<Pid, FrameError> {
        Ok(Pid::try_from(self.u16()?)?)
    }

    fn string(&mut self) -> Result<&'a str, FrameError> {
        let len = usize::from(self.u16()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| FrameError::Malformed("invalid UTF-8"))
    }
}

/// Append the encoding of `packet` to `buf`.
pub(crate) fn encode(packet: &Packet, buf: &mut BytesMut) -> Result<(), FrameError> {
    match packet {
        Packet::Suback(suback) => encode_suback(suback, buf),
        other => buf.extend_from_slice(other.encode()?.as_ref()),
    }
    Ok(())
}

/// The largest remaining length §2.2.3 can express.
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Append a PUBLISH (§3.3) to `buf`. `mqtt-proto` would first encode it into a `Vec` of its
/// own (an allocation and a copy per delivery, on the broker's hottest path); this writes it in
/// place, byte for byte the same.
pub(crate) fn encode_publish(
    buf: &mut BytesMut,
    dup: bool,
    qos_pid: QosPid,
    retain: bool,
    topic: &str,
    payload: &[u8],
) -> Result<(), FrameError> {
    const PUBLISH: u8 = 0x30;
    let pid = qos_pid.pid();
    let remaining = 2 + topic.len() + if pid.is_some() { 2 } else { 0 } + payload.len();
    let topic_len = u16::try_from(topic.len()).map_err(|_| FrameError::Malformed("topic name over 65,535 bytes"))?;
    if remaining > MAX_REMAINING_LENGTH {
        return Err(FrameError::TooLarge { size: remaining, max: MAX_REMAINING_LENGTH });
    }
    let flags = (u8::from(dup) << 3) | ((qos_pid.qos() as u8) << 1) | u8::from(retain);
    buf.reserve(1 + 4 + remaining);
    buf.put_u8(PUBLISH | flags);
    put_remaining_length(buf, remaining);
    buf.put_u16(topic_len);
    buf.extend_from_slice(topic.as_bytes());
    if let Some(pid) = pid {
        buf.put_u16(pid.value());
    }
    buf.extend_from_slice(payload);
    Ok(())
}

/// mqtt-proto 0.4 encodes the failure return code as 3 instead of 0x80 (§3.9.3), so SUBACK is
/// encoded here.
fn encode_suback(suback: &Suback, buf: &mut BytesMut) {
    const SUBACK: u8 = 0x90;
    const FAILURE: u8 = 0x80;
    buf.put_u8(SUBACK);
    put_remaining_length(buf, 2 + suback.topics.len());
    buf.put_u16(suback.pid.value());
    buf.extend(suback.topics.iter().map(|code| match code {
        SubscribeReturnCode::MaxLevel0 => 0,
        SubscribeReturnCode::MaxLevel1 => 1,
        SubscribeReturnCode::MaxLevel2 => 2,
        SubscribeReturnCode::Failure => FAILURE,
    }));
}

/// The variable-length encoding of §2.2.3.
fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            return;
        }
    }
}

/// Write one packet straight to a stream (used before the connection's writer exists).
pub(crate) async fn write_packet<W: AsyncWrite + Unpin>(writer: &mut W, packet: &Packet) -> Result<(), FrameError> {
    let mut buf = BytesMut::new();
    encode(packet, &mut buf)?;
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::v3::{Connack, ConnectReturnCode};
    use proptest::prelude::*;

    async fn read_all(bytes: &[u8], max: usize) -> Vec<Result<Option<ClientPacket>, FrameError>> {
        let mut reader = FrameReader::new(bytes, max);
        let mut out = Vec::new();
        loop {
            let next = reader.next().await;
            let done = !matches!(next, Ok(Some(_)));
            out.push(next);
            if done {
                return out;
            }
        }
    }

    #[test]
    fn publish_is_encoded_as_mqtt_proto_does() {
        let pid = Pid::try_from(513).unwrap();
        for (dup, qos_pid, retain, payload_len) in [
            (false, QosPid::Level0, false, 0),
            (false, QosPid::Level1(pid), false, 64),
            (true, QosPid::Level1(pid), true, 200),
            (false, QosPid::Level0, true, 20_000),
        ] {
            let topic = mqtt_proto::TopicName::try_from("bench/qos1").unwrap();
            let payload = bytes::Bytes::from(vec![7u8; payload_len]);
            let publish = Publish { dup, retain, qos_pid, topic_name: topic.clone(), payload: payload.clone() };
            let expected = Packet::Publish(publish).encode().unwrap();
            let mut buf = BytesMut::from(&b"before"[..]);
            encode_publish(&mut buf, dup, qos_pid, retain, &topic, &payload).unwrap();
            assert_eq!(&buf[..6], b"before");
            assert_eq!(&buf[6..], expected.as_ref(), "{dup} {qos_pid:?} {retain} {payload_len}");
        }
    }

    #[tokio::test]
    async fn reads_consecutive_packets_then_eof() {
        let mut bytes = Packet::Pingreq.encode().unwrap().as_ref().to_vec();
        bytes.extend_from_slice(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]);
        bytes.extend_from_slice(Packet::Disconnect.encode().unwrap().as_ref());
        let out = read_all(&bytes, 1024).await;
        assert!(matches!(out[0], Ok(Some(ClientPacket::Pingreq))));
        let Ok(Some(ClientPacket::Subscribe(sub))) = &out[1] else { panic!("{:?}", out[1]) };
        assert_eq!(sub.filters, vec![("a".to_owned(), QoS::Level1)]);
        assert!(matches!(out[2], Ok(Some(ClientPacket::Disconnect))));
        assert!(matches!(out[3], Ok(None)));
    }

    #[tokio::test]
    async fn reassembles_packets_arriving_in_small_pieces() {
        let publish = Publish::new(
            mqtt_proto::QosPid::Level0,
            mqtt_proto::TopicName::try_from("t").unwrap(),
            vec![7u8; 20_000].into(),
        );
        let mut bytes = Packet::Publish(publish.clone()).encode().unwrap().as_ref().to_vec();
        bytes.extend_from_slice(Packet::Pingreq.encode().unwrap().as_ref());
        // A pipe holding 100 bytes at a time.
        let (mut client, server) = tokio::io::duplex(100);
        tokio::spawn(async move { client.write_all(&bytes).await });
        let mut reader = FrameReader::new(server, 64 * 1024);
        let Ok(Some(ClientPacket::Publish(received))) = reader.next().await else { panic!("expected PUBLISH") };
        assert_eq!(received, publish);
        assert!(matches!(reader.next().await, Ok(Some(ClientPacket::Pingreq))));
        assert!(matches!(reader.next().await, Ok(None)));
    }

    #[tokio::test]
    async fn rejects_bad_frames() {
        let cases: [(&[u8], &str); 7] = [
            (&[0x00, 0x00], "reserved type"),
            (&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], "five-byte length"),
            (&[0xc0, 0x01, 0x00], "PINGREQ with a body"),
            (&[0x82, 0x02, 0x00, 0x01], "SUBSCRIBE without filters"),
            (&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01], "SUBSCRIBE flags"),
            (&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04], "SUBSCRIBE reserved QoS bits"),
            (&[0x30, 0x03, 0x00], "truncated"),
        ];
        for (bytes, what) in cases {
            let out = read_all(bytes, 1024).await;
            assert!(out.last().unwrap().is_err(), "{what}: {out:?}");
        }
    }

    #[tokio::test]
    async fn rejects_server_packets_and_oversize() {
        let connack = Packet::Connack(Connack::new(false, ConnectReturnCode::Accepted));
        let out = read_all(connack.encode().unwrap().as_ref(), 1024).await;
        assert!(matches!(out[0], Err(FrameError::UnexpectedPacket(PacketType::Connack))));

        // Rejected from the header alone, before the body arrives.
        let out = read_all(&[0x30, 0x80, 0x08], 1024).await;
        assert!(matches!(out[0], Err(FrameError::TooLarge { size: 1027, max: 1024 })));
    }

    #[test]
    fn suback_failure_is_0x80() {
        let codes = vec![SubscribeReturnCode::MaxLevel1, SubscribeReturnCode::Failure];
        let mut buf = BytesMut::new();
        encode(&Suback::new(Pid::try_from(258).unwrap(), codes).into(), &mut buf).unwrap();
        assert_eq!(&buf[..], &[0x90, 0x04, 0x01, 0x02, 0x01, 0x80]);
    }

    #[test]
    fn remaining_length_encoding() {
        for (len, expected) in [(0, &[0x00][..]), (127, &[0x7f]), (128, &[0x80, 0x01]), (16_384, &[0x80, 0x80, 0x01])] {
            let mut buf = BytesMut::new();
            put_remaining_length(&mut buf, len);
            assert_eq!(&buf[..], expected, "{len}");
        }
    }

    /// Yields its bytes in pieces of the given sizes (cycled), as a socket would.
    struct Pieces {
        data: Vec<u8>,
        sizes: Vec<usize>,
        next: usize,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let size = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            let n = size.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data.drain(..n);
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Pieces of a client stream: valid packets of all kinds (some large), headers announcing
    /// huge lengths, and noise.
    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        let encoded = |packet: Packet| packet.encode().unwrap().as_ref().to_vec();
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            (0usize..3000).prop_map(move |len| encoded(Packet::Publish(Publish::new(
                mqtt_proto::QosPid::Level0,
                mqtt_proto::TopicName::try_from("a/b").unwrap(),
                vec![b'x'; len].into(),
            )))),
            Just(encoded(Packet::Pingreq)),
            Just(vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]),
            Just(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00".to_vec()),
            (1u8..16, prop::collection::vec(0x80u8..=0xff, 0..4), any::<u8>()).prop_map(|(kind, mut len, last)| {
                let mut header = vec![kind << 4];
                len.push(last & 0x7f);
                header.extend(len);
                header
            }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(400))]

        /// Whatever arrives, in whatever pieces: no panic, an end (a packet stream ending in
        /// EOF or an error), and a read buffer never larger than the packet size limit.
        #[test]
        fn any_bytes_decode_without_panic_within_the_packet_size(
            fragments in prop::collection::vec(fragment(), 0..12),
            sizes in prop::collection::vec(1usize..5000, 1..6),
            max_packet_size in 2usize..4096,
        ) {
            let data: Vec<u8> = fragments.concat();
            let total = data.len();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut reader = FrameReader::new(Pieces { data, sizes, next: 0 }, max_packet_size);
            let mut packets = 0;
            loop {
                let next = runtime.block_on(reader.next());
                let capacity = reader.buffer_capacity();
                proptest::prop_assert!(
                    capacity <= max_packet_size.max(MIN_BUFFER),
                    "buffer of {} bytes for a {} byte limit", capacity, max_packet_size
                );
                match next {
                    Ok(Some(_)) => packets += 1,
                    Ok(None) | Err(_) => break,
                }
                proptest::prop_assert!(packets <= total, "more packets than bytes");
            }
        }
    }

    #[tokio::test]
    async fn mqtt5_connect_is_unsupported_protocol() {
        let mut bytes = vec![0x10, 0x0d, 0x00, 0x04];
        bytes.extend_from_slice(b"MQTT");
        bytes.extend_from_slice(&[0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00]);
        let out = read_all(&bytes, 1024).await;
        assert!(matches!(out[0], Err(FrameError::UnsupportedProtocol(5))), "{out:?}");
    }
}
