//! Job execution statuses: the AWS IoT Jobs `JobExecutionStatus` values the agent journals,
//! sends and reads, with their wire spelling (`IN_PROGRESS`, ...) in one place.

use serde::{Deserialize, Serialize};

/// An AWS IoT Jobs execution status. Serialized as AWS spells it, so that journals written
/// before this type existed (plain strings) load unchanged and the MQTT payloads stay the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    Rejected,
    Removed,
    Canceled,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::Queued,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Rejected,
        Self::Removed,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Rejected => "REJECTED",
            Self::Removed => "REMOVED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Whether a device may no longer touch the execution (anything but QUEUED / IN_PROGRESS).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`ExecutionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job execution status {0:?}")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for ExecutionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A status as the server reports it. A payload may carry a status this agent does not know
/// (or none: `Unknown("")`); it is kept as sent, so that it can be logged, and counts as
/// terminal, since the agent cannot tell that the execution is still its to update.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ReportedStatus {
    Known(ExecutionStatus),
    Unknown(String),
}

impl ReportedStatus {
    pub fn known(&self) -> Option<ExecutionStatus> {
        match self {
            Self::Known(status) => Some(*status),
            Self::Unknown(_) => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.known().is_none_or(ExecutionStatus::is_terminal)
    }
}

impl Default for ReportedStatus {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

impl From<String> for ReportedStatus {
    fn from(s: String) -> Self {
        match s.parse() {
            Ok(status) => Self::Known(status),
            Err(UnknownStatus(s)) => Self::Unknown(s),
        }
    }
}

impl From<ExecutionStatus> for ReportedStatus {
    fn from(status: ExecutionStatus) -> Self {
        Self::Known(status)
    }
}

impl std::fmt::Display for ReportedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(status) => status.fmt(f),
            Self::Unknown(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_spelling_is_aws_and_parses_back() {
        for status in ExecutionStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::Value::String(status.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<ExecutionStatus>(json).unwrap(), status);
            assert_eq!(status.as_str().parse::<ExecutionStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(serde_json::to_string(&ExecutionStatus::InProgress).unwrap(), r#""IN_PROGRESS""#);
        assert_eq!(serde_json::to_string(&ExecutionStatus::TimedOut).unwrap(), r#""TIMED_OUT""#);
        assert!(serde_json::from_str::<ExecutionStatus>(r#""in_progress""#).is_err());
        assert_eq!("PAUSED".parse::<ExecutionStatus>(), Err(UnknownStatus("PAUSED".into())));
    }

    #[test]
    fn only_queued_and_in_progress_are_pending() {
        let pending: Vec<_> = ExecutionStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(pending, vec![ExecutionStatus::Queued, ExecutionStatus::InProgress]);
    }

    #[test]
    fn a_reported_status_the_agent_does_not_know_is_kept_and_terminal() {
        let known: ReportedStatus = serde_json::from_str(r#""QUEUED""#).unwrap();
        assert_eq!(known, ReportedStatus::Known(ExecutionStatus::Queued));
        assert!(!known.is_terminal());
        let unknown: ReportedStatus = serde_json::from_str(r#""PAUSED""#).unwrap();
        assert_eq!(unknown, ReportedStatus::Unknown("PAUSED".into()));
        assert_eq!(unknown.known(), None);
        assert!(unknown.is_terminal());
        assert_eq!(unknown.to_string(), "PAUSED");
        assert!(ReportedStatus::default().is_terminal());
        assert!(serde_json::from_str::<ReportedStatus>("3").is_err(), "not a string: a malformed payload");
    }
}
