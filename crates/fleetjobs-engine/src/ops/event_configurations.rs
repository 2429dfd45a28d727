//! Event configurations: UpdateEventConfigurations, DescribeEventConfigurations.

use fleetjobs_core::ops::event_configurations::*;
use fleetjobs_core::ops::Empty;
use fleetjobs_core::ApiResult;

use crate::Engine;

impl Engine {
    pub async fn update_event_configurations(&self, r: UpdateEventConfigurationsRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let updates = r.event_configurations.unwrap_or_default();
        self.write(|txn| {
            let mut c = txn.s.event_configurations().clone();
            for (event_type, configuration) in &updates {
                if let Some(enabled) = configuration.enabled {
                    c.enabled.insert(event_type.clone(), enabled);
                }
            }
            c.last_modified_at = txn.now;
            txn.put_event_configurations(c);
            Ok(Empty {})
        })
        .await
    }

    pub async fn describe_event_configurations(
        &self,
        r: DescribeEventConfigurationsRequest,
    ) -> ApiResult<DescribeEventConfigurationsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let c = s.event_configurations();
            Ok(DescribeEventConfigurationsResponse {
                event_configurations: c
                    .enabled
                    .iter()
                    .map(|(event_type, enabled)| (event_type.clone(), Configuration { enabled: Some(*enabled) }))
                    .collect(),
                creation_date: c.created_at.into(),
                last_modified_date: c.last_modified_at.into(),
            })
        })
        .await
    }
}
