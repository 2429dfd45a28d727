//! Runs one [`Step`] on the device: the [`StepRunner`] the agent loop drives.
//!
//! | action | what happens | details on success |
//! |---|---|---|
//! | `RunHandler`, `RunCommand` | a process in its own process group (`handler`) | `exitCode`, `stderr`, `stdout` |
//! | `Download` | resumable HTTP(S) download, atomic rename (`download_step`) | `fileName`, `bytes`, `sha256` |
//! | `Install` | stage, verify, back up, switch, start, roll back (`install`) | `state` |
//! | `StartPackage` / `StopPackage` / `RestartPackage` | package process groups (`package_steps`) | `state` |
//! | `Reboot`, `Shutdown`, `SystemStatus` | `system` | `step` / system facts |
//! | `Noop` | nothing | none |
//!
//! Timeouts (`step.timeout`, else `ctx.default_timeout`) bound the processes a step runs
//! (handlers, commands, the reboot / shutdown command); a download is bounded by its own
//! connect / read timeouts and retry budget instead, so a slow but healthy transfer is not
//! killed. Cancellation (`ctx.cancel`) stops every kind of step; a process step's whole
//! process group is killed (SIGTERM, SIGKILL after `kill_grace`) and reaped.
//!
//! Every handler and command gets `FLEETJOBS_JOB_ID` and `FLEETJOBS_JOB_DOCUMENT` (the job
//! document as JSON) in its environment.
//!
//! Failures carry a `reason` (for the loop) and, where `jobs-agent.js` has one, its
//! `errorCode` in the details.

mod download;
mod download_step;
mod fsutil;
mod handler;
mod install;
mod output;
mod package_steps;
mod packages;
mod process;
mod procfs;
mod sys;
mod system;
mod users;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use packages::{PackageRecord, PackageRegistry, RunningProcess};

use crate::executor_api::{StepContext, StepOutcome, StepRunner};
use crate::plan::{Action, DocumentError, Plan, Step};
use handler::{locate, missing_is_noop, Located};
use package_steps::PackageOp;
use process::Limits;
use system::Power;

/// The environment variable holding the job id.
pub const JOB_ID_ENV: &str = "FLEETJOBS_JOB_ID";
/// The environment variable holding the job document (JSON).
pub const JOB_DOCUMENT_ENV: &str = "FLEETJOBS_JOB_DOCUMENT";
/// Overrides the default package stability window (seconds, may be fractional).
pub const STABILITY_ENV: &str = "FLEETJOBS_STABILITY_SECS";

/// How the executor behaves; [`Default`] suits a device.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// SIGTERM → SIGKILL grace when a process group is killed.
    pub kill_grace: Duration,
    /// A started package must still run after this long, or have exited 0 within it.
    /// Default 5 s, or `FLEETJOBS_STABILITY_SECS`.
    pub stability_window: Duration,
    /// Bytes of each output stream kept in memory.
    pub output_tail_bytes: usize,
    /// A reboot issued by this process is not issued again before this long.
    pub reboot_reissue_after: Duration,
    pub download: DownloadConfig,
}

#[derive(Debug, Clone)]
pub struct DownloadConfig {
    pub connect_timeout: Duration,
    /// Longest wait for the response or for the next bytes of the body.
    pub read_timeout: Duration,
    /// Failures in a row (without progress) before giving up.
    pub attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Checkpoint after this many bytes...
    pub checkpoint_every_bytes: u64,
    /// ...or this long, whichever comes first.
    pub checkpoint_every: Duration,
    /// PEM files with extra CA certificates trusted for HTTPS downloads (besides the
    /// built-in web PKI roots).
    pub extra_root_certificates: Vec<PathBuf>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        let stability_window = std::env::var(STABILITY_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs(5));
        Self {
            kill_grace: Duration::from_secs(5),
            stability_window,
            output_tail_bytes: 4096,
            reboot_reissue_after: Duration::from_secs(15 * 60),
            download: DownloadConfig::default(),
        }
    }
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            checkpoint_every_bytes: 4 * 1024 * 1024,
            checkpoint_every: Duration::from_secs(1),
            extra_root_certificates: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("cannot read CA certificate {path}: {reason}")]
    RootCertificate { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Runs steps; cheap to share (`&Executor` is all the loop needs).
pub struct Executor {
    config: ExecutorConfig,
    http: reqwest::Client,
    /// Reboots / shutdowns issued by this process: (job id, step name) → when.
    issued: Mutex<HashMap<(String, String), Instant>>,
}

impl Executor {
    pub fn new(config: ExecutorConfig) -> Result<Self, ExecutorError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.download.connect_timeout)
            .user_agent(concat!("fleetjobs-agent/", env!("CARGO_PKG_VERSION")));
        for path in &config.download.extra_root_certificates {
            let cert_error =
                |reason: String| ExecutorError::RootCertificate { path: path.display().to_string(), reason };
            let pem = std::fs::read(path).map_err(|e| cert_error(e.to_string()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| cert_error(e.to_string()))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ExecutorError::HttpClient(e.to_string()))?;
        Ok(Self { config, http, issued: Mutex::new(HashMap::new()) })
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Run one step to its outcome.
    pub async fn run_step(&self, step: &Step, ctx: &StepContext<'_>) -> StepOutcome {
        let limits = Limits {
            timeout: step.timeout.unwrap_or(ctx.default_timeout),
            grace: self.config.kill_grace,
            tail_bytes: self.config.output_tail_bytes,
        };
        match &step.action {
            Action::RunHandler { handler: name, args, path, options } => {
                handler::run_handler(name, args, path.as_deref(), options, limits, ctx).await
            }
            Action::RunCommand { argv, options } => handler::run_program(argv, options, limits, ctx).await,
            Action::Download { url, path, sha256 } => {
                download_step::download(self, url, path, sha256.as_deref(), ctx).await
            }
            Action::Install(spec) => install::install(self, spec, ctx).await,
            Action::StartPackage { package } => package_steps::run(self, PackageOp::Start, package, ctx).await,
            Action::StopPackage { package } => package_steps::run(self, PackageOp::Stop, package, ctx).await,
            Action::RestartPackage { package } => package_steps::run(self, PackageOp::Restart, package, ctx).await,
            Action::Reboot { delay_minutes } => {
                system::power(self, Power::Reboot, &step.name, *delay_minutes, limits, ctx).await
            }
            Action::Shutdown { delay_minutes } => {
                system::power(self, Power::Shutdown, &step.name, *delay_minutes, limits, ctx).await
            }
            Action::SystemStatus => system::system_status(ctx.state_dir),
            Action::Noop => StepOutcome::Succeeded { details: Vec::new() },
        }
    }

    fn package_control(&self) -> packages::Control {
        packages::Control { stability_window: self.config.stability_window, kill_grace: self.config.kill_grace }
    }

    fn package_log_dir(&self, state_dir: &Path) -> PathBuf {
        state_dir.join("packages")
    }

    fn issued_key(job_id: &str, step_name: &str) -> (String, String) {
        (job_id.to_owned(), step_name.to_owned())
    }

    fn mark_issued(&self, job_id: &str, step_name: &str) {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.insert(Self::issued_key(job_id, step_name), Instant::now());
    }

    fn recently_issued(&self, job_id: &str, step_name: &str) -> bool {
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.get(&Self::issued_key(job_id, step_name)).is_some_and(|t| t.elapsed() < self.config.reboot_reissue_after)
    }
}

impl StepRunner for Executor {
    fn run<'a>(
        &'a self,
        step: &'a Step,
        ctx: &'a StepContext<'a>,
    ) -> Pin<Box<dyn Future<Output = StepOutcome> + Send + 'a>> {
        Box::pin(self.run_step(step, ctx))
    }
}

/// Check, before running anything, that every handler the plan calls is installed (the
/// tutorial's `customJob` may be missing), so that a job for an unknown operation is
/// REJECTED at once instead of failing halfway.
pub fn preflight(plan: &Plan, handler_dir: &Path) -> Result<(), DocumentError> {
    for step in plan.steps.iter().chain(&plan.final_step) {
        let Action::RunHandler { handler: name, path, .. } = &step.action else { continue };
        match locate(name, path.as_deref(), handler_dir) {
            Ok(Located::Executable(_)) => {}
            Ok(Located::Missing(_)) if missing_is_noop(name, path.as_deref()) => {}
            Ok(Located::Missing(p)) => {
                return Err(DocumentError(format!(
                    "unknown operation or handler {name:?}: no executable {}",
                    p.display()
                )))
            }
            Err(e) => return Err(DocumentError(e.to_string())),
        }
    }
    Ok(())
}

/// The packages recorded in `<state_dir>/packages.json` (for `status`).
pub fn installed_packages(state_dir: &Path) -> std::io::Result<Vec<PackageRecord>> {
    Ok(PackageRegistry::new(state_dir).load()?.into_values().collect())
}

#[cfg(test)]
mod tests;
