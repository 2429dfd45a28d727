//! The public keys a device trusts, by key id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::keys::verifying_key_from_str;
use super::SignatureError;

/// Trusted ed25519 public keys by `keyId`.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: BTreeMap<String, VerifyingKey>,
}

/// File extensions that [`TrustStore::from_dir`] loads.
const KEY_EXTENSIONS: [&str; 2] = ["pub", "pem"];

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust `key` under `key_id` (replacing a key with the same id).
    pub fn insert(&mut self, key_id: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(key_id.into(), key);
    }

    /// Trust a key given as text (base64 or PEM).
    pub fn insert_str(&mut self, key_id: impl Into<String>, text: &str) -> Result<(), SignatureError> {
        self.insert(key_id, verifying_key_from_str(text)?);
        Ok(())
    }

    /// Load one key file; its key id is the file name without extension.
    pub fn add_file(&mut self, path: &Path) -> Result<(), SignatureError> {
        let key_file_error = |source| SignatureError::KeyFile { path: path.display().to_string(), source };
        let text = std::fs::read_to_string(path).map_err(key_file_error)?;
        let key_id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SignatureError::InvalidKey(format!("{}: no key id in the file name", path.display())))?;
        let key = verifying_key_from_str(&text)
            .map_err(|e| SignatureError::InvalidKey(format!("{}: {e}", path.display())))?;
        self.insert(key_id, key);
        Ok(())
    }

    /// Load the listed key files.
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, SignatureError> {
        let mut store = Self::new();
        for path in paths {
            store.add_file(path)?;
        }
        Ok(store)
    }

    /// Load every `*.pub` and `*.pem` file in `dir` (other files are ignored; a key file that
    /// does not parse is an error, so a misconfigured device fails loudly).
    pub fn from_dir(dir: &Path) -> Result<Self, SignatureError> {
        let dir_error = |source| SignatureError::KeyFile { path: dir.display().to_string(), source };
        let mut paths = std::fs::read_dir(dir)
            .map_err(dir_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(dir_error)?;
        paths.retain(|p| {
            p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| KEY_EXTENSIONS.contains(&e))
        });
        paths.sort();
        Self::from_files(&paths)
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
