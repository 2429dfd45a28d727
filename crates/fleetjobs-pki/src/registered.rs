//! Certificates made elsewhere (bring your own CA): reading one from PEM, and the checks AWS
//! IoT makes before it registers a CA certificate or a device certificate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{parse_x509_certificate, X509Certificate};

use crate::certificate_id;

/// Why a certificate offered for registration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateCheckError {
    /// No `CERTIFICATE` PEM block, or one that is not an X.509 certificate.
    #[error("the certificate PEM is not valid: {0}")]
    InvalidPem(String),
}

/// A certificate read from PEM: what registration and the device plane need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCertificate {
    /// The first `CERTIFICATE` block, DER.
    pub der: Vec<u8>,
    /// The AWS id (SHA-256 of the DER).
    pub certificate_id: String,
    /// `notBefore`, epoch milliseconds.
    pub not_before: i64,
    /// `notAfter`, epoch milliseconds.
    pub not_after: i64,
    /// basicConstraints says `CA:TRUE`.
    pub is_ca: bool,
    /// The subject's first common name, if any.
    pub common_name: Option<String>,
}

impl ForeignCertificate {
    /// Reads the first certificate of `pem` (a chain may follow it; the rest is ignored).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateCheckError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CertificateCheckError::InvalidPem(e.to_string()))?;
        Self::from_der(der.to_vec())
    }

    /// Reads a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertificateCheckError> {
        let cert = parse(&der)?;
        let validity = cert.validity();
        let not_before = validity.not_before.timestamp().saturating_mul(1000);
        let not_after = validity.not_after.timestamp().saturating_mul(1000);
        let is_ca = cert.is_ca();
        let common_name = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        Ok(ForeignCertificate { certificate_id: certificate_id(&der), not_before, not_after, is_ca, common_name, der })
    }

    /// The SubjectPublicKeyInfo (DER) of a DER certificate.
    pub(crate) fn public_key_der(der: &[u8]) -> Result<Vec<u8>, CertificateCheckError> {
        Ok(parse(der)?.public_key().raw.to_vec())
    }

    /// Within `notBefore..=notAfter` at `now` (epoch milliseconds).
    pub fn valid_at(&self, now: i64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }

    /// Whether `issuer` signed this certificate: this one names `issuer`'s subject as its
    /// issuer and its signature verifies with `issuer`'s public key.
    pub fn is_signed_by(&self, issuer: &ForeignCertificate) -> bool {
        let (Ok(child), Ok(parent)) = (parse(&self.der), parse(&issuer.der)) else {
            return false;
        };
        child.issuer().as_raw() == parent.subject().as_raw()
            && child.verify_signature(Some(parent.public_key())).is_ok()
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertificateCheckError> {
    match parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertificateCheckError::InvalidPem("trailing data after the certificate".into())),
        Err(e) => Err(CertificateCheckError::InvalidPem(e.to_string())),
    }
}
