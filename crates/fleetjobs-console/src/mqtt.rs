//! Test → MQTT test client: subscribe to topic filters and see the messages arrive live
//! (topic, time, pretty JSON), publish a message. Through the real broker: the page's
//! subscription is a broker tap (`fleetjobs_mqtt::Broker::tap`, bounded), and a publish is the
//! broker's in-process publish, delivered to the subscribers its policies allow.

use std::convert::Infallible;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fleetjobs_mqtt::{Broker, DeviceHooks, QoS, Tap, TapError, TapMessage};
use futures_util::stream;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Session;
use crate::layout::{self, Nav};
use crate::{Authed, Console, Posted};

/// Messages a page's tap holds before it drops (the browser takes them as they come).
const TAP_CAPACITY: usize = 256;
/// How often a quiet stream checks that its session is still live.
const SESSION_CHECK: Duration = Duration::from_secs(15);
/// Longest topic name accepted (AWS: 256 bytes).
const MAX_TOPIC: usize = 256;
/// Largest payload published (AWS: 128 KB).
const MAX_PAYLOAD: usize = 128 * 1024;
const DEFAULT_FILTER: &str = "$aws/events/#";

/// What the console needs of the broker.
pub trait MqttPort: Send + Sync {
    fn tap(&self, filters: Vec<String>, capacity: usize) -> Result<Tap, TapError>;
    /// Publish at QoS 1 to the authorized subscribers; how many it was queued for.
    fn publish(&self, topic: &str, payload: Bytes) -> usize;
    /// Whether a client with this id is connected now.
    fn is_connected(&self, client_id: &str) -> bool;
}

impl<H: DeviceHooks> MqttPort for Broker<H> {
    fn tap(&self, filters: Vec<String>, capacity: usize) -> Result<Tap, TapError> {
        Broker::tap(self, filters, capacity)
    }

    fn publish(&self, topic: &str, payload: Bytes) -> usize {
        Broker::publish(self, topic, payload, QoS::Level1)
    }

    fn is_connected(&self, client_id: &str) -> bool {
        Broker::is_connected(self, client_id)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    filters: Option<String>,
}

fn split(filters: &str) -> Vec<String> {
    filters.lines().map(str::trim).filter(|f| !f.is_empty()).map(str::to_string).collect()
}

/// The page; `filters` is what the filter field shows, subscribed to when `subscribe`.
fn page_markup(
    session: &Session,
    filters: Option<&str>,
    subscribe: bool,
    notice: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let text = filters.unwrap_or(DEFAULT_FILTER);
    let subscribed = filters.filter(|_| subscribe).map(split).filter(|f| check_filters(f).is_ok());
    let query = serde_urlencoded::to_string([("filters", text)]).unwrap_or_default();
    html! {
        div.titlebar {
            h1 { "MQTT test client" }
            @if subscribed.is_some() { span.live data-live="connecting" title="live" { "live" } }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.grid.create {
            section.card {
                h2 { "Subscribe" }
                form.subscribe method="get" action="/console/test" {
                    label { "Topic filters, one per line (at most 8)"
                        textarea name="filters" rows="3" class="code" spellcheck="false" { (text) } }
                    button.primary type="submit" { "Subscribe" }
                }
                @if let Some(f) = &subscribed {
                    p.muted { "Subscribed to " @for (i, x) in f.iter().enumerate() { @if i > 0 { ", " } code { (x) } } ". Newest first." }
                    ol #messages.messages data-sse={ "/console/test/events?" (query) } data-sse-event="message" data-sse-mode="prepend" {}
                }
            }
            section.card {
                h2 { "Publish" }
                // htmx posts it in place, so that the message log stays; without script, a page.
                form.publish method="post" action="/console/test/publish" hx-post="/console/test/publish"
                    hx-target="#publish-result" hx-swap="innerHTML" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="filters" value=(text);
                    label { "Topic" input name="topic" required maxlength=(MAX_TOPIC) placeholder="testTopic"; }
                    label { "Message payload" textarea name="payload" rows="6" class="code" spellcheck="false" { "{\n  \"message\": \"Hello from the Fleetjobs console\"\n}" } }
                    button.primary type="submit" { "Publish" }
                }
                div #publish-result aria-live="polite" {}
                p.hint { "Delivered at QoS 1 to every subscriber whose policy allows it, as the service's own messages are." }
            }
        }
    }
}

pub async fn page(State(console): State<Console>, Authed(session): Authed, Query(q): Query<Filters>) -> Response {
    if console.mqtt.is_none() {
        return layout::page(
            "MQTT test client",
            &session,
            Nav::Test,
            html! { p.error { "No broker in this server." } },
        )
        .into_response();
    }
    let error = q.filters.as_deref().map(split).and_then(|f| check_filters(&f).err());
    let body = page_markup(&session, q.filters.as_deref(), error.is_none(), None, error.as_deref());
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, layout::page("MQTT test client", &session, Nav::Test, body)).into_response()
}

/// The filters a tap would refuse, said as the page says it.
fn check_filters(filters: &[String]) -> Result<(), String> {
    if filters.is_empty() || filters.len() > fleetjobs_mqtt::MAX_TAP_FILTERS {
        return Err(format!("Name between 1 and {} topic filters.", fleetjobs_mqtt::MAX_TAP_FILTERS));
    }
    for f in filters {
        let wildcard_ok = f.split('/').enumerate().all(|(i, level)| {
            !(level.contains(['+', '#']) && level.len() > 1) && (level != "#" || i == f.split('/').count() - 1)
        });
        if f.len() > MAX_TOPIC || !wildcard_ok || f.contains('\0') {
            return Err(format!("'{f}' is not a valid topic filter."));
        }
    }
    Ok(())
}

fn message_item(m: &TapMessage) -> Markup {
    let ms = m.at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let text = String::from_utf8_lossy(&m.payload);
    let pretty = serde_json::from_slice::<serde_json::Value>(&m.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.into_owned());
    html! {
        li data-topic=(m.topic) {
            div.head { code.topic { (m.topic) } " " span.muted { (layout::time(ms)) } }
            pre.code { (pretty) }
        }
    }
}

pub async fn events(State(console): State<Console>, Authed(session): Authed, Query(q): Query<Filters>) -> Response {
    let Some(mqtt) = console.mqtt.clone() else { return StatusCode::NOT_FOUND.into_response() };
    let filters = split(q.filters.as_deref().unwrap_or_default());
    if let Err(e) = check_filters(&filters) {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    let Ok(permit) = console.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live pages open").into_response();
    };
    let tap = match mqtt.tap(filters, TAP_CAPACITY) {
        Ok(t) => t,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let (sessions, stop, id) = (console.sessions.clone(), console.stop.clone(), session.id);
    let state = (tap, stop, permit, 0u64);
    let events = stream::unfold(state, move |(mut tap, mut stop, permit, mut reported)| {
        let (sessions, id) = (sessions.clone(), id.clone());
        async move {
            loop {
                if !sessions.is_live(&id, Instant::now()) {
                    return None;
                }
                let message = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return None,
                    () = tokio::time::sleep(SESSION_CHECK) => continue,
                    m = tap.recv() => m?,
                };
                let mut html = message_item(&message).into_string();
                let dropped = tap.dropped();
                if dropped > reported {
                    let lost =
                        html! { li.lost { (dropped - reported) " messages were dropped: the page fell behind." } };
                    html.push_str(&lost.into_string());
                    reported = dropped;
                }
                let event = Event::default().event("message").data(html);
                return Some((Ok::<_, Infallible>(event), (tap, stop, permit, reported)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

pub async fn publish(State(console): State<Console>, headers: HeaderMap, Posted { session, form }: Posted) -> Response {
    let Some(mqtt) = console.mqtt.clone() else { return StatusCode::NOT_FOUND.into_response() };
    let filters = form.get("filters").map(str::to_string);
    let topic = form.text("topic").unwrap_or_default();
    let payload = form.get("payload").unwrap_or_default().to_string();
    let valid = !topic.is_empty() && topic.len() <= MAX_TOPIC && !topic.contains(['+', '#', '\0']);
    let (notice, error) = if !valid {
        (None, Some(format!("'{topic}' is not a topic name one can publish to.")))
    } else if payload.len() > MAX_PAYLOAD {
        (None, Some(format!("The payload is larger than {MAX_PAYLOAD} bytes.")))
    } else {
        let n = mqtt.publish(&topic, Bytes::from(payload));
        tracing::info!(%topic, subscribers = n, "console publish");
        (Some(format!("Published to {topic}: queued for {n} subscriber(s).")), None)
    };
    if headers.contains_key("hx-request") {
        // htmx swaps 2xx answers only.
        return html! {
            @if let Some(e) = &error { p.error role="alert" { (e) } }
            @if let Some(n) = &notice { p.notice role="status" { (n) } }
        }
        .into_response();
    }
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = page_markup(&session, filters.as_deref(), true, notice.as_deref(), error.as_deref());
    (status, layout::page("MQTT test client", &session, Nav::Test, body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_before_a_tap_opens() {
        assert!(check_filters(&split("$aws/events/#\na/+/b")).is_ok());
        assert!(check_filters(&split("a/#/b")).is_err());
        assert!(check_filters(&split("a/b#")).is_err());
        assert!(check_filters(&split("")).is_err());
        assert!(check_filters(&split(&"a\n".repeat(9))).is_err());
    }

    #[test]
    fn messages_render_inert_and_pretty() {
        let m = TapMessage {
            topic: "t/<b>".into(),
            payload: Bytes::from_static(br#"{"x":"<script>alert(1)</script>"}"#),
            at: UNIX_EPOCH,
        };
        let html = message_item(&m).into_string();
        assert!(html.contains("t/&lt;b&gt;"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("{\n  &quot;x&quot;"), "{html}");
    }
}
