//! The data directory: created on first start, reused after.
//!
//! - `root-CA.crt` / `root-CA.key`: our CA (signs the MQTT server certificate and devices').
//! - `server.crt` / `server.key`: the MQTT server certificate, reissued at each start so it
//!   covers the current `--host` names.
//! - `secret.key`: 32 random bytes sealing access-key secrets in the database.
//! - `credentials`: the admin access key in AWS shared-credentials format (profile default).
//! - `fleetjobs.db`: the SQLite database.
//!
//! Private files are written with mode 0600, atomically (write then rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fleetjobs_engine::AdminKey;
use fleetjobs_pki::CertificateAuthority;

pub struct DataDir {
    pub root: PathBuf,
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

impl DataDir {
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).with_context(|| format!("creating data dir {}", root.display()))?;
        let root = root.canonicalize()?;
        Ok(DataDir { root })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Load the CA, or create it on first start.
    pub fn certificate_authority(&self) -> Result<CertificateAuthority> {
        let (crt, key) = (self.path("root-CA.crt"), self.path("root-CA.key"));
        if crt.exists() && key.exists() {
            let ca = CertificateAuthority::from_pem(&fs::read_to_string(&crt)?, &fs::read_to_string(&key)?)
                .context("loading the CA from the data dir")?;
            return Ok(ca);
        }
        let ca = CertificateAuthority::generate().context("generating the CA")?;
        write_private(&key, ca.key_pem().as_bytes())?;
        fs::write(&crt, ca.cert_pem())?;
        Ok(ca)
    }

    /// The key that seals secrets in the database, created on first start.
    pub fn secret_key(&self) -> Result<[u8; 32]> {
        let path = self.path("secret.key");
        if let Ok(bytes) = fs::read(&path) {
            return bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold exactly 32 bytes", path.display()));
        }
        let key: [u8; 32] = rand::random();
        write_private(&path, &key)?;
        Ok(key)
    }

    /// Write the server certificate and key (for inspection; the server uses them in memory).
    pub fn write_server_cert(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        fs::write(self.path("server.crt"), cert_pem)?;
        write_private(&self.path("server.key"), key_pem.as_bytes())
    }

    /// Write `credentials` for the admin key unless it already names that key.
    pub fn write_credentials(&self, key: &AdminKey, region: &str) -> Result<PathBuf> {
        let path = self.path("credentials");
        if fs::read_to_string(&path).is_ok_and(|c| c.contains(&key.access_key_id)) {
            return Ok(path);
        }
        let text = format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {}\n",
            key.access_key_id, key.secret_access_key, region
        );
        write_private(&path, text.as_bytes())?;
        Ok(path)
    }
}
