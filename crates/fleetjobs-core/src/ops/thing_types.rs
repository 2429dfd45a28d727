//! Thing types: CreateThingType, DescribeThingType, ListThingTypes, UpdateThingType,
//! DeprecateThingType, DeleteThingType.

use serde::{Deserialize, Serialize};

use super::tags::check_tag;
use super::{check_max_results, Timestamp};
use crate::model::{Mqtt5Configuration, Tag, ThingType};
use crate::{validate, ApiError, ApiResult, Millis};

/// A thing type has at most this many searchable attributes.
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;

/// `ThingTypeProperties`, in a request and in an answer (members only when set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searchable_attributes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt5_configuration: Option<Mqtt5Configuration>,
}

impl ThingTypeProperties {
    fn check(&self) -> ApiResult<()> {
        if let Some(d) = &self.thing_type_description {
            validate::thing_type_description(d)?;
        }
        if let Some(names) = &self.searchable_attributes {
            if names.len() > MAX_SEARCHABLE_ATTRIBUTES {
                return Err(ApiError::invalid(format!(
                    "A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes"
                )));
            }
            let member = "thingTypeProperties.searchableAttributes";
            names.iter().try_for_each(|n| validate::attribute_name(n, member))?;
        }
        let member = "thingTypeProperties.mqtt5Configuration.propagatingAttributes";
        for a in self.mqtt5_configuration.iter().flat_map(|c| &c.propagating_attributes) {
            if let Some(k) = &a.user_property_key {
                validate::user_property_key(k, &format!("{member}.userPropertyKey"))?;
            }
            if let Some(t) = &a.thing_attribute {
                validate::attribute_name(t, &format!("{member}.thingAttribute"))?;
            }
            if let Some(c) = &a.connection_attribute {
                validate::connection_attribute(c, &format!("{member}.connectionAttribute"))?;
            }
        }
        Ok(())
    }
}

impl From<&ThingType> for ThingTypeProperties {
    fn from(t: &ThingType) -> Self {
        ThingTypeProperties {
            thing_type_description: t.description.clone(),
            searchable_attributes: (!t.searchable_attributes.is_empty()).then(|| t.searchable_attributes.clone()),
            mqtt5_configuration: t.mqtt5_configuration.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeMetadata {
    pub deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<Timestamp>,
    pub creation_date: Timestamp,
}

impl From<&ThingType> for ThingTypeMetadata {
    fn from(t: &ThingType) -> Self {
        ThingTypeMetadata {
            deprecated: t.deprecated,
            deprecation_date: t.deprecation_date.map(Timestamp),
            creation_date: Timestamp(t.created_at),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingTypeRequest {
    pub thing_type_name: String,
    pub thing_type_properties: Option<ThingTypeProperties>,
    pub tags: Option<Vec<Tag>>,
}

impl CreateThingTypeRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_type_name(&self.thing_type_name, "thingTypeName")?;
        self.thing_type_properties.as_ref().map_or(Ok(()), ThingTypeProperties::check)?;
        self.tags.iter().flatten().try_for_each(check_tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingTypeResponse {
    pub thing_type_name: String,
    pub thing_type_arn: String,
    pub thing_type_id: String,
}

/// DescribeThingType and DeleteThingType: the type by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeNameRequest {
    pub thing_type_name: String,
}

impl ThingTypeNameRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_type_name(&self.thing_type_name, "thingTypeName")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingTypeResponse {
    pub thing_type_name: String,
    pub thing_type_id: String,
    pub thing_type_arn: String,
    pub thing_type_properties: ThingTypeProperties,
    pub thing_type_metadata: ThingTypeMetadata,
}

impl From<&ThingType> for DescribeThingTypeResponse {
    fn from(t: &ThingType) -> Self {
        DescribeThingTypeResponse {
            thing_type_name: t.thing_type_name.clone(),
            thing_type_id: t.thing_type_id.clone(),
            thing_type_arn: t.thing_type_arn.clone(),
            thing_type_properties: t.into(),
            thing_type_metadata: t.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingTypesRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub thing_type_name: Option<String>,
}

impl ListThingTypesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)?;
        self.thing_type_name.as_ref().map_or(Ok(()), |n| validate::thing_type_name(n, "thingTypeName"))
    }
}

/// `ThingTypeDefinition`: one type of ListThingTypes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeDefinition {
    pub thing_type_name: String,
    pub thing_type_arn: String,
    pub thing_type_properties: ThingTypeProperties,
    pub thing_type_metadata: ThingTypeMetadata,
}

impl From<&ThingType> for ThingTypeDefinition {
    fn from(t: &ThingType) -> Self {
        ThingTypeDefinition {
            thing_type_name: t.thing_type_name.clone(),
            thing_type_arn: t.thing_type_arn.clone(),
            thing_type_properties: t.into(),
            thing_type_metadata: t.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingTypesResponse {
    pub thing_types: Vec<ThingTypeDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingTypeRequest {
    pub thing_type_name: String,
    pub thing_type_properties: Option<ThingTypeProperties>,
}

impl UpdateThingTypeRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_type_name(&self.thing_type_name, "thingTypeName")?;
        self.thing_type_properties.as_ref().map_or(Ok(()), ThingTypeProperties::check)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeprecateThingTypeRequest {
    pub thing_type_name: String,
    #[serde(default)]
    pub undo_deprecate: bool,
}

impl DeprecateThingTypeRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_type_name(&self.thing_type_name, "thingTypeName")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PropagatingAttribute;

    fn create(properties: ThingTypeProperties) -> CreateThingTypeRequest {
        CreateThingTypeRequest { thing_type_name: "sensor".into(), thing_type_properties: Some(properties), tags: None }
    }

    #[test]
    fn names_and_descriptions_follow_the_model() {
        assert!(create(ThingTypeProperties::default()).check(0).is_ok());
        let bad_name = CreateThingTypeRequest { thing_type_name: "no spaces".into(), ..Default::default() };
        assert!(bad_name.check(0).is_err());
        let p = ThingTypeProperties { thing_type_description: Some("a\nb".into()), ..Default::default() };
        assert!(create(p).check(0).is_err());
        let p = ThingTypeProperties { thing_type_description: Some("Light bulbs, 230 V".into()), ..Default::default() };
        assert!(create(p).check(0).is_ok());
    }

    #[test]
    fn at_most_three_searchable_attributes_of_valid_names() {
        let names = |n: usize| Some((0..n).map(|i| format!("a{i}")).collect());
        let p = ThingTypeProperties { searchable_attributes: names(3), ..Default::default() };
        assert!(create(p).check(0).is_ok());
        let p = ThingTypeProperties { searchable_attributes: names(4), ..Default::default() };
        assert!(create(p).check(0).is_err());
        let p = ThingTypeProperties { searchable_attributes: Some(vec!["bad name".into()]), ..Default::default() };
        assert!(create(p).check(0).is_err());
    }

    #[test]
    fn propagating_attributes_follow_their_patterns() {
        let attr = |key: &str| PropagatingAttribute {
            user_property_key: Some(key.into()),
            thing_attribute: Some("serial".into()),
            connection_attribute: None,
        };
        let with = |a| ThingTypeProperties {
            mqtt5_configuration: Some(Mqtt5Configuration { propagating_attributes: vec![a] }),
            ..Default::default()
        };
        assert!(create(with(attr("iot:serial"))).check(0).is_ok());
        assert!(create(with(attr("no spaces"))).check(0).is_err());
    }
}
