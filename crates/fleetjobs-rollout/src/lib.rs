//! The rollout engine's decisions, as pure functions: when a job may create executions and how
//! many, when it aborts, when an execution is retried, and what a rollout would
//! look like ahead of time (aws-iot-jobs.md §5.5, §7.2–§7.6).
//!
//! No I/O, no clock reads, no tasks: every function takes `now` (epoch milliseconds) and the
//! state it needs, and answers with the decision plus, where time matters, the next instant the
//! answer can change, so the engine's timer loop sleeps until then instead of polling. Whatever
//! must survive a restart ([`rate::RateState`]) is a plain struct of integers the engine
//! stores beside the job.
//!
//! - [`windows`]: maintenance windows: open now, next opening, the next starts AWS lists.
//! - [`schedule`]: a job's phase under its `schedulingConfig` (scheduled, rolling out, ended).
//! - [`rate`]: how many executions may be created now under `jobExecutionsRolloutConfig`.
//! - [`abort`]: whether `abortConfig` cancels the job, from the execution counts.
//! - [`retry`]: whether a FAILED or TIMED_OUT execution gets another attempt.
//!
//! Execution timeouts are the state machine's (`fleetjobs_core::execution::deadline`), run by
//! the engine's timer loop.
//! - [`preview`]: the batches a rollout would create, over the same rules.

pub mod abort;
pub mod preview;
pub mod rate;
pub mod retry;
pub mod schedule;
pub mod windows;

use fleetjobs_core::Millis;

/// One minute: rates are per minute, and cron and AWS's date-times have minute resolution.
pub const MINUTE: Millis = 60_000;
