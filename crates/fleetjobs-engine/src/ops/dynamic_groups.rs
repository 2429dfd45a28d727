//! Dynamic thing groups (Create/Update/DeleteDynamicThingGroup) and re-evaluating things when a query changes.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::fleet_query::Query;
use fleetjobs_core::model::ThingGroup;
use fleetjobs_core::ops::dynamic_groups::*;
use fleetjobs_core::ops::Empty;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::thing_groups::{follow_membership, group_not_found};
use crate::state::Txn;
use crate::Engine;

fn version_conflict(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::VersionConflict,
        format!("The version for thing group {name} does not match the expected version."),
    )
}

fn not_dynamic(name: &str) -> ApiError {
    ApiError::invalid(format!("Thing group {name} is not a dynamic thing group"))
}

/// Install `query` for `group` (or drop it) and re-evaluate every thing it could change,
/// letting CONTINUOUS jobs follow each thing that joins or leaves.
fn requery(txn: &mut Txn<'_>, group: &str, query: Option<Query>) {
    let things: Vec<String> = match &query {
        Some(_) => txn.s.things.keys().cloned().collect(),
        // Only the members can leave a group that goes.
        None => txn.s.dynamic_members_of(group).map(str::to_string).collect(),
    };
    txn.set_query(group, query);
    for thing in things {
        // The index still holds the old memberships: `before` is what covered the thing.
        let before = txn.s.covering_groups(&thing);
        follow_membership(txn, &thing, &before);
    }
}

/// Delete a dynamic group (it exists: the caller checked): its members leave it first.
pub(crate) fn delete_dynamic(txn: &mut Txn<'_>, name: &str) -> Empty {
    requery(txn, name, None);
    txn.delete_thing_group(name);
    Empty {}
}

impl Engine {
    pub async fn create_dynamic_thing_group(
        &self,
        r: CreateDynamicThingGroupRequest,
    ) -> ApiResult<CreateDynamicThingGroupResponse> {
        r.check(self.now())?;
        let query = parse_query(&r.query_string)?;
        let properties = r.thing_group_properties.clone().unwrap_or_default();
        let description = properties.thing_group_description.filter(|d| !d.is_empty());
        let attributes = properties.attribute_payload.map(|p| p.attributes).unwrap_or_default();
        let name = &r.thing_group_name;
        let answer = |g: &ThingGroup| CreateDynamicThingGroupResponse {
            thing_group_name: g.thing_group_name.clone(),
            thing_group_arn: g.thing_group_arn.clone(),
            thing_group_id: g.thing_group_id.clone(),
            index_name: INDEX_NAME.to_string(),
            query_string: g.query_string.clone().unwrap_or_default(),
            query_version: QUERY_VERSION.to_string(),
        };
        self.write(|txn| {
            if let Some(existing) = txn.s.thing_groups.get(name) {
                // The same dynamic group again answers the existing one.
                if existing.query_string.as_ref() == Some(&r.query_string)
                    && existing.description == description
                    && existing.attributes == attributes
                {
                    return Ok(answer(existing));
                }
                return Err(ApiError::already_exists(
                    format!("Thing Group {name} already exists in current account with different properties"),
                    &existing.thing_group_id,
                    &existing.thing_group_arn,
                ));
            }
            let group = ThingGroup {
                thing_group_name: name.clone(),
                thing_group_id: uuid::Uuid::new_v4().to_string(),
                thing_group_arn: txn.scope.arn(ResourceKind::ThingGroup, name),
                parent_group_name: None,
                description: description.clone(),
                attributes: attributes.clone(),
                tags: r.tags.clone(),
                version: 1,
                created_at: txn.now,
                query_string: Some(r.query_string.clone()),
                index_name: Some(INDEX_NAME.to_string()),
                query_version: Some(QUERY_VERSION.to_string()),
            };
            let out = answer(&group);
            txn.put_thing_group(group);
            requery(txn, name, Some(query.clone()));
            Ok(out)
        })
        .await
    }

    pub async fn update_dynamic_thing_group(
        &self,
        r: UpdateDynamicThingGroupRequest,
    ) -> ApiResult<UpdateDynamicThingGroupResponse> {
        r.check(self.now())?;
        let query = r.query_string.as_deref().map(parse_query).transpose()?;
        let name = &r.thing_group_name;
        self.write(|txn| {
            let mut g = txn.s.thing_groups.get(name).cloned().ok_or_else(|| group_not_found(name))?;
            if !g.is_dynamic() {
                return Err(not_dynamic(name));
            }
            if r.expected_version.is_some_and(|v| v != g.version) {
                return Err(version_conflict(name));
            }
            super::thing_groups::apply_properties(&mut g, &r.thing_group_properties)?;
            let changed_query = r.query_string.as_ref().filter(|q| g.query_string.as_ref() != Some(*q));
            if let Some(q) = changed_query {
                g.query_string = Some(q.clone());
            }
            let requeried = changed_query.is_some();
            g.version += 1;
            let version = g.version;
            txn.put_thing_group(g);
            if let (true, Some(q)) = (requeried, query.clone()) {
                requery(txn, name, Some(q));
            }
            Ok(UpdateDynamicThingGroupResponse { version })
        })
        .await
    }

    pub async fn delete_dynamic_thing_group(&self, r: DeleteDynamicThingGroupRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_group_name;
        self.write(|txn| {
            // Deleting a group that does not exist succeeds, as on AWS.
            let Some(g) = txn.s.thing_groups.get(name) else { return Ok(Empty {}) };
            if !g.is_dynamic() {
                return Err(not_dynamic(name));
            }
            if r.expected_version.is_some_and(|v| v != g.version) {
                return Err(version_conflict(name));
            }
            Ok(delete_dynamic(txn, name))
        })
        .await
    }
}
