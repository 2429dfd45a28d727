//! Thing types: CreateThingType, DescribeThingType, ListThingTypes, UpdateThingType,
//! DeprecateThingType, DeleteThingType; and what a thing's type allows (`usable_type`).

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::ThingType;
use fleetjobs_core::ops::thing_types::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult};

use crate::state::State;
use crate::Engine;

pub(crate) fn thing_type_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing type {name} does not exist"))
}

/// A type a thing may be given: it exists and, unless the thing has it already
/// (`current`), is not deprecated.
pub(crate) fn usable_type(s: &State, name: &str, current: Option<&str>) -> ApiResult<()> {
    let t = s.thing_types.get(name).ok_or_else(|| thing_type_not_found(name))?;
    if t.deprecated && current != Some(name) {
        return Err(ApiError::invalid(format!(
            "Thing type {name} is deprecated: new things cannot be associated with it"
        )));
    }
    Ok(())
}

impl Engine {
    pub async fn create_thing_type(&self, r: CreateThingTypeRequest) -> ApiResult<CreateThingTypeResponse> {
        r.check(self.now())?;
        let properties = r.thing_type_properties.unwrap_or_default();
        let description = properties.thing_type_description.filter(|d| !d.is_empty());
        let searchable = properties.searchable_attributes.unwrap_or_default();
        let mqtt5 = properties.mqtt5_configuration.filter(|c| !c.propagating_attributes.is_empty());
        let name = r.thing_type_name;
        self.write(|txn| {
            if let Some(existing) = txn.s.thing_types.get(&name) {
                // The same type again answers the existing one, as AWS does.
                if existing.description == description
                    && existing.searchable_attributes == searchable
                    && existing.mqtt5_configuration == mqtt5
                {
                    return Ok(CreateThingTypeResponse {
                        thing_type_name: name.clone(),
                        thing_type_arn: existing.thing_type_arn.clone(),
                        thing_type_id: existing.thing_type_id.clone(),
                    });
                }
                return Err(ApiError::already_exists(
                    format!("Thing Type {name} already exists in account with different properties"),
                    &existing.thing_type_id,
                    &existing.thing_type_arn,
                ));
            }
            let t = ThingType {
                thing_type_arn: txn.scope.arn(ResourceKind::ThingType, &name),
                thing_type_id: uuid::Uuid::new_v4().to_string(),
                thing_type_name: name.clone(),
                description: description.clone(),
                searchable_attributes: searchable.clone(),
                mqtt5_configuration: mqtt5.clone(),
                deprecated: false,
                deprecation_date: None,
                tags: r.tags.clone().filter(|t| !t.is_empty()),
                created_at: txn.now,
            };
            let out = CreateThingTypeResponse {
                thing_type_name: t.thing_type_name.clone(),
                thing_type_arn: t.thing_type_arn.clone(),
                thing_type_id: t.thing_type_id.clone(),
            };
            txn.put_thing_type(t);
            Ok(out)
        })
        .await
    }

    pub async fn describe_thing_type(&self, r: ThingTypeNameRequest) -> ApiResult<DescribeThingTypeResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let t = s.thing_types.get(&r.thing_type_name).ok_or_else(|| thing_type_not_found(&r.thing_type_name))?;
            Ok(t.into())
        })
        .await
    }

    pub async fn list_thing_types(&self, r: ListThingTypesRequest) -> ApiResult<ListThingTypesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let items: Vec<ThingTypeDefinition> = s
                .thing_types
                .values()
                .filter(|t| r.thing_type_name.as_ref().is_none_or(|n| *n == t.thing_type_name))
                .map(Into::into)
                .collect();
            let (thing_types, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListThingTypesResponse { thing_types, next_token })
        })
        .await
    }

    /// The members given replace the type's; those left out stay.
    pub async fn update_thing_type(&self, r: UpdateThingTypeRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_type_name;
        self.write(|txn| {
            let mut t = txn.s.thing_types.get(name).cloned().ok_or_else(|| thing_type_not_found(name))?;
            let Some(p) = r.thing_type_properties.clone() else { return Ok(Empty {}) };
            if let Some(d) = p.thing_type_description {
                t.description = (!d.is_empty()).then_some(d);
            }
            if let Some(names) = p.searchable_attributes {
                t.searchable_attributes = names;
            }
            if let Some(c) = p.mqtt5_configuration {
                t.mqtt5_configuration = (!c.propagating_attributes.is_empty()).then_some(c);
            }
            txn.put_thing_type(t);
            Ok(Empty {})
        })
        .await
    }

    pub async fn deprecate_thing_type(&self, r: DeprecateThingTypeRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_type_name;
        self.write(|txn| {
            let mut t = txn.s.thing_types.get(name).cloned().ok_or_else(|| thing_type_not_found(name))?;
            if r.undo_deprecate {
                t.deprecated = false;
                t.deprecation_date = None;
            } else if !t.deprecated {
                // Deprecating again keeps the first date.
                t.deprecated = true;
                t.deprecation_date = Some(txn.now);
            }
            txn.put_thing_type(t);
            Ok(Empty {})
        })
        .await
    }

    /// Only a deprecated type that no thing has any more can go. AWS also asks for five
    /// minutes between the deprecation and the deletion; that wait is not enforced here.
    pub async fn delete_thing_type(&self, r: ThingTypeNameRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_type_name;
        self.write(|txn| {
            let t = txn.s.thing_types.get(name).ok_or_else(|| thing_type_not_found(name))?;
            if !t.deprecated {
                return Err(ApiError::invalid(format!(
                    "Thing type {name} must be deprecated before it can be deleted"
                )));
            }
            // Deletions are rare and the scan is in memory: no reverse index to keep.
            if let Some(thing) = txn.s.things.values().find(|t| t.thing_type_name.as_deref() == Some(name)) {
                return Err(ApiError::invalid(format!(
                    "Cannot delete thing type {name}: things are still associated with it (e.g. {})",
                    thing.thing_name
                )));
            }
            txn.delete_thing_type(name);
            Ok(Empty {})
        })
        .await
    }
}
