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
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::de::{
    allow_stderr, args, blank_as_none, count, flag, http_url, non_empty_array, nonblank, package_name,
    sha256_algorithm, sha256_hex, timeout, typed,
};
use super::error;
use super::handlers::{handler_action, handler_location};
use super::paths::{safe_absolute_path, safe_relative_path};
use crate::plan::{Action, DocumentError, InstallFile, InstallSpec, Plan, RunOptions, Step};

/// What every `operation` document has. The rest is read by the operation's own type, so a
/// handler's document may use any other member for its own purposes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationDoc {
    #[serde(deserialize_with = "nonblank")]
    operation: String,
    #[serde(default, deserialize_with = "timeout")]
    timeout_seconds: Option<Duration>,
}

/// `start`, `stop`, `restart`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageDoc {
    #[serde(deserialize_with = "package_name")]
    package_name: String,
}

/// `reboot`, `shutdown`: `delay` in minutes.
#[derive(Deserialize)]
struct DelayDoc {
    #[serde(default, deserialize_with = "count")]
    delay: Option<u32>,
}

/// Any other operation: the handler of that name (the Device Client's old schema).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandlerDoc {
    #[serde(default)]
    path: Option<String>,
    #[serde(default, deserialize_with = "args")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "blank_as_none")]
    run_as_user: Option<String>,
    #[serde(default, rename = "allowStdErr", deserialize_with = "allow_stderr")]
    allow_stderr: Option<bool>,
    #[serde(default, rename = "includeStdOut", deserialize_with = "flag")]
    include_stdout: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallDoc {
    #[serde(deserialize_with = "package_name")]
    package_name: String,
    #[serde(deserialize_with = "non_empty_array")]
    files: Vec<FileDoc>,
    #[serde(default, deserialize_with = "blank_as_none")]
    working_directory: Option<String>,
    #[serde(default, deserialize_with = "blank_as_none")]
    launch_command: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    auto_start: Option<bool>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
#[serde(rename_all = "camelCase")]
struct FileDoc {
    #[serde(deserialize_with = "nonblank")]
    file_name: String,
    file_source: FileSource,
    #[serde(default)]
    checksum: Option<Checksum>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct FileSource {
    #[serde(deserialize_with = "http_url")]
    url: String,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
#[serde(rename_all = "camelCase")]
struct Checksum {
    /// Only SHA256 is accepted, so the value carries nothing beyond "it was SHA256".
    #[serde(deserialize_with = "sha256_algorithm")]
    hash_algorithm: (),
    inline: InlineChecksum,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct InlineChecksum {
    #[serde(deserialize_with = "sha256_hex")]
    value: String,
}

pub(super) fn parse(doc: &Value) -> Result<Plan, DocumentError> {
    let OperationDoc { operation, timeout_seconds } = typed(doc)?;
    let operation = operation.trim();
    let action = match operation {
        "install" => Action::Install(install(typed(doc)?)?),
        "start" => Action::StartPackage { package: typed::<PackageDoc>(doc)?.package_name },
        "stop" => Action::StopPackage { package: typed::<PackageDoc>(doc)?.package_name },
        "restart" => Action::RestartPackage { package: typed::<PackageDoc>(doc)?.package_name },
        "reboot" => Action::Reboot { delay_minutes: typed::<DelayDoc>(doc)?.delay.unwrap_or(0) },
        "shutdown" => Action::Shutdown { delay_minutes: typed::<DelayDoc>(doc)?.delay.unwrap_or(0) },
        "systemStatus" => Action::SystemStatus,
        handler => handler_step(handler, typed(doc)?)?,
    };
    let step = Step { name: operation.to_owned(), action, ignore_failure: false, timeout: timeout_seconds };
    Ok(Plan { operation: operation.to_owned(), steps: vec![step], final_step: None })
}

fn handler_step(handler: &str, doc: HandlerDoc) -> Result<Action, DocumentError> {
    let path = handler_location(handler, doc.path.as_deref(), "operation")?;
    let options = RunOptions {
        allow_stderr: doc.allow_stderr.unwrap_or(true),
        include_stdout: doc.include_stdout.unwrap_or(false),
        ..RunOptions::default()
    };
    handler_action(handler, path, doc.run_as_user.as_deref(), doc.args, options)
}

fn install(doc: InstallDoc) -> Result<InstallSpec, DocumentError> {
    let mut seen = BTreeSet::new();
    let files = doc
        .files
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            let file = install_file(file, &format!("files[{i}]"))?;
            if !seen.insert(safe_relative_path(&file.file_name).unwrap_or_default()) {
                return Err(error(format!("`files[{i}].fileName` {:?} is listed twice", file.file_name)));
            }
            Ok(file)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let working_directory = doc
        .working_directory
        .map(|dir| {
            let dir = dir.trim();
            let checked = if Path::new(dir).is_absolute() { safe_absolute_path(dir) } else { safe_relative_path(dir) };
            checked.map_err(|e| error(format!("`workingDirectory` {e}")))
        })
        .transpose()?;
    Ok(InstallSpec {
        package_name: doc.package_name,
        files,
        working_directory,
        launch_command: doc.launch_command,
        auto_start: doc.auto_start.unwrap_or(false),
    })
}

fn install_file(file: FileDoc, where_: &str) -> Result<InstallFile, DocumentError> {
    let file_name = file.file_name.trim();
    safe_relative_path(file_name).map_err(|e| error(format!("`{where_}.fileName` {e}")))?;
    let sha256 = file.checksum.map(|Checksum { hash_algorithm: (), inline }| inline.value);
    Ok(InstallFile { file_name: file_name.to_owned(), url: file.file_source.url, sha256 })
}
