//! Certificates made elsewhere (bring your own CA): reading one from PEM, and the checks AWS
//! IoT makes before it registers a CA certificate or a device certificate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use x509_parser::nom::Parser;
use x509_parser::prelude::{parse_x509_certificate, X509Certificate, X509CertificateParser, X509Error};

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

    /// The certificate as PEM text (what is kept of one registered when its device connects).
    pub fn to_pem(&self) -> String {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// Reads a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertificateCheckError> {
        let cert = parse(&der)?;
        let (not_before, not_after) = validity_ms(&cert);
        let is_ca = cert.is_ca();
        let common_name = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        Ok(ForeignCertificate { certificate_id: certificate_id(&der), not_before, not_after, is_ca, common_name, der })
    }

    /// The SubjectPublicKeyInfo (DER) of a DER certificate.
    pub(crate) fn public_key_der(der: &[u8]) -> Result<Vec<u8>, CertificateCheckError> {
        Ok(parse_for_handshake(der)?.public_key().raw.to_vec())
    }

    /// `notBefore` and `notAfter` (epoch milliseconds) of a DER certificate, as
    /// [`from_der`](Self::from_der) reads them, without the rest (no copy, no hash).
    pub(crate) fn validity_of(der: &[u8]) -> Result<(i64, i64), CertificateCheckError> {
        Ok(validity_ms(&parse_for_handshake(der)?))
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

fn validity_ms(cert: &X509Certificate<'_>) -> (i64, i64) {
    let validity = cert.validity();
    (validity.not_before.timestamp().saturating_mul(1000), validity.not_after.timestamp().saturating_mul(1000))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertificateCheckError> {
    whole(parse_x509_certificate(der))
}

/// What a TLS handshake reads of a client certificate (every connect): its validity and its
/// public key, so the extensions are framed but not decoded.
fn parse_for_handshake(der: &[u8]) -> Result<X509Certificate<'_>, CertificateCheckError> {
    whole(X509CertificateParser::new().with_deep_parse_extensions(false).parse(der))
}

/// A certificate that is all of its input.
fn whole<'a>(
    parsed: Result<(&'a [u8], X509Certificate<'a>), x509_parser::nom::Err<X509Error>>,
) -> Result<X509Certificate<'a>, CertificateCheckError> {
    match parsed {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertificateCheckError::InvalidPem("trailing data after the certificate".into())),
        Err(e) => Err(CertificateCheckError::InvalidPem(e.to_string())),
    }
}
