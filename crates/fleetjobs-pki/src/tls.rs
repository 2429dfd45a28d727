//! `rustls` configuration for the device listeners (mutual TLS): a client certificate is
//! required and its holder must prove its key; whose certificate it is, and whether it may
//! connect, is decided after the handshake from the registry.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ProducesTickets;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use crate::ca::{check_key_matches, provider};
use crate::registered::ForeignCertificate;
use crate::{IssuedCert, PkiError};

/// Server configuration for MQTT over mutual TLS.
///
/// Presents `server` (see [`CertificateAuthority::issue_server_cert`](crate::CertificateAuthority::issue_server_cert))
/// and requires a client certificate, within its validity, whose private key the client
/// proves it holds (the handshake signature). TLS 1.2 and 1.3, [`provider`](crate::provider),
/// no ALPN.
///
/// Which CA issued the certificate is not checked here: the trusted set changes at runtime
/// (CAs are registered, deactivated and deleted through the API), and a certificate is only
/// ever admitted through the registry, where it was checked against its CA when it was
/// created or registered. The caller takes the peer certificate after the handshake, looks
/// up its [`certificate_id`](crate::certificate_id), and refuses the connection unless the
/// certificate (and its CA, if it has one) is ACTIVE.
///
/// **Resumption**: stateless session tickets (`ring`'s rotating ChaCha20-Poly1305 ticketer, which
/// seals and opens a ticket for a fraction of `aws-lc-rs`'s AES-CBC + HMAC one; one ticket per
/// full handshake), so that a reconnect storm resumes without the key exchange's signature
/// and the client certificate's signature check, and the server keeps no per-client cache. A
/// resumed handshake carries the client certificate from the ticket (rustls gives it as the
/// peer certificate again), so the registry check at CONNECT runs as for a full handshake;
/// the verifier does not run, so the caller re-checks the validity dates of a resumed
/// session's certificate ([`within_validity`]).
pub fn mqtt_server_tls_config(server: &IssuedCert) -> Result<Arc<ServerConfig>, PkiError> {
    mqtt_server_tls_config_with(server, provider(), rustls::crypto::ring::Ticketer::new()?)
}

/// [`mqtt_server_tls_config`] on another crypto provider (its suites put in the server's
/// order) and session ticketer: what `bench/tls_handshake_cpu` compares providers with, so
/// that every variant it measures is the server's configuration but for those two.
pub fn mqtt_server_tls_config_with(
    server: &IssuedCert,
    provider: CryptoProvider,
    ticketer: Arc<dyn ProducesTickets>,
) -> Result<Arc<ServerConfig>, PkiError> {
    let mut config = base_config(server, provider)?;
    config.ticketer = ticketer;
    // Each ticket costs an AEAD seal and about a kilobyte on the wire (it holds the client's
    // certificate); a device reconnects with one.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// Server configuration for the `iot-jobs-data` listener: as [`mqtt_server_tls_config`], but
/// without resumption, so that every connection's certificate goes through the verifier
/// (dates and key proof) before its requests reach the registry check.
pub fn jobs_data_tls_config(server: &IssuedCert) -> Result<Arc<ServerConfig>, PkiError> {
    let mut config = base_config(server, provider())?;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

fn base_config(server: &IssuedCert, provider: CryptoProvider) -> Result<ServerConfig, PkiError> {
    let provider = Arc::new(in_server_order(provider));
    let verifier = Arc::new(RegistryClientVerifier { algorithms: provider.signature_verification_algorithms });

    let cert = CertificateDer::from(server.cert_der.clone());
    let key = PrivateKeyDer::from_pem_slice(server.private_key_pem.as_bytes())
        .map_err(|e| PkiError::InvalidPem(format!("server private key: {e}")))?;
    check_key_matches(&cert, key.clone_key())?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?;
    // Our order, not the client's: OpenSSL clients (the Python and C SDKs) list AES-256 first.
    config.ignore_client_order = true;
    // No server-side session cache: resumption, where enabled, is by stateless tickets.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// Whether a client certificate (DER) is within its validity at `now` (epoch seconds); the
/// verifier's date check, for the sessions that skip the verifier (resumed ones).
pub fn within_validity(der: &[u8], now_secs: u64) -> bool {
    check_validity(der, now_secs).is_ok()
}

fn check_validity(der: &[u8], now_secs: u64) -> Result<(), rustls::Error> {
    // The dates alone: every handshake (and every resumed CONNECT) comes here.
    let (not_before, not_after) = ForeignCertificate::validity_of(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = i64::try_from(now_secs).unwrap_or(i64::MAX).saturating_mul(1000);
    if now < not_before {
        return Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > not_after {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// `provider` with its suites in the server's order, the SHA-256 ones first: AES-128-GCM, then
/// ChaCha20-Poly1305, then AES-256-GCM. TLS 1.3's AES-256 suite runs its key schedule on
/// SHA-384, which the SHA instructions of x86 CPUs do not cover, so every handshake costs more
/// for no gain here.
fn in_server_order(mut provider: CryptoProvider) -> CryptoProvider {
    use rustls::CipherSuite::*;
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        TLS13_AES_128_GCM_SHA256 => 0,
        TLS13_CHACHA20_POLY1305_SHA256 => 1,
        TLS13_AES_256_GCM_SHA384 => 2,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 3,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => 4,
        _ => 5,
    });
    provider
}

/// Requires a well-formed client certificate within its validity, and the proof of its key;
/// leaves the chain to the registry (see [`mqtt_server_tls_config`]). No CA names are sent
/// as hints, so a client offers its certificate whichever CA made it. The handshake signature
/// is checked against the certificate's public key alone, so that X.509 v1 certificates
/// (what `openssl x509 -req` makes without extensions, as in AWS's guides) are accepted too.
#[derive(Debug)]
struct RegistryClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RegistryClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_validity(end_entity.as_ref(), now.as_secs())?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = public_key_of(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        // TLS 1.2 names the hash, not the curve: any of the scheme's algorithms may match.
        let algorithms = self.algorithms.mapping.iter().find(|(scheme, _)| *scheme == dss.scheme).map(|(_, a)| *a);
        let verified = algorithms
            .unwrap_or_default()
            .iter()
            .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok());
        if verified {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature_with_raw_key(message, &public_key_of(cert)?, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SubjectPublicKeyInfo of a certificate, of any X.509 version.
fn public_key_of(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    let spki = ForeignCertificate::public_key_der(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    Ok(SubjectPublicKeyInfoDer::from(spki))
}
