//! Fleetjobs' own small PKI.
//!
//! AWS IoT Core authenticates devices with X.509 client certificates. Fleetjobs
//! plays the same game with a self-generated root CA:
//!
//! * [`CertificateAuthority`] — an ECDSA P-256 root CA ("Fleetjobs Root CA"),
//!   generated once and reloaded from PEM after a restart
//!   ([`CertificateAuthority::from_pem`]).
//! * [`CertificateAuthority::issue_device_cert`] — what
//!   `aws iot create-keys-and-certificate` returns: a certificate plus a fresh
//!   key pair (RSA-2048 as AWS, or EC P-256: [`DeviceKeyType`]), identified by its
//!   [`certificate_id`] (SHA-256 of the DER, as AWS).
//! * [`CertificateAuthority::sign_csr`] — `aws iot create-certificate-from-csr`: a
//!   certificate for the key of a certificate signing request.
//! * [`validity`] — a certificate's notBefore / notAfter, for DescribeCertificate.
//! * [`CertificateAuthority::issue_server_cert`] and [`mqtt_server_tls_config`] —
//!   the MQTT listener's certificate and a mutual-TLS `rustls` configuration that
//!   requires a client certificate and the proof of its key. Which certificates may
//!   connect (ours, those of registered CAs, those registered without a CA) and
//!   whether they are ACTIVE is for the caller to check, via the [`certificate_id`]
//!   of the peer certificate.
//! * [`ForeignCertificate`] — a certificate made elsewhere, read from PEM, with the
//!   checks registration needs (is it a CA, did this CA sign it, its validity).
//!
//! Every `rustls` config names its crypto provider, [`provider`] (`aws-lc-rs`'s key
//! exchange — pinned to X25519, P-256, P-384 — and signatures, `ring`'s cipher suites);
//! nothing depends on a process-wide default provider being installed. Certificates are
//! made and checked on `ring` (rcgen, x509-parser).

mod ca;
mod csr;
mod keys;
mod registered;
mod tls;

pub use ca::{provider, CertificateAuthority, IssuedCert, SignedCert};
pub use keys::DeviceKeyType;
pub use registered::{CertificateCheckError, ForeignCertificate};
pub use tls::{jobs_data_tls_config, mqtt_server_tls_config, mqtt_server_tls_config_with, within_validity};

use sha2::{Digest, Sha256};

/// Errors from certificate generation, loading and TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key or certificate generation / signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM input could not be decoded.
    #[error("invalid PEM: {0}")]
    InvalidPem(String),
    /// A certificate and a private key that should belong together do not.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The CA certificate cannot be used as a trust anchor.
    #[error("invalid CA certificate: {0}")]
    InvalidCa(String),
    /// Building the `rustls` configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// RSA key generation or encoding failed.
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
    /// A certificate signing request was refused (malformed, bad signature, weak or
    /// unsupported key); the message says which.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// A certificate's DER does not parse.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Building the client certificate verifier failed.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The AWS IoT `certificateId` of a certificate: lowercase hex SHA-256 of its
/// DER encoding (64 characters).
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests;
