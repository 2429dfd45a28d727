//! The server side of one TLS connection over rustls's unbuffered API, as a tokio stream.
//!
//! Why not `tokio_rustls`: rustls's buffered `ServerConnection` keeps a 4 KiB record buffer for
//! the connection's life, and a broker mostly holds idle connections (measured with massif: a
//! third of an idle connection's heap). Here the buffers are ours: the socket is read into a
//! buffer on the stack, and the heap holds only what is in flight (a partial record, plaintext
//! the reader has not taken, TLS bytes the socket has not taken), each freed once drained.

use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time (on the stack): one maximal TLS record's worth.
const READ_CHUNK: usize = 16 * 1024;
/// Plaintext bytes encrypted per write: one maximal TLS record (rustls's fragment size).
const WRITE_CHUNK: usize = 16 * 1024;
/// Room for a record's header, content type and AEAD tag around [`WRITE_CHUNK`] (TLS 1.2's
/// explicit nonce included); a record that needs more goes through the heap.
const RECORD_OVERHEAD: usize = 64;
/// First guess for a handshake message or alert being encoded (grown to what rustls asks).
const ENCODE_GUESS: usize = 512;

/// Where processing the received bytes stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    /// rustls needs more bytes from the peer.
    NeedData,
    /// Application data may be sent (during the handshake too: check `is_handshaking`).
    Writable,
    /// close_notify was sent and received: nothing more either way.
    Closed,
}

/// A server TLS connection on a TCP socket: [`accept`] runs the handshake, then it is an
/// [`AsyncRead`] + [`AsyncWrite`] of the plaintext.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not yet consumed by rustls (a partial record); no capacity when empty.
    incoming: Vec<u8>,
    /// Decrypted bytes the reader has not taken yet, from `plaintext_at`.
    plaintext: Vec<u8>,
    plaintext_at: usize,
    /// TLS bytes the socket has not taken yet, from `outgoing_at`.
    outgoing: Vec<u8>,
    outgoing_at: usize,
    /// The peer sent close_notify: what was read is all there is.
    peer_closed: bool,
    /// The socket is at end of file.
    eof: bool,
    /// close_notify is queued: no more application data from us.
    closing: bool,
}

/// Run the server side of a TLS handshake on `tcp` with `config` (no timeout here: the caller
/// bounds it). Plaintext the client sent along with its last flight is kept for the first read.
pub(crate) async fn accept(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<TlsStream> {
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut stream = TlsStream {
        tcp,
        conn,
        incoming: Vec::new(),
        plaintext: Vec::new(),
        plaintext_at: 0,
        outgoing: Vec::new(),
        outgoing_at: 0,
        peer_closed: false,
        eof: false,
        closing: false,
    };
    match std::future::poll_fn(|cx| stream.poll_handshake(cx)).await {
        Ok(()) => Ok(stream),
        Err(error) => {
            // Tell the client why (rustls queues an alert), as far as the socket takes it now.
            stream.queue_alerts();
            stream.try_send();
            Err(error)
        }
    }
}

impl TlsStream {
    /// The rustls connection (peer certificates, handshake kind).
    pub(crate) fn connection(&self) -> &UnbufferedServerConnection {
        &self.conn
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut step = self.receive(&mut [])?;
        loop {
            ready!(self.poll_send(cx))?;
            match step {
                // The server may write before the client's last flight (no client auth):
                // the handshake is done only when rustls says so.
                Step::Writable if !self.conn.is_handshaking() => return Poll::Ready(Ok(())),
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
                Step::Writable | Step::NeedData => {}
            }
            let mut chunk = [0u8; READ_CHUNK];
            let read = ready!(self.poll_read_tcp(cx, &mut chunk))?;
            if read == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            step = self.receive(&mut chunk[..read])?;
        }
    }

    /// Read from the socket into `chunk`; 0 at end of file.
    fn poll_read_tcp(&mut self, cx: &mut Context<'_>, chunk: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(chunk);
        ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
    }

    /// Hand `data` (just read; empty to only look where rustls stands) to rustls after what is
    /// left from before. Whatever rustls cannot consume yet moves to (or stays in) `incoming`.
    fn receive(&mut self, data: &mut [u8]) -> io::Result<Step> {
        if self.incoming.is_empty() {
            let (used, step) = self.process(data);
            if used < data.len() {
                self.incoming = data[used..].to_vec();
            }
            step
        } else {
            let mut incoming = mem::take(&mut self.incoming);
            incoming.extend_from_slice(data);
            let (used, step) = self.process(&mut incoming);
            incoming.drain(..used);
            if !incoming.is_empty() {
                self.incoming = incoming;
            }
            step
        }
    }

    /// Let rustls process `incoming` as far as it goes: decrypted data to `plaintext`, TLS data
    /// to send to `outgoing`. Returns the bytes of `incoming` consumed and where it stopped.
    fn process(&mut self, incoming: &mut [u8]) -> (usize, io::Result<Step>) {
        let mut used = 0;
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut incoming[used..]);
            let mut record_discard = 0;
            let step = match state {
                Err(error) => Some(Err(tls_error(error))),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => loop {
                    match traffic.next_record() {
                        None => break None,
                        Some(Ok(record)) => {
                            record_discard += record.discard;
                            self.plaintext.extend_from_slice(record.payload);
                        }
                        Some(Err(error)) => break Some(Err(tls_error(error))),
                    }
                },
                Ok(ConnectionState::EncodeTlsData(mut data)) => append_encoded(&mut self.outgoing, |buf| {
                    data.encode(buf).map_err(|error| match error {
                        EncodeError::InsufficientSize(size) => Some(size.required_size),
                        _ => None,
                    })
                })
                .err()
                .map(Err),
                // What was encoded is sent in order from `outgoing`, by whoever sends next.
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    data.done();
                    None
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Some(Ok(Step::Closed))
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Ok(Step::NeedData)),
                Ok(ConnectionState::WriteTraffic(_)) => Some(Ok(Step::Writable)),
                // Early data is off (`max_early_data_size` 0); anything else is unknown to us.
                Ok(other) => Some(Err(io::Error::other(format!("unexpected TLS state {other:?}")))),
            };
            used += discard + record_discard;
            if let Some(step) = step {
                return (used, step);
            }
        }
    }

    /// After a TLS error: collect the alert rustls queued for the peer into `outgoing`. Only
    /// while rustls has something to send: past that it would go on deframing, and after an
    /// error it must not (its handshake joiner may point into bytes it can no longer trust).
    fn queue_alerts(&mut self) {
        let mut incoming = mem::take(&mut self.incoming);
        while self.conn.wants_write() {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut incoming);
            let Ok(ConnectionState::EncodeTlsData(mut data)) = state else {
                break;
            };
            if append_encoded(&mut self.outgoing, |buf| data.encode(buf).map_err(|_| None)).is_err() {
                break;
            }
        }
        self.incoming = incoming;
    }

    /// Run `write` in rustls's WriteTraffic state, after processing what is pending.
    fn with_write_traffic<T>(
        &mut self,
        write: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>, &mut Vec<u8>) -> io::Result<T>,
    ) -> io::Result<T> {
        match self.receive(&mut [])? {
            Step::Writable => {}
            Step::NeedData => return Err(io::Error::new(io::ErrorKind::NotConnected, "TLS handshake not complete")),
            Step::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
        }
        // Nothing is pending now: rustls answers WriteTraffic again without consuming bytes.
        let mut incoming = mem::take(&mut self.incoming);
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut incoming);
        let result = match state {
            Ok(ConnectionState::WriteTraffic(mut traffic)) => write(&mut traffic, &mut self.outgoing),
            Ok(other) => Err(io::Error::other(format!("unexpected TLS state {other:?}"))),
            Err(error) => Err(tls_error(error)),
        };
        self.incoming = incoming;
        result
    }

    /// Write `outgoing` to the socket, freeing it once all is written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_at < self.outgoing.len() {
            let written = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.outgoing_at..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing_at += written;
        }
        self.outgoing = Vec::new();
        self.outgoing_at = 0;
        Poll::Ready(Ok(()))
    }

    /// Write what the socket takes now of `outgoing` without waiting (nor registering for a
    /// wake-up: the reader uses this for rustls's own messages, e.g. a key update's answer).
    fn try_send(&mut self) {
        while self.outgoing_at < self.outgoing.len() {
            match self.tcp.try_write(&self.outgoing[self.outgoing_at..]) {
                Ok(written) if written > 0 => self.outgoing_at += written,
                _ => return,
            }
        }
        self.outgoing = Vec::new();
        self.outgoing_at = 0;
    }

    /// Copy undelivered plaintext into `buf`; false when there is none.
    fn take_plaintext(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let pending = &self.plaintext[self.plaintext_at..];
        if pending.is_empty() {
            return false;
        }
        let taken = pending.len().min(buf.remaining());
        buf.put_slice(&pending[..taken]);
        self.plaintext_at += taken;
        if self.plaintext_at == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plaintext_at = 0;
        }
        true
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.take_plaintext(buf) || this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            // As rustls's reader: end of file without close_notify may be a truncation.
            if this.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let read = ready!(this.poll_read_tcp(cx, &mut chunk))?;
            if read == 0 {
                this.eof = true;
                continue;
            }
            let received = this.receive(&mut chunk[..read]);
            if received.is_err() {
                this.queue_alerts();
            }
            this.try_send();
            received?;
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // At most one record waits in `outgoing`: bytes are taken only once it is written.
        ready!(this.poll_send(cx))?;
        if this.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let plain = &data[..data.len().min(WRITE_CHUNK)];
        let mut record = [0u8; WRITE_CHUNK + RECORD_OVERHEAD];
        let encrypted = this.with_write_traffic(|traffic, outgoing| match traffic.encrypt(plain, &mut record) {
            Ok(encrypted) => Ok(encrypted),
            // More than the stack buffer (e.g. a key update rides along): through the heap.
            Err(EncryptError::InsufficientSize(_)) => append_encoded(outgoing, |buf| {
                traffic.encrypt(plain, buf).map_err(|error| match error {
                    EncryptError::InsufficientSize(size) => Some(size.required_size),
                    _ => None,
                })
            })
            .map(|()| 0),
            Err(error) => Err(io::Error::other(error)),
        })?;
        if this.outgoing.is_empty() {
            // The usual case: straight from the stack; only what the socket refuses is kept.
            let written = this.tcp.try_write(&record[..encrypted]).unwrap_or(0);
            if written < encrypted {
                this.outgoing.extend_from_slice(&record[written..encrypted]);
            }
        } else {
            this.outgoing.extend_from_slice(&record[..encrypted]);
        }
        Poll::Ready(Ok(plain.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            // No close_notify on a connection already closed both ways or broken: just close.
            let _ = this.with_write_traffic(|traffic, outgoing| {
                append_encoded(outgoing, |buf| {
                    traffic.queue_close_notify(buf).map_err(|error| match error {
                        EncryptError::InsufficientSize(size) => Some(size.required_size),
                        _ => None,
                    })
                })
            });
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// Append to `out` what `encode` writes into the room it is given, growing the room to the
/// size `encode` asks for (its error: `Some(required size)`, or `None` for a failure).
fn append_encoded(
    out: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<()> {
    let start = out.len();
    let mut room = ENCODE_GUESS;
    loop {
        out.resize(start + room, 0);
        match encode(&mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                return Ok(());
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                out.truncate(start);
                return Err(io::Error::other("TLS encoding failed"));
            }
        }
    }
}

/// A TLS protocol error as the I/O error the connection ends with.
fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::crypto::aws_lc_rs::default_provider;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::server::WebPkiClientVerifier;
    use rustls::RootCertStore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsConnector;

    fn identity(name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (certified.cert.der().clone(), PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into())
    }

    fn roots(cert: &CertificateDer<'static>) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        Arc::new(roots)
    }

    struct Configs {
        server: Arc<rustls::ServerConfig>,
        client: Arc<rustls::ClientConfig>,
        client_cert: CertificateDer<'static>,
        /// A client that trusts the server but has no certificate.
        anonymous: Arc<rustls::ClientConfig>,
    }

    /// Mutual-TLS server and client configs (the client with rustls's default session cache).
    fn configs() -> Configs {
        let provider = Arc::new(default_provider());
        let (server_cert, server_key) = identity("localhost");
        let (client_cert, client_key) = identity("device-1");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots(&client_cert), Arc::clone(&provider)).build().unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.clone()], server_key)
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&server_cert))
            .with_client_auth_cert(vec![client_cert.clone()], client_key)
            .unwrap();
        let anonymous = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&server_cert))
            .with_no_client_auth();
        Configs { server: Arc::new(server), client: Arc::new(client), client_cert, anonymous: Arc::new(anonymous) }
    }

    /// One accepted server stream and its client, over loopback TCP.
    async fn pair(
        server: &Arc<rustls::ServerConfig>,
        client: &Arc<rustls::ClientConfig>,
    ) -> (TlsStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = TlsConnector::from(Arc::clone(client));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let stream = accept(tcp, Arc::clone(server)).await.unwrap();
        (stream, client.await.unwrap())
    }

    fn holds_no_buffers(stream: &TlsStream) -> bool {
        stream.incoming.capacity() == 0 && stream.plaintext.capacity() == 0 && stream.outgoing.capacity() == 0
    }

    #[tokio::test]
    async fn carries_data_both_ways_and_holds_no_buffers_between() {
        let Configs { server: server_config, client: client_config, client_cert, .. } = configs();
        let (mut server, mut client) = pair(&server_config, &client_config).await;
        let peer = server.connection().peer_certificates().unwrap();
        assert_eq!(peer[0].as_ref(), client_cert.as_ref());

        client.write_all(b"ping").await.unwrap();
        client.flush().await.unwrap();
        let mut ping = [0u8; 4];
        server.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
        assert!(holds_no_buffers(&server));

        // Several records each way, read in pieces smaller than a record.
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.flush().await.unwrap();
            client
        });
        let mut received = vec![0u8; big.len()];
        for piece in received.chunks_mut(1000) {
            server.read_exact(piece).await.unwrap();
        }
        assert_eq!(received, big);
        let mut client = writer.await.unwrap();
        assert!(holds_no_buffers(&server));

        let reader = tokio::spawn(async move {
            let mut echoed = vec![0u8; 100_000];
            client.read_exact(&mut echoed).await.unwrap();
            (client, echoed)
        });
        server.write_all(&big).await.unwrap();
        server.flush().await.unwrap();
        let (mut client, echoed) = reader.await.unwrap();
        assert_eq!(echoed, big);
        assert!(holds_no_buffers(&server));

        // close_notify: the client sees a clean end of stream, and so does the server.
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_second_connection_resumes_the_session() {
        let Configs { server: server_config, client: client_config, client_cert, .. } = configs();
        let (mut first, mut client) = pair(&server_config, &client_config).await;
        assert_eq!(first.connection().handshake_kind(), Some(rustls::HandshakeKind::Full));
        // TLS 1.3 tickets come after the handshake: the client takes them with its first read.
        first.write_all(b"x").await.unwrap();
        let mut x = [0u8; 1];
        client.read_exact(&mut x).await.unwrap();

        let (second, _client) = pair(&server_config, &client_config).await;
        assert_eq!(second.connection().handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        let peer = second.connection().peer_certificates().unwrap();
        assert_eq!(peer[0].as_ref(), client_cert.as_ref());
    }

    #[tokio::test]
    async fn a_client_without_a_certificate_is_refused() {
        let Configs { server: server_config, anonymous: client_config, .. } = configs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = TlsConnector::from(client_config);
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            // TLS 1.3: the client's side of the handshake may complete; the server's answer
            // is then an alert on the first read.
            let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let error = accept(tcp, server_config).await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        let refused = client.await.unwrap().unwrap_err();
        assert!(refused.to_string().contains("CertificateRequired"), "the client is told why: {refused}");
    }

    #[tokio::test]
    async fn end_of_file_without_close_notify_is_an_error() {
        let Configs { server: server_config, client: client_config, .. } = configs();
        let (mut server, client) = pair(&server_config, &client_config).await;
        // A FIN, not a reset: the client leaves the server's session tickets unread.
        let (mut tcp, _) = client.into_inner();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let error = server.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
