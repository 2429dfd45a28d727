//! Server CPU per mutual-TLS 1.3 handshake, full and resumed, for several server crypto
//! providers in one process, rounds interleaved: client and server in memory (no sockets, no
//! MQTT), the server's thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) summed around its own calls
//! only. The real CPU's figure that callgrind cannot give (valgrind has no ADX, BMI2, SHA-NI).
//!
//! Every variant is the server's configuration (`fleetjobs_pki::mqtt_server_tls_config_with`:
//! TLS 1.3 and 1.2, its suite order, its client-certificate verifier, no session cache, one
//! ticket per handshake) on another provider and ticketer. The client
//! is fixed: `ring`, X25519 only (what OpenSSL's first key share is), an EC P-256 device key.
//!
//!     tls-handshake-cpu [HANDSHAKES_PER_ROUND=50] [ROUNDS=40]

use std::sync::Arc;

use rustls::crypto::{aws_lc_rs, ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ProducesTickets;
use rustls::{ClientConfig, ClientConnection, Error, HandshakeKind, ServerConfig, ServerConnection};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; the clock id is valid on Linux.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts)
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The server's configuration (`fleetjobs_pki::mqtt_server_tls_config_with`) on `provider`
/// and `ticketer`.
fn server_config(
    provider: CryptoProvider,
    ticketer: Arc<dyn ProducesTickets>,
    cert: &fleetjobs_pki::IssuedCert,
) -> Arc<ServerConfig> {
    fleetjobs_pki::mqtt_server_tls_config_with(cert, provider, ticketer).expect("server config")
}

/// One handshake, through the ticket; the server's CPU ns (its constructor, every call that
/// reads, processes or writes, and its drop).
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>, resumed: bool) -> u64 {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(Arc::clone(client), name).expect("client");
    let started = thread_cpu_ns();
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server");
    let mut server_ns = thread_cpu_ns() - started;
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    loop {
        to_server.clear();
        while c.wants_write() {
            c.write_tls(&mut to_server).expect("client write");
        }
        if to_server.is_empty() && !s.is_handshaking() {
            break;
        }
        let started = thread_cpu_ns();
        let mut input = &to_server[..];
        while !input.is_empty() {
            s.read_tls(&mut input).expect("server read");
        }
        s.process_new_packets().expect("server handshake");
        to_client.clear();
        while s.wants_write() {
            s.write_tls(&mut to_client).expect("server write");
        }
        server_ns += thread_cpu_ns() - started;
        let mut input = &to_client[..];
        while !input.is_empty() {
            c.read_tls(&mut input).expect("client read");
        }
        c.process_new_packets().expect("client handshake");
    }
    let kind = if resumed { HandshakeKind::Resumed } else { HandshakeKind::Full };
    assert_eq!(s.handshake_kind(), Some(kind));
    let started = thread_cpu_ns();
    drop(s);
    server_ns + (thread_cpu_ns() - started)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let per_round = args.next().unwrap_or(50);
    let rounds = args.next().unwrap_or(40);

    let ca = fleetjobs_pki::CertificateAuthority::generate().expect("CA");
    let server_cert = ca.issue_server_cert(&[]).expect("server certificate");
    let device = ca.issue_device_cert_with(fleetjobs_pki::DeviceKeyType::EcP256).expect("device certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der().to_vec())).expect("root");
    let client_provider =
        Arc::new(CryptoProvider { kx_groups: vec![ring::kx_group::X25519], ..ring::default_provider() });
    let client = |resume: bool| {
        let key = PrivateKeyDer::from_pem_slice(device.private_key_pem.as_bytes()).expect("device key");
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&client_provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(vec![CertificateDer::from(device.cert_der.clone())], key)
            .expect("client config");
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(config)
    };

    let aws_lc_pinned = || CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519, aws_lc_rs::kx_group::SECP256R1, aws_lc_rs::kx_group::SECP384R1],
        ..aws_lc_rs::default_provider()
    };
    let ticketer = |t: Result<Arc<dyn ProducesTickets>, Error>| t.expect("ticketer");
    let variants: Vec<(&str, Arc<ServerConfig>)> = vec![
        (
            "ring, ring ticketer (main)",
            server_config(ring::default_provider(), ticketer(ring::Ticketer::new()), &server_cert),
        ),
        (
            "aws-lc-rs (X25519, P-256, P-384), its ticketer",
            server_config(aws_lc_pinned(), ticketer(aws_lc_rs::Ticketer::new()), &server_cert),
        ),
        (
            "aws-lc-rs default (ML-KEM hybrid first), its ticketer",
            server_config(aws_lc_rs::default_provider(), ticketer(aws_lc_rs::Ticketer::new()), &server_cert),
        ),
        (
            "aws-lc-rs (X25519, P-256, P-384), ring ticketer",
            server_config(aws_lc_pinned(), ticketer(ring::Ticketer::new()), &server_cert),
        ),
        (
            "fleetjobs_pki::provider(), ring ticketer (branch)",
            server_config(fleetjobs_pki::provider(), ticketer(ring::Ticketer::new()), &server_cert),
        ),
    ];

    let full_client = client(false);
    let mut full: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut resumed: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, server)) in variants.iter().enumerate() {
            let ns: u64 = (0..per_round).map(|_| handshake(server, &full_client, false)).sum();
            full[i].push(ns as f64 / per_round as f64 / 1000.0);
            let resuming = client(true);
            handshake(server, &resuming, false); // its first ticket
            let ns: u64 = (0..per_round).map(|_| handshake(server, &resuming, true)).sum();
            resumed[i].push(ns as f64 / per_round as f64 / 1000.0);
        }
    }

    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    println!("server CPU µs per handshake, {per_round} handshakes x {rounds} rounds: median and minimum of the rounds");
    println!("{:56} {:>8} {:>8}   {:>8} {:>8}", "server provider", "full", "min", "resumed", "min");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "{name:56} {:8.1} {:8.1}   {:8.1} {:8.1}",
            median(&full[i]),
            min(&full[i]),
            median(&resumed[i]),
            min(&resumed[i])
        );
    }
}
