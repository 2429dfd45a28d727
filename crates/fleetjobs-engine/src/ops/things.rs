//! Things and their principals: CreateThing, DescribeThing, ListThings, UpdateThing,
//! DeleteThing, AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals,
//! ListPrincipalThings.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution;
use fleetjobs_core::model::Thing;
use fleetjobs_core::ops::things::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::thing_groups::follow_membership;
use super::thing_not_found;
use super::thing_types::usable_type;
use crate::Engine;

fn version_conflict(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::VersionConflict,
        format!("The version for thing {name} does not match the expected version."),
    )
}

impl Engine {
    pub async fn create_thing(&self, r: CreateThingRequest) -> ApiResult<CreateThingResponse> {
        r.check(self.now())?;
        if let Some(b) = &r.billing_group_name {
            return Err(ApiError::not_found(format!("Billing group {b} does not exist")));
        }
        let attributes = r.attribute_payload.map(|p| p.attributes).unwrap_or_default();
        let thing_type = r.thing_type_name;
        let name = r.thing_name;
        self.write(|txn| {
            if let Some(t) = &thing_type {
                // The same thing again may name its type even once deprecated.
                let current = txn.s.things.get(&name).and_then(|e| e.thing_type_name.as_deref());
                usable_type(txn.s, t, current)?;
            }
            if let Some(existing) = txn.s.things.get(&name) {
                // Creating an identical thing again answers the existing one, as AWS does.
                if existing.attributes == attributes && existing.thing_type_name == thing_type {
                    return Ok(CreateThingResponse {
                        thing_name: name.clone(),
                        thing_arn: existing.thing_arn.clone(),
                        thing_id: existing.thing_id.clone(),
                    });
                }
                return Err(ApiError::already_exists(
                    format!("Thing {name} already exists in account with different attributes"),
                    &existing.thing_id,
                    &existing.thing_arn,
                ));
            }
            let thing = Thing {
                thing_arn: txn.scope.arn(ResourceKind::Thing, &name),
                thing_id: uuid::Uuid::new_v4().to_string(),
                thing_name: name.clone(),
                thing_type_name: thing_type.clone(),
                billing_group_name: None,
                attributes: attributes.clone(),
                version: 1,
                created_at: txn.now,
            };
            let out = CreateThingResponse {
                thing_name: thing.thing_name.clone(),
                thing_arn: thing.thing_arn.clone(),
                thing_id: thing.thing_id.clone(),
            };
            let before = txn.s.covering_groups(&name);
            txn.put_thing(thing);
            // A new thing may match dynamic groups, and so join their CONTINUOUS jobs.
            follow_membership(txn, &name, &before);
            Ok(out)
        })
        .await
    }

    pub async fn describe_thing(&self, r: DescribeThingRequest) -> ApiResult<DescribeThingResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let t = s.things.get(&r.thing_name).ok_or_else(|| thing_not_found(&r.thing_name))?;
            Ok(DescribeThingResponse {
                default_client_id: t.thing_name.clone(),
                thing_name: t.thing_name.clone(),
                thing_id: t.thing_id.clone(),
                thing_arn: t.thing_arn.clone(),
                thing_type_name: t.thing_type_name.clone(),
                attributes: t.attributes.clone(),
                version: t.version,
            })
        })
        .await
    }

    pub async fn list_things(&self, r: ListThingsRequest) -> ApiResult<ListThingsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let items: Vec<ThingAttribute> = s
                .things
                .values()
                .filter(|t| r.thing_type_name.as_ref().is_none_or(|tn| t.thing_type_name.as_ref() == Some(tn)))
                .filter(|t| match (&r.attribute_name, &r.attribute_value) {
                    (Some(n), Some(v)) => t.attributes.get(n).is_some_and(|a| {
                        if r.use_prefix_attribute_value {
                            a.starts_with(v.as_str())
                        } else {
                            a == v
                        }
                    }),
                    (Some(n), None) => t.attributes.contains_key(n),
                    _ => true,
                })
                .map(|t| ThingAttribute {
                    thing_name: t.thing_name.clone(),
                    thing_type_name: t.thing_type_name.clone(),
                    thing_arn: t.thing_arn.clone(),
                    attributes: t.attributes.clone(),
                    version: t.version,
                })
                .collect();
            let (things, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListThingsResponse { things, next_token })
        })
        .await
    }

    pub async fn update_thing(&self, r: UpdateThingRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_name;
        self.write(|txn| {
            let mut t = txn.s.things.get(name).cloned().ok_or_else(|| thing_not_found(name))?;
            if r.expected_version.is_some_and(|v| v != t.version) {
                return Err(version_conflict(name));
            }
            if let Some(payload) = &r.attribute_payload {
                payload.apply_to(&mut t.attributes);
            }
            if let Some(new_type) = &r.thing_type_name {
                usable_type(txn.s, new_type, t.thing_type_name.as_deref())?;
                t.thing_type_name = Some(new_type.clone());
            }
            if r.remove_thing_type {
                t.thing_type_name = None;
            }
            // Against the type the thing ends with: removing a type may leave too many.
            let typed = t.thing_type_name.is_some();
            if t.attributes.len() > max_attributes(typed) {
                return Err(too_many_attributes(typed));
            }
            t.version += 1;
            let before = txn.s.covering_groups(name);
            txn.put_thing(t);
            // New attributes or type may make it join or leave dynamic groups.
            follow_membership(txn, name, &before);
            Ok(Empty {})
        })
        .await
    }

    pub async fn delete_thing(&self, r: DeleteThingRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_name;
        self.write(|txn| {
            // Deleting a thing that does not exist succeeds, as on AWS.
            let Some(t) = txn.s.things.get(name) else { return Ok(Empty {}) };
            if r.expected_version.is_some_and(|v| v != t.version) {
                return Err(version_conflict(name));
            }
            if txn.s.principals_of_thing(name).next().is_some() {
                return Err(ApiError::invalid(format!(
                    "Cannot delete thing {name}. Please detach all principals from the thing before deleting it."
                )));
            }
            let pending: Vec<_> = txn.s.pending_executions_of_thing(name).cloned().collect();
            for mut e in pending {
                execution::remove(&mut e, txn.now);
                txn.put_execution(e);
            }
            // Memberships go with the thing (no job follows: its pending executions are gone).
            let groups: Vec<String> = txn.s.groups_of_thing(name).map(str::to_string).collect();
            for g in groups {
                txn.remove_thing_from_group(&g, name);
            }
            txn.delete_thing(name);
            txn.s.reevaluate_dynamic(name);
            Ok(Empty {})
        })
        .await
    }

    pub async fn attach_thing_principal(&self, r: ThingPrincipalRequest) -> ApiResult<Empty> {
        self.thing_principal(r, true).await
    }

    pub async fn detach_thing_principal(&self, r: ThingPrincipalRequest) -> ApiResult<Empty> {
        self.thing_principal(r, false).await
    }

    async fn thing_principal(&self, r: ThingPrincipalRequest, attach: bool) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            if !txn.s.things.contains_key(&r.thing_name) {
                return Err(thing_not_found(&r.thing_name));
            }
            self.check_certificate_arn(txn.s, &r.principal)?;
            if attach {
                let exclusive = r.thing_principal_type.as_deref() == Some("EXCLUSIVE_THING");
                // EXCLUSIVE_THING: the thing is the only one attached to the principal, so
                // neither side may have another thing.
                let other = txn.s.things_of_principal(&r.principal).find(|t| *t != r.thing_name);
                if let Some(other) = other {
                    if exclusive || txn.s.principal_type(other, &r.principal) == "EXCLUSIVE_THING" {
                        return Err(ApiError::invalid(format!(
                            "Principal {} is attached to thing {other}: an EXCLUSIVE_THING attachment \
                             leaves it to one thing only",
                            r.principal
                        )));
                    }
                }
                txn.attach_principal(&r.thing_name, &r.principal, exclusive);
            } else {
                txn.detach_principal(&r.thing_name, &r.principal);
            }
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_thing_principals(&self, r: ListThingPrincipalsRequest) -> ApiResult<ListThingPrincipalsResponse> {
        r.check(self.now())?;
        let thing = &r.thing_name;
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(ApiError::not_found(format!(
                    "Failed to list principals for thing {thing} because the thing does not exist in your account"
                )));
            }
            let items: Vec<String> = s.principals_of_thing(thing).map(str::to_string).collect();
            let (principals, next_token) = page(items, r.next_token.as_deref(), r.max_results, 25)?;
            Ok(ListThingPrincipalsResponse { principals, next_token })
        })
        .await
    }

    pub async fn list_principal_things(&self, r: ListPrincipalThingsRequest) -> ApiResult<ListPrincipalThingsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            self.check_certificate_arn(s, &r.principal)?;
            let items: Vec<String> = s.things_of_principal(&r.principal).map(str::to_string).collect();
            let (things, next_token) = page(items, r.next_token.as_deref(), r.max_results, 25)?;
            Ok(ListPrincipalThingsResponse { things, next_token })
        })
        .await
    }

    pub async fn list_thing_principals_v2(
        &self,
        r: ListThingPrincipalsV2Request,
    ) -> ApiResult<ListThingPrincipalsV2Response> {
        r.check(self.now())?;
        let thing = &r.thing_name;
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(thing_not_found(thing));
            }
            let items: Vec<ThingPrincipalObject> = s
                .principals_of_thing(thing)
                .map(|p| ThingPrincipalObject {
                    principal: p.to_string(),
                    thing_principal_type: s.principal_type(thing, p).to_string(),
                })
                .filter(|o| r.thing_principal_type.as_ref().is_none_or(|t| *t == o.thing_principal_type))
                .collect();
            let (thing_principal_objects, next_token) = page(items, r.next_token.as_deref(), r.max_results, 25)?;
            Ok(ListThingPrincipalsV2Response { thing_principal_objects, next_token })
        })
        .await
    }

    pub async fn list_principal_things_v2(
        &self,
        r: ListPrincipalThingsV2Request,
    ) -> ApiResult<ListPrincipalThingsV2Response> {
        r.check(self.now())?;
        self.read(|s| {
            self.check_certificate_arn(s, &r.principal)?;
            let items: Vec<PrincipalThingObject> = s
                .things_of_principal(&r.principal)
                .map(|t| PrincipalThingObject {
                    thing_name: t.to_string(),
                    thing_principal_type: s.principal_type(t, &r.principal).to_string(),
                })
                .filter(|o| r.thing_principal_type.as_ref().is_none_or(|t| *t == o.thing_principal_type))
                .collect();
            let (principal_thing_objects, next_token) = page(items, r.next_token.as_deref(), r.max_results, 25)?;
            Ok(ListPrincipalThingsV2Response { principal_thing_objects, next_token })
        })
        .await
    }
}
