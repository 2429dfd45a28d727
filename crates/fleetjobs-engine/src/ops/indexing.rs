//! Fleet indexing: the configuration, and SearchIndex / DescribeIndex / ListIndices over the
//! registry, with the query language of dynamic thing groups.

use fleetjobs_core::model::ThingIndexingMode;
use fleetjobs_core::ops::indexing::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult};

use crate::state::State;
use crate::Engine;

/// What DescribeIndex answers for `AWS_Things` (AWS's name for a registry-only index).
const REGISTRY_SCHEMA: &str = "REGISTRY";

/// The index `name`, when it exists: `AWS_Things` while thing indexing is on. Thing groups
/// are not indexed (UpdateIndexingConfiguration refuses to turn them on).
fn existing_index(s: &State, name: &str) -> ApiResult<()> {
    if name == THINGS_INDEX && s.indexing.thing_indexing_mode != ThingIndexingMode::Off {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("Index {name} does not exist")))
    }
}

impl Engine {
    pub async fn get_indexing_configuration(
        &self,
        r: GetIndexingConfigurationRequest,
    ) -> ApiResult<GetIndexingConfigurationResponse> {
        r.check(self.now())?;
        self.read(|s| Ok(GetIndexingConfigurationResponse::from(s.indexing))).await
    }

    pub async fn update_indexing_configuration(&self, r: UpdateIndexingConfigurationRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            let c = r.apply_to(txn.s.indexing);
            txn.put_indexing_configuration(c);
            Ok(Empty {})
        })
        .await
    }

    pub async fn search_index(&self, r: SearchIndexRequest) -> ApiResult<SearchIndexResponse> {
        r.check(self.now())?;
        let query = fleetjobs_core::ops::dynamic_groups::parse_query(&r.query_string)?;
        self.read(|s| {
            existing_index(s, r.index())?;
            // Things in name order: the order is stable, so a nextToken (an offset) pages.
            let things: Vec<ThingDocument> = s
                .things
                .values()
                .filter(|t| query.matches(&s.thing_view(t)))
                .map(|t| ThingDocument {
                    thing_name: t.thing_name.clone(),
                    thing_id: t.thing_id.clone(),
                    thing_type_name: t.thing_type_name.clone(),
                    thing_group_names: s.groups_of_thing(&t.thing_name).map(str::to_string).collect(),
                    attributes: t.attributes.clone(),
                })
                .collect();
            let size = r.max_results.unwrap_or(MAX_SEARCH_RESULTS);
            let (things, next_token) = page(things, r.next_token.as_deref(), Some(size), 0)?;
            Ok(SearchIndexResponse { things, next_token })
        })
        .await
    }

    pub async fn describe_index(&self, r: DescribeIndexRequest) -> ApiResult<DescribeIndexResponse> {
        r.check(self.now())?;
        self.read(|s| {
            existing_index(s, &r.index_name)?;
            Ok(DescribeIndexResponse {
                index_name: r.index_name.clone(),
                index_status: "ACTIVE".into(),
                schema: REGISTRY_SCHEMA.into(),
            })
        })
        .await
    }

    pub async fn list_indices(&self, r: ListIndicesRequest) -> ApiResult<ListIndicesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let names: Vec<String> =
                existing_index(s, THINGS_INDEX).map(|()| THINGS_INDEX.to_string()).into_iter().collect();
            let (index_names, next_token) = page(names, r.next_token.as_deref(), r.max_results, 500)?;
            Ok(ListIndicesResponse { index_names, next_token })
        })
        .await
    }
}
