//! Job document → [`Plan`]: pure parsing, no I/O.
//!
//! Recognized, in this order:
//!
//! 1. **AWS IoT Device Client schema 1.0** (`"version": "1.0"`, `steps`, optional
//!    `finalStep`, `runHandler` / `runCommand` actions), which is also what the AWS managed
//!    templates (AWS-Reboot, AWS-Download-File, AWS-Run-Command, ...) send once their
//!    `${aws:iot:parameter:…}` placeholders are substituted. See `device_client`.
//! 2. **`operation` documents**: the `jobs-agent.js` operations (`install`, `start`, `stop`,
//!    `restart`, `shutdown`, `reboot`, `systemStatus`); any other `operation` is the JS
//!    samples' routing by name (and the Device Client's old schema): a handler executable
//!    `<handler_dir>/<operation>`. See `jobs_agent`.
//!
//! Anything else (no `version` and no `operation`, an unknown schema version, wrong types,
//! missing required fields, a path that escapes its directory) is a [`DocumentError`] whose
//! text says what is wrong, so the agent can REJECT the job at once.
//!
//! Each schema is a set of `#[derive(Deserialize)]` types in its module; `de` deserializes
//! them with the field path kept for errors (`steps[1].action.input.handler`) and holds the
//! `deserialize_with` helpers for what the real clients send (booleans and integers as
//! strings, `""` for an unset template parameter, `null` for absent). Members a schema does
//! not know are ignored. The conversion to a [`Plan`] then works on typed values.
//!
//! Conventions shared by both schemas:
//! - A handler is always called as `handler <runAsUser or ""> <args…>`: the Device Client
//!   passes `runAsUser` as `argv[1]` and lets the handler switch user (its stock scripts do
//!   `sudo -u "$1"`), so handler steps carry no `run_as_user` of their own. `runCommand`
//!   steps do: the executor switches user with setuid/setgid.
//! - `path` `"default"`, `""` or absent: the agent's handler directory (the Device Client
//!   looks an absent path up in `PATH`; we never run a handler from outside a handler
//!   directory).
//! - The Device Client's stock `reboot.sh` becomes a native [`Action::Reboot`] (checked by
//!   boot id) and `download-file.sh <url> <path>` a native [`Action::Download`] (resumable,
//!   atomic); every other handler name stays a [`Action::RunHandler`], so a handler
//!   directory holding the stock scripts keeps working.
//! - `allowStdErr`: absent → stderr output never fails a step (what the Device Client does
//!   today: only the exit code counts); `0` or `false` → any stderr output fails the step;
//!   a positive number or `true` → stderr is allowed.
//! - `includeStdOut` / `ignoreStepFailure`: a boolean or the strings `"true"` / `"false"`.
//! - `timeoutSeconds` (a Fleetjobs extension, on an action or an `operation` document): the
//!   step's timeout; the agent's default applies otherwise.
//! - `customJob` (the tutorial's operation) is a handler like any other; the executor
//!   succeeds without running anything when no such handler is installed.

mod de;
mod device_client;
mod handlers;
mod jobs_agent;
mod paths;

use serde_json::Value;

pub use crate::plan::DocumentError;
use crate::plan::Plan;
pub use paths::{safe_relative_path, valid_package_name};

/// The tutorial's operation: runs its handler when one is installed, else does nothing.
pub const TUTORIAL_OPERATION: &str = "customJob";

/// Parse a job document into a [`Plan`]. Which schema applies is decided by which member is
/// there, before any is read; each schema then deserializes into its own types.
pub fn parse(doc: &Value) -> Result<Plan, DocumentError> {
    let obj = doc.as_object().ok_or_else(|| error("the job document is not a JSON object"))?;
    if obj.contains_key("version") {
        device_client::parse(doc)
    } else if obj.contains_key("operation") {
        jobs_agent::parse(doc)
    } else {
        Err(error("unrecognized job document: neither `version` (Device Client schema) nor `operation`"))
    }
}

fn error(reason: impl Into<String>) -> DocumentError {
    DocumentError(reason.into())
}

/// A required field that is absent, named by its path (`steps[0].action.input.handler`).
fn missing(field: &str) -> DocumentError {
    error(format!("required field `{field}` is missing"))
}

#[cfg(test)]
mod tests;
