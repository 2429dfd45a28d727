//! The HTTP/1.1 accept loop and the limits that keep unauthenticated clients from pinning
//! sockets and memory: a cap on concurrent connections, a header-read timeout and a write
//! deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::write_deadline::WriteDeadline;

/// Read buffer per connection. The request head must fit in it; botocore's heads are ~2 KB,
/// and hyper's default (~400 KB) would let each idle connection hold far more.
const MAX_BUF: usize = 64 * 1024;
/// A refused connection or a failing `accept` is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failing `accept` (typically out of descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What an HTTP client may hold, and for how long, before and while it is served.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time allowed for a request's head (request line and headers), counted from the
    /// connection's start or from the end of the previous response, so it is also the idle
    /// timeout of a keep-alive connection.
    pub header_timeout: Duration,
    /// Time allowed for a request's body, counted once its headers have been accepted.
    pub body_timeout: Duration,
    /// Time a client may leave our response unread (no byte taken) before it is disconnected.
    pub write_timeout: Duration,
    /// Concurrent connections. One more is accepted and closed at once.
    pub max_connections: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(20),
            max_connections: 1024,
        }
    }
}

/// Logs an event at most once per [`LOG_EVERY`], with the count since the last line: a flood
/// of refused connections must not become a flood of log lines.
struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    fn new() -> Self {
        Throttled { last: None, count: 0 }
    }

    fn hit(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        if self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            log(self.count);
            self.last = Some(Instant::now());
            self.count = 0;
        }
    }
}

/// The DER client certificate of a mutual-TLS connection, as a request extension (the
/// `iot-jobs-data` device listener authenticates with it instead of SigV4).
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<Vec<u8>>);

/// Serves `app` on `listener` until `shutdown` resolves, then lets every open connection
/// finish its request and waits for all of them. With `tls`, each connection is a TLS one
/// (handshake within the header timeout) and its requests carry its [`PeerCertificate`].
pub async fn serve(
    app: Router,
    listener: TcpListener,
    limits: &HttpLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_BUF);
    let (mut refused, mut accept_errors) = (Throttled::new(), Throttled::new());

    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_errors.hit(|n| tracing::warn!(error = %e, failures = n, "HTTP accept failed"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Closing at once, rather than leaving the client in the backlog, keeps the cost of an
        // excess connection at one accept and tells well-behaved clients to retry.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.hit(|n| tracing::warn!(max, refused = n, "HTTP connection limit reached; closing new connections"));
            continue;
        };
        let stream = WriteDeadline::new(stream, limits.write_timeout);
        let (builder, app, stop) = (builder.clone(), app.clone(), stop_rx.clone());
        match &tls {
            None => {
                tokio::spawn(connection(builder, TokioIo::new(stream), app, stop, permit));
            }
            Some(acceptor) => {
                let (acceptor, handshake_timeout) = (acceptor.clone(), limits.header_timeout);
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!("TLS handshake timed out"),
                    };
                    let peer = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                    let app = app.layer(Extension(PeerCertificate(peer)));
                    connection(builder, TokioIo::new(stream), app, stop, permit).await;
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends.
    let _all_closed = permits.acquire_many(max).await;
    Ok(())
}

/// Serve one connection until it ends, or until shutdown lets its request finish.
async fn connection<I>(
    builder: http1::Builder,
    io: I,
    app: Router,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let _permit = permit;
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
            return;
        }
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTP connection ended during shutdown");
    }
}
