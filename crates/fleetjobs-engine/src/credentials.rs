//! The admin access key. SigV4 needs the plaintext secret to verify a signature, so secrets
//! cannot be hashed; they are sealed (ChaCha20-Poly1305) with a key that lives in its own
//! file (`DATA_DIR/secret.key`, mode 0600), never in the database, and never logged.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use fleetjobs_core::Millis;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Engine;

/// An access key with its secret, in memory only.
#[derive(Clone)]
pub struct AdminKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub created_at: Millis,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKey").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// What the store keeps.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedKey {
    access_key_id: String,
    /// base64(nonce ‖ ciphertext).
    sealed_secret: String,
    created_at: Millis,
}

pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        SecretBox { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    fn seal(&self, key: &AdminKey) -> SealedKey {
        let nonce: [u8; 12] = rand::rng().random();
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), key.secret_access_key.as_bytes())
            .expect("encryption of a short secret cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend(ct);
        SealedKey {
            access_key_id: key.access_key_id.clone(),
            sealed_secret: B64.encode(blob),
            created_at: key.created_at,
        }
    }

    pub fn open(&self, sealed: &SealedKey) -> Result<AdminKey, String> {
        let blob = B64.decode(&sealed.sealed_secret).map_err(|e| e.to_string())?;
        if blob.len() < 12 {
            return Err("sealed secret too short".into());
        }
        let (nonce, ct) = blob.split_at(12);
        let secret = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| "cannot decrypt the access key (wrong secret.key?)".to_string())?;
        Ok(AdminKey {
            access_key_id: sealed.access_key_id.clone(),
            secret_access_key: String::from_utf8(secret).map_err(|e| e.to_string())?,
            created_at: sealed.created_at,
        })
    }
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

impl Engine {
    /// The secret of an access key, for SigV4 verification: from the durable view, so that
    /// no API request waits for the state lock before it is even authenticated.
    pub fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.view.secret(access_key_id)
    }

    /// The first admin key, created on first start.
    pub async fn ensure_admin_key(&self) -> Result<AdminKey, fleetjobs_core::ApiError> {
        if let Some(k) = self.lock()?.admin_keys.values().next().cloned() {
            return Ok(k);
        }
        let key = AdminKey {
            access_key_id: format!("AKIA{}", random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            secret_access_key: random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40),
            created_at: self.now(),
        };
        let sealed = self.secret_box.seal(&key);
        let stored = key.clone();
        self.write(move |txn| {
            txn.put_admin_key(stored, &sealed);
            Ok(())
        })
        .await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let key = AdminKey { access_key_id: "AKIATEST".into(), secret_access_key: "s3cr3t/+x".into(), created_at: 1 };
        let sealed = SecretBox::new([7; 32]).seal(&key);
        assert!(!sealed.sealed_secret.contains("s3cr3t"));
        let opened = SecretBox::new([7; 32]).open(&sealed).unwrap();
        assert_eq!(opened.secret_access_key, "s3cr3t/+x");
        assert!(SecretBox::new([8; 32]).open(&sealed).is_err());
    }
}
