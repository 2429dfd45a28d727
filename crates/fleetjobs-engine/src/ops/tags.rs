//! Resource tags: TagResource, UntagResource, ListTagsForResource, on jobs, thing groups,
//! thing types, job templates and CA certificates.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::Tag;
use fleetjobs_core::ops::tags::*;
use fleetjobs_core::ops::Empty;
use fleetjobs_core::{ApiError, ApiResult};

use super::job_not_found;
use super::job_templates::template_not_found;
use super::thing_types::thing_type_not_found;
use crate::state::{State, Txn};
use crate::Engine;

/// A resource that carries tags, by the ARN that names it.
enum Taggable {
    Job(String),
    ThingGroup(String),
    ThingType(String),
    JobTemplate(String),
    CaCertificate(String),
}

fn group_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing group {name} cannot be found."))
}

impl Taggable {
    fn tags<'s>(&self, s: &'s State) -> ApiResult<&'s Option<Vec<Tag>>> {
        match self {
            Taggable::Job(id) => s.jobs.get(id).map(|j| &j.tags).ok_or_else(|| job_not_found(id)),
            Taggable::ThingGroup(name) => {
                s.thing_groups.get(name).map(|g| &g.tags).ok_or_else(|| group_not_found(name))
            }
            Taggable::ThingType(name) => {
                s.thing_types.get(name).map(|t| &t.tags).ok_or_else(|| thing_type_not_found(name))
            }
            Taggable::JobTemplate(id) => s.job_templates.get(id).map(|t| &t.tags).ok_or_else(|| template_not_found(id)),
            Taggable::CaCertificate(id) => s
                .ca_certificates
                .get(id)
                .map(|c| &c.tags)
                .ok_or_else(|| ApiError::not_found(format!("The CA certificate {id} does not exist"))),
        }
    }

    /// Replace the resource's tags (it exists: `tags` was read first).
    fn set(&self, txn: &mut Txn<'_>, tags: Vec<Tag>) {
        let tags = (!tags.is_empty()).then_some(tags);
        match self {
            Taggable::Job(id) => {
                if let Some(mut job) = txn.s.jobs.get(id).map(|j| fleetjobs_core::model::Job::clone(j)) {
                    job.tags = tags;
                    txn.put_job(job);
                }
            }
            Taggable::ThingGroup(name) => {
                if let Some(mut group) = txn.s.thing_groups.get(name).cloned() {
                    group.tags = tags;
                    txn.put_thing_group(group);
                }
            }
            Taggable::ThingType(name) => {
                if let Some(mut t) = txn.s.thing_types.get(name).cloned() {
                    t.tags = tags;
                    txn.put_thing_type(t);
                }
            }
            Taggable::JobTemplate(id) => {
                if let Some(mut t) = txn.s.job_templates.get(id).cloned() {
                    t.tags = tags;
                    txn.put_job_template(t);
                }
            }
            Taggable::CaCertificate(id) => {
                if let Some(mut c) = txn.s.ca_certificates.get(id).cloned() {
                    c.tags = tags;
                    txn.put_ca_certificate(c);
                }
            }
        }
    }
}

impl Engine {
    fn taggable(&self, arn: &str) -> ApiResult<Taggable> {
        match self.config.scope.parse_any(arn) {
            Some((ResourceKind::Job, id)) => Ok(Taggable::Job(id.to_string())),
            Some((ResourceKind::ThingGroup, name)) => Ok(Taggable::ThingGroup(name.to_string())),
            Some((ResourceKind::ThingType, name)) => Ok(Taggable::ThingType(name.to_string())),
            Some((ResourceKind::JobTemplate, id)) => Ok(Taggable::JobTemplate(id.to_string())),
            Some((ResourceKind::CaCert, id)) => Ok(Taggable::CaCertificate(id.to_lowercase())),
            Some(_) => Err(ApiError::invalid(format!("Tags are not supported on the resource {arn}"))),
            None => Err(ApiError::invalid(format!("Invalid resource ARN: {arn}"))),
        }
    }

    pub async fn tag_resource(&self, r: TagResourceRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let resource = self.taggable(&r.resource_arn)?;
        self.write(|txn| {
            let tags = merged(resource.tags(txn.s)?.as_deref().unwrap_or_default(), &r.tags)?;
            resource.set(txn, tags);
            Ok(Empty {})
        })
        .await
    }

    pub async fn untag_resource(&self, r: UntagResourceRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let resource = self.taggable(&r.resource_arn)?;
        self.write(|txn| {
            let existing = resource.tags(txn.s)?.clone().unwrap_or_default();
            let kept = existing.into_iter().filter(|t| !r.tag_keys.contains(&t.key)).collect();
            resource.set(txn, kept);
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_tags_for_resource(
        &self,
        r: ListTagsForResourceRequest,
    ) -> ApiResult<ListTagsForResourceResponse> {
        r.check(self.now())?;
        let resource = self.taggable(&r.resource_arn)?;
        // At most 50 tags: one page.
        self.read(|s| {
            Ok(ListTagsForResourceResponse { tags: resource.tags(s)?.clone().unwrap_or_default(), next_token: None })
        })
        .await
    }
}
