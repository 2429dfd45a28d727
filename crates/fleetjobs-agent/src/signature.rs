//! Signed job documents (ed25519), a Fleetjobs format that no stock agent has.
//!
//! A signed document carries one extra top-level member:
//!
//! ```json
//! {"operation": "install", …, "fleetjobsSignature": {"alg": "ed25519", "keyId": "ops-2026", "sig": "<base64>"}}
//! ```
//!
//! `sig` is the ed25519 signature (standard base64, 64 bytes) of the **canonical JSON** of the
//! document without the `fleetjobsSignature` member: objects with their keys sorted by their
//! UTF-8 bytes, arrays in order, no whitespace, strings and numbers written as `serde_json`
//! writes them (see [`canonical_json`]). So the signature survives any re-serialization that
//! keeps values (key order, indentation); it does not survive a change of any value.
//! Prefer integers and strings in signed documents: a float that a server rewrites
//! (`1.0` → `1`) breaks the signature.
//!
//! Keys: a device trusts public keys by `keyId` ([`TrustStore`]), each in a file named
//! `<keyId>.pub` or `<keyId>.pem` holding either the raw 32-byte key in base64 or a PEM
//! `PUBLIC KEY` (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes). Private keys are
//! the 32-byte seed in base64 or a PEM `PRIVATE KEY` (PKCS#8, as `openssl genpkey -algorithm
//! ed25519` writes); [`generate_keypair`] makes a base64 pair.

mod canonical;
mod keys;
mod trust;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde_json::{Map, Value};

pub use canonical::canonical_json;
pub use keys::{generate_keypair, public_key_base64, public_key_pem, signing_key_from_str, verifying_key_from_str};
pub use trust::TrustStore;

/// The document member that holds the signature.
pub const SIGNATURE_MEMBER: &str = "fleetjobsSignature";
/// The only algorithm supported.
pub const ALGORITHM: &str = "ed25519";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the job document is not a JSON object")]
    NotAnObject,
    #[error("the job document is not signed (no `fleetjobsSignature`)")]
    Missing,
    #[error("malformed `fleetjobsSignature`: {0}")]
    Malformed(String),
    #[error("unsupported signature algorithm {0:?} (only ed25519)")]
    UnsupportedAlgorithm(String),
    #[error("the document is signed with key {0:?}, which this device does not trust")]
    UnknownKey(String),
    #[error("bad signature: the document was changed after it was signed, or not signed with key {0:?}")]
    BadSignature(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("cannot read key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
}

/// Verify a signed document; returns it without the signature member.
pub fn verify(doc: &Value, trust: &TrustStore) -> Result<Value, SignatureError> {
    let (unsigned, signature) = split(doc)?;
    let signature = signature.ok_or(SignatureError::Missing)?;
    let sig = parse_signature(signature)?;
    let key = trust.get(&sig.key_id).ok_or_else(|| SignatureError::UnknownKey(sig.key_id.clone()))?;
    let unsigned = Value::Object(unsigned);
    key.verify_strict(canonical_json(&unsigned).as_bytes(), &sig.signature)
        .map_err(|_| SignatureError::BadSignature(sig.key_id))?;
    Ok(unsigned)
}

/// Apply the device's policy: a signed document must verify; an unsigned one passes only
/// when signatures are not `required`. Returns the document without the signature member.
pub fn enforce(doc: &Value, trust: &TrustStore, required: bool) -> Result<Value, SignatureError> {
    match split(doc)? {
        (_, Some(_)) => verify(doc, trust),
        (_, None) if required => Err(SignatureError::Missing),
        (unsigned, None) => Ok(Value::Object(unsigned)),
    }
}

/// `true` when the document carries a `fleetjobsSignature` member.
pub fn is_signed(doc: &Value) -> bool {
    doc.get(SIGNATURE_MEMBER).is_some()
}

/// Sign `doc` (any existing signature is replaced) with `secret_key` under `key_id`.
/// A document that is not a JSON object is returned unchanged (only an object can carry the
/// signature member); [`sign_document`] reports that case as an error.
pub fn sign(doc: &Value, key_id: &str, secret_key: &SigningKey) -> Value {
    let Ok((mut unsigned, _)) = split(doc) else { return doc.clone() };
    let signature = secret_key.sign(canonical_json(&Value::Object(unsigned.clone())).as_bytes());
    let mut member = Map::new();
    member.insert("alg".into(), ALGORITHM.into());
    member.insert("keyId".into(), key_id.into());
    member.insert("sig".into(), base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()).into());
    unsigned.insert(SIGNATURE_MEMBER.into(), Value::Object(member));
    Value::Object(unsigned)
}

/// [`sign`] with a private key given as text (base64 seed or PEM), for the CLI.
pub fn sign_document(doc: &Value, key_id: &str, private_key: &str) -> Result<Value, SignatureError> {
    if !doc.is_object() {
        return Err(SignatureError::NotAnObject);
    }
    Ok(sign(doc, key_id, &signing_key_from_str(private_key)?))
}

/// The document's members without the signature, and the signature member if any.
fn split(doc: &Value) -> Result<(Map<String, Value>, Option<Value>), SignatureError> {
    let mut members = doc.as_object().ok_or(SignatureError::NotAnObject)?.clone();
    let signature = members.remove(SIGNATURE_MEMBER);
    Ok((members, signature))
}

struct ParsedSignature {
    key_id: String,
    signature: Signature,
}

fn parse_signature(member: Value) -> Result<ParsedSignature, SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_owned());
    let obj = member.as_object().ok_or_else(|| malformed("not an object"))?;
    let field = |name: &str| {
        obj.get(name).and_then(Value::as_str).ok_or_else(|| malformed(&format!("`{name}` must be a string")))
    };
    let alg = field("alg")?;
    if !alg.eq_ignore_ascii_case(ALGORITHM) {
        return Err(SignatureError::UnsupportedAlgorithm(alg.to_owned()));
    }
    let key_id = field("keyId")?.to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field("sig")?.trim())
        .map_err(|e| malformed(&format!("`sig` is not base64: {e}")))?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| malformed("`sig` is not 64 bytes"))?;
    Ok(ParsedSignature { key_id, signature: Signature::from_bytes(&bytes) })
}

#[cfg(test)]
mod tests;
