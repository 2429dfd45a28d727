//! The pure core of Fleetjobs: the AWS IoT Jobs domain with no I/O.
//!
//! Everything here is deterministic given its inputs; the clock is always passed in
//! (`now`, epoch milliseconds). Adapters (store, MQTT, HTTP) live in other crates and call in.
//!
//! Layout:
//! - [`model`]: the records (`Job`, `JobExecution`, `Thing`, `Certificate`, `Policy`) and enums.
//! - [`error`]: `ErrorCode`, the AWS exception names with their HTTP status, and `ApiError`.
//! - [`validate`]: field limits and patterns from the botocore model, enforced server-side.
//! - [`job_config`]: the typed job configurations (rollout, abort, timeout, retry, scheduling,
//!   presigned URLs) and their limits; [`cron`]: AWS `cron(...)` expressions.
//! - [`execution`]: the job execution state machine (device updates, start-next, cancel).
//! - [`pending`]: a thing's pending queue, `$next`, and when `notify`/`notify-next` fire.
//! - [`events`]: `$aws/events/job/...` and `$aws/events/jobExecution/...` payloads.
//! - [`topics`]: parsing `$aws/things/{thing}/jobs/...` request topics.
//! - [`policy`]: AWS IoT policy documents and their evaluation.
//! - [`fleet_query`]: the fleet-indexing query language of dynamic thing groups.
//! - [`ops`]: the request and response type of every control-plane operation.
//! - [`arn`]: ARN formatting and parsing.
//! - [`status_history`]: a job's execution statuses over time, from its executions' timestamps.

pub mod arn;
pub mod cron;
pub mod error;
pub mod events;
pub mod execution;
pub mod fleet_query;
pub mod job_config;
pub mod model;
pub mod ops;
pub mod pending;
pub mod policy;
pub mod status_history;
pub mod topics;
pub mod utc;
pub mod validate;

pub use error::{ApiError, ApiResult, AtMember, ErrorCode};

/// Epoch milliseconds: the one clock unit inside Fleetjobs. Wire formats convert at the edge.
pub type Millis = i64;
