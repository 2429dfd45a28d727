//! The `start`, `stop` and `restart` steps of `jobs-agent.js`, with its `statusDetails`:
//! `state` (`package started` / `package stopped`) on success; `errorCode`
//! (`ERR_INVALID_PACKAGE_NAME`, `ERR_UNABLE_TO_START_PACKAGE`, `ERR_UNABLE_TO_STOP_PACKAGE`)
//! and `errorMessage` on failure.

use super::packages::{start, stop, Control, PackageError, PackageRecord, PackageRegistry};
use super::Executor;
use crate::executor_api::{Progress, StepContext, StepOutcome};

const START_FAILED: &str = "ERR_UNABLE_TO_START_PACKAGE";
const STOP_FAILED: &str = "ERR_UNABLE_TO_STOP_PACKAGE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PackageOp {
    Start,
    Stop,
    Restart,
}

pub(super) async fn run(exec: &Executor, op: PackageOp, package: &str, ctx: &StepContext<'_>) -> StepOutcome {
    let registry = PackageRegistry::new(ctx.state_dir);
    let mut record = match registry.get(package) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return package_failure("ERR_INVALID_PACKAGE_NAME", format!("no package installed called: {package}"))
        }
        Err(e) => return package_failure("ERR_UNEXPECTED", format!("package registry: {e}")),
    };
    let control = exec.package_control();
    if matches!(op, PackageOp::Stop | PackageOp::Restart) {
        report(ctx, "stopping running package");
        if let Err(e) = stop(&registry, &mut record, control).await {
            return failure(STOP_FAILED, e);
        }
        if op == PackageOp::Stop {
            return succeeded("package stopped");
        }
    }
    start_step(exec, &registry, &mut record, control, ctx).await
}

async fn start_step(
    exec: &Executor,
    registry: &PackageRegistry,
    record: &mut PackageRecord,
    control: Control,
    ctx: &StepContext<'_>,
) -> StepOutcome {
    report(ctx, "starting package, checking stability");
    match start(registry, record, &exec.package_log_dir(ctx.state_dir), control, ctx.cancel.clone()).await {
        Ok(_) => succeeded("package started"),
        Err(e) => failure(START_FAILED, e),
    }
}

fn report(ctx: &StepContext<'_>, message: &str) {
    (ctx.progress)(Progress { message: Some(message.to_owned()), ..Progress::default() });
}

fn succeeded(state: &str) -> StepOutcome {
    StepOutcome::Succeeded { details: vec![("state".into(), state.into())] }
}

/// A package error as an outcome (`Canceled` stays a cancel).
pub(super) fn failure(code: &str, e: PackageError) -> StepOutcome {
    match e {
        PackageError::Canceled => StepOutcome::Canceled,
        e => package_failure(code, e.to_string()),
    }
}

pub(super) fn package_failure(code: &str, message: String) -> StepOutcome {
    StepOutcome::Failed {
        reason: message.clone(),
        details: vec![("errorCode".into(), code.into()), ("errorMessage".into(), message)],
    }
}
