//! Static thing groups and their members: CreateThingGroup, DescribeThingGroup,
//! ListThingGroups, UpdateThingGroup, DeleteThingGroup, AddThingToThingGroup,
//! RemoveThingFromThingGroup, ListThingsInThingGroup, ListThingGroupsForThing,
//! UpdateThingGroupsForThing; and what a membership change does to CONTINUOUS jobs.

use std::collections::BTreeSet;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution;
use fleetjobs_core::model::{JobExecutionStatus, JobStatus, TargetSelection, ThingGroup};
use fleetjobs_core::ops::thing_groups::*;
use fleetjobs_core::ops::{page, Empty, Timestamp};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::dynamic_groups::delete_dynamic;
use super::{queue_executions, thing_not_found};
use crate::state::{State, Txn};
use crate::Engine;

pub(crate) fn group_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing group {name} cannot be found."))
}

fn version_conflict(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::VersionConflict,
        format!("The version for thing group {name} does not match the expected version."),
    )
}

/// What static groups allow and dynamic groups refuse (their members follow the query).
pub(crate) fn dynamic_not_allowed(group: &str, what: &str) -> ApiError {
    ApiError::invalid(format!("Thing group {group} is a dynamic thing group and cannot {what}"))
}

fn too_many_groups(thing: &str) -> ApiError {
    ApiError::invalid(format!("Thing {thing} cannot be added to more than {MAX_GROUPS_PER_THING} thing groups"))
}

impl Engine {
    /// The group of a member request, by name or ARN; it must exist.
    fn member_group<'s>(&self, s: &'s State, r: &ThingGroupMemberRequest) -> ApiResult<&'s ThingGroup> {
        let name = match (&r.thing_group_name, &r.thing_group_arn) {
            (Some(n), _) => n.as_str(),
            (None, Some(arn)) => self
                .config
                .scope
                .parse(arn, ResourceKind::ThingGroup)
                .ok_or_else(|| ApiError::invalid(format!("Invalid thingGroupArn: {arn}")))?,
            (None, None) => return Err(ApiError::invalid("Either thingGroupName or thingGroupArn is required")),
        };
        let g = s.thing_groups.get(name).ok_or_else(|| group_not_found(name))?;
        if g.is_dynamic() {
            return Err(dynamic_not_allowed(name, "have things added or removed"));
        }
        Ok(g)
    }

    /// The thing of a member request, by name or ARN; it must exist.
    fn member_thing(&self, s: &State, r: &ThingGroupMemberRequest) -> ApiResult<String> {
        let name = match (&r.thing_name, &r.thing_arn) {
            (Some(n), _) => n.as_str(),
            (None, Some(arn)) => self
                .config
                .scope
                .parse(arn, ResourceKind::Thing)
                .ok_or_else(|| ApiError::invalid(format!("Invalid thingArn: {arn}")))?,
            (None, None) => return Err(ApiError::invalid("Either thingName or thingArn is required")),
        };
        if !s.things.contains_key(name) {
            return Err(thing_not_found(name));
        }
        Ok(name.to_string())
    }

    pub async fn create_thing_group(&self, r: CreateThingGroupRequest) -> ApiResult<CreateThingGroupResponse> {
        r.check(self.now())?;
        let properties = r.thing_group_properties.clone().unwrap_or_default();
        let description = properties.thing_group_description.filter(|d| !d.is_empty());
        let attributes = properties.attribute_payload.map(|p| p.attributes).unwrap_or_default();
        let name = &r.thing_group_name;
        self.write(|txn| {
            if let Some(existing) = txn.s.thing_groups.get(name) {
                // A parent is set once: asking for another one under the group itself would
                // make a cycle, anything else is a different group of the same name.
                if let Some(p) =
                    r.parent_group_name.as_ref().filter(|p| existing.parent_group_name.as_ref() != Some(*p))
                {
                    if txn.s.descendants(name).contains(p) {
                        return Err(ApiError::invalid(format!(
                            "Thing group {p} is a descendant of {name}: making it the parent would create a cycle"
                        )));
                    }
                }
                if !existing.is_dynamic()
                    && existing.parent_group_name == r.parent_group_name
                    && existing.description == description
                    && existing.attributes == attributes
                {
                    return Ok(CreateThingGroupResponse {
                        thing_group_name: name.clone(),
                        thing_group_arn: existing.thing_group_arn.clone(),
                        thing_group_id: existing.thing_group_id.clone(),
                    });
                }
                return Err(ApiError::already_exists(
                    format!("Thing Group {name} already exists in current account with different properties"),
                    &existing.thing_group_id,
                    &existing.thing_group_arn,
                ));
            }
            if let Some(parent) = &r.parent_group_name {
                match txn.s.thing_groups.get(parent) {
                    None => return Err(group_not_found(parent)),
                    Some(p) if p.is_dynamic() => return Err(dynamic_not_allowed(parent, "be a parent group")),
                    Some(_) => {}
                }
                // The parent's ancestors, the parent, and the new group.
                if txn.s.ancestors(parent).len() + 2 > MAX_DEPTH {
                    return Err(ApiError::invalid(format!(
                        "Cannot create thing group {name}: a thing group hierarchy can have at most {MAX_DEPTH} levels"
                    )));
                }
            }
            let group = ThingGroup {
                thing_group_name: name.clone(),
                thing_group_id: uuid::Uuid::new_v4().to_string(),
                thing_group_arn: txn.scope.arn(ResourceKind::ThingGroup, name),
                parent_group_name: r.parent_group_name.clone(),
                description: description.clone(),
                attributes: attributes.clone(),
                tags: r.tags.clone(),
                version: 1,
                created_at: txn.now,
                query_string: None,
                index_name: None,
                query_version: None,
            };
            let out = CreateThingGroupResponse {
                thing_group_name: group.thing_group_name.clone(),
                thing_group_arn: group.thing_group_arn.clone(),
                thing_group_id: group.thing_group_id.clone(),
            };
            txn.put_thing_group(group);
            Ok(out)
        })
        .await
    }

    pub async fn describe_thing_group(&self, r: DescribeThingGroupRequest) -> ApiResult<DescribeThingGroupResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let g = s.thing_groups.get(&r.thing_group_name).ok_or_else(|| group_not_found(&r.thing_group_name))?;
            let mut root_to_parent: Vec<GroupNameAndArn> =
                s.ancestors(&g.thing_group_name).into_iter().map(Into::into).collect();
            root_to_parent.reverse();
            Ok(DescribeThingGroupResponse {
                thing_group_name: g.thing_group_name.clone(),
                thing_group_id: g.thing_group_id.clone(),
                thing_group_arn: g.thing_group_arn.clone(),
                version: g.version,
                thing_group_properties: g.into(),
                thing_group_metadata: ThingGroupMetadata {
                    parent_group_name: g.parent_group_name.clone(),
                    root_to_parent_thing_groups: root_to_parent,
                    creation_date: Timestamp(g.created_at),
                },
                index_name: g.index_name.clone(),
                query_string: g.query_string.clone(),
                query_version: g.query_version.clone(),
                status: g.is_dynamic().then(|| "ACTIVE".to_string()),
            })
        })
        .await
    }

    pub async fn list_thing_groups(&self, r: ListThingGroupsRequest) -> ApiResult<ListThingGroupsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let names: BTreeSet<String> = match &r.parent_group {
                Some(p) if !s.thing_groups.contains_key(p) => return Err(group_not_found(p)),
                Some(p) if r.recursive == Some(true) => s.descendants(p),
                Some(p) => s.child_groups(p).map(str::to_string).collect(),
                None if r.recursive == Some(false) => s
                    .thing_groups
                    .values()
                    .filter(|g| g.parent_group_name.is_none())
                    .map(|g| g.thing_group_name.clone())
                    .collect(),
                None => s.thing_groups.keys().cloned().collect(),
            };
            let items: Vec<GroupNameAndArn> = names
                .iter()
                .filter(|n| r.name_prefix_filter.as_ref().is_none_or(|p| n.starts_with(p.as_str())))
                .filter_map(|n| s.thing_groups.get(n))
                .map(Into::into)
                .collect();
            let (thing_groups, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListThingGroupsResponse { thing_groups, next_token })
        })
        .await
    }

    pub async fn update_thing_group(&self, r: UpdateThingGroupRequest) -> ApiResult<UpdateThingGroupResponse> {
        r.check(self.now())?;
        let name = &r.thing_group_name;
        self.write(|txn| {
            let mut g = txn.s.thing_groups.get(name).cloned().ok_or_else(|| group_not_found(name))?;
            if r.expected_version.is_some_and(|v| v != g.version) {
                return Err(version_conflict(name));
            }
            apply_properties(&mut g, &r.thing_group_properties)?;
            g.version += 1;
            let version = g.version;
            txn.put_thing_group(g);
            Ok(UpdateThingGroupResponse { version })
        })
        .await
    }

    pub async fn delete_thing_group(&self, r: DeleteThingGroupRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.thing_group_name;
        self.write(|txn| {
            // Deleting a group that does not exist succeeds, as on AWS.
            let Some(g) = txn.s.thing_groups.get(name) else { return Ok(Empty {}) };
            if r.expected_version.is_some_and(|v| v != g.version) {
                return Err(version_conflict(name));
            }
            if txn.s.child_groups(name).next().is_some() {
                return Err(ApiError::invalid(format!(
                    "Cannot delete thing group : {name} when there are still child groups attached to it"
                )));
            }
            if g.is_dynamic() {
                return Ok(delete_dynamic(txn, name));
            }
            let members: Vec<String> = txn.s.members_of_group(name).map(str::to_string).collect();
            for thing in members {
                let before = txn.s.covering_groups(&thing);
                txn.remove_thing_from_group(name, &thing);
                follow_membership(txn, &thing, &before);
            }
            txn.delete_thing_group(name);
            Ok(Empty {})
        })
        .await
    }

    pub async fn add_thing_to_thing_group(&self, r: ThingGroupMemberRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            let group = self.member_group(txn.s, &r)?.thing_group_name.clone();
            let thing = self.member_thing(txn.s, &r)?;
            if txn.s.group_members.contains(&(group.clone(), thing.clone())) {
                return Ok(Empty {});
            }
            if txn.s.groups_of_thing(&thing).count() >= MAX_GROUPS_PER_THING {
                return Err(too_many_groups(&thing));
            }
            let before = txn.s.covering_groups(&thing);
            txn.add_thing_to_group(&group, &thing);
            follow_membership(txn, &thing, &before);
            Ok(Empty {})
        })
        .await
    }

    pub async fn remove_thing_from_thing_group(&self, r: ThingGroupMemberRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            let group = self.member_group(txn.s, &r)?.thing_group_name.clone();
            let thing = self.member_thing(txn.s, &r)?;
            if !txn.s.group_members.contains(&(group.clone(), thing.clone())) {
                return Ok(Empty {});
            }
            let before = txn.s.covering_groups(&thing);
            txn.remove_thing_from_group(&group, &thing);
            follow_membership(txn, &thing, &before);
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_things_in_thing_group(
        &self,
        r: ListThingsInThingGroupRequest,
    ) -> ApiResult<ListThingsInThingGroupResponse> {
        r.check(self.now())?;
        self.read(|s| {
            if !s.thing_groups.contains_key(&r.thing_group_name) {
                return Err(group_not_found(&r.thing_group_name));
            }
            let items: Vec<String> = s.things_in_group(&r.thing_group_name, r.recursive).into_iter().collect();
            let (things, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListThingsInThingGroupResponse { things, next_token })
        })
        .await
    }

    pub async fn list_thing_groups_for_thing(
        &self,
        r: ListThingGroupsForThingRequest,
    ) -> ApiResult<ListThingGroupsForThingResponse> {
        r.check(self.now())?;
        self.read(|s| {
            if !s.things.contains_key(&r.thing_name) {
                return Err(thing_not_found(&r.thing_name));
            }
            let names: BTreeSet<&str> =
                s.groups_of_thing(&r.thing_name).chain(s.dynamic_groups_of(&r.thing_name)).collect();
            let items: Vec<GroupNameAndArn> =
                names.into_iter().filter_map(|g| s.thing_groups.get(g)).map(Into::into).collect();
            let (thing_groups, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListThingGroupsForThingResponse { thing_groups, next_token })
        })
        .await
    }

    pub async fn update_thing_groups_for_thing(&self, r: UpdateThingGroupsForThingRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let thing = r.thing_name.clone().unwrap_or_default();
        self.write(|txn| {
            if !txn.s.things.contains_key(&thing) {
                return Err(thing_not_found(&thing));
            }
            for g in r.thing_groups_to_add.iter().chain(&r.thing_groups_to_remove) {
                match txn.s.thing_groups.get(g) {
                    None => return Err(group_not_found(g)),
                    Some(d) if d.is_dynamic() => return Err(dynamic_not_allowed(g, "have things added or removed")),
                    Some(_) => {}
                }
            }
            // Everything is checked against the final memberships before anything changes.
            let current: BTreeSet<String> = txn.s.groups_of_thing(&thing).map(str::to_string).collect();
            let mut wanted = current.clone();
            wanted.extend(r.thing_groups_to_add.iter().cloned());
            for g in &r.thing_groups_to_remove {
                wanted.remove(g);
            }
            if wanted.len() > MAX_GROUPS_PER_THING {
                return Err(too_many_groups(&thing));
            }
            let before = txn.s.covering_groups(&thing);
            for g in current.difference(&wanted) {
                txn.remove_thing_from_group(g, &thing);
            }
            for g in wanted.difference(&current) {
                txn.add_thing_to_group(g, &thing);
            }
            follow_membership(txn, &thing, &before);
            Ok(Empty {})
        })
        .await
    }
}

/// After a thing changed (`before`: the groups that covered it then, see
/// `State::covering_groups`), first re-evaluate which dynamic groups it matches (its
/// attributes, type, static groups or the queries may have changed), then: every CONTINUOUS, IN_PROGRESS job whose group targets now reach
/// the thing and did not before queues an execution for it (a fresh one, unless one is still
/// pending); every such job that reached it through groups only and no longer does marks its
/// QUEUED execution REMOVED. A thing targeted directly stays covered whatever its groups.
pub(crate) fn follow_membership(txn: &mut Txn<'_>, thing: &str, before: &BTreeSet<String>) {
    txn.s.reevaluate_dynamic(thing);
    let after = txn.s.covering_groups(thing);
    if after == *before {
        return;
    }
    let mut join = Vec::new();
    let mut leave = Vec::new();
    for job in txn.s.jobs.values() {
        if job.target_selection != TargetSelection::Continuous || job.status != JobStatus::InProgress {
            continue;
        }
        let mut groups = Vec::new();
        let mut direct = false;
        for target in &job.targets {
            match txn.scope.parse_any(target) {
                Some((ResourceKind::Thing, name)) if name == thing => direct = true,
                Some((ResourceKind::ThingGroup, name)) => groups.push(name),
                _ => {}
            }
        }
        if direct {
            continue;
        }
        let (was, is) = (groups.iter().any(|g| before.contains(*g)), groups.iter().any(|g| after.contains(*g)));
        if is && !was {
            join.push(job.job_id.clone());
        } else if was && !is {
            leave.push(job.job_id.clone());
        }
    }
    let thing_list = [thing.to_string()];
    for job_id in join {
        queue_executions(txn, &job_id, &thing_list);
    }
    for job_id in leave {
        let queued = txn.s.execution(&job_id, thing, None).filter(|e| e.status == JobExecutionStatus::Queued).cloned();
        if let Some(mut e) = queued {
            execution::remove(&mut e, txn.now);
            txn.put_execution(e);
        }
    }
}

/// UpdateThingGroup's and UpdateDynamicThingGroup's properties: a description (empty clears
/// it) and the attribute payload, within the group's attribute limit.
pub(super) fn apply_properties(g: &mut ThingGroup, properties: &ThingGroupProperties) -> ApiResult<()> {
    if let Some(d) = &properties.thing_group_description {
        g.description = (!d.is_empty()).then(|| d.clone());
    }
    if let Some(payload) = &properties.attribute_payload {
        payload.apply_to(&mut g.attributes);
        if g.attributes.len() > MAX_GROUP_ATTRIBUTES {
            return Err(too_many_group_attributes());
        }
    }
    Ok(())
}
