//! The job configurations (rollout, abort, timeout, retry, scheduling, presigned URLs) as AWS
//! shapes them, each with the limits of the botocore model and the AWS documentation
//! (aws-iot-jobs.md §2.5, §7, §8). They serialize (camelCase, absent members omitted) exactly as
//! DescribeJob echoes them and as the store keeps them.
//!
//! Count members that older Fleetjobs versions accepted up to `i64::MAX` stay `i64` so their
//! stored records still load; `check` holds new requests to the model's `integer` range.

use serde::{Deserialize, Serialize};

use crate::cron::CronExpression;
use crate::error::{ApiError, ApiResult, AtMember};
use crate::validate::{date_time, MAX_TIMEOUT_MINUTES};
use crate::Millis;

/// The largest AWS `integer`.
const MAX_INTEGER: i64 = i32::MAX as i64;
const MINUTE: Millis = 60_000;
const YEAR: Millis = 365 * 24 * 60 * MINUTE;

/// A `double` member kept as the caller wrote it (`2` or `2.0`) so that it echoes unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Double(serde_json::Number);

impl Double {
    pub fn get(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }

    /// At most `places` decimal places (`1.25` has two).
    fn decimals_at_most(&self, places: i32) -> bool {
        let scaled = self.get() * 10f64.powi(places);
        (scaled - scaled.round()).abs() < 1e-6
    }
}

/// An AWS string enum of one config member: serialized as AWS spells it; any other string is
/// refused with the member's name and allowed values.
macro_rules! aws_enum {
    ($(#[$doc:meta])* $name:ident, $member:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> Self {
                v.as_str()
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(s: String) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!("{} must be one of {}", $member, [$($text),+].join(", "))
                })
            }
        }
    };
}

fn within<T: PartialOrd + std::fmt::Display>(v: T, lo: T, hi: T, member: &str) -> ApiResult<()> {
    if v < lo || v > hi {
        return Err(ApiError::invalid(format!("{member} must be between {lo} and {hi}")));
    }
    Ok(())
}

/// A count member: an AWS `integer` of at least 1.
fn count(v: i64, member: &str) -> ApiResult<()> {
    within(v, 1, MAX_INTEGER, member)
}

/// `presignedUrlConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUrlConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_sec: Option<i64>,
}

impl PresignedUrlConfig {
    pub fn check(&self) -> ApiResult<()> {
        if let Some(role) = &self.role_arn {
            if !(20..=2048).contains(&role.chars().count()) {
                return Err(ApiError::invalid("presignedUrlConfig.roleArn must have length between 20 and 2048"));
            }
        }
        self.expires_in_sec.map_or(Ok(()), |v| within(v, 60, 3600, "expiresInSec"))
    }
}

/// `jobExecutionsRolloutConfig`: a constant rate, optionally growing exponentially.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_per_minute: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_rate: Option<ExponentialRate>,
}

/// `ExponentialRolloutRate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialRate {
    pub base_rate_per_minute: i32,
    pub increment_factor: Double,
    pub rate_increase_criteria: RateIncreaseCriteria,
}

/// `RateIncreaseCriteria`: AWS documents that exactly one of its two members is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RateIncreaseMembers", into = "RateIncreaseMembers")]
pub enum RateIncreaseCriteria {
    NumberOfNotifiedThings(i64),
    NumberOfSucceededThings(i64),
}

/// The wire form of [`RateIncreaseCriteria`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateIncreaseMembers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number_of_notified_things: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number_of_succeeded_things: Option<i64>,
}

impl TryFrom<RateIncreaseMembers> for RateIncreaseCriteria {
    type Error = &'static str;

    fn try_from(m: RateIncreaseMembers) -> Result<Self, Self::Error> {
        match (m.number_of_notified_things, m.number_of_succeeded_things) {
            (Some(n), None) => Ok(Self::NumberOfNotifiedThings(n)),
            (None, Some(n)) => Ok(Self::NumberOfSucceededThings(n)),
            _ => Err("rateIncreaseCriteria must set exactly one of numberOfNotifiedThings and numberOfSucceededThings"),
        }
    }
}

impl From<RateIncreaseCriteria> for RateIncreaseMembers {
    fn from(c: RateIncreaseCriteria) -> Self {
        match c {
            RateIncreaseCriteria::NumberOfNotifiedThings(n) => {
                RateIncreaseMembers { number_of_notified_things: Some(n), number_of_succeeded_things: None }
            }
            RateIncreaseCriteria::NumberOfSucceededThings(n) => {
                RateIncreaseMembers { number_of_notified_things: None, number_of_succeeded_things: Some(n) }
            }
        }
    }
}

impl RolloutConfig {
    pub fn check(&self) -> ApiResult<()> {
        // The model only says >= 1; the documented rollout limit is 1000 per minute.
        if let Some(max) = self.maximum_per_minute {
            within(max, 1, 1000, "maximumPerMinute")?;
        }
        let Some(e) = &self.exponential_rate else { return Ok(()) };
        within(e.base_rate_per_minute, 1, 1000, "baseRatePerMinute")?;
        within(e.increment_factor.get(), 1.1, 5.0, "incrementFactor")?;
        if !e.increment_factor.decimals_at_most(1) {
            return Err(ApiError::invalid("incrementFactor can have at most one decimal place"));
        }
        match e.rate_increase_criteria {
            RateIncreaseCriteria::NumberOfNotifiedThings(n) => count(n, "numberOfNotifiedThings"),
            RateIncreaseCriteria::NumberOfSucceededThings(n) => count(n, "numberOfSucceededThings"),
        }
    }
}

aws_enum! {
    /// `JobExecutionFailureType`: which terminal outcomes an abort criterion counts.
    AbortFailureType, "failureType" { Failed = "FAILED", Rejected = "REJECTED", TimedOut = "TIMED_OUT", All = "ALL" }
}

aws_enum! {
    /// `AbortAction`.
    AbortAction, "action" { Cancel = "CANCEL" }
}

/// `abortConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortConfig {
    pub criteria_list: Vec<AbortCriteria>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortCriteria {
    pub failure_type: AbortFailureType,
    pub action: AbortAction,
    pub threshold_percentage: Double,
    pub min_number_of_executed_things: i64,
}

impl AbortConfig {
    pub fn check(&self) -> ApiResult<()> {
        if self.criteria_list.is_empty() {
            return Err(ApiError::invalid("abortConfig.criteriaList must have at least 1 item"));
        }
        for c in &self.criteria_list {
            within(c.threshold_percentage.get(), 0.0, 100.0, "thresholdPercentage")?;
            if !c.threshold_percentage.decimals_at_most(2) {
                return Err(ApiError::invalid("thresholdPercentage can have at most two decimal places"));
            }
            count(c.min_number_of_executed_things, "minNumberOfExecutedThings")?;
        }
        Ok(())
    }
}

/// `timeoutConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_timeout_in_minutes: Option<i64>,
}

impl TimeoutConfig {
    pub fn check(&self) -> ApiResult<()> {
        // No range in the model; AWS documents 1 minute to 7 days.
        self.in_progress_timeout_in_minutes
            .map_or(Ok(()), |v| within(v, 1, MAX_TIMEOUT_MINUTES, "inProgressTimeoutInMinutes"))
    }
}

aws_enum! {
    /// `RetryableFailureType`.
    RetryFailureType, "failureType" { Failed = "FAILED", TimedOut = "TIMED_OUT", All = "ALL" }
}

/// `jobExecutionsRetryConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    pub criteria_list: Vec<RetryCriteria>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryCriteria {
    pub failure_type: RetryFailureType,
    pub number_of_retries: i32,
}

/// At most this many retries per execution, all criteria together.
pub const MAX_RETRIES: i32 = 10;

impl RetryConfig {
    pub fn check(&self) -> ApiResult<()> {
        if !(1..=2).contains(&self.criteria_list.len()) {
            return Err(ApiError::invalid("jobExecutionsRetryConfig.criteriaList must have 1 or 2 items"));
        }
        let mut total = 0;
        for c in &self.criteria_list {
            within(c.number_of_retries, 0, MAX_RETRIES, "numberOfRetries")?;
            total += c.number_of_retries;
        }
        if total > MAX_RETRIES {
            return Err(ApiError::invalid(format!("At most {MAX_RETRIES} retries in total are allowed")));
        }
        Ok(())
    }

    /// UpdateJob may only lower the retries to 0 (aws-iot-jobs.md §7.5).
    pub fn check_update(&self) -> ApiResult<()> {
        if self.criteria_list.iter().any(|c| c.number_of_retries != 0) {
            return Err(ApiError::invalid("After creation, numberOfRetries can only be set to 0"));
        }
        Ok(())
    }
}

aws_enum! {
    /// `JobEndBehavior`: what happens to the rollout at `endTime`.
    JobEndBehavior, "endBehavior" { StopRollout = "STOP_ROLLOUT", Cancel = "CANCEL", ForceCancel = "FORCE_CANCEL" }
}

/// `schedulingConfig`. The times are `StringDateTime` strings, stored and echoed verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_behavior: Option<JobEndBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_windows: Option<Vec<MaintenanceWindow>>,
}

/// A recurring window, opening at each time of its `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub start_time: String,
    pub duration_in_minutes: i32,
}

impl MaintenanceWindow {
    pub fn schedule(&self) -> ApiResult<CronExpression> {
        if !(1..=256).contains(&self.start_time.chars().count()) {
            return Err(ApiError::invalid("maintenanceWindows.startTime must have length between 1 and 256"));
        }
        self.start_time.parse().map_err(|e| {
            ApiError::invalid(format!(
                "maintenanceWindows.startTime '{}' is not a valid cron expression like cron(0 2 ? * SAT *): {e}",
                self.start_time
            ))
        })
    }

    pub fn check(&self) -> ApiResult<()> {
        self.schedule()?;
        within(self.duration_in_minutes, 1, 1430, "durationInMinutes")
    }
}

impl SchedulingConfig {
    /// Relative to `now`: a start at least 30 minutes and at most a year ahead, an end at
    /// least 30 minutes and at most two years ahead, and between them at least 30 minutes and
    /// at most two years.
    pub fn check(&self, now: Millis) -> ApiResult<()> {
        let parse = |member: &str, v: &Option<String>| -> ApiResult<Option<Millis>> {
            let Some(v) = v else { return Ok(None) };
            if !(1..=64).contains(&v.chars().count()) {
                return Err(ApiError::invalid(format!("schedulingConfig.{member} must have length between 1 and 64")));
            }
            date_time(v).map(Some).ok_or_else(|| {
                ApiError::invalid(format!("schedulingConfig.{member} '{v}' must be a date-time like 2025-06-01T10:00"))
            })
        };
        let start = parse("startTime", &self.start_time)?;
        let end = parse("endTime", &self.end_time)?;
        if let Some(s) = start {
            if s < now + 30 * MINUTE || s > now + YEAR {
                return Err(ApiError::invalid(
                    "schedulingConfig.startTime must be between 30 minutes and 1 year from now",
                ));
            }
        }
        if let Some(e) = end {
            if e < now + 30 * MINUTE || e > now + 2 * YEAR {
                return Err(ApiError::invalid(
                    "schedulingConfig.endTime must be between 30 minutes and 2 years from now",
                ));
            }
            if start.is_some_and(|s| e - s < 30 * MINUTE || e - s > 2 * YEAR) {
                return Err(ApiError::invalid(
                    "schedulingConfig.endTime must be between 30 minutes and 2 years after startTime",
                ));
            }
        }
        if self.end_behavior.is_some() && end.is_none() {
            return Err(ApiError::invalid("schedulingConfig.endBehavior requires endTime"));
        }
        self.maintenance_windows.iter().flatten().try_for_each(MaintenanceWindow::check)
    }
}

/// A job's configurations, each absent unless the caller set it. What each decides is in
/// `fleetjobs-rollout` (rate, schedule, windows, abort, retry) and in the execution state
/// machine (timeouts); the engine applies it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobConfigs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<PresignedUrlConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<RolloutConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<AbortConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<TimeoutConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<RetryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_config: Option<SchedulingConfig>,
}

impl JobConfigs {
    /// The configs of a CreateJob request.
    pub fn check(&self, now: Millis) -> ApiResult<()> {
        self.presigned_url_config.as_ref().map_or(Ok(()), PresignedUrlConfig::check).at("presignedUrlConfig")?;
        self.job_executions_rollout_config
            .as_ref()
            .map_or(Ok(()), RolloutConfig::check)
            .at("jobExecutionsRolloutConfig")?;
        self.abort_config.as_ref().map_or(Ok(()), AbortConfig::check).at("abortConfig")?;
        self.timeout_config.as_ref().map_or(Ok(()), TimeoutConfig::check).at("timeoutConfig")?;
        self.job_executions_retry_config.as_ref().map_or(Ok(()), RetryConfig::check).at("jobExecutionsRetryConfig")?;
        self.scheduling_config.as_ref().map_or(Ok(()), |s| s.check(now)).at("schedulingConfig")
    }

    /// The configs of an UpdateJob request: CreateJob's rules, and retries only lowered to 0.
    pub fn check_update(&self, now: Millis) -> ApiResult<()> {
        self.check(now)?;
        self.job_executions_retry_config
            .as_ref()
            .map_or(Ok(()), RetryConfig::check_update)
            .at("jobExecutionsRetryConfig")
    }

    /// Whether the job waits for a scheduled start.
    pub fn is_scheduled(&self) -> bool {
        self.scheduling_config.as_ref().is_some_and(|s| s.start_time.is_some())
    }

    /// Apply an UpdateJob: each config it sets replaces the stored one. Scheduling is
    /// immutable after creation.
    pub fn update(&mut self, new: JobConfigs) {
        fn replace<T>(slot: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *slot = new;
            }
        }
        replace(&mut self.presigned_url_config, new.presigned_url_config);
        replace(&mut self.job_executions_rollout_config, new.job_executions_rollout_config);
        replace(&mut self.abort_config, new.abort_config);
        replace(&mut self.timeout_config, new.timeout_config);
        replace(&mut self.job_executions_retry_config, new.job_executions_retry_config);
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::Job;

    /// 2026-01-01T00:00Z.
    fn now() -> Millis {
        date_time("2026-01-01T00:00").unwrap()
    }

    fn parse<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
        T::deserialize(&v)
    }

    /// The config parsed from `v` passes or fails `JobConfigs::check` as a CreateJob member.
    fn accepted(member: &str, v: Value) -> bool {
        match parse::<JobConfigs>(json!({ member: v })) {
            Ok(c) => c.check(now()).is_ok(),
            Err(_) => false,
        }
    }

    fn rollout(max: Value, base: Value, factor: Value, criteria: Value) -> Value {
        json!({"maximumPerMinute": max, "exponentialRate":
            {"baseRatePerMinute": base, "incrementFactor": factor, "rateIncreaseCriteria": criteria}})
    }

    #[test]
    fn rollout_limits() {
        let notified = json!({"numberOfNotifiedThings": 1});
        let key = "jobExecutionsRolloutConfig";
        assert!(accepted(key, json!({})));
        assert!(accepted(key, json!({"maximumPerMinute": 1})));
        assert!(accepted(key, json!({"maximumPerMinute": 1000})));
        assert!(!accepted(key, json!({"maximumPerMinute": 0})));
        assert!(!accepted(key, json!({"maximumPerMinute": 1001})));
        assert!(!accepted(key, json!({"maximumPerMinute": 2.5})), "integer member");
        assert!(accepted(key, rollout(json!(1000), json!(1), json!(1.1), notified.clone())));
        assert!(accepted(key, rollout(json!(1000), json!(1000), json!(5), notified.clone())));
        assert!(!accepted(key, rollout(json!(1000), json!(0), json!(2), notified.clone())));
        assert!(!accepted(key, rollout(json!(1000), json!(1001), json!(2), notified.clone())));
        assert!(!accepted(key, rollout(json!(1000), json!(10), json!(1.0), notified.clone())));
        assert!(!accepted(key, rollout(json!(1000), json!(10), json!(5.1), notified.clone())));
        assert!(!accepted(key, rollout(json!(1000), json!(10), json!(1.25), notified.clone())), "one decimal");
        assert!(!accepted(key, rollout(json!(1000), json!(10), json!("2"), notified.clone())), "double member");
        let succeeded = json!({"numberOfSucceededThings": 2_147_483_647_i64});
        assert!(accepted(key, rollout(json!(1000), json!(10), json!(2), succeeded)));
        for bad in [
            json!({}),
            json!({"numberOfNotifiedThings": 1, "numberOfSucceededThings": 1}),
            json!({"numberOfNotifiedThings": 0}),
            json!({"numberOfSucceededThings": 2_147_483_648_i64}),
        ] {
            assert!(!accepted(key, rollout(json!(1000), json!(10), json!(2), bad.clone())), "{bad}");
        }
        assert!(!accepted(key, json!({"exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 2}})));
        let c: RolloutConfig =
            parse(rollout(json!(1000), json!(50), json!(2), json!({"numberOfSucceededThings": 5}))).unwrap();
        let e = c.exponential_rate.unwrap();
        assert_eq!(e.rate_increase_criteria, RateIncreaseCriteria::NumberOfSucceededThings(5));
        assert_eq!(e.increment_factor.get(), 2.0);
    }

    fn abort(failure: &str, action: &str, threshold: Value, min: Value) -> Value {
        json!({"criteriaList": [{"failureType": failure, "action": action,
            "thresholdPercentage": threshold, "minNumberOfExecutedThings": min}]})
    }

    #[test]
    fn abort_limits_and_enums() {
        let key = "abortConfig";
        for failure in ["FAILED", "REJECTED", "TIMED_OUT", "ALL"] {
            assert!(accepted(key, abort(failure, "CANCEL", json!(20), json!(1))), "{failure}");
        }
        assert!(!accepted(key, abort("CANCELED", "CANCEL", json!(20), json!(1))));
        assert!(!accepted(key, abort("FAILED", "STOP", json!(20), json!(1))));
        assert!(accepted(key, abort("FAILED", "CANCEL", json!(0), json!(1))));
        assert!(accepted(key, abort("FAILED", "CANCEL", json!(100), json!(1))));
        assert!(accepted(key, abort("FAILED", "CANCEL", json!(12.34), json!(1))));
        assert!(!accepted(key, abort("FAILED", "CANCEL", json!(12.345), json!(1))), "two decimals");
        assert!(!accepted(key, abort("FAILED", "CANCEL", json!(100.01), json!(1))));
        assert!(!accepted(key, abort("FAILED", "CANCEL", json!(-1), json!(1))));
        assert!(!accepted(key, abort("FAILED", "CANCEL", json!(20), json!(0))));
        assert!(!accepted(key, json!({"criteriaList": []})));
        assert!(!accepted(key, json!({})), "criteriaList is required");
        assert!(!accepted(key, json!({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL"}]})));
        let c: AbortConfig = parse(abort("TIMED_OUT", "CANCEL", json!(50), json!(200))).unwrap();
        assert_eq!(c.criteria_list[0].failure_type, AbortFailureType::TimedOut);
        assert_eq!(c.criteria_list[0].action, AbortAction::Cancel);
    }

    #[test]
    fn enums_use_aws_spellings_and_name_the_member_when_refused() {
        let err = parse::<AbortConfig>(abort("CRASHED", "CANCEL", json!(1), json!(1))).unwrap_err();
        assert_eq!(err.to_string(), "failureType must be one of FAILED, REJECTED, TIMED_OUT, ALL");
        let err = parse::<SchedulingConfig>(json!({"endBehavior": "cancel"})).unwrap_err();
        assert_eq!(err.to_string(), "endBehavior must be one of STOP_ROLLOUT, CANCEL, FORCE_CANCEL");
        fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, expected: &[&str])
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
        {
            let spelled: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
            assert_eq!(spelled, expected);
            for v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), json!(as_str(*v)));
                assert_eq!(parse::<T>(json!(as_str(*v))).unwrap(), *v);
            }
        }
        round_trips(AbortFailureType::ALL, AbortFailureType::as_str, &["FAILED", "REJECTED", "TIMED_OUT", "ALL"]);
        round_trips(AbortAction::ALL, AbortAction::as_str, &["CANCEL"]);
        round_trips(RetryFailureType::ALL, RetryFailureType::as_str, &["FAILED", "TIMED_OUT", "ALL"]);
        round_trips(JobEndBehavior::ALL, JobEndBehavior::as_str, &["STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL"]);
    }

    #[test]
    fn timeout_limits() {
        let key = "timeoutConfig";
        assert!(accepted(key, json!({})));
        assert!(accepted(key, json!({"inProgressTimeoutInMinutes": 1})));
        assert!(accepted(key, json!({"inProgressTimeoutInMinutes": 10_080})));
        assert!(!accepted(key, json!({"inProgressTimeoutInMinutes": 0})));
        assert!(!accepted(key, json!({"inProgressTimeoutInMinutes": 10_081})));
        assert!(!accepted(key, json!({"inProgressTimeoutInMinutes": "30"})));
    }

    fn retry(criteria: &[(&str, i64)]) -> Value {
        let list: Vec<Value> = criteria.iter().map(|(t, n)| json!({"failureType": t, "numberOfRetries": n})).collect();
        json!({ "criteriaList": list })
    }

    #[test]
    fn retry_limits_and_enums() {
        let key = "jobExecutionsRetryConfig";
        for failure in ["FAILED", "TIMED_OUT", "ALL"] {
            assert!(accepted(key, retry(&[(failure, 3)])), "{failure}");
        }
        assert!(!accepted(key, retry(&[("REJECTED", 3)])), "REJECTED is never retried");
        assert!(accepted(key, retry(&[("FAILED", 0)])));
        assert!(accepted(key, retry(&[("FAILED", 10)])));
        assert!(!accepted(key, retry(&[("FAILED", 11)])));
        assert!(!accepted(key, retry(&[("FAILED", -1)])));
        assert!(accepted(key, retry(&[("FAILED", 4), ("TIMED_OUT", 6)])));
        assert!(!accepted(key, retry(&[("FAILED", 5), ("TIMED_OUT", 6)])), "10 in total");
        assert!(!accepted(key, retry(&[])));
        assert!(!accepted(key, retry(&[("FAILED", 1), ("TIMED_OUT", 1), ("ALL", 1)])));
        let update = |v: Value| parse::<JobConfigs>(json!({ key: v })).unwrap().check_update(now());
        assert!(update(retry(&[("FAILED", 0), ("TIMED_OUT", 0)])).is_ok());
        assert!(update(retry(&[("FAILED", 1)])).is_err(), "UpdateJob only lowers retries to 0");
    }

    #[test]
    fn presigned_url_limits() {
        let key = "presignedUrlConfig";
        let role = |n: usize| "r".repeat(n);
        assert!(accepted(key, json!({})));
        assert!(accepted(key, json!({"roleArn": role(20), "expiresInSec": 60})));
        assert!(accepted(key, json!({"roleArn": role(2048), "expiresInSec": 3600})));
        assert!(!accepted(key, json!({"roleArn": role(19)})));
        assert!(!accepted(key, json!({"roleArn": role(2049)})));
        assert!(!accepted(key, json!({"expiresInSec": 59})));
        assert!(!accepted(key, json!({"expiresInSec": 3601})));
    }

    #[test]
    fn scheduling_window() {
        let key = "schedulingConfig";
        let at = |start: Option<&str>, end: Option<&str>| {
            let mut v = json!({});
            if let Some(s) = start {
                v["startTime"] = json!(s);
            }
            if let Some(e) = end {
                v["endTime"] = json!(e);
            }
            accepted(key, v)
        };
        assert!(at(Some("2026-01-01T00:30"), None));
        assert!(!at(Some("2026-01-01T00:29"), None), "less than 30 minutes ahead");
        assert!(at(Some("2027-01-01T00:00"), None), "exactly a year ahead");
        assert!(!at(Some("2027-01-01T00:01"), None), "more than a year ahead");
        assert!(!at(Some("2026-01-02T00:00"), Some("2026-01-02T00:20")), "window < 30 min");
        assert!(at(Some("2026-01-02T00:00"), Some("2026-01-02T00:30")));
        assert!(at(Some("2026-01-02T00:00"), Some("2026-02-01T00:00")));
        assert!(at(None, Some("2027-12-31T00:00")));
        assert!(!at(None, Some("2028-06-01T00:00")), "end more than 2 years ahead");
        assert!(!at(Some("soon"), None));
        assert!(!at(Some(&format!("2026-06-01T10:00{}", " ".repeat(60))), None), "longer than 64");
        assert!(at(None, None));
    }

    #[test]
    fn scheduling_end_behavior_and_windows() {
        let key = "schedulingConfig";
        let end = "2026-02-01T00:00";
        for behavior in ["STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL"] {
            assert!(accepted(key, json!({"endTime": end, "endBehavior": behavior})), "{behavior}");
        }
        assert!(!accepted(key, json!({"endTime": end, "endBehavior": "PAUSE"})));
        assert!(!accepted(key, json!({"endBehavior": "CANCEL"})), "endBehavior needs endTime");
        let window = |cron: &str, minutes: i64| {
            accepted(key, json!({"maintenanceWindows": [{"startTime": cron, "durationInMinutes": minutes}]}))
        };
        assert!(window("cron(0 2 ? * SAT *)", 240));
        assert!(window("cron(0 2 ? * SAT *)", 1));
        assert!(window("cron(0 2 ? * SAT *)", 1430));
        assert!(!window("cron(0 2 ? * SAT *)", 0));
        assert!(!window("cron(0 2 ? * SAT *)", 1431));
        assert!(!window("cron(0 2 * * SAT *)", 60), "both day fields");
        assert!(!window("cron(0 2 ? * SAT)", 60), "five fields");
        assert!(!window("cron(0 25 ? * SAT *)", 60));
        assert!(!window("every day", 60));
        assert!(!window(&format!("cron(0 2 ? * SAT *{})", " ".repeat(250)), 60), "longer than 256");
        assert!(!accepted(key, json!({"maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)"}]})));
        let c: SchedulingConfig = parse(json!({"endTime": end, "endBehavior": "FORCE_CANCEL"})).unwrap();
        assert_eq!(c.end_behavior, Some(JobEndBehavior::ForceCancel));
    }

    #[test]
    fn update_replaces_only_what_it_sets_and_never_scheduling() {
        let mut stored: JobConfigs = parse(json!({
            "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
            "schedulingConfig": {"startTime": "2026-01-02T00:00"}
        }))
        .unwrap();
        let update: JobConfigs = parse(json!({
            "abortConfig": abort("ALL", "CANCEL", json!(10), json!(5)),
            "schedulingConfig": {"startTime": "2026-03-02T00:00"}
        }))
        .unwrap();
        stored.update(update);
        assert_eq!(stored.timeout_config.as_ref().and_then(|t| t.in_progress_timeout_in_minutes), Some(30));
        assert!(stored.abort_config.is_some());
        assert_eq!(stored.scheduling_config.and_then(|s| s.start_time).as_deref(), Some("2026-01-02T00:00"));
    }

    /// Every config member, as a caller could send it (doubles written both as `2` and `2.0`).
    fn all_configs() -> Value {
        json!({
            "presignedUrlConfig": {"roleArn": "arn:aws:iam::123456789012:role/S3Download", "expiresInSec": 3600},
            "jobExecutionsRolloutConfig": rollout(json!(1000), json!(50), json!(2), json!({"numberOfNotifiedThings": 1000})),
            "abortConfig": {"criteriaList": [
                {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 20.5, "minNumberOfExecutedThings": 100},
                {"failureType": "TIMED_OUT", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 200}]},
            "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
            "jobExecutionsRetryConfig": retry(&[("FAILED", 3), ("TIMED_OUT", 2)]),
            "schedulingConfig": {"startTime": "2026-06-01T10:00", "endTime": "2026-06-08T10:00", "endBehavior": "STOP_ROLLOUT",
                "maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]},
        })
    }

    #[test]
    fn configs_echo_as_sent() {
        let sent = all_configs();
        let configs: JobConfigs = parse(sent.clone()).unwrap();
        configs.check(now()).unwrap();
        assert_eq!(serde_json::to_value(&configs).unwrap(), sent);
        let factor = serde_json::to_string(&configs.job_executions_rollout_config).unwrap();
        assert!(factor.contains(r#""incrementFactor":2,"#), "an integer double stays an integer: {factor}");
        let sparse = json!({"timeoutConfig": {}, "jobExecutionsRolloutConfig": {"maximumPerMinute": 5}});
        assert_eq!(serde_json::to_value(parse::<JobConfigs>(sparse.clone()).unwrap()).unwrap(), sparse);
        assert_eq!(serde_json::to_value(JobConfigs::default()).unwrap(), json!({}), "absent stays absent");
    }

    /// A record as the untyped (`serde_json::Value`) configs wrote it loads, and writes back the
    /// same JSON.
    #[test]
    fn records_written_before_typed_configs_load() {
        let old = format!(
            r#"{{"jobId":"j1","jobArn":"arn:aws:iot:us-east-1:123456789012:job/j1","targets":["arn:aws:iot:us-east-1:123456789012:thing/pi"],
            "document":"{{}}","targetSelection":"SNAPSHOT","status":"SCHEDULED","forceCanceled":false,
            "createdAt":1700000000000,"lastUpdatedAt":1700000000000,"configs":{}}}"#,
            all_configs()
        );
        let job: Job = serde_json::from_str(&old).unwrap();
        assert_eq!(job.configs.timeout_config.as_ref().and_then(|t| t.in_progress_timeout_in_minutes), Some(30));
        assert!(job.configs.is_scheduled());
        let old: Value = serde_json::from_str(&old).unwrap();
        assert_eq!(serde_json::to_value(&job).unwrap(), old);
        let bare: Job = serde_json::from_value(json!({"jobId":"j2","jobArn":"a","targets":[],"document":"{}",
            "targetSelection":"SNAPSHOT","status":"IN_PROGRESS","createdAt":1,"lastUpdatedAt":1}))
        .unwrap();
        assert_eq!(bare.configs, JobConfigs::default());
    }
}
