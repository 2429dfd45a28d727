//! DescribeEndpoint.

use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiResult, Millis};

/// The endpoint types AWS IoT answers, grouped by which Fleetjobs listener serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    /// `iot:Data`, `iot:Data-ATS`: the MQTT listener.
    Data,
    /// `iot:Jobs`: the `iot-jobs-data` mutual-TLS listener.
    Jobs,
    /// `iot:CredentialProvider`: the HTTP listener.
    Http,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeEndpointRequest {
    /// A free string in the model; only the four AWS endpoint types are answered.
    pub endpoint_type: Option<String>,
}

impl DescribeEndpointRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        self.kind().map(|_| ())
    }

    /// The endpoint asked for; `iot:Data` when none is named, as on AWS.
    pub fn kind(&self) -> ApiResult<EndpointType> {
        match self.endpoint_type.as_deref().unwrap_or("iot:Data") {
            "iot:Data" | "iot:Data-ATS" => Ok(EndpointType::Data),
            "iot:Jobs" => Ok(EndpointType::Jobs),
            "iot:CredentialProvider" => Ok(EndpointType::Http),
            other => Err(ApiError::invalid(format!("Endpoint type {other} is not valid."))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeEndpointResponse {
    pub endpoint_address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_types_are_the_aws_ones() {
        let ask = |t: Option<&str>| DescribeEndpointRequest { endpoint_type: t.map(str::to_string) }.kind();
        assert_eq!(ask(None).unwrap(), EndpointType::Data);
        assert_eq!(ask(Some("iot:Data-ATS")).unwrap(), EndpointType::Data);
        assert_eq!(ask(Some("iot:CredentialProvider")).unwrap(), EndpointType::Http);
        assert_eq!(ask(Some("iot:data")).unwrap_err().message, "Endpoint type iot:data is not valid.");
    }
}
