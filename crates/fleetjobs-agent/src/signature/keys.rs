//! ed25519 key text: raw base64 (32 bytes) or PEM (PKCS#8 private keys, SubjectPublicKeyInfo
//! public keys, as OpenSSL writes them for ed25519).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore as _;

use super::SignatureError;

/// DER prefix of a PKCS#8 ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// DER prefix of an ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A fresh key pair: (private seed, public key), both standard base64 of 32 bytes.
pub fn generate_keypair() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    (B64.encode(seed), public_key_base64(&key.verifying_key()))
}

/// A public key as standard base64 of its 32 bytes.
pub fn public_key_base64(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// A public key as a PEM `PUBLIC KEY` (what `openssl pkey -pubout` writes).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", B64.encode(der))
}

/// A private key from its base64 seed or a PEM `PRIVATE KEY` (PKCS#8).
pub fn signing_key_from_str(text: &str) -> Result<SigningKey, SignatureError> {
    let seed = key_bytes(text, "PRIVATE KEY", &PKCS8_PREFIX)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key from its base64 form or a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn verifying_key_from_str(text: &str) -> Result<VerifyingKey, SignatureError> {
    let bytes = key_bytes(text, "PUBLIC KEY", &SPKI_PREFIX)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| SignatureError::InvalidKey(format!("not an ed25519 public key: {e}")))
}

/// The 32 key bytes from raw base64, or from a PEM block labelled `label` whose DER is
/// `der_prefix` followed by the key.
fn key_bytes(text: &str, label: &str, der_prefix: &[u8]) -> Result<[u8; 32], SignatureError> {
    let invalid = |m: String| SignatureError::InvalidKey(m);
    let text = text.trim();
    let bytes = if text.starts_with("-----BEGIN") {
        let der = pem_body(text, label).ok_or_else(|| invalid(format!("expected a PEM `{label}` block")))?;
        let der = B64.decode(der).map_err(|e| invalid(format!("bad PEM base64: {e}")))?;
        der.strip_prefix(der_prefix)
            .ok_or_else(|| invalid(format!("the PEM `{label}` is not an ed25519 key")))?
            .to_vec()
    } else {
        B64.decode(text).map_err(|e| invalid(format!("not base64: {e}")))?
    };
    bytes.try_into().map_err(|b: Vec<u8>| invalid(format!("expected 32 key bytes, found {}", b.len())))
}

/// The base64 body of the PEM block `-----BEGIN <label>-----`, whitespace removed.
fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(text[start..stop].chars().filter(|c| !c.is_whitespace()).collect())
}
