//! The control plane over HTTP: the AWS `iot` REST-JSON API, authenticated with SigV4.
//!
//! One axum fallback handler does it all, in order: authenticate (`sigv4`), route by the
//! signing service, method and path ([`ops::OPERATIONS`], the one table), merge path labels,
//! query parameters, headers and the JSON body into one [`Input`], call the engine, and
//! shape the answer (`response`). Operations live in the engine; nothing here knows jobs.

pub mod ops;
mod response;
pub mod sigv4;

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use fleetjobs_core::{ApiError, ErrorCode};
use fleetjobs_engine::{Engine, Input};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use ops::{Kind, Operation, Service};

/// Largest request body accepted (a job document is at most 32 KB; leave room for JSON).
const MAX_BODY: usize = 1 << 20;

/// The axum router of the control plane.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().fallback(handle).with_state(engine)
}

/// Serve the control plane on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).with_graceful_shutdown(shutdown).await
}

async fn handle(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    match dispatch(&engine, request).await {
        Ok((op, value)) => {
            tracing::debug!(operation = op, "ok");
            response::ok(&request_id, &value)
        }
        Err(e) => {
            tracing::debug!(code = e.code.name(), message = %e.message, "error");
            response::error(&request_id, &e)
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

async fn dispatch(engine: &Engine, request: Request) -> Result<(&'static str, Value), ApiError> {
    let (parts, body) = request.into_parts();
    let checked = sigv4::check_headers(&parts.headers, &engine.config().scope.region, SystemTime::now(), |key| {
        engine.secret_for(key)
    })
    .map_err(|e| ApiError::new(auth_code(&e), e.message()))?;
    let body = to_bytes(body, MAX_BODY).await.map_err(|_| ApiError::invalid("The request body is too large"))?;
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");

    let credential = checked
        .verify_body(&parts.method, raw_path, raw_query, &parts.headers, &body)
        .map_err(|e| ApiError::new(auth_code(&e), e.message()))?;
    let service = Service::from_signing_name(&credential.service).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownOperation, format!("The service {} is not served here", credential.service))
    })?;

    let segments: Vec<String> = raw_path.split('/').skip(1).filter(|s| !s.is_empty()).map(decode).collect();
    let (op, labels) = ops::route(service, parts.method.as_str(), &segments).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownOperation, format!("No operation matches {} {raw_path}", parts.method))
    })?;

    let mut input = body_object(&body)?;
    for (label, value) in labels {
        input.insert(label.to_string(), Value::String(value.to_string()));
    }
    query_members(op, raw_query, &mut input)?;
    header_members(op, &parts.headers, &mut input);
    let value = (op.handler)(engine, Input(input)).await?;
    Ok((op.name, value))
}

fn auth_code(e: &sigv4::SigV4Error) -> ErrorCode {
    match e {
        sigv4::SigV4Error::Missing => ErrorCode::MissingAuthenticationToken,
        sigv4::SigV4Error::Malformed(_) => ErrorCode::IncompleteSignature,
        sigv4::SigV4Error::UnknownAccessKey => ErrorCode::UnrecognizedClient,
        sigv4::SigV4Error::SignatureMismatch | sigv4::SigV4Error::Expired(_) | sigv4::SigV4Error::WrongRegion(_) => {
            ErrorCode::InvalidSignature
        }
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("The request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("The request body is not valid JSON: {e}"))),
    }
}

fn query_members(op: &Operation, raw_query: &str, input: &mut Map<String, Value>) -> Result<(), ApiError> {
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        let Some((_, member, kind)) = op.query.iter().find(|(wire, _, _)| *wire == k) else { continue };
        let value = match kind {
            Kind::Str => Value::String(v),
            Kind::Bool => match v.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(ApiError::invalid(format!("Invalid value for {k}: expected true or false"))),
            },
            Kind::Int => Value::from(
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(format!("Invalid value for {k}: expected an integer")))?,
            ),
        };
        input.insert(member.to_string(), value);
    }
    Ok(())
}

fn header_members(op: &Operation, headers: &HeaderMap, input: &mut Map<String, Value>) {
    for (name, member) in op.headers {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            input.insert(member.to_string(), Value::String(v.to_string()));
        }
    }
}
