//! Resource tags: TagResource, UntagResource, ListTagsForResource. Jobs are taggable today;
//! thing groups and thing types join as the registry grows.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::Tag;
use fleetjobs_core::ops::tags::*;
use fleetjobs_core::ops::Empty;
use fleetjobs_core::{ApiError, ApiResult};

use super::job_not_found;
use crate::state::State;
use crate::Engine;

impl Engine {
    /// The job a taggable ARN names, if it exists.
    fn tagged_job<'s>(&self, s: &'s State, arn: &str) -> ApiResult<&'s fleetjobs_core::model::Job> {
        match self.config.scope.parse_any(arn) {
            Some((ResourceKind::Job, id)) => s.jobs.get(id).ok_or_else(|| job_not_found(id)),
            Some(_) => Err(ApiError::invalid(format!("Tags are not supported on the resource {arn}"))),
            None => Err(ApiError::invalid(format!("Invalid resource ARN: {arn}"))),
        }
    }

    pub async fn tag_resource(&self, r: TagResourceRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            let mut job = self.tagged_job(txn.s, &r.resource_arn)?.clone();
            job.tags = Some(merged(job.tags.as_deref().unwrap_or_default(), &r.tags)?);
            txn.put_job(job);
            Ok(Empty {})
        })
        .await
    }

    pub async fn untag_resource(&self, r: UntagResourceRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            let mut job = self.tagged_job(txn.s, &r.resource_arn)?.clone();
            let kept: Vec<Tag> =
                job.tags.unwrap_or_default().into_iter().filter(|t| !r.tag_keys.contains(&t.key)).collect();
            job.tags = (!kept.is_empty()).then_some(kept);
            txn.put_job(job);
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_tags_for_resource(
        &self,
        r: ListTagsForResourceRequest,
    ) -> ApiResult<ListTagsForResourceResponse> {
        r.check(self.now())?;
        self.read(|s| {
            // At most 50 tags: one page.
            let tags = self.tagged_job(s, &r.resource_arn)?.tags.clone().unwrap_or_default();
            Ok(ListTagsForResourceResponse { tags, next_token: None })
        })
        .await
    }
}
