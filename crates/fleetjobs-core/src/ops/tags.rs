//! Resource tags: TagResource, UntagResource, ListTagsForResource (jobs and thing groups), and
//! the tag rules CreateJob and CreateThingGroup share.

use serde::{Deserialize, Serialize};

use crate::model::Tag;
use crate::{ApiError, ApiResult, ErrorCode, Millis};

/// At most this many tags on one resource.
pub const MAX_TAGS: usize = 50;

/// AWS's tag rules: key 1..128 characters, not starting with the reserved `aws:`, value at
/// most 256 characters.
pub fn check_tag(t: &Tag) -> ApiResult<()> {
    if !(1..=128).contains(&t.key.chars().count()) {
        return Err(ApiError::invalid("Tag keys must have length between 1 and 128"));
    }
    if t.key.starts_with("aws:") {
        return Err(ApiError::invalid("Tag keys starting with aws: are reserved"));
    }
    if t.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
        return Err(ApiError::invalid("Tag values must have at most 256 characters"));
    }
    Ok(())
}

/// The tags of a resource once `new` is applied: same key replaces, at most [`MAX_TAGS`].
pub fn merged(existing: &[Tag], new: &[Tag]) -> ApiResult<Vec<Tag>> {
    let mut out: Vec<Tag> = existing.iter().filter(|t| !new.iter().any(|n| n.key == t.key)).cloned().collect();
    for t in new {
        if let Some(i) = out.iter().position(|o| o.key == t.key) {
            out.remove(i);
        }
        out.push(t.clone());
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::new(ErrorCode::LimitExceeded, format!("A resource can have at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: Vec<Tag>,
}

impl TagResourceRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        if self.tags.is_empty() || self.tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(format!("tags must have between 1 and {MAX_TAGS} items")));
        }
        self.tags.iter().try_for_each(check_tag)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

impl UntagResourceRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        if self.tag_keys.iter().any(|k| !(1..=128).contains(&k.chars().count())) {
            return Err(ApiError::invalid("Tag keys must have length between 1 and 128"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: String,
    pub next_token: Option<String>,
}

impl ListTagsForResourceRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: k.into(), value: Some(v.into()) }
    }

    #[test]
    fn tags_merge_by_key_within_the_limit() {
        let merged = merged(&[tag("a", "1"), tag("b", "2")], &[tag("b", "3"), tag("c", "4")]).unwrap();
        assert_eq!(merged, vec![tag("a", "1"), tag("b", "3"), tag("c", "4")]);
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(super::merged(&fifty, &[tag("new", "v")]).unwrap_err().code, ErrorCode::LimitExceeded);
        assert!(super::merged(&fifty, &[tag("k1", "w")]).is_ok(), "replacing a key adds none");
    }

    #[test]
    fn tag_rules() {
        assert!(check_tag(&tag("aws:owner", "x")).is_err());
        assert!(check_tag(&tag("", "x")).is_err());
        assert!(check_tag(&tag("k", &"v".repeat(257))).is_err());
        let r = TagResourceRequest { resource_arn: "arn".into(), tags: vec![] };
        assert!(r.check(0).is_err(), "at least one tag");
    }
}
