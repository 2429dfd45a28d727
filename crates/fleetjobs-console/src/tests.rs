//! The console's routes end to end in-process: a real engine over SQLite in a temp dir,
//! requests through the router (sign-in, sessions, CSRF, refusals, escaping).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::ops::things::CreateThingRequest;
use fleetjobs_engine::{system_clock, AdminKey, Clock, EngineConfig};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::SqliteStore;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

struct Harness {
    app: Router,
    engine: Arc<Engine>,
    key: AdminKey,
    _dir: std::path::PathBuf,
}

/// The system clock, except that every reading is at least a millisecond after the one before:
/// a job created and charted within one millisecond would otherwise span no time, and its chart
/// would hold one sample, not the requested number.
fn ticking_clock() -> Clock {
    let system = system_clock();
    let last = AtomicI64::new(0);
    Arc::new(move || {
        let now = system();
        let next = |prev: i64| Some(now.max(prev + 1));
        let prev = last.fetch_update(Ordering::SeqCst, Ordering::SeqCst, next).unwrap_or_default();
        now.max(prev + 1)
    })
}

async fn harness() -> Harness {
    let dir = std::env::temp_dir().join(format!("fleetjobs-console-{}", auth::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("db.sqlite")).unwrap());
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost".into(),
        jobs_endpoint: "localhost".into(),
        http_endpoint: "http://localhost".into(),
    };
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let (engine, outbox) = Engine::open(config, store, ca, [5; 32], ticking_clock()).unwrap();
    // Nobody listens to devices here; keep the channel open.
    std::mem::forget(outbox);
    let key = engine.ensure_admin_key().await.unwrap();
    let app = router(engine.clone(), None, ConsoleConfig::default(), std::future::pending());
    Harness { app, engine, key, _dir: dir }
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path).header("host", "127.0.0.1:8080")
}

fn post_form(path: &str, cookie: &str, fields: &[(&str, &str)]) -> Request<Body> {
    Request::post(path)
        .header("host", "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(serde_urlencoded::to_string(fields).unwrap()))
        .unwrap()
}

fn set_cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_string()))
}

/// The sign-in page's token, as a browser gets it (cookie and hidden field).
async fn signin_token(app: &Router) -> String {
    let (status, headers, body) = send(app, get("/console/signin").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let token = set_cookie_value(&headers, SIGNIN_COOKIE).unwrap();
    assert!(body.contains(&format!(r#"name="signin_token" value="{token}""#)));
    token
}

/// Signs in; the session cookie and the CSRF token of its pages.
async fn sign_in(h: &Harness, extra_cookie: &str) -> (String, String) {
    let token = signin_token(&h.app).await;
    let cookie = format!("{SIGNIN_COOKIE}={token}{extra_cookie}");
    let fields = [
        ("signin_token", token.as_str()),
        ("access_key_id", h.key.access_key_id.as_str()),
        ("secret_access_key", h.key.secret_access_key.as_str()),
    ];
    let (status, headers, _) = send(&h.app, post_form("/console/signin", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(set
        .iter()
        .any(|c| c.starts_with(SESSION_COOKIE) && c.contains("HttpOnly") && c.contains("SameSite=Strict")));
    let session = set_cookie_value(&headers, SESSION_COOKIE).unwrap();
    let cookie = format!("{SESSION_COOKIE}={session}");
    let (_, _, page) =
        send(&h.app, get("/console/jobs/new").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let csrf = page.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    (cookie, csrf)
}

const PAGES: [&str; 11] = [
    "/console/things",
    "/console/things/t1",
    "/console/test",
    "/console/test/events?filters=%23",
    "/console/jobs",
    "/console/jobs/new",
    "/console/jobs/some-job",
    "/console/jobs/events",
    "/console/jobs/some-job/events",
    "/console/nothing-here",
    "/console/",
];
const POSTS: [&str; 5] = [
    "/console/jobs/new",
    "/console/jobs/preview",
    "/console/jobs/j/cancel",
    "/console/jobs/j/delete",
    "/console/signout",
];

#[tokio::test]
async fn strangers_are_sent_to_sign_in_and_scripts_get_401() {
    let h = harness().await;
    for path in PAGES {
        let (status, headers, _) = send(&h.app, get(path).body(Body::empty()).unwrap()).await;
        if path == "/console/" {
            // The root only redirects to the Jobs page, which refuses.
            assert_eq!(status, StatusCode::SEE_OTHER);
            continue;
        }
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers[header::LOCATION], "/console/signin", "{path}");
        let (status, _, _) = send(&h.app, get(path).header("hx-request", "true").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} (htmx)");
        let (status, _, _) =
            send(&h.app, get(path).header(header::ACCEPT, "text/event-stream").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} (SSE)");
    }
    for path in POSTS {
        let (status, _, _) = send(&h.app, post_form(path, "fleetjobs_session=forged", &[("csrf", "x")])).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
    }
    // The page's policy runs only our own scripts.
    let (_, headers, _) = send(&h.app, get("/console/signin").body(Body::empty()).unwrap()).await;
    assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
}

#[tokio::test]
async fn a_wrong_secret_or_a_missing_sign_in_token_gets_no_session() {
    let h = harness().await;
    let token = signin_token(&h.app).await;
    let cookie = format!("{SIGNIN_COOKIE}={token}");
    let id = h.key.access_key_id.as_str();
    for (key, secret) in [(id, "wrong"), (id, ""), ("AKIANOTAKEY", h.key.secret_access_key.as_str())] {
        let fields = [("signin_token", token.as_str()), ("access_key_id", key), ("secret_access_key", secret)];
        let (status, headers, body) = send(&h.app, post_form("/console/signin", &cookie, &fields)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
        assert!(body.contains("Wrong access key ID or secret access key."));
    }
    // Right credentials, but the form did not come from our sign-in page (login CSRF).
    let fields = [("access_key_id", id), ("secret_access_key", h.key.secret_access_key.as_str())];
    let (status, headers, _) = send(&h.app, post_form("/console/signin", "", &fields)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn signing_in_issues_a_new_session_id_and_signing_out_ends_it() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, &format!("; {SESSION_COOKIE}=chosen-by-an-attacker")).await;
    assert!(!cookie.contains("chosen-by-an-attacker"), "no fixation");
    let (again, _) = sign_in(&h, "").await;
    assert_ne!(cookie, again, "every sign-in gets its own id");
    let (status, _, body) =
        send(&h.app, get("/console/jobs").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Sign out"));

    let (status, _, _) = send(&h.app, post_form("/console/signout", &cookie, &[("csrf", "wrong")])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "sign-out needs the token too");
    let (status, headers, _) = send(&h.app, post_form("/console/signout", &cookie, &[("csrf", &csrf)])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let (status, _, _) =
        send(&h.app, get("/console/jobs").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session is gone");
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token_and_our_origin() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    let (other_cookie, other_csrf) = sign_in(&h, "").await;
    let fields = |token: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![("csrf", token), ("job_id", "j1"), ("things", "t1"), ("document", "{}")]
    };
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    for path in POSTS {
        for token in ["", "nope", leak(&other_csrf)] {
            let (status, _, _) = send(&h.app, post_form(path, &cookie, &fields(token))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} with token {token:?}");
        }
        let mut cross = post_form(path, &cookie, &fields(leak(&csrf)));
        cross.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
        let (status, _, _) = send(&h.app, cross).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} from another origin");
    }
    let _ = other_cookie;
    // With the token, the create-job form reaches the engine (which names the missing thing).
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &fields(leak(&csrf)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("ResourceNotFoundException"), "{body}");
}

#[tokio::test]
async fn a_job_created_in_the_console_is_the_engines_and_renders_inert() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let description = r#"<script>alert("d")</script><img src=x onerror=alert(1)>"#;
    let document = r#"{"op": "</pre><script>alert('doc')</script>"}"#;
    let fields = [
        ("csrf", csrf.as_str()),
        ("job_id", "web-job-1"),
        ("description", description),
        ("things", "t1"),
        ("document", document),
        ("target_selection", "SNAPSHOT"),
        ("max_per_minute", "5"),
        ("timeout_minutes", ""),
    ];
    let (status, headers, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/console/jobs/web-job-1");
    let job = h
        .engine
        .describe_job(fleetjobs_core::ops::jobs::DescribeJobRequest {
            job_id: "web-job-1".into(),
            before_substitution: false,
        })
        .await
        .unwrap()
        .job;
    assert_eq!(job.description.as_deref(), Some(description));
    assert_eq!(job.configs.job_executions_rollout_config.and_then(|r| r.maximum_per_minute), Some(5));

    for path in ["/console/jobs", "/console/jobs/web-job-1", "/console/jobs?q=script"] {
        let (status, _, page) =
            send(&h.app, get(path).header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("<script>alert"), "{path} renders a script: {page}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(page.contains("&lt;script&gt;alert(&quot;d&quot;)&lt;/script&gt;"), "{path}");
    }
    let (_, _, page) =
        send(&h.app, get("/console/jobs/web-job-1").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert('doc')&lt;/script&gt;"), "{page}");

    // The same engine rule refuses a second job with that id, shown beside the job ID.
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("ResourceAlreadyExistsException"), "{body}");

    // The preview: 1 thing at 5 a minute is one batch.
    let (status, _, body) = send(&h.app, post_form("/console/jobs/preview", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-things="1""#), "{body}");

    let cancel = [("csrf", csrf.as_str()), ("force", "true")];
    let (status, _, _) = send(&h.app, post_form("/console/jobs/web-job-1/cancel", &cookie, &cancel)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) =
        send(&h.app, get("/console/jobs/web-job-1").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert!(page.contains("badge st-CANCELED"));
}

// ----------------------------------------------------------------------------- job, execution and sign-in link pages

/// Open a sign-in link as a browser does: its page, then its button. `None` when the page
/// refuses the link; else the answer to the button's POST.
async fn follow_link(app: &Router, url: &str, cookie: &str) -> Option<(StatusCode, HeaderMap, String)> {
    let (status, headers, page) = send(app, get(url).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await;
    if status != StatusCode::OK {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(page.contains("already used or has expired"), "{page}");
        assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
        return None;
    }
    let signin = set_cookie_value(&headers, SIGNIN_COOKIE).unwrap();
    assert!(page.contains(&format!(r#"name="signin_token" value="{signin}""#)), "{page}");
    let link = url.split("token=").nth(1).unwrap();
    assert!(page.contains(&format!(r#"name="link_token" value="{link}""#)), "{page}");
    let cookie = format!("{cookie}; {SIGNIN_COOKIE}={signin}");
    let fields = [("signin_token", signin.as_str()), ("link_token", link)];
    Some(send(app, post_form("/console/signin", &cookie, &fields)).await)
}

#[tokio::test]
async fn a_sign_in_link_signs_in_once_with_a_fresh_session() {
    let h = harness().await;
    let config = ConsoleConfig::default();
    let links = config.signin_links.clone();
    let app = router(h.engine.clone(), None, config, std::future::pending());
    let token = links.issue(&h.key.access_key_id, Instant::now());
    let url = format!("/console/signin?token={token}");

    // Fetching the link (a mail scanner, a link preview) shows whom it signs in, and spends
    // nothing: no session, and the link still works.
    for _ in 0..2 {
        let (status, headers, page) = send(&app, get(&url).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&h.key.access_key_id), "{page}");
        assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
    }
    assert_eq!(links.len(), 1);

    let planted = format!("{SESSION_COOKIE}=planted-by-an-attacker");
    let (status, headers, _) = follow_link(&app, &url, &planted).await.unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/console/jobs");
    let session = set_cookie_value(&headers, SESSION_COOKIE).unwrap();
    assert!(session.len() == 64 && session != "planted-by-an-attacker");
    let cookie = format!("{SESSION_COOKIE}={session}");
    let (status, _, _) =
        send(&app, get("/console/jobs").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // Used once: its page refuses it, and so does its POST sent again.
    assert!(follow_link(&app, &url, "").await.is_none());
    let signin = signin_token(&app).await;
    let fields = [("signin_token", signin.as_str()), ("link_token", token.as_str())];
    let (status, headers, body) =
        send(&app, post_form("/console/signin", &format!("{SIGNIN_COOKIE}={signin}"), &fields)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
    assert!(body.contains("already used or has expired"), "{body}");

    // The button's POST needs the page's double-submit token, as every sign-in form does.
    let fresh = links.issue(&h.key.access_key_id, Instant::now());
    let fields = [("signin_token", "forged"), ("link_token", fresh.as_str())];
    let (status, headers, _) = send(&app, post_form("/console/signin", "", &fields)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set_cookie_value(&headers, SESSION_COOKIE).is_none());
    assert_eq!(links.peek(&fresh, Instant::now()).as_deref(), Some(h.key.access_key_id.as_str()), "not spent");

    // A link for a key the engine does not know signs nobody in.
    let stranger = links.issue("AKIANOTAKEY", Instant::now());
    assert!(follow_link(&app, &format!("/console/signin?token={stranger}"), "").await.is_none());
}

#[tokio::test]
async fn the_job_page_charts_and_links_each_execution_to_its_inert_page() {
    let h = harness().await;
    let (cookie, _) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let job = fleetjobs_core::ops::jobs::CreateJobRequest {
        job_id: "j1".into(),
        targets: vec!["arn:aws:iot:us-east-1:123456789012:thing/t1".into()],
        document: Some("{}".into()),
        ..Default::default()
    };
    h.engine.create_job(job).await.unwrap();
    let update = br#"{"status": "IN_PROGRESS", "statusDetails": {"note": "<script>alert(1)</script>"}}"#;
    h.engine.handle_jobs_request("$aws/things/t1/jobs/j1/update", update).await.unwrap();

    let page = |path: &str| get(path).header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let (status, _, body) = send(&h.app, page("/console/jobs/j1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<figure class="history" data-samples="96""#), "{body}");
    assert!(body.contains(r#"href="/console/jobs/j1/things/t1?number=1""#), "{body}");
    let (status, _, body) = send(&h.app, page("/console/jobs/j1/things/t1?number=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !body.contains("<script>alert"), "{body}");
    assert!(body.contains(r#"data-field="versionNumber">2<"#), "{body}");
    let (status, _, _) = send(&h.app, page("/console/jobs/j1/things/t2")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&h.app, page("/console/jobs/j1?token=not-a-token")).await;
    assert_eq!(status, StatusCode::OK, "the engine's refusal of the token is shown in the page");
    // Strangers are sent to sign in.
    let (status, headers, _) = send(&h.app, get("/console/jobs/j1/things/t1").body(Body::empty()).unwrap()).await;
    assert_eq!((status, &headers[header::LOCATION]), (StatusCode::SEE_OTHER, &"/console/signin".parse().unwrap()));
    let stream = get("/console/jobs/j1/things/t1/events").header(header::ACCEPT, "text/event-stream");
    let (status, _, _) = send(&h.app, stream.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the execution's live stream too");
}

mod create_form;
