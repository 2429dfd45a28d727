//! `serve_tls` over real loopback TCP with mutual TLS (rcgen self-signed certificates).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;

use common::*;
use fleetjobs_mqtt::{serve_tls, BrokerConfig};
use mqtt_proto::v3::{ConnectReturnCode, Packet};
use rustls::crypto::aws_lc_rs::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn identity(name: &str) -> Identity {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    Identity {
        cert: certified.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into(),
    }
}

fn roots(cert: &CertificateDer<'static>) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    Arc::new(roots)
}

#[tokio::test]
async fn serves_mutual_tls_and_passes_the_client_certificate() {
    let provider = Arc::new(default_provider());
    let server = identity("localhost");
    let client = identity("device-1");

    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(&client.cert), Arc::clone(&provider)).build().unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert.clone()], server.key)
        .unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&server.cert))
        .with_client_auth_cert(vec![client.cert.clone()], client.key)
        .unwrap();

    let (broker, hooks) = broker();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server_task = tokio::spawn(serve_tls(Arc::clone(&broker), listener, Arc::new(server_config), async {
        let _ = stopped.await;
    }));

    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_config));
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();

    let connect = Packet::Connect(connect_packet("device-1", true)).encode().unwrap();
    tls.write_all(connect.as_ref()).await.unwrap();
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).await.unwrap();
    assert_eq!(
        Packet::decode(&connack).unwrap(),
        Some(Packet::Connack(mqtt_proto::v3::Connack::new(false, ConnectReturnCode::Accepted)))
    );

    {
        let connects = hooks.connects.lock().unwrap();
        let peer = &connects[0].1;
        assert_eq!(peer.cert_der.as_deref(), Some(client.cert.as_ref()));
        assert_eq!(peer.remote_addr.unwrap().ip(), addr.ip());
    }
    assert_eq!(broker.connection_count(), 1);

    // A peer that is not speaking TLS does not disturb the server.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00").await.unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest).await;

    stop.send(()).unwrap();
    server_task.await.unwrap();
    // Connections accepted before the shutdown keep running.
    tls.write_all(Packet::Pingreq.encode().unwrap().as_ref()).await.unwrap();
    let mut pingresp = [0u8; 2];
    tls.read_exact(&mut pingresp).await.unwrap();
    assert_eq!(Packet::decode(&pingresp).unwrap(), Some(Packet::Pingresp));
}

/// Server-only TLS (e.g. custom authentication): `serve_tls` for `broker` on a free port, and
/// a client config that trusts it.
async fn serve_server_only_tls(broker: &TestBroker) -> (std::net::SocketAddr, TlsConnector) {
    let provider = Arc::new(default_provider());
    let server = identity("localhost");
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server.cert.clone()], server.key)
        .unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&server.cert))
        .with_no_client_auth();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_tls(Arc::clone(broker), listener, Arc::new(server_config), std::future::pending()));
    (addr, TlsConnector::from(Arc::new(client_config)))
}

/// TLS handshake, CONNECT; the CONNACK's bytes, or `None` if the server closed the connection.
async fn tls_connect(addr: std::net::SocketAddr, connector: &TlsConnector, client_id: &str) -> Option<[u8; 4]> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.ok()?;
    tls.write_all(Packet::Connect(connect_packet(client_id, true)).encode().unwrap().as_ref()).await.ok()?;
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).await.ok()?;
    Some(connack)
}

#[tokio::test]
async fn serves_server_only_tls_without_client_certificate() {
    let (broker, hooks) = broker();
    let (addr, connector) = serve_server_only_tls(&broker).await;
    assert_eq!(tls_connect(addr, &connector, "anon").await, Some([0x20, 0x02, 0x00, 0x00]));
    assert!(hooks.connects.lock().unwrap()[0].1.cert_der.is_none());
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_before_the_tls_handshake() {
    let (broker, _) = broker_with(BrokerConfig { max_connections: 1, ..BrokerConfig::default() });
    let (addr, connector) = serve_server_only_tls(&broker).await;
    // Accepted, still to start its handshake: it holds the only place.
    let held = TcpStream::connect(addr).await.unwrap();
    let mut refused = TcpStream::connect(addr).await.unwrap();
    let _ = refused.write_all(b"\x16\x03\x01").await;
    let mut received = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), refused.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the extra connection is closed at once");
    assert!(received.is_empty(), "with no TLS answer: {received:?}");

    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(connack) = tls_connect(addr, &connector, "device").await {
            assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the freed place was never given again");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
