//! Static thing groups and their members: CreateThingGroup, DescribeThingGroup,
//! ListThingGroups, UpdateThingGroup, DeleteThingGroup, AddThingToThingGroup,
//! RemoveThingFromThingGroup, ListThingsInThingGroup, ListThingGroupsForThing,
//! UpdateThingGroupsForThing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tags::check_tag;
use super::things::AttributePayload;
use super::{check_max_results, Timestamp};
use crate::model::{Tag, ThingGroup};
use crate::{validate, ApiError, ApiResult, Millis};

/// A group hierarchy has at most this many levels (a root group is level 1).
pub const MAX_DEPTH: usize = 7;
/// A thing belongs to at most this many groups.
pub const MAX_GROUPS_PER_THING: usize = 10;
/// A thing group has at most this many attributes.
pub const MAX_GROUP_ATTRIBUTES: usize = 50;

/// `ThingGroupProperties` as a request carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupProperties {
    pub thing_group_description: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
}

impl ThingGroupProperties {
    pub fn check(&self) -> ApiResult<()> {
        if let Some(d) = &self.thing_group_description {
            validate::thing_group_description(d)?;
        }
        if let Some(p) = &self.attribute_payload {
            for (name, value) in &p.attributes {
                // With merge, an empty value removes the attribute.
                if !(p.merge && value.is_empty()) {
                    validate::attribute(name, value)?;
                }
            }
            if p.attributes.len() > MAX_GROUP_ATTRIBUTES {
                return Err(too_many_group_attributes());
            }
        }
        Ok(())
    }
}

pub fn too_many_group_attributes() -> ApiError {
    ApiError::invalid(format!("A thing group can have at most {MAX_GROUP_ATTRIBUTES} attributes"))
}

/// `ThingGroupProperties` as an answer shows it: members only when set (`{}` otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupPropertiesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_group_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_payload: Option<AttributesOut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributesOut {
    pub attributes: BTreeMap<String, String>,
}

impl From<&ThingGroup> for ThingGroupPropertiesOut {
    fn from(g: &ThingGroup) -> Self {
        ThingGroupPropertiesOut {
            thing_group_description: g.description.clone(),
            attribute_payload: (!g.attributes.is_empty()).then(|| AttributesOut { attributes: g.attributes.clone() }),
        }
    }
}

/// `GroupNameAndArn`: one group of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupNameAndArn {
    pub group_name: String,
    pub group_arn: String,
}

impl From<&ThingGroup> for GroupNameAndArn {
    fn from(g: &ThingGroup) -> Self {
        GroupNameAndArn { group_name: g.thing_group_name.clone(), group_arn: g.thing_group_arn.clone() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroupRequest {
    pub thing_group_name: String,
    pub parent_group_name: Option<String>,
    pub thing_group_properties: Option<ThingGroupProperties>,
    pub tags: Option<Vec<Tag>>,
}

impl CreateThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")?;
        if let Some(p) = &self.parent_group_name {
            validate::thing_group_name(p, "parentGroupName")?;
            if *p == self.thing_group_name {
                return Err(ApiError::invalid(format!("Thing group {p} cannot be its own parent")));
            }
        }
        if let Some(p) = &self.thing_group_properties {
            p.check()?;
            if p.attribute_payload.as_ref().is_some_and(|a| a.merge && a.attributes.values().any(String::is_empty)) {
                return Err(ApiError::invalid("A new thing group cannot remove attributes"));
            }
        }
        self.tags.iter().flatten().try_for_each(check_tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroupResponse {
    pub thing_group_name: String,
    pub thing_group_arn: String,
    pub thing_group_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingGroupRequest {
    pub thing_group_name: String,
}

impl DescribeThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_group_name: Option<String>,
    /// The ancestors, root first, ending with the parent.
    pub root_to_parent_thing_groups: Vec<GroupNameAndArn>,
    pub creation_date: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingGroupResponse {
    pub thing_group_name: String,
    pub thing_group_id: String,
    pub thing_group_arn: String,
    pub version: i64,
    pub thing_group_properties: ThingGroupPropertiesOut,
    pub thing_group_metadata: ThingGroupMetadata,
    /// Dynamic groups only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_version: Option<String>,
    /// `ACTIVE` for a dynamic group: its membership is evaluated as things change, never
    /// built in the background.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub parent_group: Option<String>,
    pub name_prefix_filter: Option<String>,
    /// With `parentGroup`: all descendants (true) or the direct children. Without it: all
    /// groups, unless explicitly false (the root groups only).
    pub recursive: Option<bool>,
}

impl ListThingGroupsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)?;
        if let Some(p) = &self.parent_group {
            validate::thing_group_name(p, "parentGroup")?;
        }
        if let Some(p) = &self.name_prefix_filter {
            validate::thing_group_name(p, "namePrefixFilter")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsResponse {
    pub thing_groups: Vec<GroupNameAndArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroupRequest {
    pub thing_group_name: String,
    pub thing_group_properties: ThingGroupProperties,
    pub expected_version: Option<i64>,
}

impl UpdateThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")?;
        self.thing_group_properties.check()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroupResponse {
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingGroupRequest {
    pub thing_group_name: String,
    pub expected_version: Option<i64>,
}

impl DeleteThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")
    }
}

/// AddThingToThingGroup and RemoveThingFromThingGroup: the group and the thing, each by
/// name or by ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupMemberRequest {
    pub thing_group_name: Option<String>,
    pub thing_group_arn: Option<String>,
    pub thing_name: Option<String>,
    pub thing_arn: Option<String>,
    /// AWS's way to add a thing to a static group beyond the per-thing limit by dropping it
    /// from dynamic groups; dynamic membership follows the query here, so it has no effect.
    #[serde(default)]
    pub override_dynamic_groups: bool,
}

impl ThingGroupMemberRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        match (&self.thing_group_name, &self.thing_group_arn) {
            (Some(name), _) => validate::thing_group_name(name, "thingGroupName")?,
            (None, Some(_)) => {}
            (None, None) => return Err(ApiError::invalid("Either thingGroupName or thingGroupArn is required")),
        }
        match (&self.thing_name, &self.thing_arn) {
            (Some(name), _) => validate::thing_name(name, "thingName"),
            (None, Some(_)) => Ok(()),
            (None, None) => Err(ApiError::invalid("Either thingName or thingArn is required")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsInThingGroupRequest {
    pub thing_group_name: String,
    #[serde(default)]
    pub recursive: bool,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

impl ListThingsInThingGroupRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_group_name(&self.thing_group_name, "thingGroupName")?;
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsInThingGroupResponse {
    pub things: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsForThingRequest {
    pub thing_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

impl ListThingGroupsForThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsForThingResponse {
    pub thing_groups: Vec<GroupNameAndArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroupsForThingRequest {
    /// Optional in the model, but there is nothing to update without it.
    pub thing_name: Option<String>,
    #[serde(default)]
    pub thing_groups_to_add: Vec<String>,
    #[serde(default)]
    pub thing_groups_to_remove: Vec<String>,
    #[serde(default)]
    pub override_dynamic_groups: bool,
}

impl UpdateThingGroupsForThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        let Some(thing) = &self.thing_name else {
            return Err(ApiError::invalid("Missing required parameter: thingName"));
        };
        validate::thing_name(thing, "thingName")?;
        for (list, member) in
            [(&self.thing_groups_to_add, "thingGroupsToAdd"), (&self.thing_groups_to_remove, "thingGroupsToRemove")]
        {
            if list.len() > MAX_GROUPS_PER_THING {
                return Err(ApiError::invalid(format!("{member} can have at most {MAX_GROUPS_PER_THING} groups")));
            }
            list.iter().try_for_each(|g| validate::thing_group_name(g, member))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, parent: Option<&str>) -> CreateThingGroupRequest {
        CreateThingGroupRequest {
            thing_group_name: name.into(),
            parent_group_name: parent.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_the_model_pattern_and_a_group_is_not_its_own_parent() {
        assert!(create("fleet:eu_1-a", None).check(0).is_ok());
        assert!(create("no spaces", None).check(0).is_err());
        assert!(create(&"g".repeat(129), None).check(0).is_err());
        assert!(create("g", Some("g")).check(0).is_err());
        assert!(create("g", Some("bad/parent")).check(0).is_err());
    }

    #[test]
    fn descriptions_are_printable_and_attributes_bounded() {
        let mut r = create("g", None);
        r.thing_group_properties =
            Some(ThingGroupProperties { thing_group_description: Some("a b".into()), attribute_payload: None });
        assert!(r.check(0).is_ok());
        r.thing_group_properties =
            Some(ThingGroupProperties { thing_group_description: Some("a\nb".into()), attribute_payload: None });
        assert!(r.check(0).is_err());
        let many = (0..=MAX_GROUP_ATTRIBUTES).map(|i| (format!("k{i}"), "v".to_string())).collect();
        r.thing_group_properties = Some(ThingGroupProperties {
            thing_group_description: None,
            attribute_payload: Some(AttributePayload { attributes: many, merge: false }),
        });
        assert!(r.check(0).is_err());
    }

    #[test]
    fn membership_needs_a_group_and_a_thing() {
        let mut r = ThingGroupMemberRequest { thing_arn: Some("arn:aws:iot:::thing/t".into()), ..Default::default() };
        assert!(r.check(0).is_err());
        r.thing_group_name = Some("g".into());
        assert!(r.check(0).is_ok());
        r.thing_arn = None;
        assert!(r.check(0).is_err());
        let u = UpdateThingGroupsForThingRequest::default();
        assert!(u.check(0).is_err());
    }
}
