//! Device key pairs: what CreateKeysAndCertificate generates (RSA-2048 as AWS does, or EC
//! P-256), in the PEM forms AWS hands out.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, PublicKeyData, SubjectPublicKeyInfo, PKCS_ECDSA_P256_SHA256};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};

use crate::PkiError;

/// The kind of key pair a device certificate is issued for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeviceKeyType {
    /// RSA 2048-bit, private key in PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`), as AWS IoT's
    /// CreateKeysAndCertificate returns.
    #[default]
    Rsa2048,
    /// ECDSA P-256, private key in PKCS#8 (`-----BEGIN PRIVATE KEY-----`): generated in
    /// microseconds rather than the RSA prime search's tenths of a second.
    EcP256,
}

impl DeviceKeyType {
    /// Every kind, in the order a user is shown them.
    pub const ALL: [DeviceKeyType; 2] = [DeviceKeyType::Rsa2048, DeviceKeyType::EcP256];

    /// The name on the command line: `rsa-2048` or `ec-p256`.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceKeyType::Rsa2048 => "rsa-2048",
            DeviceKeyType::EcP256 => "ec-p256",
        }
    }
}

impl fmt::Display for DeviceKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown device key type {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// A fresh key pair: the private key for the device, the public key for the certificate.
pub(crate) struct DeviceKey {
    pub private_key_pem: String,
    pub public_key_pem: String,
    pub public_key: SubjectPublicKeyInfo,
}

/// RSA modulus size AWS IoT uses for CreateKeysAndCertificate.
const RSA_BITS: usize = 2048;

pub(crate) fn generate(kind: DeviceKeyType) -> Result<DeviceKey, PkiError> {
    match kind {
        DeviceKeyType::EcP256 => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            Ok(DeviceKey {
                private_key_pem: key.serialize_pem(),
                public_key_pem: key.public_key_pem(),
                public_key: SubjectPublicKeyInfo::from_der(&key.subject_public_key_info())?,
            })
        }
        DeviceKeyType::Rsa2048 => {
            let rsa_error = |e: &dyn fmt::Display| PkiError::Rsa(e.to_string());
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(|e| rsa_error(&e))?;
            let public = key.to_public_key();
            let spki = public.to_public_key_der().map_err(|e| rsa_error(&e))?;
            Ok(DeviceKey {
                private_key_pem: key.to_pkcs1_pem(LineEnding::LF).map_err(|e| rsa_error(&e))?.to_string(),
                public_key_pem: public.to_public_key_pem(LineEnding::LF).map_err(|e| rsa_error(&e))?,
                public_key: SubjectPublicKeyInfo::from_der(spki.as_bytes())?,
            })
        }
    }
}
