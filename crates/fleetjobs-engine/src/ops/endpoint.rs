//! DescribeEndpoint: the addresses come from the configuration, not the state.

use fleetjobs_core::ops::endpoint::*;
use fleetjobs_core::ApiResult;

use crate::Engine;

impl Engine {
    pub async fn describe_endpoint(&self, r: DescribeEndpointRequest) -> ApiResult<DescribeEndpointResponse> {
        r.check(self.now())?;
        let address = match r.kind()? {
            EndpointType::Data => &self.config.mqtt_endpoint,
            EndpointType::Jobs => &self.config.jobs_endpoint,
            EndpointType::Http => &self.config.http_endpoint,
        };
        Ok(DescribeEndpointResponse { endpoint_address: address.clone() })
    }
}
