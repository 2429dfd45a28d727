//! A `StepContext` over a temporary directory, recording checkpoints and progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::super::{DownloadConfig, Executor, ExecutorConfig};
use crate::executor_api::{Progress, StepCheckpoint, StepContext, StepOutcome, StepRunner};
use crate::plan::{Action, Step};

pub(crate) struct Harness {
    pub root: tempfile::TempDir,
    pub handler_dir: PathBuf,
    pub state_dir: PathBuf,
    pub document: Value,
    pub boot_id: String,
    pub reboot_command: Vec<String>,
    pub shutdown_command: Vec<String>,
    pub default_timeout: Duration,
    pub checkpoints: Arc<Mutex<Vec<StepCheckpoint>>>,
    pub progress: Arc<Mutex<Vec<Progress>>>,
    pub cancel: watch::Sender<bool>,
}

impl Harness {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let handler_dir = root.path().join("handlers");
        let state_dir = root.path().join("state");
        std::fs::create_dir_all(&handler_dir).unwrap();
        std::fs::create_dir_all(&state_dir).unwrap();
        Self {
            root,
            handler_dir,
            state_dir,
            document: json!({"operation": "test"}),
            boot_id: "boot-1".into(),
            reboot_command: vec!["true".into()],
            shutdown_command: vec!["true".into()],
            default_timeout: Duration::from_secs(20),
            checkpoints: Arc::default(),
            progress: Arc::default(),
            cancel: watch::channel(false).0,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Run `step` through the [`StepRunner`] interface.
    pub async fn run(&self, exec: &Executor, step: &Step, resume: Option<&StepCheckpoint>) -> StepOutcome {
        let checkpoints = self.checkpoints.clone();
        let checkpoint = move |c: StepCheckpoint| checkpoints.lock().unwrap().push(c);
        let progress_log = self.progress.clone();
        let progress = move |p: Progress| progress_log.lock().unwrap().push(p);
        let ctx = StepContext {
            job_id: "job-1",
            document: &self.document,
            handler_dir: &self.handler_dir,
            state_dir: &self.state_dir,
            default_timeout: self.default_timeout,
            boot_id: &self.boot_id,
            reboot_command: &self.reboot_command,
            shutdown_command: &self.shutdown_command,
            resume,
            checkpoint: &checkpoint,
            progress: &progress,
            cancel: self.cancel.subscribe(),
        };
        StepRunner::run(exec, step, &ctx).await
    }

    pub fn last_checkpoint(&self) -> Option<StepCheckpoint> {
        self.checkpoints.lock().unwrap().last().cloned()
    }

    pub fn checkpoint_count(&self) -> usize {
        self.checkpoints.lock().unwrap().len()
    }

    /// Cancel the job after `delay`.
    pub async fn cancel_after(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
        self.cancel.send_replace(true);
    }

    /// Write an executable shell script into the handler directory.
    pub fn handler(&self, name: &str, body: &str) -> PathBuf {
        let path = self.handler_dir.join(name);
        write_script(&path, body);
        path
    }
}

pub(crate) fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub(crate) fn step(action: Action) -> Step {
    Step { name: "test-step".into(), action, ignore_failure: false, timeout: None }
}

/// Fast timings for tests.
pub(crate) fn config() -> ExecutorConfig {
    ExecutorConfig {
        kill_grace: Duration::from_secs(1),
        stability_window: Duration::from_millis(400),
        output_tail_bytes: 4096,
        reboot_reissue_after: Duration::from_secs(600),
        download: DownloadConfig {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            attempts: 3,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            checkpoint_every_bytes: 1024,
            checkpoint_every: Duration::from_millis(100),
            extra_root_certificates: Vec::new(),
        },
    }
}

pub(crate) fn executor() -> Executor {
    Executor::new(config()).unwrap()
}

pub(crate) fn detail<'a>(outcome: &'a StepOutcome, key: &str) -> Option<&'a str> {
    let details = match outcome {
        StepOutcome::Succeeded { details } | StepOutcome::Failed { details, .. } => details,
        _ => return None,
    };
    details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Deterministic test content.
pub(crate) fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// `true` when `pid` no longer runs (gone, or a zombie nobody reaped yet).
pub(crate) fn is_gone(pid: i32) -> bool {
    super::super::procfs::stat(pid).is_none_or(|s| !s.is_live())
}

/// Wait up to `limit` for `cond`.
pub(crate) async fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
