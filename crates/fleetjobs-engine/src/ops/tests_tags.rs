//! TagResource, UntagResource and ListTagsForResource on jobs, built from request types.

use fleetjobs_core::model::Tag;
use fleetjobs_core::ops::tags::*;
use fleetjobs_core::ErrorCode;

use crate::tests::{harness, job_request};

fn tag(k: &str, v: &str) -> Tag {
    Tag { key: k.into(), value: Some(v.into()) }
}

fn list(arn: &str) -> ListTagsForResourceRequest {
    ListTagsForResourceRequest { resource_arn: arn.into(), next_token: None }
}

#[tokio::test]
async fn job_tags_are_added_replaced_removed_and_kept() {
    let h = harness();
    h.thing("pi").await;
    let mut r = job_request("tagged", &["pi"]);
    r.tags = Some(vec![tag("team", "edge")]);
    let arn = h.engine.create_job(r).await.unwrap().job_arn;
    assert_eq!(h.engine.list_tags_for_resource(list(&arn)).await.unwrap().tags, vec![tag("team", "edge")]);

    let add = TagResourceRequest { resource_arn: arn.clone(), tags: vec![tag("team", "fleet"), tag("tier", "1")] };
    h.engine.tag_resource(add).await.unwrap();
    let remove = UntagResourceRequest { resource_arn: arn.clone(), tag_keys: vec!["tier".into(), "absent".into()] };
    h.engine.untag_resource(remove).await.unwrap();
    let h = h.reopen();
    assert_eq!(h.engine.list_tags_for_resource(list(&arn)).await.unwrap().tags, vec![tag("team", "fleet")]);
}

#[tokio::test]
async fn tags_on_what_is_not_there_or_not_taggable_are_refused() {
    let h = harness();
    h.thing("pi").await;
    let arn = h.engine.create_job(job_request("j", &["pi"])).await.unwrap().job_arn;
    let missing = TagResourceRequest { resource_arn: arn.replace("job/j", "job/nope"), tags: vec![tag("k", "v")] };
    assert_eq!(h.engine.tag_resource(missing).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let thing = TagResourceRequest { resource_arn: "arn:aws:iot:::thing/pi".into(), tags: vec![tag("k", "v")] };
    assert_eq!(h.engine.tag_resource(thing).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
    h.engine.tag_resource(TagResourceRequest { resource_arn: arn.clone(), tags: many }).await.unwrap();
    let one_more = TagResourceRequest { resource_arn: arn.clone(), tags: vec![tag("k50", "v")] };
    assert_eq!(h.engine.tag_resource(one_more).await.unwrap_err().code, ErrorCode::LimitExceeded);
    assert_eq!(
        h.engine.list_tags_for_resource(list(&arn)).await.unwrap().tags.len(),
        50,
        "the refused tag changed nothing"
    );
}

#[tokio::test]
async fn thing_groups_are_taggable_too() {
    use fleetjobs_core::ops::thing_groups::CreateThingGroupRequest;
    let h = harness();
    let r = CreateThingGroupRequest { thing_group_name: "fleet".into(), ..Default::default() };
    let arn = h.engine.create_thing_group(r).await.unwrap().thing_group_arn;
    h.engine
        .tag_resource(TagResourceRequest { resource_arn: arn.clone(), tags: vec![tag("site", "berlin")] })
        .await
        .unwrap();
    assert_eq!(h.engine.list_tags_for_resource(list(&arn)).await.unwrap().tags, vec![tag("site", "berlin")]);
    let gone = arn.replace("fleet", "nope");
    assert_eq!(h.engine.list_tags_for_resource(list(&gone)).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}
