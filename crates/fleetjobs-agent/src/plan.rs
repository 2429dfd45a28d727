//! What a job document asks the device to do, independent of which schema it was written in
//! (the `operation` style of the JS SDK samples and `jobs-agent.js`, the AWS IoT Device
//! Client schema 1.0 with `steps`/`finalStep`, the AWS managed templates). `document`
//! parses into a [`Plan`]; `executor` runs one [`Step`] at a time; the agent loop journals
//! progress between steps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A parsed job document: the steps in order, then the final step (run after the steps
/// whether they succeeded or failed, as in the Device Client's `finalStep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Name of the operation or document kind, for statusDetails (`operation`).
    pub operation: String,
    pub steps: Vec<Step>,
    pub final_step: Option<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Human name (Device Client `action.name`, or derived), used in statusDetails.
    pub name: String,
    pub action: Action,
    /// Continue with the next step even if this one fails (Device Client `ignoreStepFailure`).
    #[serde(default)]
    pub ignore_failure: bool,
    /// Per-step timeout from the document; the agent's default applies when `None`.
    #[serde(default)]
    pub timeout: Option<Duration>,
}

/// One unit of work. Each variant is idempotent or resumable, because the agent may crash
/// or reboot in the middle of any step and run it again from its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// Run an executable with arguments (Device Client `runHandler`: a file from the handler
    /// directory or an explicit `path`; JS-sample style `operation` mapped to
    /// `<handler_dir>/<operation>`; the JSON document is passed in `FLEETJOBS_JOB_DOCUMENT`).
    RunHandler {
        handler: String,
        #[serde(default)]
        args: Vec<String>,
        /// Directory to look the handler up in, overriding the agent's handler directory.
        #[serde(default)]
        path: Option<PathBuf>,
        #[serde(default)]
        options: RunOptions,
    },
    /// Run a command line (Device Client `runCommand`, comma-separated argv; or a shell line).
    RunCommand {
        argv: Vec<String>,
        #[serde(default)]
        options: RunOptions,
    },
    /// Download `url` to `path`, verifying `sha256` (hex) when given. Resumable (HTTP Range).
    Download {
        url: String,
        path: PathBuf,
        #[serde(default)]
        sha256: Option<String>,
    },
    /// `jobs-agent.js` install: download every file (checksummed) into the package's working
    /// directory, back up existing files, record the package; optionally (re)start it.
    Install(InstallSpec),
    /// `jobs-agent.js` start / stop / restart of an installed package.
    StartPackage {
        package: String,
    },
    StopPackage {
        package: String,
    },
    RestartPackage {
        package: String,
    },
    /// Reboot the device; the step is done when the kernel boot id has changed.
    Reboot {
        delay_minutes: u32,
    },
    /// Shut the device down (dry run first).
    Shutdown {
        delay_minutes: u32,
    },
    /// Report system facts (jobs-agent.js `systemStatus`).
    SystemStatus,
    /// The tutorial's `customJob` when no handler is installed for it: succeeds at once.
    Noop,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Run as this user (`runAsUser`); `None`: as the agent.
    #[serde(default)]
    pub run_as_user: Option<String>,
    /// Output on stderr does not fail the step (`allowStdErr`; the Device Client fails a step
    /// that writes more than this many stderr lines... here: `true` = never fail on stderr).
    #[serde(default)]
    pub allow_stderr: bool,
    /// Put the stdout tail into statusDetails (`includeStdOut`).
    #[serde(default)]
    pub include_stdout: bool,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSpec {
    pub package_name: String,
    pub files: Vec<InstallFile>,
    #[serde(default)]
    pub working_directory: Option<PathBuf>,
    #[serde(default)]
    pub launch_command: Option<String>,
    /// `autoStart` as jobs-agent.js reads it, but `"false"` (a string) means false here.
    #[serde(default)]
    pub auto_start: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallFile {
    pub file_name: String,
    pub url: String,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Why a document is refused (reported as REJECTED with this reason; never blocks the queue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);
