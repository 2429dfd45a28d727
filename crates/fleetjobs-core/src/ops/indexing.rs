//! Fleet indexing: GetIndexingConfiguration, UpdateIndexingConfiguration, SearchIndex,
//! DescribeIndex, ListIndices, over the registry (the index a dynamic group's query runs on).

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::dynamic_groups::parse_query;
pub use super::dynamic_groups::{INDEX_NAME as THINGS_INDEX, QUERY_VERSION};
use crate::model::{IndexingConfiguration, ThingGroupIndexingMode, ThingIndexingMode};
use crate::{ApiError, ApiResult, Millis};

/// SearchIndex's page: AWS documents that `maxResults` cannot exceed 100.
pub const MAX_SEARCH_RESULTS: i64 = 100;

/// A mode this server does not index, refused instead of accepted and ignored.
fn unsupported(member: &str, value: &str) -> ApiError {
    ApiError::invalid(format!("{member} {value} is not supported: only the registry is indexed here"))
}

/// `ThingIndexingConfiguration`. The modes beyond the registry (shadows, connectivity,
/// Device Defender) and custom fields or filters are refused: nothing here would act on them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingIndexingConfiguration {
    pub thing_indexing_mode: ThingIndexingMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_connectivity_indexing_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_defender_indexing_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_shadow_indexing_mode: Option<String>,
    /// AWS's own fields: accepted in a request and not kept (AWS decides them).
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub custom_fields: Option<Vec<IgnoredAny>>,
    #[serde(default, skip_serializing)]
    pub filter: Option<IgnoredAny>,
}

/// `ThingGroupIndexingConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupIndexingConfiguration {
    pub thing_group_indexing_mode: ThingGroupIndexingMode,
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub custom_fields: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIndexingConfigurationRequest {
    pub thing_indexing_configuration: Option<ThingIndexingConfiguration>,
    pub thing_group_indexing_configuration: Option<ThingGroupIndexingConfiguration>,
}

impl UpdateIndexingConfigurationRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        if let Some(t) = &self.thing_indexing_configuration {
            if t.thing_indexing_mode == ThingIndexingMode::RegistryAndShadow {
                return Err(unsupported("thingIndexingMode", "REGISTRY_AND_SHADOW"));
            }
            for (member, value, off) in [
                ("thingConnectivityIndexingMode", &t.thing_connectivity_indexing_mode, ["OFF", "STATUS"]),
                ("deviceDefenderIndexingMode", &t.device_defender_indexing_mode, ["OFF", "VIOLATIONS"]),
                ("namedShadowIndexingMode", &t.named_shadow_indexing_mode, ["OFF", "ON"]),
            ] {
                match value.as_deref() {
                    None | Some("OFF") => {}
                    Some(v) if off.contains(&v) => return Err(unsupported(member, v)),
                    Some(v) => {
                        return Err(ApiError::invalid(format!("{member} must be one of {}, not {v}", off.join(", "))))
                    }
                }
            }
            if t.custom_fields.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(ApiError::invalid("customFields are not supported: attributes are indexed as they are"));
            }
            if t.filter.is_some() {
                return Err(ApiError::invalid("filter is not supported: no shadows or connectivity are indexed"));
            }
        }
        if let Some(g) = &self.thing_group_indexing_configuration {
            // Thing groups are not indexed here: only AWS_Things exists.
            if g.thing_group_indexing_mode == ThingGroupIndexingMode::On {
                return Err(unsupported("thingGroupIndexingMode", "ON"));
            }
            if g.custom_fields.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(ApiError::invalid("customFields are not supported: attributes are indexed as they are"));
            }
        }
        Ok(())
    }

    /// The configuration after this request: what it names replaces, the rest stays.
    pub fn apply_to(&self, mut c: IndexingConfiguration) -> IndexingConfiguration {
        if let Some(t) = &self.thing_indexing_configuration {
            c.thing_indexing_mode = t.thing_indexing_mode;
        }
        if let Some(g) = &self.thing_group_indexing_configuration {
            c.thing_group_indexing_mode = g.thing_group_indexing_mode;
        }
        c
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GetIndexingConfigurationRequest {}

impl GetIndexingConfigurationRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetIndexingConfigurationResponse {
    pub thing_indexing_configuration: ThingIndexingConfiguration,
    pub thing_group_indexing_configuration: ThingGroupIndexingConfiguration,
}

impl From<IndexingConfiguration> for GetIndexingConfigurationResponse {
    fn from(c: IndexingConfiguration) -> Self {
        let off = || Some("OFF".to_string());
        GetIndexingConfigurationResponse {
            thing_indexing_configuration: ThingIndexingConfiguration {
                thing_indexing_mode: c.thing_indexing_mode,
                thing_connectivity_indexing_mode: off(),
                device_defender_indexing_mode: off(),
                named_shadow_indexing_mode: off(),
                ..Default::default()
            },
            thing_group_indexing_configuration: ThingGroupIndexingConfiguration {
                thing_group_indexing_mode: c.thing_group_indexing_mode,
                ..Default::default()
            },
        }
    }
}

fn check_index_name(name: &str) -> ApiResult<()> {
    match name.chars().count() {
        1..=128 => Ok(()),
        _ => Err(ApiError::invalid("indexName must be 1 to 128 characters")),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchIndexRequest {
    /// `AWS_Things` when absent.
    pub index_name: Option<String>,
    pub query_string: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub query_version: Option<String>,
}

impl SearchIndexRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        self.index_name.as_deref().map_or(Ok(()), check_index_name)?;
        if let Some(v) = self.query_version.as_deref().filter(|v| *v != QUERY_VERSION) {
            return Err(ApiError::invalid(format!("queryVersion must be {QUERY_VERSION}, not {v}")));
        }
        if let Some(n) = self.max_results.filter(|n| !(1..=MAX_SEARCH_RESULTS).contains(n)) {
            return Err(ApiError::invalid(format!("maxResults must be between 1 and {MAX_SEARCH_RESULTS}, not {n}")));
        }
        parse_query(&self.query_string).map(|_| ())
    }

    pub fn index(&self) -> &str {
        self.index_name.as_deref().unwrap_or(THINGS_INDEX)
    }
}

/// `ThingDocument`: one thing SearchIndex found, its registry fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingDocument {
    pub thing_name: String,
    pub thing_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    pub thing_group_names: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchIndexResponse {
    pub things: Vec<ThingDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeIndexRequest {
    pub index_name: String,
}

impl DescribeIndexRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_index_name(&self.index_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeIndexResponse {
    pub index_name: String,
    /// Always ACTIVE: the index is the registry itself, never building.
    pub index_status: String,
    pub schema: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListIndicesRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

impl ListIndicesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        match self.max_results {
            Some(n) if !(1..=500).contains(&n) => Err(ApiError::invalid("maxResults must be between 1 and 500")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListIndicesResponse {
    pub index_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn update(v: serde_json::Value) -> UpdateIndexingConfigurationRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn update_takes_what_acts_and_refuses_the_rest() {
        let r = update(json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY",
            "thingConnectivityIndexingMode": "OFF", "managedFields": [{"name": "thingName", "type": "String"}]}}));
        assert!(r.check(0).is_ok());
        let c = r.apply_to(IndexingConfiguration::default());
        assert_eq!(c.thing_indexing_mode, ThingIndexingMode::Registry);
        assert_eq!(c.thing_group_indexing_mode, ThingGroupIndexingMode::Off, "what is not named stays");
        for refused in [
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY_AND_SHADOW"}}),
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": "STATUS"}}),
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY", "namedShadowIndexingMode": "MAYBE"}}),
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY",
                "customFields": [{"name": "attributes.n", "type": "Number"}]}}),
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY", "filter": {"namedShadowNames": ["a"]}}}),
            json!({"thingGroupIndexingConfiguration": {"thingGroupIndexingMode": "ON"}}),
        ] {
            assert_eq!(update(refused.clone()).check(0).unwrap_err().code, ErrorCode::InvalidRequest, "{refused}");
        }
        assert!(serde_json::from_value::<UpdateIndexingConfigurationRequest>(
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "ALL"}})
        )
        .is_err());
    }

    #[test]
    fn the_configuration_answers_every_mode() {
        let c = IndexingConfiguration { thing_indexing_mode: ThingIndexingMode::Registry, ..Default::default() };
        assert_eq!(
            serde_json::to_value(GetIndexingConfigurationResponse::from(c)).unwrap(),
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY",
                    "thingConnectivityIndexingMode": "OFF", "deviceDefenderIndexingMode": "OFF",
                    "namedShadowIndexingMode": "OFF"},
                   "thingGroupIndexingConfiguration": {"thingGroupIndexingMode": "OFF"}})
        );
    }

    #[test]
    fn search_checks_its_query_version_page_and_query() {
        let ok = SearchIndexRequest { query_string: "thingName:a*".into(), ..Default::default() };
        assert!(ok.check(0).is_ok());
        assert_eq!(ok.index(), THINGS_INDEX);
        let bad_query = SearchIndexRequest { query_string: "shadow.reported.x:1".into(), ..Default::default() };
        assert_eq!(bad_query.check(0).unwrap_err().code, ErrorCode::InvalidQuery);
        let bad_version = SearchIndexRequest { query_version: Some("2020-01-01".into()), ..ok.clone() };
        assert!(bad_version.check(0).is_err());
        let too_many = SearchIndexRequest { max_results: Some(101), ..ok };
        assert!(too_many.check(0).is_err());
        assert!(ListIndicesRequest { max_results: Some(0), ..Default::default() }.check(0).is_err());
    }
}
