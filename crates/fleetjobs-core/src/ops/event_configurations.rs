//! Event configurations: UpdateEventConfigurations, DescribeEventConfigurations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::model::EventConfigurations;
use crate::{ApiError, ApiResult, Millis};

/// `Configuration`: whether one event type is published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    #[serde(rename = "Enabled", skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEventConfigurationsRequest {
    /// By `EventType`; an entry without `Enabled` changes nothing.
    pub event_configurations: Option<BTreeMap<String, Configuration>>,
}

impl UpdateEventConfigurationsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        for event_type in self.event_configurations.iter().flat_map(BTreeMap::keys) {
            if !EventConfigurations::EVENT_TYPES.contains(&event_type.as_str()) {
                return Err(ApiError::invalid(format!("Invalid event type: {event_type}")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DescribeEventConfigurationsRequest {}

impl DescribeEventConfigurationsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeEventConfigurationsResponse {
    pub event_configurations: BTreeMap<String, Configuration>,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_the_aws_enum() {
        let r: UpdateEventConfigurationsRequest = serde_json::from_value(
            serde_json::json!({"eventConfigurations": {"JOB": {"Enabled": false}, "THING": {}}}),
        )
        .unwrap();
        assert!(r.check(0).is_ok());
        let configs = r.event_configurations.unwrap();
        assert_eq!((configs["JOB"].enabled, configs["THING"].enabled), (Some(false), None));
        let bad = UpdateEventConfigurationsRequest {
            event_configurations: Some([("JOBS".to_string(), Configuration { enabled: Some(true) })].into()),
        };
        assert_eq!(bad.check(0).unwrap_err().message, "Invalid event type: JOBS");
        assert_eq!(
            serde_json::to_value(Configuration { enabled: Some(true) }).unwrap(),
            serde_json::json!({"Enabled": true})
        );
    }
}
