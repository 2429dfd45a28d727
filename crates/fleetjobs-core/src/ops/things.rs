//! Things and their principals: CreateThing, DescribeThing, ListThings, UpdateThing,
//! DeleteThing, AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals,
//! ListPrincipalThings, ListThingPrincipalsV2, ListPrincipalThingsV2.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check_max_results;
use crate::{validate, ApiError, ApiResult, Millis};

/// A thing without a thing type has at most this many attributes.
pub const MAX_ATTRIBUTES: usize = 3;
/// A thing with a thing type has at most this many attributes.
pub const MAX_TYPED_ATTRIBUTES: usize = 50;

/// How many attributes a thing may have, with a thing type or without.
pub fn max_attributes(typed: bool) -> usize {
    if typed {
        MAX_TYPED_ATTRIBUTES
    } else {
        MAX_ATTRIBUTES
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributePayload {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// UpdateThing: merge into the existing attributes (an empty value removes the key)
    /// instead of replacing them.
    #[serde(default)]
    pub merge: bool,
}

impl AttributePayload {
    /// The names and values; without `merge`, the count too (`typed`: whether the thing will
    /// have a thing type). A merge's count is known only against the thing's attributes.
    fn check(&self, typed: bool) -> ApiResult<()> {
        for (name, value) in &self.attributes {
            if !(self.merge && value.is_empty()) {
                validate::attribute(name, value)?;
            }
        }
        if !self.merge && self.attributes.len() > max_attributes(typed) {
            return Err(too_many_attributes(typed));
        }
        Ok(())
    }
}

impl AttributePayload {
    /// Apply the payload to a resource's attributes: merging sets each given value and removes
    /// those given empty; replacing keeps only the non-empty ones given (an empty value names
    /// an attribute to drop, as AWS takes it). The caller checks the count afterwards.
    pub fn apply_to(&self, attributes: &mut BTreeMap<String, String>) {
        if !self.merge {
            attributes.clear();
        }
        for (k, v) in &self.attributes {
            if v.is_empty() {
                attributes.remove(k);
            } else {
                attributes.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn too_many_attributes(typed: bool) -> ApiError {
    if typed {
        ApiError::invalid(format!("A thing with a thing type can have at most {MAX_TYPED_ATTRIBUTES} attributes"))
    } else {
        ApiError::invalid(format!("A thing without a thing type can have at most {MAX_ATTRIBUTES} attributes"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingRequest {
    pub thing_name: String,
    pub thing_type_name: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    pub billing_group_name: Option<String>,
}

impl CreateThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        if let Some(t) = &self.thing_type_name {
            validate::thing_type_name(t, "thingTypeName")?;
        }
        let typed = self.thing_type_name.is_some();
        self.attribute_payload.as_ref().map_or(Ok(()), |p| p.check(typed))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingResponse {
    pub thing_name: String,
    pub thing_arn: String,
    pub thing_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingRequest {
    pub thing_name: String,
}

impl DescribeThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingResponse {
    pub default_client_id: String,
    pub thing_name: String,
    pub thing_id: String,
    pub thing_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub thing_type_name: Option<String>,
    #[serde(default)]
    pub use_prefix_attribute_value: bool,
}

impl ListThingsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)
    }
}

/// `ThingAttribute`: one thing of ListThings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingAttribute {
    pub thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    pub thing_arn: String,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsResponse {
    pub things: Vec<ThingAttribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingRequest {
    pub thing_name: String,
    pub thing_type_name: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    pub expected_version: Option<i64>,
    #[serde(default)]
    pub remove_thing_type: bool,
}

impl UpdateThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        if let Some(t) = &self.thing_type_name {
            validate::thing_type_name(t, "thingTypeName")?;
            if self.remove_thing_type {
                return Err(ApiError::invalid("Cannot set thingTypeName and removeThingType together"));
            }
        }
        // The type the thing keeps is known only against the thing: the engine checks the
        // final count, here only what no type allows.
        let typed = !self.remove_thing_type;
        self.attribute_payload.as_ref().map_or(Ok(()), |p| p.check(typed))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingRequest {
    pub thing_name: String,
    pub expected_version: Option<i64>,
}

impl DeleteThingRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")
    }
}

/// AttachThingPrincipal and DetachThingPrincipal (`principal` travels in `x-amzn-principal`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingPrincipalRequest {
    pub thing_name: String,
    pub principal: String,
    /// `EXCLUSIVE_THING` or `NON_EXCLUSIVE_THING` (AttachThingPrincipal only).
    pub thing_principal_type: Option<String>,
}

impl ThingPrincipalRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        check_principal_type(self.thing_principal_type.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsRequest {
    pub thing_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

impl ListThingPrincipalsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsResponse {
    pub principals: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsRequest {
    pub principal: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

impl ListPrincipalThingsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsResponse {
    pub things: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `thingPrincipalType` as a filter: absent, or one of AWS's two values.
fn check_principal_type(value: Option<&str>) -> ApiResult<()> {
    match value {
        None | Some("EXCLUSIVE_THING" | "NON_EXCLUSIVE_THING") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!("Invalid value for thingPrincipalType: {other}"))),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsV2Request {
    pub thing_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub thing_principal_type: Option<String>,
}

impl ListThingPrincipalsV2Request {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::thing_name(&self.thing_name, "thingName")?;
        check_max_results(self.max_results)?;
        check_principal_type(self.thing_principal_type.as_deref())
    }
}

/// `ThingPrincipalObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingPrincipalObject {
    pub principal: String,
    pub thing_principal_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsV2Response {
    pub thing_principal_objects: Vec<ThingPrincipalObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListPrincipalThingsV2: `principal` travels in `x-amzn-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsV2Request {
    pub principal: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub thing_principal_type: Option<String>,
}

impl ListPrincipalThingsV2Request {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)?;
        check_principal_type(self.thing_principal_type.as_deref())
    }
}

/// `PrincipalThingObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalThingObject {
    pub thing_name: String,
    pub thing_principal_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalThingsV2Response {
    pub principal_thing_objects: Vec<PrincipalThingObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_checked_unless_an_empty_value_removes_one() {
        let payload = AttributePayload { attributes: [("k".into(), "".into())].into(), merge: true };
        assert!(payload.check(false).is_ok());
        let payload = AttributePayload { attributes: [("k".into(), "no spaces".into())].into(), merge: true };
        assert!(payload.check(false).is_err());
        let four: BTreeMap<_, _> = (0..4).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(AttributePayload { attributes: four.clone(), merge: false }.check(false).is_err());
        assert!(AttributePayload { attributes: four, merge: false }.check(true).is_ok());
        let many = (0..=MAX_TYPED_ATTRIBUTES).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(AttributePayload { attributes: many, merge: false }.check(true).is_err());
    }

    #[test]
    fn principal_types_are_the_aws_enum() {
        let mut r = ThingPrincipalRequest { thing_name: "t".into(), principal: "p".into(), thing_principal_type: None };
        assert!(r.check(0).is_ok());
        r.thing_principal_type = Some("SOMETIMES".into());
        assert!(r.check(0).is_err());
    }
}
