//! Unit tests of the typed thing type operations, built from request types: create (same
//! again, different again), describe, list with its filter, update, deprecate and undo,
//! delete only when deprecated and unused, things with types (existence, deprecation, the
//! attribute limits, removal), tags, and persistence.

use std::collections::BTreeMap;

use fleetjobs_core::model::Tag;
use fleetjobs_core::ops::tags::{ListTagsForResourceRequest, TagResourceRequest};
use fleetjobs_core::ops::thing_types::*;
use fleetjobs_core::ops::things::*;
use fleetjobs_core::ErrorCode;

use crate::tests::{harness, Harness};

fn create(name: &str, description: Option<&str>) -> CreateThingTypeRequest {
    CreateThingTypeRequest {
        thing_type_name: name.into(),
        thing_type_properties: Some(ThingTypeProperties {
            thing_type_description: description.map(Into::into),
            searchable_attributes: Some(vec!["serial".into()]),
            mqtt5_configuration: None,
        }),
        tags: None,
    }
}

fn by_name(name: &str) -> ThingTypeNameRequest {
    ThingTypeNameRequest { thing_type_name: name.into() }
}

fn deprecate(name: &str, undo: bool) -> DeprecateThingTypeRequest {
    DeprecateThingTypeRequest { thing_type_name: name.into(), undo_deprecate: undo }
}

fn attributes(n: usize) -> AttributePayload {
    AttributePayload { attributes: (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect(), merge: false }
}

fn typed_thing(name: &str, thing_type: Option<&str>, n_attributes: usize) -> CreateThingRequest {
    CreateThingRequest {
        thing_name: name.into(),
        thing_type_name: thing_type.map(Into::into),
        attribute_payload: Some(attributes(n_attributes)),
        billing_group_name: None,
    }
}

fn update(name: &str) -> UpdateThingRequest {
    UpdateThingRequest { thing_name: name.into(), ..Default::default() }
}

async fn thing_type_of(h: &Harness, thing: &str) -> Option<String> {
    let r = DescribeThingRequest { thing_name: thing.into() };
    h.engine.describe_thing(r).await.unwrap().thing_type_name
}

#[tokio::test]
async fn types_are_created_once_described_listed_and_survive_a_restart() {
    let h = harness();
    let created = h.engine.create_thing_type(create("bulb", Some("Light bulbs"))).await.unwrap();
    assert_eq!(created.thing_type_arn, "arn:aws:iot:us-east-1:123456789012:thingtype/bulb");
    // The same again answers the same type; different properties are another type.
    let again = h.engine.create_thing_type(create("bulb", Some("Light bulbs"))).await.unwrap();
    assert_eq!(again, created);
    let other = h.engine.create_thing_type(create("bulb", Some("Lamps"))).await.unwrap_err();
    assert_eq!(other.code, ErrorCode::ResourceAlreadyExists);
    h.engine.create_thing_type(create("switch", None)).await.unwrap();

    let h = h.reopen();
    let d = h.engine.describe_thing_type(by_name("bulb")).await.unwrap();
    assert_eq!((d.thing_type_id, d.thing_type_arn), (created.thing_type_id, created.thing_type_arn));
    assert_eq!(d.thing_type_properties.thing_type_description.as_deref(), Some("Light bulbs"));
    assert_eq!(d.thing_type_properties.searchable_attributes, Some(vec!["serial".to_string()]));
    assert!(!d.thing_type_metadata.deprecated && d.thing_type_metadata.deprecation_date.is_none());

    let all = h.engine.list_thing_types(ListThingTypesRequest::default()).await.unwrap();
    let names: Vec<_> = all.thing_types.iter().map(|t| t.thing_type_name.as_str()).collect();
    assert_eq!(names, ["bulb", "switch"]);
    let one = ListThingTypesRequest { thing_type_name: Some("switch".into()), ..Default::default() };
    assert_eq!(h.engine.list_thing_types(one).await.unwrap().thing_types.len(), 1);
    let page = ListThingTypesRequest { max_results: Some(1), ..Default::default() };
    let first = h.engine.list_thing_types(page).await.unwrap();
    assert_eq!((first.thing_types.len(), first.next_token.as_deref()), (1, Some("1")));

    let missing = h.engine.describe_thing_type(by_name("nope")).await.unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (ErrorCode::ResourceNotFound, "Thing type nope does not exist")
    );
}

#[tokio::test]
async fn updates_replace_the_members_given() {
    let h = harness();
    h.engine.create_thing_type(create("bulb", Some("Light bulbs"))).await.unwrap();
    let r = UpdateThingTypeRequest {
        thing_type_name: "bulb".into(),
        thing_type_properties: Some(ThingTypeProperties {
            searchable_attributes: Some(vec!["serial".into(), "watts".into()]),
            ..Default::default()
        }),
    };
    h.engine.update_thing_type(r).await.unwrap();
    let p = h.engine.describe_thing_type(by_name("bulb")).await.unwrap().thing_type_properties;
    assert_eq!(p.thing_type_description.as_deref(), Some("Light bulbs"));
    assert_eq!(p.searchable_attributes.unwrap(), ["serial", "watts"]);
    let missing = UpdateThingTypeRequest { thing_type_name: "nope".into(), thing_type_properties: None };
    assert_eq!(h.engine.update_thing_type(missing).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn deprecation_blocks_new_things_and_is_undone() {
    let h = harness();
    h.engine.create_thing_type(create("bulb", None)).await.unwrap();
    h.engine.create_thing(typed_thing("old", Some("bulb"), 0)).await.unwrap();
    h.engine.deprecate_thing_type(deprecate("bulb", false)).await.unwrap();
    let d = h.engine.describe_thing_type(by_name("bulb")).await.unwrap().thing_type_metadata;
    assert!(d.deprecated && d.deprecation_date.is_some());

    let refused = h.engine.create_thing(typed_thing("new", Some("bulb"), 0)).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidRequest);
    h.thing("plain").await;
    let mut r = update("plain");
    r.thing_type_name = Some("bulb".into());
    assert_eq!(h.engine.update_thing(r).await.unwrap_err().code, ErrorCode::InvalidRequest);
    // A thing that has the type keeps it through updates.
    let mut r = update("old");
    r.thing_type_name = Some("bulb".into());
    r.attribute_payload = Some(attributes(10));
    h.engine.update_thing(r).await.unwrap();

    h.engine.deprecate_thing_type(deprecate("bulb", true)).await.unwrap();
    let d = h.engine.describe_thing_type(by_name("bulb")).await.unwrap().thing_type_metadata;
    assert!(!d.deprecated && d.deprecation_date.is_none());
    h.engine.create_thing(typed_thing("new", Some("bulb"), 0)).await.unwrap();
    let missing = h.engine.deprecate_thing_type(deprecate("nope", false)).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn only_a_deprecated_unused_type_is_deleted() {
    let h = harness();
    h.engine.create_thing_type(create("bulb", None)).await.unwrap();
    h.engine.create_thing(typed_thing("lamp", Some("bulb"), 0)).await.unwrap();
    let not_deprecated = h.engine.delete_thing_type(by_name("bulb")).await.unwrap_err();
    assert_eq!(not_deprecated.code, ErrorCode::InvalidRequest);
    h.engine.deprecate_thing_type(deprecate("bulb", false)).await.unwrap();
    let in_use = h.engine.delete_thing_type(by_name("bulb")).await.unwrap_err();
    assert_eq!(in_use.code, ErrorCode::InvalidRequest);

    let mut r = update("lamp");
    r.remove_thing_type = true;
    h.engine.update_thing(r).await.unwrap();
    assert_eq!(thing_type_of(&h, "lamp").await, None);
    h.engine.delete_thing_type(by_name("bulb")).await.unwrap();
    let h = h.reopen();
    let gone = h.engine.describe_thing_type(by_name("bulb")).await.unwrap_err();
    assert_eq!(gone.code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.delete_thing_type(by_name("bulb")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn things_take_existing_types_and_their_attribute_limit() {
    let h = harness();
    let missing = h.engine.create_thing(typed_thing("lamp", Some("bulb"), 0)).await.unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (ErrorCode::ResourceNotFound, "Thing type bulb does not exist")
    );
    h.engine.create_thing_type(create("bulb", None)).await.unwrap();
    h.engine.create_thing_type(create("switch", None)).await.unwrap();

    // Without a type: 3 attributes; with one: 50.
    let r = typed_thing("many", None, 4);
    assert_eq!(h.engine.create_thing(r).await.unwrap_err().code, ErrorCode::InvalidRequest);
    h.engine.create_thing(typed_thing("many", Some("bulb"), MAX_TYPED_ATTRIBUTES)).await.unwrap();
    let r = typed_thing("more", Some("bulb"), MAX_TYPED_ATTRIBUTES + 1);
    assert_eq!(h.engine.create_thing(r).await.unwrap_err().code, ErrorCode::InvalidRequest);
    // Same thing again: the same answer; with another type: another thing.
    h.engine.create_thing(typed_thing("many", Some("bulb"), MAX_TYPED_ATTRIBUTES)).await.unwrap();
    let r = typed_thing("many", Some("switch"), MAX_TYPED_ATTRIBUTES);
    assert_eq!(h.engine.create_thing(r).await.unwrap_err().code, ErrorCode::ResourceAlreadyExists);

    // Removing the type of a thing with more than 3 attributes would break the limit.
    let mut r = update("many");
    r.remove_thing_type = true;
    assert_eq!(h.engine.update_thing(r.clone()).await.unwrap_err().code, ErrorCode::InvalidRequest);
    r.attribute_payload = Some(attributes(2));
    h.engine.update_thing(r).await.unwrap();
    let mut r = update("many");
    r.thing_type_name = Some("switch".into());
    h.engine.update_thing(r).await.unwrap();
    let mut r = update("many");
    r.thing_type_name = Some("nope".into());
    let missing = h.engine.update_thing(r).await.unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (ErrorCode::ResourceNotFound, "Thing type nope does not exist")
    );

    h.thing("plain").await;
    let h = h.reopen();
    assert_eq!(thing_type_of(&h, "many").await.as_deref(), Some("switch"));
    let list = |t: Option<&str>| ListThingsRequest { thing_type_name: t.map(Into::into), ..Default::default() };
    let switches = h.engine.list_things(list(Some("switch"))).await.unwrap().things;
    assert_eq!(switches.len(), 1);
    assert_eq!((switches[0].thing_name.as_str(), switches[0].thing_type_name.as_deref()), ("many", Some("switch")));
    assert!(h.engine.list_things(list(Some("bulb"))).await.unwrap().things.is_empty());
    assert_eq!(h.engine.list_things(list(None)).await.unwrap().things.len(), 2);
}

#[tokio::test]
async fn thing_types_carry_tags() {
    let h = harness();
    let mut r = create("bulb", None);
    r.tags = Some(vec![Tag { key: "team".into(), value: Some("edge".into()) }]);
    let arn = h.engine.create_thing_type(r).await.unwrap().thing_type_arn;
    let tier = Tag { key: "tier".into(), value: Some("1".into()) };
    h.engine.tag_resource(TagResourceRequest { resource_arn: arn.clone(), tags: vec![tier] }).await.unwrap();
    let h = h.reopen();
    let list = ListTagsForResourceRequest { resource_arn: arn.clone(), next_token: None };
    let tags: BTreeMap<String, Option<String>> =
        h.engine.list_tags_for_resource(list).await.unwrap().tags.into_iter().map(|t| (t.key, t.value)).collect();
    assert_eq!(tags.len(), 2);
    let missing = ListTagsForResourceRequest { resource_arn: arn.replace("/bulb", "/nope"), next_token: None };
    assert_eq!(h.engine.list_tags_for_resource(missing).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}
