//! `fleetjobs-agent`: the Fleetjobs device agent. It runs AWS IoT Jobs on a Linux device
//! (against Fleetjobs or real AWS IoT, unchanged), one at a time, durably: a local journal
//! lets it resume the right step after `kill -9`, a power cut or a reboot.
//!
//! Layout (one concern per module):
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | settings: the JSON config file, command-line overrides, defaults |
//! | [`execution_status`] | job execution statuses (`IN_PROGRESS`, ...) as one enum, and the ones the server reports |
//! | [`jobs_client`] | MQTT (5, falling back to 3.1.1) over mutual TLS; the Jobs API requests, matched by `clientToken`, with timeouts |
//! | [`identity`] | which execution is which: jobId#executionNumber plus queuedAt, document hash, endpoint, thing |
//! | [`journal`] | the durable local journal: current job, steps, checkpoints, outbox, history |
//! | [`uplink`] | sends the journal's outbox in order, handling `VersionMismatch` and terminal rejections |
//! | [`agent`] | the loop: polling, admission/REJECTED, running steps, progress, cancel, resume |
//! | [`details`] | `statusDetails` within AWS limits |
//! | [`status`] | `fleetjobs-agent status` and the running agent's `runtime.json` |
//! | [`plan`] | what a document asks for, independent of its schema |
//! | [`document`] | job document (jobs-agent.js operations, Device Client schema 1.0, AWS templates) → [`plan::Plan`] |
//! | [`signature`] | ed25519-signed job documents: trust store, verify, sign |
//! | [`executor_api`] | the contract between the loop and the step executor |
//! | [`executor`] | runs one step on the device: processes, downloads, installs, reboot |
//!
//! The binary (`src/main.rs`) parses the command line and wires these together.

pub mod agent;
pub mod config;
pub mod details;
pub mod document;
pub mod execution_status;
pub mod executor;
pub mod executor_api;
pub mod identity;
pub mod jobs_client;
pub mod journal;
pub mod plan;
pub mod signature;
pub mod status;
pub mod uplink;
