//! The root CA and the certificates it issues.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use time::OffsetDateTime;

use crate::keys::{self, DeviceKey, DeviceKeyType};
use crate::{certificate_id, csr, PkiError};

/// Common name of the root CA.
pub(crate) const CA_COMMON_NAME: &str = "Fleetjobs Root CA";
/// Common name AWS IoT puts in the certificates made by `CreateKeysAndCertificate`.
pub(crate) const DEVICE_COMMON_NAME: &str = "AWS IoT Certificate";
/// Common name of the MQTT listener's certificate.
pub(crate) const SERVER_COMMON_NAME: &str = "Fleetjobs MQTT Server";

const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600 + 3 * 24 * 3600);
/// Certificates are back-dated a little so that devices with a slightly slow
/// clock accept them right away.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Fleetjobs' root certificate authority (ECDSA P-256, CN "Fleetjobs Root CA").
///
/// It signs the MQTT server certificate and every device certificate. Persist
/// [`cert_pem`](Self::cert_pem) and [`key_pem`](Self::key_pem) and reload them
/// with [`from_pem`](Self::from_pem) so that certificates issued before a restart
/// keep verifying.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    device_key_type: DeviceKeyType,
}

/// A certificate issued for a public key the caller holds the private key of (a CSR's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCert {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    /// The certificate, DER-encoded.
    pub cert_der: Vec<u8>,
    /// The AWS certificate id, see [`certificate_id`](crate::certificate_id).
    pub certificate_id: String,
}

/// A certificate together with its freshly generated key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    /// The certificate, DER-encoded.
    pub cert_der: Vec<u8>,
    /// The private key: PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`) for an RSA key,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) for an EC one.
    pub private_key_pem: String,
    /// The public key, SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
    /// The AWS certificate id, see [`certificate_id`](crate::certificate_id).
    pub certificate_id: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("certificate_id", &self.certificate_id)
            .field("cert_pem", &self.cert_pem)
            .field("private_key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new root CA: fresh P-256 key, self-signed, valid for 10 years.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(CA_COMMON_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + TEN_YEARS;

        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
            device_key_type: DeviceKeyType::default(),
        })
    }

    /// Reloads a CA persisted with [`cert_pem`](Self::cert_pem) and
    /// [`key_pem`](Self::key_pem).
    ///
    /// Fails if either PEM is invalid, if the key does not belong to the
    /// certificate, or if the certificate is not usable as a trust anchor.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| PkiError::InvalidPem(format!("CA private key: {e}")))?;
        check_key_matches(&cert_der, key_der)?;

        // Must parse as a trust anchor, otherwise nothing would ever verify.
        rustls::RootCertStore::empty().add(cert_der.clone()).map_err(|e| PkiError::InvalidCa(e.to_string()))?;

        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            cert_der: cert_der.to_vec(),
            issuer,
            device_key_type: DeviceKeyType::default(),
        })
    }

    /// The kind of key pair [`issue_device_cert`](Self::issue_device_cert) generates
    /// (default: RSA-2048, as AWS).
    pub fn with_device_key_type(mut self, kind: DeviceKeyType) -> Self {
        self.device_key_type = kind;
        self
    }

    /// See [`with_device_key_type`](Self::with_device_key_type).
    pub fn device_key_type(&self) -> DeviceKeyType {
        self.device_key_type
    }

    /// The CA certificate, PEM (what devices get as `root-CA.crt`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM. Keep it secret.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues the MQTT listener's certificate with a fresh P-256 key.
    ///
    /// Subject alternative names: `localhost` and `127.0.0.1` always, plus each
    /// of `extra_hosts` (entries that parse as an IP address become IP SANs,
    /// the others DNS SANs; duplicates and blank entries are skipped). Valid
    /// for 10 years.
    pub fn issue_server_cert(&self, extra_hosts: &[String]) -> Result<IssuedCert, PkiError> {
        let mut sans: Vec<SanType> = Vec::new();
        let defaults = ["localhost", "127.0.0.1"];
        for host in defaults.into_iter().chain(extra_hosts.iter().map(|h| h.trim())) {
            if host.is_empty() {
                continue;
            }
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.to_owned().try_into()?),
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = dn(SERVER_COMMON_NAME);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + TEN_YEARS;
        self.issue(params, keys::generate(DeviceKeyType::EcP256)?)
    }

    /// The server certificate kept from an earlier start, if it can serve on: its key
    /// matches, it chains to this CA, it names every host `issue_server_cert` would put in
    /// (the defaults and `extra_hosts`), and it is still valid `renew_before` from now.
    /// `None` means: issue a new one. Keeping it spares devices that pinned it a surprise
    /// and the data directory a rewrite at every start.
    pub fn reusable_server_cert(
        &self,
        cert_pem: &str,
        key_pem: &str,
        extra_hosts: &[String],
        renew_before: Duration,
    ) -> Option<IssuedCert> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).ok()?;
        check_key_matches(&cert_der, key_der).ok()?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.cert_der.clone())).ok()?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
                .build()
                .ok()?;
        let at = std::time::SystemTime::now().checked_add(renew_before)?;
        let at = UnixTime::since_unix_epoch(at.duration_since(std::time::UNIX_EPOCH).ok()?);
        let hosts = ["localhost", "127.0.0.1"].into_iter().chain(extra_hosts.iter().map(|h| h.trim()));
        for host in hosts.filter(|h| !h.is_empty()) {
            let name = ServerName::try_from(host).ok()?;
            verifier.verify_server_cert(&cert_der, &[], &name, &[], at).ok()?;
        }
        let key = KeyPair::from_pem(key_pem).ok()?;
        Some(IssuedCert {
            cert_pem: cert_pem.to_owned(),
            certificate_id: certificate_id(&cert_der),
            cert_der: cert_der.to_vec(),
            private_key_pem: key_pem.to_owned(),
            public_key_pem: key.public_key_pem(),
        })
    }

    /// Issues a device certificate with a fresh key pair of this CA's
    /// [`device_key_type`](Self::device_key_type), like `aws iot
    /// create-keys-and-certificate`: CN "AWS IoT Certificate", a random serial number, valid
    /// until 2049-12-31T23:59:59Z. An RSA key takes a prime search (tenths of a second):
    /// call it off the async runtime.
    pub fn issue_device_cert(&self) -> Result<IssuedCert, PkiError> {
        self.issue_device_cert_with(self.device_key_type)
    }

    /// [`issue_device_cert`](Self::issue_device_cert) with a key pair of `kind`.
    pub fn issue_device_cert_with(&self, kind: DeviceKeyType) -> Result<IssuedCert, PkiError> {
        self.issue(device_params(dn(DEVICE_COMMON_NAME)), keys::generate(kind)?)
    }

    /// Issues a device certificate for the public key of a PEM certificate signing request,
    /// like `aws iot create-certificate-from-csr`: the request's subject, the same profile
    /// and validity as [`issue_device_cert`](Self::issue_device_cert). The request must be
    /// signed by its key (RSA 2048–4096 or EC P-256 / P-384); what it asks for beyond subject
    /// and key (extensions, CA rights) is not granted. Fails with [`PkiError::InvalidCsr`].
    pub fn sign_csr(&self, csr_pem: &str) -> Result<SignedCert, PkiError> {
        let csr = csr::read(csr_pem)?;
        let mut params = device_params(csr.subject);
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        let cert_der = cert.der().to_vec();
        Ok(SignedCert { cert_pem: cert.pem(), certificate_id: certificate_id(&cert_der), cert_der })
    }

    /// Signs `params` (completed with a random serial and the authority key
    /// identifier) for the public half of `key`.
    fn issue(&self, mut params: CertificateParams, key: DeviceKey) -> Result<IssuedCert, PkiError> {
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key.public_key, &self.issuer)?;
        let cert_der = cert.der().to_vec();
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            certificate_id: certificate_id(&cert_der),
            cert_der,
            private_key_pem: key.private_key_pem,
            public_key_pem: key.public_key_pem,
        })
    }
}

/// The profile of every device certificate: a client-auth leaf, valid (as AWS's) until the
/// end of 2049.
fn device_params(subject: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = OffsetDateTime::now_utc() - BACKDATE;
    params.not_after = rcgen::date_time_ymd(2049, 12, 31) + Duration::from_secs(86_399);
    params
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A random, positive 128-bit serial number.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    provider().secure_random.fill(&mut bytes).map_err(|_| rcgen::Error::RingUnspecified)?;
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte, keeps the length fixed
    Ok(SerialNumber::from_slice(&bytes))
}

/// The crypto provider of every TLS config the server and the simulator build, named
/// explicitly (the workspace compiles two, so rustls has no process default).
///
/// Composed from both for the cheapest handshake (docs/PERFORMANCE.md, "TLS handshakes on
/// aws-lc-rs"): `aws-lc-rs`'s key exchange (its X25519 costs the server far less than
/// `ring`'s), signing keys and signature checks; `ring`'s cipher suites, whose HKDF keeps each
/// key's HMAC state where `aws-lc-rs`'s sets the key up again at every expand of the key
/// schedule.
///
/// Key exchange is pinned to X25519, then P-256, then P-384: the provider's default puts the
/// post-quantum hybrid X25519MLKEM768 first, whose ~1.2 KB key shares make every
/// ClientHello and ServerHello bigger and every handshake dearer; the devices' TLS stacks
/// (OpenSSL, the npm SDK's Node, rumqttc's rustls) all offer X25519.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::{aws_lc_rs, ring};
    CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519, aws_lc_rs::kx_group::SECP256R1, aws_lc_rs::kx_group::SECP384R1],
        cipher_suites: ring::default_provider().cipher_suites,
        ..aws_lc_rs::default_provider()
    }
}

/// Checks that `key` is the private key of `cert`.
pub(crate) fn check_key_matches(cert: &CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Result<(), PkiError> {
    let signing_key = provider().key_provider.load_private_key(key)?;
    rustls::sign::CertifiedKey::new(vec![cert.clone()], signing_key).keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => PkiError::KeyMismatch,
        other => PkiError::Tls(other),
    })
}
