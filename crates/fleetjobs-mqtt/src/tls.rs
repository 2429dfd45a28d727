//! The TLS accept loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::connection;
use crate::hooks::{DeviceHooks, PeerInfo};
use crate::throttle::LogThrottle;
use crate::tls_stream;

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accept loop: TCP accept (closed at once beyond [`BrokerConfig::max_connections`]), TLS handshake (within [`BrokerConfig::connect_timeout`]), then
/// [`Broker::serve_connection`] in its own task, with the client's leaf certificate (DER),
/// address and whether the TLS session was resumed as [`PeerInfo`]. Stops accepting when
/// `shutdown` resolves; connections already accepted keep running.
///
/// [`BrokerConfig::connect_timeout`]: crate::BrokerConfig::connect_timeout
/// [`BrokerConfig::max_connections`]: crate::BrokerConfig::max_connections
pub async fn serve_tls<H: DeviceHooks>(
    broker: Arc<Broker<H>>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let handshake_timeout = broker.config().connect_timeout;
    // Out of descriptors, accept fails at every turn of the loop: one line per interval.
    let accept_errors = LogThrottle::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote_addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let Some(suppressed) = accept_errors.check() {
                        warn!(%error, suppressed, "MQTT accept failed");
                    }
                    sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let peer = PeerInfo { cert_der: None, remote_addr: Some(remote_addr), resumed: false };
        // Over the connection cap: close before any TLS work (dropping `tcp` closes it).
        let Some(admission) = broker.admit(&peer) else {
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%remote_addr, %error, "cannot set TCP_NODELAY");
        }
        let (broker, tls) = (Arc::clone(&broker), Arc::clone(&tls));
        tokio::spawn(async move {
            let stream = match timeout(handshake_timeout, Box::pin(tls_stream::accept(tcp, tls))).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return debug!(%remote_addr, %error, "TLS handshake failed"),
                Err(_) => return debug!(%remote_addr, "TLS handshake timed out"),
            };
            let tls = stream.connection();
            // On a resumed session rustls gives the certificate the ticket carries.
            let cert_der = tls.peer_certificates().and_then(<[_]>::first).map(|cert| cert.to_vec());
            let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            // The connection gets a task of its own, sized by its own future: this task's
            // future (the handshake with its timer, the accept state) would otherwise size
            // every idle connection's task (measured: 2,688 bytes per task, with massif).
            tokio::spawn(connection::serve(broker, stream, PeerInfo { cert_der, resumed, ..peer }, Some(admission)));
        });
    }
    debug!("stopped accepting connections");
}
