//! Tests: real rustls handshakes in memory, plus certificate contents.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{parse_x509_certificate, X509Certificate};

use crate::ca::provider;
use crate::*;

fn client_config(
    ca: &CertificateAuthority,
    client_cert: Option<&IssuedCert>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der().to_vec())).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.cert_der.clone())],
                PrivateKeyDer::from_pem_slice(c.private_key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Pumps TLS records between the two ends until both are done (or stuck).
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), rustls::Error> {
    for _ in 0..20 {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
                server.process_new_packets()?;
            }
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client.process_new_packets()?;
            }
        }
        if !moved && !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

/// Connects a client presenting `client_cert` (trusting `client_ca`) to a
/// server presenting `server_cert`, using `server_name`.
fn connect(
    server_cert: &IssuedCert,
    client_ca: &CertificateAuthority,
    client_cert: Option<&IssuedCert>,
    server_name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let server_config = mqtt_server_tls_config(server_cert).unwrap();
    let mut server = ServerConnection::new(server_config).unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client_config(client_ca, client_cert, versions), name).unwrap();
    handshake(&mut client, &mut server)?;
    Ok((client, server))
}

const ALL: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

fn assert_accepted(ca: &CertificateAuthority, server: &IssuedCert, device: &IssuedCert) {
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let (_, server_conn) =
            connect(server, ca, Some(device), "localhost", versions).unwrap_or_else(|e| panic!("{versions:?}: {e}"));
        let peer = server_conn.peer_certificates().expect("client certificate");
        assert_eq!(certificate_id(&peer[0]), device.certificate_id);
    }
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned()
}

#[test]
fn device_cert_from_our_ca_is_accepted_over_tls12_and_tls13() {
    let ca = CertificateAuthority::generate().unwrap();
    let server = ca.issue_server_cert(&[]).unwrap();
    let device = ca.issue_device_cert().unwrap();
    assert_accepted(&ca, &server, &device);
}

#[test]
fn device_cert_from_another_ca_completes_the_handshake_for_the_registry_to_judge() {
    let ca = CertificateAuthority::generate().unwrap();
    let other = CertificateAuthority::generate().unwrap();
    let server = ca.issue_server_cert(&[]).unwrap();
    let foreign = other.issue_device_cert().unwrap();
    // The client trusts our CA (so the server side is fine) and presents a certificate from
    // a CA the server may have registered: TLS admits it and hands over its id.
    let (_, server_conn) = connect(&server, &ca, Some(&foreign), "localhost", ALL).unwrap();
    let peer = server_conn.peer_certificates().expect("client certificate");
    assert_eq!(certificate_id(&peer[0]), foreign.certificate_id);
}

#[test]
fn an_expired_client_certificate_is_refused_at_the_handshake() {
    let ca = CertificateAuthority::generate().unwrap();
    let server = ca.issue_server_cert(&[]).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let expired = IssuedCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        private_key_pem: key.serialize_pem(),
        public_key_pem: key.public_key_pem(),
        certificate_id: certificate_id(cert.der()),
    };
    let err = connect(&server, &ca, Some(&expired), "localhost", ALL).unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)),
        "unexpected error: {err:?}"
    );
}

/// A certificate signed by `ca`'s key with subject CN `cn` (a verification certificate).
fn signed_with_cn(ca: &CertificateAuthority, cn: &str) -> ForeignCertificate {
    let issuer = rcgen::Issuer::from_ca_cert_der(
        &CertificateDer::from(ca.cert_der().to_vec()),
        rcgen::KeyPair::from_pem(ca.key_pem()).unwrap(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let cert = params.signed_by(&key, &issuer).unwrap();
    ForeignCertificate::from_pem(&cert.pem()).unwrap()
}

#[test]
fn foreign_certificates_tell_their_ca_their_issuer_and_their_validity() {
    let ca = CertificateAuthority::generate().unwrap();
    let other = CertificateAuthority::generate().unwrap();
    let ca_cert = ForeignCertificate::from_pem(ca.cert_pem()).unwrap();
    let other_cert = ForeignCertificate::from_pem(other.cert_pem()).unwrap();
    assert!(ca_cert.is_ca);
    assert_eq!(ca_cert.common_name.as_deref(), Some("Fleetjobs Root CA"));
    assert_eq!(ca_cert.certificate_id, certificate_id(ca.cert_der()));

    let device = ForeignCertificate::from_pem(&ca.issue_device_cert().unwrap().cert_pem).unwrap();
    assert!(!device.is_ca);
    assert!(device.is_signed_by(&ca_cert));
    assert!(!device.is_signed_by(&other_cert), "same subject name, another key");
    assert!(ca_cert.is_signed_by(&ca_cert), "self-signed");
    assert!(device.valid_at(device.not_before) && device.valid_at(device.not_after));
    assert!(!device.valid_at(device.not_before - 1) && !device.valid_at(device.not_after + 1));

    let verification = signed_with_cn(&ca, "code123");
    assert_eq!(verification.common_name.as_deref(), Some("code123"));
    assert!(verification.is_signed_by(&ca_cert) && !verification.is_signed_by(&other_cert));

    // A chain: the first certificate counts.
    let chain = format!("{}{}", ca.issue_device_cert().unwrap().cert_pem, ca.cert_pem());
    assert!(!ForeignCertificate::from_pem(&chain).unwrap().is_ca);
    assert!(matches!(ForeignCertificate::from_pem("nope"), Err(CertificateCheckError::InvalidPem(_))));
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(ForeignCertificate::from_pem(garbage).is_err());
    let v = ForeignCertificate::from_der(ca.cert_der().to_vec()).unwrap();
    assert_eq!((v.not_before, v.not_after), (ca_cert.not_before, ca_cert.not_after));
}

#[test]
fn client_without_certificate_is_rejected() {
    let ca = CertificateAuthority::generate().unwrap();
    let server = ca.issue_server_cert(&[]).unwrap();
    let err = connect(&server, &ca, None, "localhost", ALL).unwrap_err();
    assert!(matches!(err, rustls::Error::NoCertificatesPresented), "unexpected error: {err:?}");
}

#[test]
fn server_cert_is_valid_for_default_and_extra_names() {
    let ca = CertificateAuthority::generate().unwrap();
    let extra = vec![
        "mqtt.example.com".to_owned(),
        "10.1.2.3".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(), // duplicate, skipped
        " ".to_owned(),         // blank, skipped
    ];
    let server = ca.issue_server_cert(&extra).unwrap();
    let device = ca.issue_device_cert().unwrap();
    for name in ["localhost", "127.0.0.1", "mqtt.example.com", "10.1.2.3", "::1"] {
        connect(&server, &ca, Some(&device), name, ALL).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = connect(&server, &ca, Some(&device), "other.example.com", ALL).unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");

    let cert = parse(&server.cert_der);
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) => ips.push(match b.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                n => panic!("bad IP length {n}"),
            }),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, ["localhost", "mqtt.example.com"]);
    assert_eq!(ips, ["127.0.0.1", "10.1.2.3", "::1"].map(|s| s.parse::<IpAddr>().unwrap()).to_vec());
    assert!(!cert.is_ca());
}

#[test]
fn reloaded_ca_still_verifies_old_certs_and_issues_new_ones() {
    let ca = CertificateAuthority::generate().unwrap();
    let old_server = ca.issue_server_cert(&[]).unwrap();
    let old_device = ca.issue_device_cert().unwrap();

    let reloaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    assert_eq!(reloaded.cert_der(), ca.cert_der());
    assert_eq!(reloaded.cert_pem(), ca.cert_pem());
    assert_eq!(reloaded.key_pem(), ca.key_pem());

    // Old certificates against the reloaded CA.
    assert_accepted(&reloaded, &old_server, &old_device);
    // New certificates from the reloaded CA against the original one.
    let new_server = reloaded.issue_server_cert(&[]).unwrap();
    let new_device = reloaded.issue_device_cert().unwrap();
    assert_accepted(&ca, &new_server, &new_device);
    assert_accepted(&reloaded, &old_server, &new_device);
    // Same issuer name, byte for byte.
    assert_eq!(parse(&new_device.cert_der).issuer().as_raw(), parse(ca.cert_der()).subject().as_raw());
}

#[test]
fn from_pem_rejects_bad_input() {
    let ca = CertificateAuthority::generate().unwrap();
    let other = CertificateAuthority::generate().unwrap();
    assert!(matches!(CertificateAuthority::from_pem(ca.cert_pem(), other.key_pem()), Err(PkiError::KeyMismatch)));
    assert!(matches!(CertificateAuthority::from_pem("garbage", ca.key_pem()), Err(PkiError::InvalidPem(_))));
    assert!(matches!(CertificateAuthority::from_pem(ca.cert_pem(), "garbage"), Err(PkiError::InvalidPem(_))));
    // A key PEM where a certificate is expected.
    assert!(CertificateAuthority::from_pem(ca.key_pem(), ca.key_pem()).is_err());
}

#[test]
fn certificate_id_is_lowercase_hex_sha256_of_der() {
    let ca = CertificateAuthority::generate().unwrap();
    let device = ca.issue_device_cert().unwrap();
    let id = &device.certificate_id;
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(*id, hex::encode(Sha256::digest(&device.cert_der)));
    assert_eq!(*id, certificate_id(&device.cert_der));
    // Known answer: SHA-256 of the empty input.
    assert_eq!(certificate_id(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

#[test]
fn device_cert_looks_like_an_aws_one() {
    let ca = CertificateAuthority::generate().unwrap();
    let a = ca.issue_device_cert().unwrap();
    let b = ca.issue_device_cert().unwrap();
    assert_ne!(a.certificate_id, b.certificate_id);
    assert_ne!(a.private_key_pem, b.private_key_pem);

    let ca_x509 = parse(ca.cert_der());
    let (cert_a, cert_b) = (parse(&a.cert_der), parse(&b.cert_der));
    assert_ne!(cert_a.raw_serial(), cert_b.raw_serial());
    assert_eq!(common_name(&cert_a), "AWS IoT Certificate");
    assert_eq!(cert_a.issuer().as_raw(), ca_x509.subject().as_raw());
    assert_eq!(
        cert_a.validity().not_after.to_datetime().unix_timestamp(),
        2_524_607_999 // 2049-12-31T23:59:59Z
    );
    assert!(cert_a.validity().is_valid());
    assert!(!cert_a.is_ca());
    cert_a.verify_signature(Some(ca_x509.public_key())).unwrap();

    // PEM forms match the DER / key pair.
    assert_eq!(CertificateDer::from_pem_slice(a.cert_pem.as_bytes()).unwrap().as_ref(), &a.cert_der[..]);
    assert!(a.private_key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "PKCS#1, as AWS");
    assert!(a.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(a.public_key_pem.as_bytes()).unwrap();
    assert_eq!(spki.as_ref(), cert_a.public_key().raw);
}

#[test]
fn ca_cert_is_a_ten_year_p256_root() {
    let ca = CertificateAuthority::generate().unwrap();
    let cert = parse(ca.cert_der());
    assert!(cert.is_ca());
    assert_eq!(common_name(&cert), "Fleetjobs Root CA");
    assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());
    let validity = cert.validity();
    let years = (validity.not_after.timestamp() - validity.not_before.timestamp()) as f64 / (365.25 * 24.0 * 3600.0);
    assert!((9.99..10.02).contains(&years), "{years}");
    assert_eq!(
        cert.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap().to_id_string(),
        "1.2.840.10045.3.1.7" // prime256v1
    );
    cert.verify_signature(None).unwrap();
}

#[test]
fn types_are_thread_safe() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CertificateAuthority>();
    assert_send_sync::<IssuedCert>();
}

#[test]
fn debug_does_not_leak_private_keys() {
    let ca = CertificateAuthority::generate().unwrap();
    let device = ca.issue_device_cert().unwrap();
    assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    assert!(!format!("{device:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_server_cert_is_reused_only_while_it_still_fits() {
    use std::time::Duration;
    let ca = CertificateAuthority::generate().unwrap();
    let month = Duration::from_secs(30 * 24 * 3600);
    let hosts = vec!["mqtt.example.com".to_string()];
    let issued = ca.issue_server_cert(&hosts).unwrap();
    let reused = ca.reusable_server_cert(&issued.cert_pem, &issued.private_key_pem, &hosts, month).unwrap();
    assert_eq!(reused.cert_der, issued.cert_der);
    assert_eq!(reused.public_key_pem, issued.public_key_pem);
    assert!(ca.reusable_server_cert(&issued.cert_pem, &issued.private_key_pem, &[], month).is_some(), "fewer hosts");

    let more = vec!["mqtt.example.com".to_string(), "10.0.0.7".to_string()];
    assert!(ca.reusable_server_cert(&issued.cert_pem, &issued.private_key_pem, &more, month).is_none(), "a new host");
    let eleven_years = Duration::from_secs(11 * 365 * 24 * 3600);
    assert!(
        ca.reusable_server_cert(&issued.cert_pem, &issued.private_key_pem, &hosts, eleven_years).is_none(),
        "expires within the renewal window"
    );
    let other_key = ca.issue_server_cert(&hosts).unwrap().private_key_pem;
    assert!(ca.reusable_server_cert(&issued.cert_pem, &other_key, &hosts, month).is_none(), "key mismatch");
    let other_ca = CertificateAuthority::generate().unwrap();
    assert!(other_ca.reusable_server_cert(&issued.cert_pem, &issued.private_key_pem, &hosts, month).is_none());
    assert!(ca.reusable_server_cert("garbage", &issued.private_key_pem, &hosts, month).is_none());
}

/// The device key pair of `issued`, PKCS#1 RSA, with the certificate's public key.
fn rsa_key_of(issued: &IssuedCert) -> rsa::RsaPrivateKey {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    rsa::RsaPrivateKey::from_pkcs1_pem(&issued.private_key_pem).expect("PKCS#1 RSA private key")
}

#[test]
fn device_keys_are_rsa_2048_pkcs1_by_default_and_verify_over_tls() {
    use rsa::pkcs8::EncodePublicKey;
    use rsa::traits::PublicKeyParts;
    let ca = CertificateAuthority::generate().unwrap();
    assert_eq!(ca.device_key_type(), DeviceKeyType::Rsa2048);
    let device = ca.issue_device_cert().unwrap();
    let key = rsa_key_of(&device);
    assert_eq!(key.size() * 8, 2048);
    let cert = parse(&device.cert_der);
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), "1.2.840.113549.1.1.1"); // rsaEncryption
                                                                                              // The private key, the public key PEM and the certificate are one key pair.
    let spki = key.to_public_key().to_public_key_der().unwrap();
    assert_eq!(spki.as_bytes(), cert.public_key().raw);
    let pem_spki =
        rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(device.public_key_pem.as_bytes()).unwrap();
    assert_eq!(pem_spki.as_ref(), cert.public_key().raw);
    cert.verify_signature(Some(parse(ca.cert_der()).public_key())).unwrap();
    // An RSA client certificate under the EC root: rustls signs and verifies with it.
    let server = ca.issue_server_cert(&[]).unwrap();
    assert_accepted(&ca, &server, &device);
}

#[test]
fn ec_p256_device_keys_stay_available() {
    let ca = CertificateAuthority::generate().unwrap().with_device_key_type(DeviceKeyType::EcP256);
    let device = ca.issue_device_cert().unwrap();
    assert!(device.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let cert = parse(&device.cert_der);
    assert_eq!(
        cert.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap().to_id_string(),
        "1.2.840.10045.3.1.7" // prime256v1
    );
    let server = ca.issue_server_cert(&[]).unwrap();
    assert_accepted(&ca, &server, &device);
    // The kind can also be asked for per certificate.
    let rsa = ca.issue_device_cert_with(DeviceKeyType::Rsa2048).unwrap();
    assert!(rsa.private_key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
}

#[test]
fn device_key_types_have_command_line_names() {
    for kind in DeviceKeyType::ALL {
        assert_eq!(kind.name().parse::<DeviceKeyType>().unwrap(), kind);
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!("rsa-2048".parse::<DeviceKeyType>().unwrap(), DeviceKeyType::Rsa2048);
    let err = "rsa-1024".parse::<DeviceKeyType>().unwrap_err();
    assert!(err.contains("rsa-2048, ec-p256"), "{err}");
}

/// A key for a CSR, with its PKCS#8 PEM (what a device keeps).
fn csr_key(alg: &'static rcgen::SignatureAlgorithm) -> (rcgen::KeyPair, String) {
    let key = if alg == &rcgen::PKCS_RSA_SHA256 {
        use rsa::pkcs8::EncodePrivateKey;
        let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = rsa.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, alg).unwrap()
    } else {
        rcgen::KeyPair::generate_for(alg).unwrap()
    };
    let pem = key.serialize_pem();
    (key, pem)
}

/// An RSA key ring refuses to sign with (under 2048 bits), signing PKCS#1 v1.5 / SHA-256 with
/// the `rsa` crate, so that a CSR with such a key can be made at all.
struct WeakRsa {
    key: rsa::RsaPrivateKey,
    public: Vec<u8>,
}

impl WeakRsa {
    fn new(key: rsa::RsaPrivateKey) -> Self {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let public = key.to_public_key().to_pkcs1_der().unwrap().as_bytes().to_vec();
        WeakRsa { key, public }
    }
}

impl rcgen::PublicKeyData for WeakRsa {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for WeakRsa {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // DigestInfo for SHA-256 (RFC 8017 9.2 note 1), then the digest.
        let mut info = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ];
        info.extend_from_slice(&Sha256::digest(msg));
        Ok(self.key.sign(rsa::Pkcs1v15Sign::new_unprefixed(), &info).unwrap())
    }
}

fn csr_pem(key: &impl rcgen::SigningKey, cn: &str, ask_for_ca: bool) -> String {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Acme Devices");
    if ask_for_ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params.serialize_request(key).unwrap().pem().unwrap()
}

#[test]
fn a_csr_gets_a_certificate_for_its_own_key_and_subject() {
    let ca = CertificateAuthority::generate().unwrap();
    let server = ca.issue_server_cert(&[]).unwrap();
    let root = parse(ca.cert_der());
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_RSA_SHA256] {
        let (key, key_pem) = csr_key(alg);
        let signed = ca.sign_csr(&csr_pem(&key, "sensor-7", true)).unwrap();
        assert_eq!(signed.certificate_id, certificate_id(&signed.cert_der));
        assert_eq!(CertificateDer::from_pem_slice(signed.cert_pem.as_bytes()).unwrap().as_ref(), &signed.cert_der[..]);
        let cert = parse(&signed.cert_der);
        assert_eq!(common_name(&cert), "sensor-7");
        let org = cert.subject().iter_organization().next().unwrap().as_str().unwrap().to_owned();
        assert_eq!(org, "Acme Devices");
        assert_eq!(cert.public_key().raw, &rcgen::PublicKeyData::subject_public_key_info(&key)[..], "{alg:?}");
        assert!(!cert.is_ca(), "a CSR asking for CA rights gets a leaf");
        assert_eq!(cert.issuer().as_raw(), root.subject().as_raw());
        cert.verify_signature(Some(root.public_key())).unwrap();
        assert_eq!(cert.validity().not_after.timestamp(), 2_524_607_999);
        // The device proves possession with the key that never left it.
        let device = IssuedCert {
            cert_pem: signed.cert_pem.clone(),
            cert_der: signed.cert_der.clone(),
            private_key_pem: key_pem,
            public_key_pem: key.public_key_pem(),
            certificate_id: signed.certificate_id.clone(),
        };
        assert_accepted(&ca, &server, &device);
    }
}

#[test]
fn bad_csrs_are_refused_with_a_reason() {
    let ca = CertificateAuthority::generate().unwrap();
    let refused = |pem: &str| match ca.sign_csr(pem) {
        Err(PkiError::InvalidCsr(why)) => why,
        other => panic!("expected InvalidCsr, got {other:?}"),
    };
    assert!(refused("").contains("PEM"));
    assert!(refused("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n").contains("parse"));

    // A request whose signature does not match its contents (the subject was changed).
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let good = csr_pem(&key, "honest", false);
    let mut der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(good.as_bytes()).unwrap().to_vec();
    let at = der.windows(6).position(|w| w == b"honest").unwrap();
    der[at] = b'H';
    let tampered = pem_of("CERTIFICATE REQUEST", &der);
    assert!(refused(&tampered).contains("signature"), "{}", refused(&tampered));
    assert!(ca.sign_csr(&good).is_ok());

    // Keys AWS IoT does not take: RSA-1024, Ed25519.
    let weak = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    assert!(refused(&csr_pem(&WeakRsa::new(weak), "weak", false)).contains("2048"));
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    assert!(refused(&csr_pem(&ed, "ed", false)).contains("unsupported"));
    // A certificate is not a request.
    let cert = ca.issue_device_cert_with(DeviceKeyType::EcP256).unwrap();
    refused(&cert.cert_pem);
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[test]
fn validity_is_read_from_the_certificate() {
    let ca = CertificateAuthority::generate().unwrap();
    let device = ca.issue_device_cert_with(DeviceKeyType::EcP256).unwrap();
    let v = ForeignCertificate::from_der(device.cert_der.clone()).unwrap();
    assert_eq!(v.not_after, 2_524_607_999_000); // 2049-12-31T23:59:59Z
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(
        (now - 3_700_000..=now - 3_500_000).contains(&v.not_before),
        "back-dated one hour: {} vs {now}",
        v.not_before
    );
    let from_pem = ForeignCertificate::from_pem(&device.cert_pem).unwrap();
    assert_eq!((from_pem.not_before, from_pem.not_after), (v.not_before, v.not_after));
    let root = ForeignCertificate::from_der(ca.cert_der().to_vec()).unwrap();
    assert_eq!(root.not_before, parse(ca.cert_der()).validity().not_before.timestamp() * 1000);
    assert!(ForeignCertificate::from_der(b"not a certificate".to_vec()).is_err());
}
