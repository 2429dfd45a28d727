//! The data directory: created on first start, reused after, never silently replaced.
//!
//! - `root-CA.crt` / `root-CA.key`: our CA (signs the MQTT server certificate and devices').
//! - `server.crt` / `server.key`: the MQTT server certificate, kept across starts and
//!   reissued only when `--host` names change or it nears expiry.
//! - `secret.key`: 32 random bytes sealing access-key secrets in the database.
//! - `credentials`: the admin access key in AWS shared-credentials format (profile default).
//! - `fleetjobs.db` (+ `-wal`, `-shm`): the SQLite database.
//! - `retained/`: retained MQTT messages, one file each (see `retained`).
//! - `fleetjobs.lock`: held (an exclusive lock) by the one process serving this directory.
//!
//! A directory holding some of the CA, the secret key and the database but not all of them
//! is refused: generating the missing part anew would orphan every device certificate or
//! every stored secret. Private files are written with mode 0600, atomically (write, fsync,
//! rename).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fleetjobs_engine::AdminKey;
use fleetjobs_pki::{CertificateAuthority, IssuedCert};

pub const DATABASE: &str = "fleetjobs.db";
const LOCK: &str = "fleetjobs.lock";
const CA_CERT: &str = "root-CA.crt";
const CA_KEY: &str = "root-CA.key";
const SECRET_KEY: &str = "secret.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const CREDENTIALS: &str = "credentials";

/// The files that only make sense together: each one written at first start, none of them
/// recoverable from the others.
const IDENTITY: [&str; 4] = [CA_CERT, CA_KEY, SECRET_KEY, DATABASE];
/// The files a backup carries besides the database (private ones keep mode 0600).
const BACKUP_FILES: [(&str, bool); 6] = [
    (CA_CERT, false),
    (CA_KEY, true),
    (SECRET_KEY, true),
    (CREDENTIALS, true),
    (SERVER_CERT, false),
    (SERVER_KEY, true),
];

/// Directories of files a backup carries whole (retained MQTT messages, one file each).
const BACKUP_DIRS: [&str; 1] = ["retained"];

/// The server certificate is reissued when it would expire within this window.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct DataDir {
    pub root: PathBuf,
    /// Whether this start creates the directory's identity (nothing of it existed before).
    pub fresh: bool,
    /// Held for the life of the process: a second `serve` on this directory is refused.
    _lock: File,
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    write_file(path, contents, true)
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Present and not empty (an empty file is what a crash at creation leaves).
fn present(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Take the directory's lock, or say who holds it.
fn lock(root: &Path) -> Result<File> {
    let path = root.join(LOCK);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => bail!(
            "{} is in use by another fleetjobs process (it holds {}); two processes on one database \
             would diverge. Stop the other one, or give this one its own --data-dir.",
            root.display(),
            path.display()
        ),
        Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

impl DataDir {
    /// Create or reuse `root`, lock it, and check that its identity files are all there or
    /// none is.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).with_context(|| format!("creating data dir {}", root.display()))?;
        let root = root.canonicalize()?;
        let lock = lock(&root)?;
        let (found, missing): (Vec<&str>, Vec<&str>) = IDENTITY.iter().partition(|name| present(&root.join(name)));
        if !found.is_empty() && !missing.is_empty() {
            bail!(
                "{} holds {} but not {}: refusing to start, since making the missing part anew would \
                 make the existing part useless (device certificates, stored secrets or records). \
                 Restore the directory from a backup (`fleetjobs restore`), or, for a new \
                 installation, start with an empty --data-dir.",
                root.display(),
                found.join(", "),
                missing.join(", ")
            );
        }
        Ok(DataDir { fresh: found.is_empty(), root, _lock: lock })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Refuse a directory whose CA and keys exist but whose database holds nothing: its
    /// records were lost, and starting would look like a fresh installation.
    pub fn check_database(&self, is_empty: bool) -> Result<()> {
        if is_empty && !self.fresh {
            bail!(
                "{} has a CA and keys but its database {} holds no records: refusing to start on a \
                 lost database. Restore it from a backup (`fleetjobs restore`).",
                self.root.display(),
                self.path(DATABASE).display()
            );
        }
        Ok(())
    }

    /// Load the CA, or create it on first start.
    pub fn certificate_authority(&self) -> Result<CertificateAuthority> {
        let (crt, key) = (self.path(CA_CERT), self.path(CA_KEY));
        if !self.fresh {
            let ca = CertificateAuthority::from_pem(&fs::read_to_string(&crt)?, &fs::read_to_string(&key)?)
                .context("loading the CA from the data dir")?;
            return Ok(ca);
        }
        let ca = CertificateAuthority::generate().context("generating the CA")?;
        write_private(&key, ca.key_pem().as_bytes())?;
        write_file(&crt, ca.cert_pem().as_bytes(), false)?;
        Ok(ca)
    }

    /// The key that seals secrets in the database, created on first start.
    pub fn secret_key(&self) -> Result<[u8; 32]> {
        let path = self.path(SECRET_KEY);
        if !self.fresh {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            return bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold exactly 32 bytes", path.display()));
        }
        let key: [u8; 32] = rand::random();
        write_private(&path, &key)?;
        Ok(key)
    }

    /// The MQTT server certificate: the one on disk while it still fits (our CA, every host,
    /// not near expiry), else a new one, written for inspection.
    pub fn server_cert(&self, ca: &CertificateAuthority, hosts: &[String]) -> Result<IssuedCert> {
        let (crt, key) = (self.path(SERVER_CERT), self.path(SERVER_KEY));
        if let (Ok(cert_pem), Ok(key_pem)) = (fs::read_to_string(&crt), fs::read_to_string(&key)) {
            if let Some(kept) = ca.reusable_server_cert(&cert_pem, &key_pem, hosts, RENEW_BEFORE) {
                return Ok(kept);
            }
            tracing::info!(hosts = ?hosts, "reissuing the MQTT server certificate (hosts changed or it nears expiry)");
        }
        let issued = ca.issue_server_cert(hosts).context("issuing the MQTT server certificate")?;
        write_file(&crt, issued.cert_pem.as_bytes(), false)?;
        write_private(&key, issued.private_key_pem.as_bytes())?;
        Ok(issued)
    }

    /// Write `credentials` for the admin key unless it already names that key.
    pub fn write_credentials(&self, key: &AdminKey, region: &str) -> Result<PathBuf> {
        let path = self.path(CREDENTIALS);
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

/// `fleetjobs backup`: a consistent copy of a data directory, also while a server serves it
/// (the database through SQLite's online backup, which reads one snapshot).
pub fn backup(data_dir: &Path, dest: &Path) -> Result<()> {
    if !present(&data_dir.join(DATABASE)) {
        bail!("{} holds no {DATABASE}: nothing to back up", data_dir.display());
    }
    if fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} exists and is not empty: back up into a new directory", dest.display());
    }
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    for (name, private) in BACKUP_FILES {
        let from = data_dir.join(name);
        if from.exists() {
            let bytes = fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_file(&dest.join(name), &bytes, private)?;
        }
    }
    copy_dirs(data_dir, dest)?;
    fleetjobs_store::backup(&data_dir.join(DATABASE), &dest.join(DATABASE)).context("copying the database")?;
    Ok(())
}

/// Copy the files of each of [`BACKUP_DIRS`] that `from` has (one level, files only).
fn copy_dirs(from: &Path, to: &Path) -> Result<()> {
    for name in BACKUP_DIRS {
        let Ok(entries) = fs::read_dir(from.join(name)) else { continue };
        fs::create_dir_all(to.join(name)).with_context(|| format!("creating {}", to.join(name).display()))?;
        for entry in entries {
            let path = entry?.path();
            if let (true, Some(file)) = (path.is_file(), path.file_name()) {
                let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                write_file(&to.join(name).join(file), &bytes, false)?;
            }
        }
    }
    Ok(())
}

/// `fleetjobs restore`: put a backup in place as the data directory of the next `serve`.
/// Refuses while a server holds the directory, and over an existing database.
pub fn restore(backup: &Path, data_dir: &Path) -> Result<()> {
    let missing: Vec<&str> = IDENTITY.into_iter().filter(|name| !present(&backup.join(name))).collect();
    if !missing.is_empty() {
        bail!("{} is not a fleetjobs backup: it lacks {}", backup.display(), missing.join(", "));
    }
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let _lock = lock(data_dir)?;
    if present(&data_dir.join(DATABASE)) {
        bail!("{} already holds a database: move it away first (restore never overwrites one)", data_dir.display());
    }
    for suffix in ["-wal", "-shm"] {
        // A leftover log of another database must not be replayed into the restored one.
        let stale = data_dir.join(format!("{DATABASE}{suffix}"));
        if stale.exists() {
            fs::remove_file(&stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    for (name, private) in BACKUP_FILES.into_iter().chain([(DATABASE, true)]) {
        let from = backup.join(name);
        if from.exists() {
            let bytes = fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_file(&data_dir.join(name), &bytes, private)?;
        }
    }
    copy_dirs(backup, data_dir)
}
