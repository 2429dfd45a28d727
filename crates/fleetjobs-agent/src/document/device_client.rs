//! The AWS IoT Device Client job document schema 1.0 (`source/jobs/JobDocument.cpp`):
//!
//! ```json
//! {"version": "1.0", "includeStdOut": "true",
//!  "conditions": [{"key": "…", "value": ["…"], "type": "stringEqual"}],
//!  "steps": [{"action": {"name": "…", "type": "runHandler" | "runCommand",
//!             "input": {"handler": "…", "args": ["…"], "path": "default"} | {"command": "a,b\\,c"},
//!             "runAsUser": "…", "allowStdErr": 2, "ignoreStepFailure": "false"}}],
//!  "finalStep": {"action": {…}}}
//! ```
//!
//! `conditions` are validated as the Device Client does and, like it, not evaluated.
//! `includeStdOut` may sit on the document, on a step object or on its action (older
//! documents); the most specific one wins.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::de::{
    allow_stderr, args, blank_as_none, flag, non_empty_array, nonblank, opt_array, opt_nonblank, timeout, typed,
};
use super::handlers::{handler_action, handler_location};
use super::{error, missing};
use crate::plan::{Action, DocumentError, Plan, RunOptions, Step};

const SUPPORTED_VERSION: &str = "1.0";

/// Read on its own first, so that another version is reported as unsupported whatever the
/// rest of its document looks like.
#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobDocument {
    #[serde(default, rename = "includeStdOut", deserialize_with = "flag")]
    include_stdout: Option<bool>,
    #[serde(default, deserialize_with = "opt_array")]
    #[expect(dead_code, reason = "validated as the Device Client does, and like it never evaluated")]
    conditions: Option<Vec<Condition>>,
    #[serde(deserialize_with = "non_empty_array")]
    steps: Vec<StepDoc>,
    #[serde(default)]
    final_step: Option<StepDoc>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
#[expect(dead_code, reason = "validated as the Device Client does, and like it never evaluated")]
struct Condition {
    #[serde(deserialize_with = "nonblank")]
    key: String,
    #[serde(deserialize_with = "non_empty_array")]
    value: Vec<serde::de::IgnoredAny>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A `steps[i]` or `finalStep` object; older documents put `includeStdOut` here.
#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct StepDoc {
    action: ActionDoc,
    #[serde(default, rename = "includeStdOut", deserialize_with = "flag")]
    include_stdout: Option<bool>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
#[serde(rename_all = "camelCase")]
struct ActionDoc {
    #[serde(deserialize_with = "nonblank")]
    name: String,
    #[serde(rename = "type")]
    kind: ActionKind,
    input: Input,
    #[serde(default, deserialize_with = "blank_as_none")]
    run_as_user: Option<String>,
    #[serde(default, rename = "allowStdErr", deserialize_with = "allow_stderr")]
    allow_stderr: Option<bool>,
    #[serde(default, rename = "includeStdOut", deserialize_with = "flag")]
    include_stdout: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    ignore_step_failure: Option<bool>,
    #[serde(default, deserialize_with = "timeout")]
    timeout_seconds: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "`runHandler` or `runCommand`")]
enum ActionKind {
    RunHandler,
    RunCommand,
}

/// `action.input`: `handler`, `args`, `path` for `runHandler`; `command` for `runCommand`.
/// Which of them is required depends on the action's type, so that is checked in [`step`].
#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Input {
    #[serde(default, deserialize_with = "opt_nonblank")]
    handler: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, deserialize_with = "args")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "opt_nonblank")]
    command: Option<String>,
}

pub(super) fn parse(doc: &Value) -> Result<Plan, DocumentError> {
    let Version { version } = typed(doc)?;
    if version.trim() != SUPPORTED_VERSION {
        return Err(error(format!("unsupported job document version {version:?} (supported: {SUPPORTED_VERSION})")));
    }
    let doc: JobDocument = typed(doc)?;
    let include_stdout = doc.include_stdout.unwrap_or(false);
    let steps = doc
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(s, &format!("steps[{i}]"), include_stdout))
        .collect::<Result<Vec<_>, _>>()?;
    let final_step = doc.final_step.map(|s| step(s, "finalStep", include_stdout)).transpose()?;
    let operation = steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    Ok(Plan { operation, steps, final_step })
}

/// `where_` (`steps[1]`, `finalStep`) names the step in errors found after deserializing.
fn step(doc: StepDoc, where_: &str, doc_include_stdout: bool) -> Result<Step, DocumentError> {
    let StepDoc { action, include_stdout } = doc;
    let input_where = format!("{where_}.action.input");
    let mut options = RunOptions {
        allow_stderr: action.allow_stderr.unwrap_or(true),
        include_stdout: action.include_stdout.or(include_stdout).unwrap_or(doc_include_stdout),
        ..RunOptions::default()
    };
    let input = action.input;
    let action_value = match action.kind {
        ActionKind::RunHandler => {
            let handler = input.handler.ok_or_else(|| missing(&format!("{input_where}.handler")))?;
            let handler = handler.trim();
            let path = handler_location(handler, input.path.as_deref(), &input_where)?;
            handler_action(handler, path, action.run_as_user.as_deref(), input.args, options)?
        }
        ActionKind::RunCommand => {
            let command = input.command.ok_or_else(|| missing(&format!("{input_where}.command")))?;
            options.run_as_user = action.run_as_user;
            let argv = split_command(&command).map_err(|e| error(format!("`{input_where}.command` {e}")))?;
            Action::RunCommand { argv, options }
        }
    };
    Ok(Step {
        name: action.name,
        action: action_value,
        ignore_failure: action.ignore_step_failure.unwrap_or(false),
        timeout: action.timeout_seconds,
    })
}

/// Split a `runCommand` string into argv the way the Device Client does: on commas, where
/// `\,` stands for a literal comma. A trailing comma adds no empty argument. The program
/// (first element) must be non-empty and contain no whitespace.
pub(super) fn split_command(command: &str) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    let mut current = String::new();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => argv.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        argv.push(current);
    }
    match argv.first() {
        None => Err("is empty".into()),
        Some(program) if program.is_empty() => Err("has an empty program name".into()),
        Some(program) if program.chars().any(char::is_whitespace) => {
            Err(format!("program {program:?} contains whitespace (arguments are comma-separated)"))
        }
        Some(_) => Ok(argv),
    }
}
