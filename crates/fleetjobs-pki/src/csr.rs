//! Certificate signing requests: what CreateCertificateFromCsr reads from one (its subject
//! and public key, once its signature verifies), and what it refuses.

use rcgen::{DistinguishedName, DnType, DnValue, PublicKeyData, SubjectPublicKeyInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateSigningRequestDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use crate::PkiError;

/// RSA key sizes AWS IoT accepts in a CSR.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// What a certificate issued for a CSR takes from it. Extensions the CSR asks for are not
/// copied: the certificate gets the device profile (client auth, not a CA), as AWS's do.
pub(crate) struct CsrContents {
    pub subject: DistinguishedName,
    pub public_key: SubjectPublicKeyInfo,
}

fn invalid(why: impl Into<String>) -> PkiError {
    PkiError::InvalidCsr(why.into())
}

/// Reads a PEM CSR (`-----BEGIN CERTIFICATE REQUEST-----`): the proof of possession (its
/// signature) must verify, and its key must be RSA 2048–4096 or EC P-256 / P-384.
pub(crate) fn read(pem: &str) -> Result<CsrContents, PkiError> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| invalid(format!("not a PEM certificate request: {e}")))?;
    let (rest, csr) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|e| invalid(format!("the request does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the request"));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let parsed = spki.parsed().map_err(|e| invalid(format!("the public key does not parse: {e}")))?;
    let public_key = SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|_| invalid("unsupported public key algorithm: use RSA or EC P-256 / P-384"))?;
    match parsed {
        PublicKey::RSA(rsa) if RSA_BITS.contains(&rsa.key_size()) => {}
        PublicKey::RSA(rsa) => {
            return Err(invalid(format!("RSA keys must have 2048 to 4096 bits, not {}", rsa.key_size())));
        }
        PublicKey::EC(_)
            if [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384].contains(&public_key.algorithm()) => {}
        _ => return Err(invalid("unsupported public key algorithm: use RSA or EC P-256 / P-384")),
    }
    // After the key checks: the verifier (ring) refuses weak keys too, but less clearly.
    csr.verify_signature().map_err(|e| invalid(format!("the request's signature does not verify: {e}")))?;
    Ok(CsrContents { subject: subject(&info.subject)?, public_key })
}

/// The subject as rcgen keeps it, attribute by attribute in the request's order, each value
/// in its string type (so that the certificate's subject is byte for byte the request's).
fn subject(name: &X509Name<'_>) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    for attr in name.iter_attributes() {
        let oid: Vec<u64> =
            attr.attr_type().iter().ok_or_else(|| invalid("a subject attribute type is too long"))?.collect();
        let text = || {
            std::str::from_utf8(attr.attr_value().data).map_err(|_| invalid("a subject attribute is not valid text"))
        };
        let not_printable = |_| invalid("a subject attribute is not a valid string of its type");
        let value = match attr.attr_value().tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(not_printable)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(not_printable)?),
            _ => return Err(invalid("subject attributes must be UTF8String, PrintableString or IA5String")),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}
