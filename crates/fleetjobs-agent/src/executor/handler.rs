//! `RunHandler` and `RunCommand` steps.
//!
//! A handler is a file `<dir>/<handler>` where `<dir>` is the agent's handler directory, or
//! the step's `path` (absolute, or relative to the handler directory). Neither the handler
//! name nor a relative `path` may leave its directory (`..`, absolute names); the file must be
//! a regular, executable file. The tutorial's `customJob` with no handler installed succeeds
//! without running anything.
//!
//! How a process ends becomes the outcome:
//! - exit 0 → Succeeded, unless the step does not allow stderr (`allowStdErr` `0` / `false`)
//!   and the process wrote anything to stderr → Failed;
//! - another exit code or a signal → Failed (`exited with status N` / `killed by signal N`);
//! - timeout / cancel → TimedOut / Canceled (the whole process group is killed).
//!
//! Details: `exitCode`, then `stderr` (its tail, when not empty), then `stdout` (its tail,
//! only with `includeStdOut`); tails are the last 1024 characters, control characters removed.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;

use super::output::DETAIL_MAX_CHARS;
use super::process::{self, Ending, Finished, Limits};
use super::{users, JOB_DOCUMENT_ENV, JOB_ID_ENV};
use crate::document::{safe_relative_path, TUTORIAL_OPERATION};
use crate::executor_api::{StepContext, StepOutcome};
use crate::plan::RunOptions;

/// Where a handler was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Located {
    Executable(PathBuf),
    Missing(PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum HandlerError {
    #[error("handler {0:?} is not allowed: {1}")]
    UnsafeName(String, String),
    #[error("handler path {0:?} is not allowed: {1}")]
    UnsafePath(PathBuf, String),
    #[error("handler {0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("handler {0} is not executable")]
    NotExecutable(PathBuf),
    #[error("handler {0}: {1}")]
    Unreadable(PathBuf, String),
}

/// Find `handler` in `path` (or `handler_dir`), refusing names that leave the directory.
pub(super) fn locate(handler: &str, path: Option<&Path>, handler_dir: &Path) -> Result<Located, HandlerError> {
    let name = safe_relative_path(handler).map_err(|e| HandlerError::UnsafeName(handler.to_owned(), e))?;
    let dir = match path {
        None => handler_dir.to_path_buf(),
        Some(p) if p.is_absolute() => {
            if p.components().any(|c| c == Component::ParentDir) {
                return Err(HandlerError::UnsafePath(p.to_path_buf(), "contains `..`".into()));
            }
            p.to_path_buf()
        }
        Some(p) => handler_dir
            .join(safe_relative_path(&p.to_string_lossy()).map_err(|e| HandlerError::UnsafePath(p.to_path_buf(), e))?),
    };
    let full = dir.join(name);
    match std::fs::metadata(&full) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Located::Missing(full)),
        Err(e) => Err(HandlerError::Unreadable(full, e.to_string())),
        Ok(meta) if !meta.is_file() => Err(HandlerError::NotAFile(full)),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(HandlerError::NotExecutable(full)),
        Ok(_) => Ok(Located::Executable(full)),
    }
}

/// The tutorial's `customJob` succeeds without a handler.
pub(super) fn missing_is_noop(handler: &str, path: Option<&Path>) -> bool {
    path.is_none() && handler == TUTORIAL_OPERATION
}

pub(super) async fn run_handler(
    handler: &str,
    args: &[String],
    path: Option<&Path>,
    options: &RunOptions,
    limits: Limits,
    ctx: &StepContext<'_>,
) -> StepOutcome {
    match locate(handler, path, ctx.handler_dir) {
        Err(e) => failed(e.to_string()),
        Ok(Located::Missing(_)) if missing_is_noop(handler, path) => StepOutcome::Succeeded { details: Vec::new() },
        Ok(Located::Missing(p)) => failed(format!("no handler {handler:?} (looked for {})", p.display())),
        Ok(Located::Executable(p)) => {
            let mut argv = Vec::with_capacity(args.len() + 1);
            argv.push(p.to_string_lossy().into_owned());
            argv.extend_from_slice(args);
            run_program(&argv, options, limits, ctx).await
        }
    }
}

/// Run `argv` (looked up in `PATH` when it has no `/`) with the step's options.
pub(super) async fn run_program(
    argv: &[String],
    options: &RunOptions,
    limits: Limits,
    ctx: &StepContext<'_>,
) -> StepOutcome {
    let mut cmd = match process::group_command(argv) {
        Ok(cmd) => cmd,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = users::apply(&mut cmd, options.run_as_user.as_deref()) {
        return failed(e.to_string());
    }
    cmd.env(JOB_ID_ENV, ctx.job_id).env(JOB_DOCUMENT_ENV, ctx.document.to_string()).envs(&options.env);
    match process::run(cmd, limits, ctx.cancel.clone()).await {
        Ok(finished) => outcome(finished, options),
        Err(e) => failed(format!("cannot run {}: {e}", argv[0])),
    }
}

fn outcome(finished: Finished, options: &RunOptions) -> StepOutcome {
    let status = match finished.ending {
        Ending::TimedOut => return StepOutcome::TimedOut,
        Ending::Canceled => return StepOutcome::Canceled,
        Ending::Exited(status) => status,
    };
    let mut details = Vec::new();
    if let Some(code) = status.code() {
        details.push(("exitCode".to_owned(), code.to_string()));
    }
    let stderr = finished.stderr.text(DETAIL_MAX_CHARS);
    if !stderr.is_empty() {
        details.push(("stderr".to_owned(), stderr));
    }
    let stdout = finished.stdout.text(DETAIL_MAX_CHARS);
    if options.include_stdout && !stdout.is_empty() {
        details.push(("stdout".to_owned(), stdout));
    }
    if !status.success() {
        StepOutcome::Failed { reason: exit_reason(status), details }
    } else if !options.allow_stderr && finished.stderr.total() > 0 {
        let reason = format!("wrote {} bytes to stderr (allowStdErr is 0 or false)", finished.stderr.total());
        StepOutcome::Failed { reason, details }
    } else {
        StepOutcome::Succeeded { details }
    }
}

pub(super) fn exit_reason(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

pub(super) fn failed(reason: impl Into<String>) -> StepOutcome {
    StepOutcome::Failed { reason: reason.into(), details: Vec::new() }
}
