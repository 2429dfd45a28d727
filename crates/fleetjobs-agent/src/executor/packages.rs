//! Installed packages (`jobs-agent.js` `install` / `start` / `stop` / `restart`), recorded
//! in `<state_dir>/packages.json` (written atomically), and their processes.
//!
//! A package is started as `/bin/sh -c <launchCommand>` in its working directory, in a
//! process group of its own, stdin from `/dev/null`, stdout and stderr appended to
//! `<state_dir>/packages/<name>.log`. Its pid (= process group) and start time are recorded,
//! so that a later `stop` (even from a restarted agent) kills the whole group, grandchildren
//! included, and never a process that merely reuses the pid.
//!
//! "Started" means: still running after the stability window, or exited 0 within it (as
//! `jobs-agent.js` decides).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::fsutil::write_atomic;
use super::handler::exit_reason;
use super::process::{canceled, group_command, kill_group, leader_pgid};
use super::procfs;

const REGISTRY_FILE: &str = "packages.json";
const POLL: Duration = Duration::from_millis(50);

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRecord {
    pub package_name: String,
    pub working_directory: PathBuf,
    #[serde(default)]
    pub launch_command: Option<String>,
    #[serde(default)]
    pub auto_start: bool,
    /// File names relative to the working directory.
    #[serde(default)]
    pub files: Vec<String>,
    /// The running instance started by the agent, if any.
    #[serde(default)]
    pub running: Option<RunningProcess>,
}

/// A package process: its pid, which is also its process group, and its start time
/// (`/proc/<pid>/stat` field 22) to recognise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningProcess {
    pub pid: i32,
    pub start_time: u64,
}

impl RunningProcess {
    /// Whether any process of this instance's group is alive. A live leader with another
    /// start time is a reused pid: not ours.
    pub fn is_alive(&self) -> bool {
        match procfs::stat(self.pid) {
            Some(s) if s.is_live() && s.start_time != self.start_time => false,
            _ => procfs::group_alive(self.pid),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    packages: Vec<PackageRecord>,
}

/// `<state_dir>/packages.json`.
#[derive(Debug, Clone)]
pub struct PackageRegistry {
    path: PathBuf,
}

impl PackageRegistry {
    pub fn new(state_dir: &Path) -> Self {
        Self { path: state_dir.join(REGISTRY_FILE) }
    }

    /// All packages by name; no file means none.
    pub fn load(&self) -> io::Result<BTreeMap<String, PackageRecord>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        let file: RegistryFile =
            serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(file.packages.into_iter().map(|p| (p.package_name.clone(), p)).collect())
    }

    pub fn get(&self, name: &str) -> io::Result<Option<PackageRecord>> {
        Ok(self.load()?.remove(name))
    }

    /// Insert or replace `record`.
    pub async fn put(&self, record: &PackageRecord) -> io::Result<()> {
        let mut all = self.load()?;
        all.insert(record.package_name.clone(), record.clone());
        self.save(all).await
    }

    /// Remove `name` (used to undo the record of a failed first install).
    pub async fn remove(&self, name: &str) -> io::Result<()> {
        let mut all = self.load()?;
        if all.remove(name).is_some() {
            self.save(all).await?;
        }
        Ok(())
    }

    async fn save(&self, all: BTreeMap<String, PackageRecord>) -> io::Result<()> {
        let file = RegistryFile { packages: all.into_values().collect() };
        let text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        write_atomic(&self.path, &text).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Started {
    /// Still running after the stability window.
    Running,
    /// Exited 0 within the window.
    Finished,
    /// Was running already; nothing started.
    AlreadyRunning,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum PackageError {
    #[error("package {0:?} has no launchCommand")]
    NoLaunchCommand(String),
    #[error("cannot start package {name:?}: {reason}")]
    Spawn { name: String, reason: String },
    #[error("package {name:?} {reason} within the stability window")]
    Unstable { name: String, reason: String },
    #[error("package {0:?} did not stop")]
    StillRunning(String),
    #[error("canceled")]
    Canceled,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Timing of package process control.
#[derive(Debug, Clone, Copy)]
pub(super) struct Control {
    pub stability_window: Duration,
    pub kill_grace: Duration,
}

/// Start `record`'s launch command (idempotent: a running instance is left alone) and
/// record the new instance in the registry before waiting for stability.
pub(super) async fn start(
    registry: &PackageRegistry,
    record: &mut PackageRecord,
    log_dir: &Path,
    control: Control,
    cancel: watch::Receiver<bool>,
) -> Result<Started, PackageError> {
    if record.running.is_some_and(|r| r.is_alive()) {
        return Ok(Started::AlreadyRunning);
    }
    let name = record.package_name.clone();
    let launch = record.launch_command.clone().ok_or_else(|| PackageError::NoLaunchCommand(name.clone()))?;
    let spawn_error = |e: io::Error| PackageError::Spawn { name: name.clone(), reason: e.to_string() };
    tokio::fs::create_dir_all(log_dir).await?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_dir.join(format!("{name}.log")))?;
    let mut cmd = group_command(&["/bin/sh".to_owned(), "-c".to_owned(), launch]).map_err(spawn_error)?;
    cmd.current_dir(&record.working_directory)
        .env("FLEETJOBS_PACKAGE", &name)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let pid = leader_pgid(&child).map_err(spawn_error)?;
    let start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or_default();
    record.running = Some(RunningProcess { pid, start_time });
    registry.put(record).await?;

    let deadline = Instant::now() + control.stability_window;
    let exited = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::select! {
            () = sleep(POLL) => {}
            () = canceled(cancel.clone()) => {
                kill_group(pid, Some(&mut child), control.kill_grace).await;
                record.running = None;
                registry.put(record).await?;
                return Err(PackageError::Canceled);
            }
        }
    };
    match exited {
        None => Ok(Started::Running),
        Some(status) => {
            record.running = None;
            registry.put(record).await?;
            if status.success() {
                Ok(Started::Finished)
            } else {
                Err(PackageError::Unstable { name, reason: exit_reason(status) })
            }
        }
    }
}

/// Stop `record`'s running instance, killing its whole process group. Not running is fine.
pub(super) async fn stop(
    registry: &PackageRegistry,
    record: &mut PackageRecord,
    control: Control,
) -> Result<(), PackageError> {
    let Some(running) = record.running else { return Ok(()) };
    if running.is_alive() && !kill_group(running.pid, None, control.kill_grace).await {
        return Err(PackageError::StillRunning(record.package_name.clone()));
    }
    record.running = None;
    registry.put(record).await?;
    Ok(())
}
