//! What every simulated device shares: the TLS identity, where to connect, the connection gate
//! (connects per second and handshakes in flight), the stop and reconnect-storm signals, and
//! the counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::sync::{watch, Mutex, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::device::Behaviour;
use crate::mqtt::{Connection, MqttError};
use crate::stats::Stats;

/// How long one connection attempt (TCP, TLS, CONNECT, CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the root CA PEM holds no certificate")]
    NoRootCa,
    #[error("the device certificate or key PEM is unreadable")]
    BadIdentity,
    #[error("{0} is not a host name or IP address")]
    ServerName(String),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// The client TLS configuration every device uses: the server's crypto provider
/// ([`fleetjobs_pki::provider`]), our CA, the fleet's shared certificate, rustls's default
/// session cache (see [`resumption`] for the fleet's own).
pub fn client_config(root_ca_pem: &[u8], cert_pem: &str, key_pem: &str) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(root_ca_pem).flatten() {
        roots.add(der)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoRootCa);
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).flatten().collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsSetupError::BadIdentity)?;
    if chain.is_empty() {
        return Err(TlsSetupError::BadIdentity);
    }
    // The server's provider and groups: the simulator shares the server's cores, and the
    // ML-KEM key share a default provider would add costs both sides CPU that the devices it
    // stands for (X25519) do not spend.
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(fleetjobs_pki::provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
}

/// Resumption from the fleet's ticket pool, or none (every handshake a full one).
pub fn resumption(tickets: Option<Arc<FleetTickets>>) -> Resumption {
    match tickets {
        Some(tickets) => Resumption::store(tickets),
        None => Resumption::disabled(),
    }
}

/// The fleet's TLS 1.3 session tickets, one pool for every device: as each real device would
/// keep the ticket of its last session, so that a reconnect storm resumes instead of paying a
/// full handshake (key exchange signature, client certificate signature) on both sides.
///
/// One pool is right here because the fleet shares one certificate (see `provision`): a
/// ticket carries the client certificate, so any device's ticket stands for every device.
/// rustls's own cache keeps 8 tickets per server name, so N devices connecting to one
/// address would mostly miss it. Bounded by `capacity` (the fleet's size: a server sends one
/// ticket per handshake); the oldest goes first.
///
/// Tickets are kept from the start but handed out only once [`open`](Self::open)ed (after every
/// device's first connect): a device's first connect has no ticket of its own, so the first
/// connects are full handshakes, as a fleet's first ones are — not resumed from a ticket another
/// device got a moment before.
#[derive(Debug)]
pub struct FleetTickets {
    capacity: usize,
    open: AtomicBool,
    tls13: std::sync::Mutex<VecDeque<Tls13ClientSessionValue>>,
    /// The key exchange hint and TLS 1.2 sessions: rustls's cache.
    other: ClientSessionMemoryCache,
    /// Tickets handed to a handshake (each one an attempt to resume).
    pub presented: AtomicU64,
}

impl FleetTickets {
    pub fn new(capacity: usize) -> Self {
        FleetTickets {
            capacity: capacity.max(1),
            open: AtomicBool::new(false),
            tls13: std::sync::Mutex::new(VecDeque::new()),
            other: ClientSessionMemoryCache::new(4),
            presented: AtomicU64::new(0),
        }
    }

    /// From now on, reconnects present tickets.
    pub fn open(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

impl ClientSessionStore for FleetTickets {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.other.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.other.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.other.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.other.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.other.remove_tls12_session(server_name);
    }

    // Every device connects to the one server, so the server name is not kept.
    fn insert_tls13_ticket(&self, _server_name: ServerName<'static>, value: Tls13ClientSessionValue) {
        if let Ok(mut pool) = self.tls13.lock() {
            if pool.len() >= self.capacity {
                pool.pop_front();
            }
            pool.push_back(value);
        }
    }

    fn take_tls13_ticket(&self, _server_name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        if !self.open.load(Ordering::Relaxed) {
            return None;
        }
        let ticket = self.tls13.lock().ok()?.pop_back();
        if ticket.is_some() {
            self.presented.fetch_add(1, Ordering::Relaxed);
        }
        ticket
    }
}

/// The TLS server name of `host:port` (a name or an IP address).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsSetupError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| TlsSetupError::ServerName(host.to_string()))
}

/// Paces connection attempts: at most `rate` per second (if set) and `in_flight` at once.
pub struct ConnectGate {
    interval: Option<Duration>,
    next: Mutex<Instant>,
    in_flight: Semaphore,
}

impl ConnectGate {
    pub fn new(rate: Option<f64>, in_flight: usize) -> Self {
        let interval = rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        ConnectGate { interval, next: Mutex::new(Instant::now()), in_flight: Semaphore::new(in_flight.max(1)) }
    }

    /// Wait for this attempt's turn.
    async fn turn(&self) {
        if let Some(interval) = self.interval {
            let slot = {
                let mut next = self.next.lock().await;
                let slot = (*next).max(Instant::now());
                *next = slot + interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
        }
    }
}

pub struct Fleetwide {
    pub stats: Stats,
    pub behaviour: Behaviour,
    pub mqtt_addr: String,
    pub server_name: ServerName<'static>,
    pub tls: TlsConnector,
    pub gate: ConnectGate,
    /// `true`: every device disconnects cleanly and ends.
    pub stop: watch::Receiver<bool>,
    /// Each change: every device drops its connection at once and reconnects.
    pub storm: watch::Receiver<u64>,
    /// `Some(start)`: devices keep their recent messages (`device::Trace`), timed from `start`,
    /// and print them when something goes wrong.
    pub trace: Option<std::time::Instant>,
}

impl Fleetwide {
    /// One connection attempt for `thing`, through the gate.
    pub async fn open(&self, thing: &str) -> Result<Connection, MqttError> {
        self.gate.turn().await;
        let _permit = self.gate.in_flight.acquire().await.map_err(|_| MqttError::Closed)?;
        Connection::open(
            &self.mqtt_addr,
            self.server_name.clone(),
            self.tls.clone(),
            thing,
            crate::device::KEEP_ALIVE_SECS,
            CONNECT_TIMEOUT,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(server_name("127.0.0.1:8883").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("localhost:8883").unwrap(), ServerName::DnsName(_)));
        assert!(matches!(server_name("[::1]:8883").unwrap(), ServerName::IpAddress(_)));
    }

    #[tokio::test]
    async fn the_gate_paces_attempts() {
        let gate = ConnectGate::new(Some(100.0), 4);
        let start = Instant::now();
        for _ in 0..11 {
            gate.turn().await;
        }
        // Ten intervals of 10 ms after the first (immediate) turn; the upper bound is loose
        // for a loaded machine.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(99) && took < Duration::from_secs(2), "{took:?}");
        let unpaced = ConnectGate::new(None, 4);
        let start = Instant::now();
        unpaced.turn().await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
