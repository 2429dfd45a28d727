//! The `iot` control-plane API as a client: one SigV4-signed JSON request per call, signed by
//! the server crate's own signer (`fleetjobs_api::sigv4::sign`, botocore's algorithm).

use std::time::{Duration, SystemTime};

use fleetjobs_api::credentials::Credentials;
use fleetjobs_api::sigv4::{sign, SigningParams};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::Value;

/// How long one API call may take, connect to last byte.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{operation}: HTTP {status} {code}: {message}")]
    Service { operation: String, status: u16, code: String, message: String },
    #[error("{operation}: {source}")]
    Transport { operation: String, source: reqwest::Error },
    #[error("the endpoint URL {0} is not http://HOST[:PORT]")]
    Endpoint(String),
    #[error("{0}: header value is not visible ASCII")]
    Header(String),
}

impl ApiError {
    /// The AWS error code (`ResourceAlreadyExistsException`...), if the service answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A signed client of one Fleetjobs (or AWS) `iot` endpoint.
pub struct Api {
    http: reqwest::Client,
    /// `http://host:port`, no trailing slash.
    endpoint: String,
    /// `host:port` as the Host header carries it (it is signed).
    host: String,
    region: String,
    credentials: Credentials,
}

impl Api {
    pub fn new(endpoint: &str, region: &str, credentials: Credentials) -> Result<Api, ApiError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| ApiError::Endpoint(endpoint.clone()))?
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|source| ApiError::Transport { operation: "client".into(), source })?;
        Ok(Api { http, endpoint, host, region: region.to_string(), credentials })
    }

    /// One call: `path` is already percent-encoded as it goes on the wire (the names the
    /// simulator makes need none), `query` the raw query string.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&Value>,
        extra_headers: &[(&'static str, &str)],
    ) -> Result<Value, ApiError> {
        let operation = format!("{method} {path}");
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut headers = HeaderMap::new();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| ApiError::Header(v.to_string()));
        headers.insert("host", value(&self.host)?);
        if !body.is_empty() {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
        for (k, v) in extra_headers {
            headers.insert(HeaderName::from_static(k), value(v)?);
        }
        if let Some(token) = &self.credentials.session_token {
            headers.insert("x-amz-security-token", value(token)?);
        }
        let params = SigningParams {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: &self.credentials.secret_access_key,
            region: &self.region,
            service: "iot",
            now: SystemTime::now(),
        };
        sign(&method, path, query, &mut headers, &body, &params);
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let transport = |source| ApiError::Transport { operation: operation.clone(), source };
        let resp = self.http.request(method, url).headers(headers).body(body).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let error_type = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(String::from);
        let bytes = resp.bytes().await.map_err(transport)?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let code = error_type
            .or_else(|| json.get("__type").and_then(Value::as_str).map(String::from))
            .map(|c| c.split(':').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| "Unknown".into());
        let message = json
            .get("message")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(ApiError::Service { operation, status, code, message })
    }
}
