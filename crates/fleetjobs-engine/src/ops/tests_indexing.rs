//! Unit tests of fleet indexing: the configuration is stored and survives a restart, and
//! SearchIndex, DescribeIndex and ListIndices answer only while thing indexing is on.

use std::collections::BTreeMap;

use fleetjobs_core::model::ThingIndexingMode;
use fleetjobs_core::ops::indexing::*;
use fleetjobs_core::ops::things::{AttributePayload, CreateThingRequest};
use fleetjobs_core::ErrorCode;

use crate::tests::harness;

fn registry_on() -> UpdateIndexingConfigurationRequest {
    UpdateIndexingConfigurationRequest {
        thing_indexing_configuration: Some(ThingIndexingConfiguration {
            thing_indexing_mode: ThingIndexingMode::Registry,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn search(q: &str) -> SearchIndexRequest {
    SearchIndexRequest { query_string: q.into(), ..Default::default() }
}

#[tokio::test]
async fn search_answers_the_things_a_query_matches_while_indexing_is_on() {
    let h = harness();
    for (name, color) in [("a1", "red"), ("a2", "blue"), ("b1", "red")] {
        let attributes: BTreeMap<_, _> = [("color".to_string(), color.to_string())].into();
        let r = CreateThingRequest {
            thing_name: name.into(),
            attribute_payload: Some(AttributePayload { attributes, merge: false }),
            ..Default::default()
        };
        h.engine.create_thing(r).await.unwrap();
    }
    // AWS's default: indexing OFF, no index to search, describe or list.
    let off = h.engine.get_indexing_configuration(GetIndexingConfigurationRequest {}).await.unwrap();
    assert_eq!(off.thing_indexing_configuration.thing_indexing_mode, ThingIndexingMode::Off);
    assert_eq!(h.engine.search_index(search("thingName:a*")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let describe = DescribeIndexRequest { index_name: THINGS_INDEX.into() };
    assert_eq!(h.engine.describe_index(describe.clone()).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    assert!(h.engine.list_indices(ListIndicesRequest::default()).await.unwrap().index_names.is_empty());

    h.engine.update_indexing_configuration(registry_on()).await.unwrap();
    let found = h.engine.search_index(search("thingName:a* AND attributes.color:red")).await.unwrap();
    assert_eq!(found.things.iter().map(|t| t.thing_name.as_str()).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(found.things[0].attributes["color"], "red");
    let paged = h.engine.search_index(SearchIndexRequest { max_results: Some(2), ..search("thingName:*") }).await;
    let paged = paged.unwrap();
    assert_eq!((paged.things.len(), paged.next_token.as_deref()), (2, Some("2")));
    let rest = SearchIndexRequest { next_token: paged.next_token, ..search("thingName:*") };
    assert_eq!(h.engine.search_index(rest).await.unwrap().things[0].thing_name, "b1");
    let other = SearchIndexRequest { index_name: Some("AWS_ThingGroups".into()), ..search("thingName:*") };
    assert_eq!(h.engine.search_index(other).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.describe_index(describe).await.unwrap().index_status, "ACTIVE");
    assert_eq!(h.engine.list_indices(ListIndicesRequest::default()).await.unwrap().index_names, [THINGS_INDEX]);

    // The configuration is stored.
    let h = h.reopen();
    let on = h.engine.get_indexing_configuration(GetIndexingConfigurationRequest {}).await.unwrap();
    assert_eq!(on.thing_indexing_configuration.thing_indexing_mode, ThingIndexingMode::Registry);
}
