//! `reboot`, `shutdown` and `systemStatus`.
//!
//! **Reboot** is a state machine on the kernel boot id:
//! - no checkpoint: wait `delay_minutes` (cancelable; the delay is ours, the command is run
//!   as configured, with no `+N` appended), record [`StepCheckpoint::RebootIssued`] with the
//!   current boot id (durably, first), run the reboot command → RebootPending (or Failed
//!   `ERR_SYSTEM_CALL_FAILED` when it fails);
//! - checkpoint with another boot id: the device rebooted → Succeeded (`step: rebooted`);
//! - checkpoint with the current boot id: no reboot happened yet. If this process issued the
//!   reboot less than `reboot_reissue_after` ago → RebootPending; otherwise (the agent was
//!   restarted, or the reboot got lost) the command is run again, without the delay.
//!
//! **Shutdown** works the same way with a [`StepCheckpoint::Marker`]
//! `{"shutdownBootId": "…"}`, but reports Succeeded (`step: initiated`) as soon as the
//! command has been accepted, as `jobs-agent.js` does (there is no "after" to report from),
//! and after a power cycle. There is no `shutdown -k` dry run.
//!
//! **systemStatus** reports `installedPackages` (`[a, b]`, as `jobs-agent.js`), `arch`,
//! `platform`, `kernelRelease`, `uptime` (system uptime, whole seconds), `agentVersion`,
//! `hostname`.

use std::path::Path;
use std::time::Duration;

use tokio::time::sleep;

use super::handler::exit_reason;
use super::output::DETAIL_MAX_CHARS;
use super::packages::PackageRegistry;
use super::process::{self, canceled, Ending, Limits};
use super::Executor;
use crate::executor_api::{Progress, StepCheckpoint, StepContext, StepOutcome};

const SHUTDOWN_MARKER_KEY: &str = "shutdownBootId";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Power {
    Reboot,
    Shutdown,
}

impl Power {
    fn name(self) -> &'static str {
        match self {
            Power::Reboot => "reboot",
            Power::Shutdown => "shutdown",
        }
    }

    fn command<'a>(self, ctx: &StepContext<'a>) -> &'a [String] {
        match self {
            Power::Reboot => ctx.reboot_command,
            Power::Shutdown => ctx.shutdown_command,
        }
    }

    fn issued_boot_id(self, resume: Option<&StepCheckpoint>) -> Option<&str> {
        match (self, resume) {
            (Power::Reboot, Some(StepCheckpoint::RebootIssued { boot_id })) => Some(boot_id),
            (Power::Shutdown, Some(StepCheckpoint::Marker { value })) => value.get(SHUTDOWN_MARKER_KEY)?.as_str(),
            _ => None,
        }
    }

    fn checkpoint(self, boot_id: &str) -> StepCheckpoint {
        match self {
            Power::Reboot => StepCheckpoint::RebootIssued { boot_id: boot_id.to_owned() },
            Power::Shutdown => StepCheckpoint::Marker { value: serde_json::json!({ SHUTDOWN_MARKER_KEY: boot_id }) },
        }
    }

    /// The outcome once the command was accepted.
    fn issued(self) -> StepOutcome {
        match self {
            Power::Reboot => StepOutcome::RebootPending,
            Power::Shutdown => step_detail("initiated"),
        }
    }

    /// The outcome after the boot id changed.
    fn done(self) -> StepOutcome {
        match self {
            Power::Reboot => step_detail("rebooted"),
            Power::Shutdown => step_detail("initiated"),
        }
    }
}

fn step_detail(step: &str) -> StepOutcome {
    StepOutcome::Succeeded { details: vec![("step".into(), step.into())] }
}

pub(super) async fn power(
    exec: &Executor,
    power: Power,
    step_name: &str,
    delay_minutes: u32,
    limits: Limits,
    ctx: &StepContext<'_>,
) -> StepOutcome {
    match power.issued_boot_id(ctx.resume) {
        Some(boot_id) if boot_id != ctx.boot_id => return power.done(),
        Some(_) if exec.recently_issued(ctx.job_id, step_name) => return power.issued(),
        Some(_) => {
            tracing::warn!(job = ctx.job_id, "{} issued earlier has not happened; issuing it again", power.name())
        }
        None => {
            if delay_minutes > 0 {
                let message = format!("{} in {delay_minutes} min", power.name());
                (ctx.progress)(Progress { message: Some(message), ..Progress::default() });
                tokio::select! {
                    () = sleep(Duration::from_secs(u64::from(delay_minutes) * 60)) => {}
                    () = canceled(ctx.cancel.clone()) => return StepOutcome::Canceled,
                }
            }
            (ctx.checkpoint)(power.checkpoint(ctx.boot_id));
        }
    }
    match run_command(power, limits, ctx).await {
        Ok(()) => {
            exec.mark_issued(ctx.job_id, step_name);
            power.issued()
        }
        Err(outcome) => outcome,
    }
}

async fn run_command(power: Power, limits: Limits, ctx: &StepContext<'_>) -> Result<(), StepOutcome> {
    let argv = power.command(ctx);
    let failed = |message: String, stderr: String| {
        let mut details = vec![("errorCode".to_owned(), "ERR_SYSTEM_CALL_FAILED".to_owned())];
        if !stderr.is_empty() {
            details.push(("stderr".to_owned(), stderr));
        }
        StepOutcome::Failed { reason: format!("{} command failed: {message}", power.name()), details }
    };
    let cmd = process::group_command(argv).map_err(|e| failed(e.to_string(), String::new()))?;
    let finished =
        process::run(cmd, limits, ctx.cancel.clone()).await.map_err(|e| failed(e.to_string(), String::new()))?;
    match finished.ending {
        Ending::Exited(status) if status.success() => Ok(()),
        Ending::Exited(status) => Err(failed(exit_reason(status), finished.stderr.text(DETAIL_MAX_CHARS))),
        Ending::TimedOut => Err(StepOutcome::TimedOut),
        Ending::Canceled => Err(StepOutcome::Canceled),
    }
}

pub(super) fn system_status(state_dir: &Path) -> StepOutcome {
    let packages = PackageRegistry::new(state_dir)
        .load()
        .map(|all| all.into_keys().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let uptime = read("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|s| (s as u64).to_string())
        .unwrap_or_default();
    let details = [
        ("installedPackages", format!("[{packages}]")),
        ("arch", std::env::consts::ARCH.to_owned()),
        ("platform", std::env::consts::OS.to_owned()),
        ("kernelRelease", read("/proc/sys/kernel/osrelease")),
        ("uptime", uptime),
        ("agentVersion", env!("CARGO_PKG_VERSION").to_owned()),
        ("hostname", read("/proc/sys/kernel/hostname")),
    ];
    StepOutcome::Succeeded {
        details: details.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}
