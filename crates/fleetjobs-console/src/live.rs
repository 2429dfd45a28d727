//! Live pages: a server-sent event stream that re-renders a fragment of a page each time a
//! batch of changes becomes durable ([`Engine::changes`]), and sends it when it differs from
//! the last one sent.
//!
//! Bounded: at most `max_streams` at once (a semaphore permit per stream), bursts of commits
//! coalesce into one render per [`COALESCE`], and each stream ends after [`MAX_STREAM_AGE`]
//! (the browser's `EventSource` reconnects, which checks the session again), when its session
//! ends, or when the server stops.

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use crate::Console;

/// Commits closer together than this are rendered once.
const COALESCE: Duration = Duration::from_millis(250);
/// A stream ends after this long; the browser reconnects.
const MAX_STREAM_AGE: Duration = Duration::from_secs(10 * 60);

/// The stream of `event` fragments rendered by `render` (`None`: nothing to show any more,
/// e.g. the job was deleted: the stream ends).
pub fn stream<F, Fut>(console: &Console, session_id: String, event: &'static str, render: F) -> Response
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    let Ok(permit) = console.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live pages open").into_response();
    };
    let changes = console.engine.changes();
    let stop = console.stop.clone();
    let sessions = console.sessions.clone();
    let started = Instant::now();
    let render = std::sync::Arc::new(render);
    let state = (changes, stop, None::<String>, true, permit);
    let events = stream::unfold(state, move |(mut changes, mut stop, mut last, mut first, permit)| {
        let (sessions, session_id, render) = (sessions.clone(), session_id.clone(), render.clone());
        async move {
            loop {
                if !first {
                    let age_left = MAX_STREAM_AGE.saturating_sub(started.elapsed());
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => return None,
                        () = tokio::time::sleep(age_left) => return None,
                        changed = changes.changed() => if changed.is_err() { return None },
                    }
                    tokio::time::sleep(COALESCE).await;
                    changes.borrow_and_update();
                }
                first = false;
                if !sessions.is_live(&session_id, Instant::now()) {
                    return None;
                }
                let html = render().await?;
                if last.as_deref() != Some(html.as_str()) {
                    last = Some(html.clone());
                    let event = Event::default().event(event).data(html);
                    return Some((Ok::<_, Infallible>(event), (changes, stop, last, first, permit)));
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
