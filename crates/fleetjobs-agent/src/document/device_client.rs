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

use serde_json::Value;

use super::fields::{
    at, error, object, opt_allow_stderr, opt_args, opt_flag, opt_nonempty_str, opt_str, opt_timeout, req_object,
    req_str, Obj,
};
use super::handlers::{handler_action, handler_location};
use crate::plan::{Action, DocumentError, Plan, RunOptions, Step};

const SUPPORTED_VERSION: &str = "1.0";

pub(super) fn parse(version: &Value, doc: &Obj) -> Result<Plan, DocumentError> {
    match version {
        Value::String(v) if v.trim() == SUPPORTED_VERSION => {}
        Value::String(v) => {
            return Err(error(format!("unsupported job document version {v:?} (supported: {SUPPORTED_VERSION})")))
        }
        _ => return Err(error("`version` must be a string")),
    }
    let include_stdout = opt_flag(doc, "", "includeStdOut")?.unwrap_or(false);
    validate_conditions(doc)?;
    let steps = match doc.get("steps") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| step(item, &format!("steps[{i}]"), include_stdout))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err(error("`steps` must not be empty")),
        Some(_) => return Err(error("`steps` must be an array")),
        None => return Err(error("required field `steps` is missing")),
    };
    let final_step = match doc.get("finalStep") {
        None | Some(Value::Null) => None,
        Some(item) => Some(step(item, "finalStep", include_stdout)?),
    };
    let operation = steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    Ok(Plan { operation, steps, final_step })
}

fn validate_conditions(doc: &Obj) -> Result<(), DocumentError> {
    let Some(conditions) = doc.get("conditions").filter(|v| !v.is_null()) else { return Ok(()) };
    let items = conditions.as_array().ok_or_else(|| error("`conditions` must be an array"))?;
    for (i, item) in items.iter().enumerate() {
        let where_ = format!("conditions[{i}]");
        let cond = object(item, &where_)?;
        req_str(cond, &where_, "key")?;
        match cond.get("value") {
            Some(Value::Array(values)) if !values.is_empty() => {}
            _ => return Err(error(format!("`{}` must be a non-empty array", at(&where_, "value")))),
        }
        opt_str(cond, &where_, "type")?;
    }
    Ok(())
}

fn step(item: &Value, where_: &str, doc_include_stdout: bool) -> Result<Step, DocumentError> {
    let outer = object(item, where_)?;
    let action_where = at(where_, "action");
    let action = req_object(outer, where_, "action")?;
    let include_stdout = opt_flag(action, &action_where, "includeStdOut")?
        .or(opt_flag(outer, where_, "includeStdOut")?)
        .unwrap_or(doc_include_stdout);
    let name = req_str(action, &action_where, "name")?.to_owned();
    let kind = req_str(action, &action_where, "type")?;
    let input_where = at(&action_where, "input");
    let input = req_object(action, &action_where, "input")?;
    let run_as_user = opt_nonempty_str(action, &action_where, "runAsUser")?;
    let mut options = RunOptions {
        allow_stderr: opt_allow_stderr(action, &action_where)?.unwrap_or(true),
        include_stdout,
        ..RunOptions::default()
    };
    let action_value = match kind {
        "runHandler" => {
            let handler = req_str(input, &input_where, "handler")?.trim();
            let path = handler_location(handler, opt_str(input, &input_where, "path")?, &input_where)?;
            let args = opt_args(input, &input_where, "args")?;
            handler_action(handler, path, run_as_user, args, options)?
        }
        "runCommand" => {
            options.run_as_user = run_as_user.map(str::to_owned);
            let argv = split_command(req_str(input, &input_where, "command")?)
                .map_err(|e| error(format!("`{}` {e}", at(&input_where, "command"))))?;
            Action::RunCommand { argv, options }
        }
        other => {
            return Err(error(format!(
                "`{}` {other:?} is not supported (runHandler or runCommand)",
                at(&action_where, "type")
            )))
        }
    };
    Ok(Step {
        name,
        action: action_value,
        ignore_failure: opt_flag(action, &action_where, "ignoreStepFailure")?.unwrap_or(false),
        timeout: opt_timeout(action, &action_where)?,
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
