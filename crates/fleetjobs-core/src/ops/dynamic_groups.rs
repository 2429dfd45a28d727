//! Dynamic thing groups: CreateDynamicThingGroup, UpdateDynamicThingGroup, DeleteDynamicThingGroup.

use serde::{Deserialize, Serialize};

use super::tags::check_tag;
use super::thing_groups::ThingGroupProperties;
use crate::error::ErrorCode;
use crate::fleet_query::{self, Query};
use crate::model::Tag;
use crate::{validate, ApiError, ApiResult, Millis};

/// The one index AWS supports.
pub const INDEX_NAME: &str = "AWS_Things";
/// The one query version AWS supports.
pub const QUERY_VERSION: &str = "2017-09-30";

/// Parse a dynamic group's query, answering `InvalidQueryException` as AWS does.
pub fn parse_query(q: &str) -> ApiResult<Query> {
    fleet_query::parse(q).map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.0))
}

fn check_index_and_version(index: Option<&str>, version: Option<&str>) -> ApiResult<()> {
    if let Some(i) = index {
        if i != INDEX_NAME {
            return Err(ApiError::invalid(format!("Index {i} is not supported: the only index is {INDEX_NAME}")));
        }
    }
    if let Some(v) = version {
        if v != QUERY_VERSION {
            return Err(ApiError::invalid(format!(
                "Query version {v} is not supported: the only version is {QUERY_VERSION}"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDynamicThingGroupRequest {
    pub thing_group_name: String,
    pub thing_group_properties: Option<ThingGroupProperties>,
    pub index_name: Option<String>,
    pub query_string: String,
    pub query_version: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

impl CreateDynamicThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")?;
        if let Some(p) = &self.thing_group_properties {
            p.check()?;
        }
        check_index_and_version(self.index_name.as_deref(), self.query_version.as_deref())?;
        parse_query(&self.query_string)?;
        self.tags.iter().flatten().try_for_each(check_tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDynamicThingGroupResponse {
    pub thing_group_name: String,
    pub thing_group_arn: String,
    pub thing_group_id: String,
    pub index_name: String,
    pub query_string: String,
    pub query_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDynamicThingGroupRequest {
    pub thing_group_name: String,
    pub thing_group_properties: ThingGroupProperties,
    pub expected_version: Option<i64>,
    pub index_name: Option<String>,
    pub query_string: Option<String>,
    pub query_version: Option<String>,
}

impl UpdateDynamicThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")?;
        self.thing_group_properties.check()?;
        check_index_and_version(self.index_name.as_deref(), self.query_version.as_deref())?;
        if let Some(q) = &self.query_string {
            parse_query(q)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDynamicThingGroupResponse {
    pub version: i64,
}

/// Same members as DeleteThingGroup's.
pub type DeleteDynamicThingGroupRequest = super::thing_groups::DeleteThingGroupRequest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_index_and_version_are_checked() {
        let mut r = CreateDynamicThingGroupRequest {
            thing_group_name: "g".into(),
            query_string: "attributes.fw:2*".into(),
            ..Default::default()
        };
        assert!(r.check(0).is_ok());
        r.query_string = "attributes.fw:(".into();
        assert_eq!(r.check(0).map_err(|e| e.code), Err(ErrorCode::InvalidQuery));
        r.query_string = "thingName:a".into();
        r.index_name = Some("AWS_ThingGroups".into());
        assert_eq!(r.check(0).map_err(|e| e.code), Err(ErrorCode::InvalidRequest));
        r.index_name = Some(INDEX_NAME.into());
        r.query_version = Some("2020-01-01".into());
        assert!(r.check(0).is_err());
        r.query_version = Some(QUERY_VERSION.into());
        assert!(r.check(0).is_ok());
        let u = UpdateDynamicThingGroupRequest {
            thing_group_name: "g".into(),
            query_string: Some("NOT".into()),
            ..Default::default()
        };
        assert_eq!(u.check(0).map_err(|e| e.code), Err(ErrorCode::InvalidQuery));
    }
}
