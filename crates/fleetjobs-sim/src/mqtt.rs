//! A minimal MQTT 3.1.1 client connection over mutual TLS, built on the server's own codec
//! (`mqtt-proto`): CONNECT, SUBSCRIBE, PUBLISH QoS 0/1, PUBACK, PINGREQ. One reader task per
//! connection turns the byte stream into packets on a channel, so the device can wait on
//! packets and timers at once (a channel receive is cancel-safe; a half-read packet is not).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::v3::{Connect, ConnectReturnCode, Packet, Publish, Subscribe, SubscribeReturnCode};
use mqtt_proto::{Pid, QoS, QosPid, TopicFilter, TopicName};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Largest packet accepted from the server (AWS IoT's 128 KB plus headers).
const MAX_PACKET: usize = 130 * 1024;
/// Packets read ahead of the device.
const INCOMING_QUEUE: usize = 64;
/// Read buffer per connection: small, since thousands of connections share one process.
const READ_BUFFER: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("CONNACK refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("SUBACK refused a subscription")]
    SubscribeRefused,
    #[error("the server closed the connection")]
    Closed,
    #[error("unexpected packet while {0}")]
    Unexpected(&'static str),
    #[error("invalid topic or packet: {0}")]
    Codec(String),
}

type Stream = TlsStream<TcpStream>;

/// One open MQTT session.
pub struct Connection {
    writer: WriteHalf<Stream>,
    incoming: mpsc::Receiver<Packet>,
    /// Packets that arrived while waiting for an acknowledgement, handed out first.
    early: VecDeque<Packet>,
    reader: JoinHandle<()>,
    next_pid: u16,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Read one packet: the fixed header by hand (to bound the size before buffering), then the
/// codec.
async fn read_packet<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<Packet, MqttError> {
    buf.clear();
    buf.push(r.read_u8().await?);
    let (mut len, mut shift) = (0usize, 0u32);
    loop {
        let b = r.read_u8().await?;
        buf.push(b);
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(MqttError::Codec("remaining length takes more than 4 bytes".into()));
        }
    }
    if len > MAX_PACKET {
        return Err(MqttError::Codec(format!("a {len}-byte packet")));
    }
    let start = buf.len();
    buf.resize(start + len, 0);
    r.read_exact(&mut buf[start..]).await?;
    Packet::decode(buf).map_err(|e| MqttError::Codec(e.to_string()))?.ok_or(MqttError::Codec("truncated".into()))
}

async fn read_loop(reader: ReadHalf<Stream>, tx: mpsc::Sender<Packet>) {
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let mut buf = Vec::new();
    while let Ok(packet) = read_packet(&mut reader, &mut buf).await {
        if tx.send(packet).await.is_err() {
            return;
        }
        if buf.capacity() > READ_BUFFER {
            buf = Vec::new();
        }
    }
}

fn topic(name: &str) -> Result<TopicName, MqttError> {
    TopicName::try_from(name).map_err(|e| MqttError::Codec(e.to_string()))
}

impl Connection {
    /// TCP, TLS with the client certificate in `tls`, CONNECT (clean session) and CONNACK, all
    /// within `timeout`.
    pub async fn open(
        addr: &str,
        server_name: ServerName<'static>,
        tls: TlsConnector,
        client_id: &str,
        keep_alive_secs: u16,
        timeout: Duration,
    ) -> Result<Connection, MqttError> {
        let open = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let stream = tls.connect(server_name, tcp).await?;
            let (reader, writer) = tokio::io::split(stream);
            let (tx, incoming) = mpsc::channel(INCOMING_QUEUE);
            let reader = tokio::spawn(read_loop(reader, tx));
            let mut conn = Connection { writer, incoming, early: VecDeque::new(), reader, next_pid: 0 };
            conn.send(&Packet::Connect(Connect::new(Arc::from(client_id), keep_alive_secs))).await?;
            match conn.incoming.recv().await {
                Some(Packet::Connack(ack)) if ack.code == ConnectReturnCode::Accepted => Ok(conn),
                Some(Packet::Connack(ack)) => Err(MqttError::Refused(ack.code)),
                Some(_) => Err(MqttError::Unexpected("waiting for CONNACK")),
                None => Err(MqttError::Closed),
            }
        };
        tokio::time::timeout(timeout, open).await.map_err(|_| MqttError::Timeout("connecting"))?
    }

    async fn send(&mut self, packet: &Packet) -> Result<(), MqttError> {
        let bytes = packet.encode().map_err(|e| MqttError::Codec(e.to_string()))?;
        self.writer.write_all(bytes.as_ref()).await?;
        self.writer.flush().await?;
        Ok(())
    }

    fn pid(&mut self) -> Result<Pid, MqttError> {
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        Pid::try_from(self.next_pid).map_err(|e| MqttError::Codec(e.to_string()))
    }

    /// SUBSCRIBE at QoS 1 and wait for the SUBACK; whatever arrives before it is kept.
    pub async fn subscribe(&mut self, filters: &[String], timeout: Duration) -> Result<(), MqttError> {
        let topics = filters
            .iter()
            .map(|f| TopicFilter::try_from(f.as_str()).map(|t| (t, QoS::Level1)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MqttError::Codec(e.to_string()))?;
        let pid = self.pid()?;
        self.send(&Packet::Subscribe(Subscribe::new(pid, topics))).await?;
        let wait = async {
            loop {
                match self.incoming.recv().await {
                    Some(Packet::Suback(ack)) if ack.pid == pid => {
                        return match ack.topics.contains(&SubscribeReturnCode::Failure) {
                            true => Err(MqttError::SubscribeRefused),
                            false => Ok(()),
                        };
                    }
                    Some(other) => self.early.push_back(other),
                    None => return Err(MqttError::Closed),
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| MqttError::Timeout("waiting for SUBACK"))?
    }

    /// PUBLISH; the server's PUBACK of a QoS 1 publish arrives through [`recv`](Self::recv).
    pub async fn publish(&mut self, topic_name: &str, payload: Vec<u8>, qos1: bool) -> Result<(), MqttError> {
        let qos_pid = if qos1 { QosPid::Level1(self.pid()?) } else { QosPid::Level0 };
        let publish = Publish::new(qos_pid, topic(topic_name)?, Bytes::from(payload));
        self.send(&Packet::Publish(publish)).await
    }

    pub async fn puback(&mut self, pid: Pid) -> Result<(), MqttError> {
        self.send(&Packet::Puback(pid)).await
    }

    pub async fn ping(&mut self) -> Result<(), MqttError> {
        self.send(&Packet::Pingreq).await
    }

    /// The next packet from the server; `None` once the connection is closed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Packet> {
        match self.early.pop_front() {
            Some(p) => Some(p),
            None => self.incoming.recv().await,
        }
    }

    /// A clean DISCONNECT.
    pub async fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect).await;
        let _ = self.writer.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_publish_and_bounds_the_remaining_length() {
        let publish = Publish::new(QosPid::Level0, topic("a/b").unwrap(), Bytes::from_static(b"{}"));
        let bytes = Packet::Publish(publish.clone()).encode().unwrap();
        let mut buf = Vec::new();
        let mut r: &[u8] = bytes.as_ref();
        assert_eq!(read_packet(&mut r, &mut buf).await.unwrap(), Packet::Publish(publish));
        let huge: &[u8] = &[0x30, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(read_packet(&mut &huge[..], &mut buf).await, Err(MqttError::Codec(_))));
        let endless: &[u8] = &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(read_packet(&mut &endless[..], &mut buf).await, Err(MqttError::Codec(_))));
    }
}
