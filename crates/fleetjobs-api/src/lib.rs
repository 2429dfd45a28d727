//! The control plane over HTTP: the AWS `iot` REST-JSON API, authenticated with SigV4.
//!
//! `server` accepts connections within [`HttpLimits`]. One axum fallback handler does the
//! rest, in order: check the signature's headers (`sigv4`), read the body (bounded in size and
//! time), verify the signature, route by the signing service, method and path
//! ([`ops::OPERATIONS`], the one table), merge path labels, query parameters, headers and the
//! JSON body into one object of members, which [`ops::call`] turns into the operation's request
//! type for the engine method, and shape the answer (`response`).
//! Operations live in the engine; nothing here knows jobs.

pub mod ops;
mod response;
mod server;
pub mod sigv4;
mod write_deadline;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Router;
use fleetjobs_core::policy::IotAction;
use fleetjobs_core::{ApiError, ErrorCode};
use fleetjobs_engine::Engine;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use ops::{Kind, Operation, Service};
pub use server::HttpLimits;

/// Largest request body accepted (a job document is at most 32 KB; leave room for JSON).
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
    body_timeout: Duration,
    /// The device listener: `iot-jobs-data` only, the caller is its client certificate.
    devices: bool,
}

/// Why a request was refused before it reached an operation, beyond the AWS errors.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("Request body larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("Request body not received within {} s", .0.as_secs_f32())]
    BodyTimeout(Duration),
}

/// The axum router of the control plane.
pub fn router(engine: Arc<Engine>, limits: &HttpLimits) -> Router {
    Router::new().fallback(handle).with_state(Api { engine, body_timeout: limits.body_timeout, devices: false })
}

/// Serve `app` (the control plane's [`router`], plus whatever routes the binary adds beside
/// it) on `listener`, within `limits`, until `shutdown` resolves.
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(app, listener, &limits, None, shutdown).await
}

/// Serve the `iot-jobs-data` API to devices on `listener` over mutual TLS (`tls` requires a
/// client certificate, as the MQTT listener does): the same table and engine methods as the
/// SigV4 callers, authorized by the certificate's policies instead of a signature.
pub async fn serve_jobs_data(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app =
        Router::new().fallback(handle).with_state(Api { engine, body_timeout: limits.body_timeout, devices: true });
    server::serve(app, listener, &limits, Some(tokio_rustls::TlsAcceptor::from(tls)), shutdown).await
}

/// One request: answer it, and log one line (operation, status, milliseconds) at info, so
/// that an operator sees every call at the default log level.
async fn handle(State(api): State<Api>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut operation = "-";
    let response = match dispatch(&api, request, &mut operation).await {
        Ok(value) => response::ok(&request_id, &value),
        Err(Refused::Api(e)) => {
            tracing::debug!(code = e.code.name(), message = %e.message, "error");
            response::error(&request_id, &e)
        }
        Err(e @ Refused::TooLarge) => {
            response::transport_error(&request_id, 413, "RequestEntityTooLargeException", &e.to_string())
        }
        Err(e @ Refused::BodyTimeout(_)) => {
            tracing::debug!(error = %e, "body timeout");
            response::transport_error(&request_id, 408, "RequestTimeoutException", &e.to_string())
        }
    };
    let error = response.headers().get("x-amzn-ErrorType").and_then(|v| v.to_str().ok()).unwrap_or("");
    let elapsed = started.elapsed().as_secs_f64();
    tracing::info!("{operation} {} {error} {:.1} ms", response.status().as_u16(), elapsed * 1000.0);
    // Labels are bounded: operations come from the table ("-" when none matched), error codes
    // from the AWS error set.
    let listener = if api.devices { "jobs_data" } else { "api" };
    metrics::histogram!("fleetjobs_api_request_duration_seconds", "operation" => operation, "listener" => listener)
        .record(elapsed);
    if !error.is_empty() {
        let code = error.to_string();
        metrics::counter!("fleetjobs_api_errors_total", "operation" => operation, "code" => code).increment(1);
    }
    response
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Authenticates in two steps so that a client is refused on its headers alone (unknown key,
/// stale date, other region, oversized `Content-Length`) before anything waits for its body.
async fn dispatch(api: &Api, request: Request, operation: &mut &'static str) -> Result<Value, Refused> {
    let engine = &api.engine;
    let (parts, body) = request.into_parts();
    let checked = if api.devices {
        None
    } else {
        let region = &engine.config().scope.region;
        let checked = sigv4::check_headers(&parts.headers, region, SystemTime::now(), |key| engine.secret_for(key))
            .map_err(auth_error)?;
        Some(checked)
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(Refused::TooLarge);
    }
    let body = read_body(body, api.body_timeout).await?;
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");

    let service = match checked {
        None => Service::IotJobsData,
        Some(checked) => {
            let credential =
                checked.verify_body(&parts.method, raw_path, raw_query, &parts.headers, &body).map_err(auth_error)?;
            Service::from_signing_name(&credential.service).ok_or_else(|| {
                let message = format!("The service {} is not served here", credential.service);
                ApiError::new(ErrorCode::UnknownOperation, message)
            })?
        }
    };

    let segments: Vec<String> = raw_path.split('/').skip(1).filter(|s| !s.is_empty()).map(decode).collect();
    let (op, labels) = ops::route(service, parts.method.as_str(), &segments).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownOperation, format!("No operation matches {} {raw_path}", parts.method))
    })?;
    *operation = op.name;
    if api.devices {
        authorize_device(engine, &parts.extensions, op, &labels)?;
    }

    let mut members = body_object(&body)?;
    for (label, value) in labels {
        let kind = op.labels.iter().find(|(l, _)| *l == label).map_or(Kind::Str, |(_, k)| *k);
        members.insert(label.to_string(), typed(label, value.to_string(), kind)?);
    }
    query_members(op, raw_query, &mut members)?;
    header_members(op, &parts.headers, &mut members);
    let value = (op.handler)(engine, members).await?;
    Ok(value)
}

/// A device's request on the mutual-TLS listener: its certificate's policies must allow the
/// operation's action on the thing of the path.
fn authorize_device(
    engine: &Engine,
    extensions: &axum::http::Extensions,
    op: &Operation,
    labels: &[(&str, &str)],
) -> Result<(), ApiError> {
    let action = match op.name {
        "GetPendingJobExecutions" => IotAction::GetPendingJobExecutions,
        "StartNextPendingJobExecution" => IotAction::StartNextPendingJobExecution,
        "DescribeJobExecution" => IotAction::DescribeJobExecution,
        "UpdateJobExecution" => IotAction::UpdateJobExecution,
        other => return Err(ApiError::new(ErrorCode::UnknownOperation, format!("{other} is not served here"))),
    };
    let thing = labels.iter().find(|(l, _)| *l == "thingName").map_or("", |(_, v)| *v);
    let cert = extensions.get::<server::PeerCertificate>().and_then(|p| p.0.as_deref());
    engine.authorize_jobs_data(cert, action, thing)
}

/// The whole body, at most [`MAX_BODY`] bytes (also when it is chunked), within `timeout`.
async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, Refused> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Err(_) => Err(Refused::BodyTimeout(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(Refused::TooLarge),
        Ok(Err(e)) => Err(ApiError::invalid(format!("The request body could not be read: {e}")).into()),
    }
}

fn auth_error(e: sigv4::SigV4Error) -> Refused {
    ApiError::new(e.code(), e.message()).into()
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    fleetjobs_core::validate::json_object(body).map_err(|e| ApiError::invalid(format!("The request body {e}")))
}

fn query_members(op: &Operation, raw_query: &str, input: &mut Map<String, Value>) -> Result<(), ApiError> {
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        let Some((_, member, kind)) = op.query.iter().find(|(wire, _, _)| *wire == k) else { continue };
        input.insert(member.to_string(), typed(&k, v, *kind)?);
    }
    Ok(())
}

/// A path label or query parameter as the JSON value of its modeled type.
fn typed(name: &str, v: String, kind: Kind) -> Result<Value, ApiError> {
    Ok(match kind {
        Kind::Str => Value::String(v),
        Kind::Bool => match v.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(ApiError::invalid(format!("Invalid value for {name}: expected true or false"))),
        },
        Kind::Int => Value::from(
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("Invalid value for {name}: expected an integer")))?,
        ),
    })
}

fn header_members(op: &Operation, headers: &HeaderMap, input: &mut Map<String, Value>) {
    for (name, member) in op.headers {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            input.insert(member.to_string(), Value::String(v.to_string()));
        }
    }
}
