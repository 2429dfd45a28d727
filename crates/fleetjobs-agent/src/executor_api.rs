//! The contract between the agent loop and the step executor (`executor`). The loop owns the
//! MQTT conversation and the journal; the executor runs one step on the device.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Step;

/// Resumable progress of one step, made durable by the loop (journal) before the executor
/// goes on. After a crash or reboot the executor gets the last one back in
/// [`StepContext::resume`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StepCheckpoint {
    /// `bytes` of `url` are on disk in `partial` (HTTP Range resume from there).
    Download { url: String, partial: String, bytes: u64, total: Option<u64> },
    /// A reboot was issued while the kernel boot id was `boot_id`.
    RebootIssued { boot_id: String },
    /// A free-form marker for other resumable actions (e.g. install: files done so far).
    Marker { value: serde_json::Value },
}

/// Live progress for statusDetails (the loop rate-limits what it sends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub percent: Option<u8>,
    pub bytes: Option<u64>,
    pub total: Option<u64>,
    pub message: Option<String>,
}

/// Everything a step needs from its surroundings.
pub struct StepContext<'a> {
    pub job_id: &'a str,
    /// The job document as received (handlers get it in `FLEETJOBS_JOB_DOCUMENT`).
    pub document: &'a serde_json::Value,
    pub handler_dir: &'a Path,
    /// The agent's state directory (installed packages, partial downloads).
    pub state_dir: &'a Path,
    /// Timeout when the step has none.
    pub default_timeout: Duration,
    /// The current kernel boot id.
    pub boot_id: &'a str,
    /// Command that reboots the device (argv), e.g. `["/sbin/shutdown", "-r", "now"]`.
    pub reboot_command: &'a [String],
    /// Command that shuts the device down (argv).
    pub shutdown_command: &'a [String],
    /// The last checkpoint of this step, when resuming it.
    pub resume: Option<&'a StepCheckpoint>,
    /// Record a checkpoint durably; returns once it is on disk.
    pub checkpoint: &'a (dyn Fn(StepCheckpoint) + Send + Sync),
    /// Report progress (cheap; may be called often).
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
    /// Becomes `true` when the job was canceled: stop the step (kill its process group).
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// How a step ended. `details` go into statusDetails (string values, kept short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded {
        details: Vec<(String, String)>,
    },
    Failed {
        reason: String,
        details: Vec<(String, String)>,
    },
    TimedOut,
    Canceled,
    /// A reboot was issued; the step completes after the boot id changes.
    RebootPending,
}

/// Implemented by `executor::Executor`.
pub trait StepRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        step: &'a Step,
        ctx: &'a StepContext<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepOutcome> + Send + 'a>>;
}
