//! Response shaping, as botocore parses it: JSON bodies, `x-amzn-RequestId`, and for errors
//! the modeled status, `x-amzn-ErrorType`, and a body with `message` and `__type` (plus the
//! extra members some exceptions carry).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use fleetjobs_core::ApiError;
use serde_json::{json, Value};

fn build(status: StatusCode, request_id: &str, error_type: Option<&str>, body: &Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(body).expect("json serializes")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-ErrorType", t);
    }
    r
}

pub fn ok(request_id: &str, body: &Value) -> Response {
    build(StatusCode::OK, request_id, None, body)
}

pub fn error(request_id: &str, e: &ApiError) -> Response {
    let mut body = json!({ "message": e.message, "__type": e.code.name() });
    if let Some(id) = &e.resource_id {
        body["resourceId"] = json!(id);
    }
    if let Some(arn) = &e.resource_arn {
        body["resourceArn"] = json!(arn);
    }
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    build(status, request_id, Some(e.code.name()), &body)
}

/// A refusal outside the modeled exceptions (oversized or late body), AWS-shaped so that
/// botocore reads its name, with `Connection: close`: the rest of the body is never read.
pub fn transport_error(request_id: &str, status: u16, error_type: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = build(status, request_id, Some(error_type), &json!({ "message": message, "__type": error_type }));
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
