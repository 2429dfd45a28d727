//! `operation` documents: the `jobs-agent.js` operations, and any other operation name as a
//! handler (the JS samples' routing by `operation`, which is also the Device Client's old
//! schema `{"operation": "<handler>", "args": […], "path": "default", "allowStdErr": n,
//! "includeStdOut": "true"}`).
//!
//! `install` is made strict where `jobs-agent.js` is loose: `files` must be a non-empty array,
//! every `fileName` must stay inside the working directory, every URL must be `http(s)`,
//! a checksum must be an inline sha256, and `autoStart: "false"` means false.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::fields::{
    at, error, is_http_url, object, opt_allow_stderr, opt_args, opt_flag, opt_nonempty_str, opt_object, opt_str,
    opt_timeout, opt_u32, req_object, req_str, sha256_hex, Obj,
};
use super::handlers::{handler_action, handler_location};
use super::paths::{safe_absolute_path, safe_relative_path, valid_package_name};
use crate::plan::{Action, DocumentError, InstallFile, InstallSpec, Plan, RunOptions, Step};

pub(super) fn parse(operation: &str, doc: &Obj) -> Result<Plan, DocumentError> {
    let operation = operation.trim();
    if operation.is_empty() {
        return Err(error("`operation` must not be empty"));
    }
    let action = match operation {
        "install" => Action::Install(install(doc)?),
        "start" => Action::StartPackage { package: package_name(doc)? },
        "stop" => Action::StopPackage { package: package_name(doc)? },
        "restart" => Action::RestartPackage { package: package_name(doc)? },
        "reboot" => Action::Reboot { delay_minutes: delay(doc)? },
        "shutdown" => Action::Shutdown { delay_minutes: delay(doc)? },
        "systemStatus" => Action::SystemStatus,
        handler => handler_step(handler, doc)?,
    };
    let step = Step { name: operation.to_owned(), action, ignore_failure: false, timeout: opt_timeout(doc, "")? };
    Ok(Plan { operation: operation.to_owned(), steps: vec![step], final_step: None })
}

fn package_name(doc: &Obj) -> Result<String, DocumentError> {
    let name = req_str(doc, "", "packageName")?.trim();
    if valid_package_name(name) {
        Ok(name.to_owned())
    } else {
        Err(error(format!("`packageName` {name:?} is invalid (letters, digits, `.`, `_`, `-`; at most 128)")))
    }
}

fn delay(doc: &Obj) -> Result<u32, DocumentError> {
    Ok(opt_u32(doc, "", "delay")?.unwrap_or(0))
}

fn handler_step(handler: &str, doc: &Obj) -> Result<Action, DocumentError> {
    let path = handler_location(handler, opt_str(doc, "", "path")?, "operation")?;
    let options = RunOptions {
        allow_stderr: opt_allow_stderr(doc, "")?.unwrap_or(true),
        include_stdout: opt_flag(doc, "", "includeStdOut")?.unwrap_or(false),
        ..RunOptions::default()
    };
    let user = opt_nonempty_str(doc, "", "runAsUser")?;
    handler_action(handler, path, user, opt_args(doc, "", "args")?, options)
}

fn install(doc: &Obj) -> Result<InstallSpec, DocumentError> {
    let package_name = package_name(doc)?;
    let files = match doc.get("files") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(error("`files` must not be empty")),
        Some(_) => return Err(error("`files` must be an array")),
        None => return Err(error("required field `files` is missing")),
    };
    let mut seen = BTreeSet::new();
    let files = files
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let file = install_file(item, &format!("files[{i}]"))?;
            if !seen.insert(safe_relative_path(&file.file_name).unwrap_or_default()) {
                return Err(error(format!("`files[{i}].fileName` {:?} is listed twice", file.file_name)));
            }
            Ok(file)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let working_directory = opt_nonempty_str(doc, "", "workingDirectory")?
        .map(|dir| {
            let dir = dir.trim();
            let checked = if Path::new(dir).is_absolute() { safe_absolute_path(dir) } else { safe_relative_path(dir) };
            checked.map_err(|e| error(format!("`workingDirectory` {e}")))
        })
        .transpose()?;
    Ok(InstallSpec {
        package_name,
        files,
        working_directory,
        launch_command: opt_nonempty_str(doc, "", "launchCommand")?.map(str::to_owned),
        auto_start: opt_flag(doc, "", "autoStart")?.unwrap_or(false),
    })
}

fn install_file(item: &Value, where_: &str) -> Result<InstallFile, DocumentError> {
    let file = object(item, where_)?;
    let file_name = req_str(file, where_, "fileName")?.trim();
    safe_relative_path(file_name).map_err(|e| error(format!("`{}` {e}", at(where_, "fileName"))))?;
    let source_where = at(where_, "fileSource");
    let source = req_object(file, where_, "fileSource")?;
    let url = match source.get("url") {
        Some(Value::String(url)) if is_http_url(url) => url.trim().to_owned(),
        Some(Value::String(url)) => {
            return Err(error(format!("`{}` {url:?} is not an http(s) URL", at(&source_where, "url"))))
        }
        Some(_) => {
            return Err(error(format!(
                "`{}` must be a string (an unsubstituted code-signing placeholder?)",
                at(&source_where, "url")
            )))
        }
        None => return Err(error(format!("required field `{}` is missing", at(&source_where, "url")))),
    };
    let sha256 = opt_object(file, where_, "checksum")?.map(|c| checksum(c, &at(where_, "checksum"))).transpose()?;
    Ok(InstallFile { file_name: file_name.to_owned(), url, sha256 })
}

fn checksum(c: &Obj, where_: &str) -> Result<String, DocumentError> {
    let algorithm = req_str(c, where_, "hashAlgorithm")?;
    let normalized = algorithm.trim().to_ascii_lowercase().replace('-', "");
    if normalized != "sha256" {
        return Err(error(format!("`{}` {algorithm:?} is not supported (only SHA256)", at(where_, "hashAlgorithm"))));
    }
    let inline_where = at(where_, "inline");
    let inline = req_object(c, where_, "inline")?;
    sha256_hex(req_str(inline, &inline_where, "value")?, &at(&inline_where, "value"))
}
