//! The web console: server-rendered pages under `/console` on the HTTP listener, for
//! operators who would rather click than type `aws iot ...`.
//!
//! It is an edge, as the `iot` API is: forms become the same typed requests
//! (`fleetjobs_core::ops`), answered by the same engine methods; it has no other path to the
//! state. Live pages follow [`Engine::changes`] (a batch became durable) over server-sent
//! events. HTML is built with maud, which escapes every value it interpolates, so thing names,
//! descriptions and documents are rendered inert. The assets (CSS, a small script, htmx) are
//! embedded in the binary: no CDN, no Node build.
//!
//! - `auth`: sign-in, one-time sign-in links, sessions, CSRF, cross-site checks (pure).
//! - `layout`: the page frame, status colors, times.
//! - `jobs`: the Jobs page and its live rows; `job`: one job, its executions, cancel and delete;
//!   `chart`: the job's statuses over time (server-drawn SVG);
//!   `create`: the create-job form and its rollout preview, `pick`: what that form asks for as
//!   it is filled in (target search, template parameters, the job ID check); `mqtt`: the MQTT test client
//!   (a broker tap and publish, through [`MqttPort`]); `devices`: things, groups, a thing's
//!   certificates and executions.

pub mod auth;
mod chart;
mod create;
mod devices;
mod job;
mod jobs;
mod layout;
mod live;
mod mqtt;
mod pick;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use fleetjobs_core::Millis;
use fleetjobs_engine::Engine;
use http_body_util::{BodyExt, Limited};
use tokio::sync::Semaphore;

use auth::{Session, Sessions, SESSION_COOKIE, SIGNIN_COOKIE};
pub use mqtt::MqttPort;

/// Where the console lives on the HTTP listener.
pub const PREFIX: &str = "/console";

/// Largest form accepted (a job document is at most 32 KB; URL-encoding can triple it).
const MAX_FORM: usize = 128 * 1024;

/// The console's bounds and timers.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// A session ends this long after its last request.
    pub idle_timeout: Duration,
    /// Sessions kept at once; signing in beyond it ends the least recently used.
    pub max_sessions: usize,
    /// Live pages (server-sent event streams) open at once; more are refused with 503.
    pub max_streams: usize,
    /// Time allowed for a form's body.
    pub body_timeout: Duration,
    /// The one-time sign-in links (`/console/signin?token=...`); the binary issues and prints
    /// them, the console redeems them.
    pub signin_links: Arc<auth::SigninLinks>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 64,
            max_streams: 64,
            body_timeout: Duration::from_secs(20),
            signin_links: Arc::new(auth::SigninLinks::default()),
        }
    }
}

#[derive(Clone)]
struct Console {
    engine: Arc<Engine>,
    sessions: Arc<Sessions>,
    streams: Arc<Semaphore>,
    config: Arc<ConsoleConfig>,
    /// Set once the server stops: live streams end, so that connections can close.
    stop: tokio::sync::watch::Receiver<bool>,
    /// The broker, for the MQTT test client (`None`: the page says there is none).
    mqtt: Option<Arc<dyn MqttPort>>,
}

/// The console's routes, all under [`PREFIX`] (merge them into the HTTP listener's router).
/// `mqtt` is the broker of the MQTT test client; `stop` resolves when the server stops (live
/// pages end then). Call within a Tokio runtime.
pub fn router(
    engine: Arc<Engine>,
    mqtt: Option<Arc<dyn MqttPort>>,
    config: ConsoleConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Router {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let console = Console {
        stop: stop_rx,
        mqtt,
        engine,
        sessions: Arc::new(Sessions::new(config.idle_timeout, config.max_sessions)),
        streams: Arc::new(Semaphore::new(config.max_streams.max(1))),
        config: Arc::new(config),
    };
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/jobs") }))
        .route("/console/", get(|| async { Redirect::to("/console/jobs") }))
        .route("/console/signin", get(signin_page).post(signin))
        .route("/console/signout", post(signout))
        .route("/console/assets/{name}", get(asset))
        .route("/console/jobs", get(jobs::page))
        .route("/console/jobs/events", get(jobs::events))
        .route("/console/jobs/new", get(create::page).post(create::submit))
        .route("/console/jobs/preview", post(create::preview))
        .route("/console/jobs/targets", get(pick::targets))
        .route("/console/jobs/template-fields", get(pick::template_fields))
        .route("/console/jobs/check-id", get(pick::check_id))
        .route("/console/jobs/{job_id}", get(job::page))
        .route("/console/jobs/{job_id}/events", get(job::events))
        .route("/console/jobs/{job_id}/cancel", post(job::cancel))
        .route("/console/jobs/{job_id}/delete", post(job::delete))
        .route("/console/things", get(devices::page))
        .route("/console/things/new", post(devices::create))
        .route("/console/things/{thing_name}", get(devices::thing))
        .route("/console/jobs/{job_id}/things/{thing_name}", get(job::execution))
        .route("/console/jobs/{job_id}/things/{thing_name}/events", get(job::execution_events))
        .route("/console/test", get(mqtt::page))
        .route("/console/test/events", get(mqtt::events))
        .route("/console/test/publish", post(mqtt::publish))
        // Not a fallback: the router is merged into the API's, which has the one fallback.
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// Unknown console paths: the sign-in page for strangers, a 404 page for the signed in.
async fn not_found(_: Authed) -> Response {
    (StatusCode::NOT_FOUND, layout::message_page("Not found", "There is no such console page.")).into_response()
}

/// Every console answer: no caching, no framing, no sniffing, and a policy that runs only our
/// own scripts and styles, so that even a value the escaping missed could not run.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    response
}

/// The signed-in session of a request, its idle clock restarted. Strangers are sent to the
/// sign-in page, or answered 401 when a script asked (htmx, `EventSource`).
struct Authed(Session);

impl FromRequestParts<Console> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let session =
            auth::cookie(&parts.headers, SESSION_COOKIE).and_then(|id| console.sessions.touch(id, Instant::now()));
        match session {
            Some(s) => Ok(Authed(s)),
            None if auth::wants_status_not_redirect(&parts.headers) => {
                Err((StatusCode::UNAUTHORIZED, "sign in at /console/signin").into_response())
            }
            None => Err(Redirect::to("/console/signin").into_response()),
        }
    }
}

/// A form's fields, in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The field, trimmed; `None` when absent or blank.
    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }

    fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// Why a POST was refused before its fields were used.
fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, layout::message_page("Refused", why)).into_response()
}

/// A signed-in POST's form: the session ([`Authed`]), then the cross-site check, the form read
/// within the console's bounds, and its `csrf` field checked against the session's token.
/// Every state-changing handler takes one, so none can forget a check.
struct Posted {
    session: Session,
    form: Form,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Authed(session) = Authed::from_request_parts(&mut parts, console).await?;
        if auth::cross_site(&parts.headers) {
            return Err(forbidden("This request came from another site."));
        }
        let form = read_fields(console, body).await?;
        if !session.csrf_ok(form.get("csrf")) {
            return Err(forbidden("The form's security token is missing or stale: reload the page and try again."));
        }
        Ok(Posted { session, form })
    }
}

async fn read_fields(console: &Console, body: Body) -> Result<Form, Response> {
    let bytes: Bytes =
        match tokio::time::timeout(console.config.body_timeout, Limited::new(body, MAX_FORM).collect()).await {
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "form not received in time").into_response()),
            Ok(Err(_)) => return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response()),
            Ok(Ok(c)) => c.to_bytes(),
        };
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .map(Form)
        .map_err(|_| (StatusCode::BAD_REQUEST, "malformed form").into_response())
}

fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

// ----------------------------------------------------------------------------- sign-in

#[derive(serde::Deserialize)]
struct SigninQuery {
    /// A one-time sign-in link's token.
    token: Option<String>,
}

async fn signin_page(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<SigninQuery>,
) -> Response {
    if let Some(link) = query.token {
        // A GET only shows whom the link signs in; the button's POST spends it. Mail scanners
        // and link previews fetch links before the person does, and must not use them up.
        return match console.config.signin_links.peek(&link, Instant::now()).filter(|k| admin_key(&console, k)) {
            Some(key_id) => with_signin_cookie(StatusCode::OK, |token| layout::signin_link(token, &link, &key_id)),
            None => link_refused(),
        };
    }
    if auth::cookie(&headers, SESSION_COOKIE).and_then(|id| console.sessions.touch(id, Instant::now())).is_some() {
        return Redirect::to("/console/jobs").into_response();
    }
    signin_form(StatusCode::OK, None, "")
}

/// A new session for `key_id` (a fresh id, whatever cookie the browser brought: no fixation),
/// and the way to the Jobs page.
fn start_session(console: &Console, headers: &HeaderMap, key_id: &str) -> Response {
    if let Some(old) = auth::cookie(headers, SESSION_COOKIE) {
        console.sessions.remove(old);
    }
    let session = console.sessions.create(key_id, Instant::now());
    let mut response = Redirect::to("/console/jobs").into_response();
    for cookie in [auth::set_cookie(SESSION_COOKIE, Some(&session.id)), auth::set_cookie(SIGNIN_COOKIE, None)] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn signin_form(status: StatusCode, error: Option<&str>, access_key_id: &str) -> Response {
    with_signin_cookie(status, |token| layout::signin(token, error, access_key_id))
}

/// A page with a sign-in form: a fresh double-submit token, in its cookie and in the form.
fn with_signin_cookie(status: StatusCode, page: impl FnOnce(&str) -> maud::Markup) -> Response {
    let token = auth::random_token();
    let mut response = (status, page(&token)).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(SIGNIN_COOKIE, Some(&token))) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The key must still be the admin's (it may have been replaced since a link was made).
fn admin_key(console: &Console, key_id: &str) -> bool {
    console.engine.secret_for(key_id).is_some()
}

fn link_refused() -> Response {
    tracing::info!("console sign-in link refused (unknown, used or expired)");
    signin_form(StatusCode::UNAUTHORIZED, Some("This sign-in link was already used or has expired."), "")
}

async fn signin(State(console): State<Console>, headers: HeaderMap, body: Body) -> Response {
    if auth::cross_site(&headers) {
        return forbidden("This request came from another site.");
    }
    let form = match read_fields(&console, body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let expected_token = auth::cookie(&headers, SIGNIN_COOKIE);
    let token_ok = matches!((expected_token, form.get("signin_token")), (Some(a), Some(b)) if auth::same_secret(a, b));
    if !token_ok {
        return signin_form(StatusCode::FORBIDDEN, Some("The sign-in form expired: please try again."), "");
    }
    if let Some(link) = form.get("link_token") {
        // Spent whatever happens next: a link signs in once.
        let key_id = console.config.signin_links.redeem(link, Instant::now());
        return match key_id.filter(|k| admin_key(&console, k)) {
            Some(key_id) => {
                tracing::info!(access_key_id = %key_id, "console sign-in with a one-time link");
                start_session(&console, &headers, &key_id)
            }
            None => link_refused(),
        };
    }
    let key_id = form.text("access_key_id").unwrap_or_default();
    let secret = form.get("secret_access_key").unwrap_or_default();
    let expected = console.engine.secret_for(&key_id);
    if !auth::credentials_match(expected.as_deref(), secret) {
        tracing::info!(access_key_id = %key_id, "console sign-in refused");
        // Slows guessing down; it holds no lock and no connection slot beyond this request's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        return signin_form(StatusCode::UNAUTHORIZED, Some("Wrong access key ID or secret access key."), &key_id);
    }
    tracing::info!(access_key_id = %key_id, "console sign-in");
    start_session(&console, &headers, &key_id)
}

async fn signout(State(console): State<Console>, Posted { session, .. }: Posted) -> Response {
    console.sessions.remove(&session.id);
    let mut response = Redirect::to("/console/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(SESSION_COOKIE, None)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ----------------------------------------------------------------------------- assets

/// The embedded assets, public (the sign-in page needs its style): nothing in them is secret.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match name.as_str() {
        "console.css" => (include_bytes!("../assets/console.css"), "text/css; charset=utf-8"),
        "console.js" => (include_bytes!("../assets/console.js"), "text/javascript; charset=utf-8"),
        "htmx.min.js" => (include_bytes!("../assets/htmx.min.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

#[cfg(test)]
mod tests;
