//! Who may use the console: signing in with the admin access key or a one-time sign-in link,
//! the session table (fresh random ids, idle expiry, a bound), the CSRF token of every form,
//! and the checks a POST passes before anything reads its fields.
//!
//! Pure over `Instant`s passed in, so that expiry is tested without waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The session cookie (path `/console`, HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "fleetjobs_session";
/// The sign-in form's double-submit cookie: a sign-in POST must carry the value the sign-in
/// page set, so that another site cannot sign a browser into a session of its choosing.
pub const SIGNIN_COOKIE: &str = "fleetjobs_signin";

/// 32 random bytes, hex: session ids, CSRF tokens, sign-in tokens.
pub fn random_token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// Equal, in time that does not depend on where the two differ (nor on their lengths: the
/// digests are compared).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Whether `secret` is the secret of `access_key_id` (`expected`: what the engine holds for
/// that key id, `None` when it knows no such key).
pub fn credentials_match(expected: Option<&str>, secret: &str) -> bool {
    match expected {
        Some(expected) => same_secret(expected, secret),
        // Still hash, so that an unknown key id takes as long as a wrong secret.
        None => {
            let _ = same_secret(secret, secret);
            false
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// The token every form of this session carries, checked on every POST.
    pub csrf: String,
    pub access_key_id: String,
    last_seen: Instant,
}

impl Session {
    /// The CSRF token `given` is this session's.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| same_secret(&self.csrf, g))
    }
}

/// Every live session, at most `max`; each expires `idle` after its last request.
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(idle: Duration, max: usize) -> Self {
        Sessions { table: Mutex::new(HashMap::new()), idle, max: max.max(1) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session with a fresh id and CSRF token (never one the browser brought: no
    /// fixation). When the table is full, expired sessions go first, then the least recently
    /// used one.
    pub fn create(&self, access_key_id: &str, now: Instant) -> Session {
        let session = Session {
            id: random_token(),
            csrf: random_token(),
            access_key_id: access_key_id.to_string(),
            last_seen: now,
        };
        let mut table = self.table();
        let idle = self.idle;
        table.retain(|_, s| now.saturating_duration_since(s.last_seen) < idle);
        while table.len() >= self.max {
            let Some(oldest) = table.values().min_by_key(|s| s.last_seen).map(|s| s.id.clone()) else { break };
            table.remove(&oldest);
        }
        table.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session `id`, its idle clock restarted; an expired one is removed.
    pub fn touch(&self, id: &str, now: Instant) -> Option<Session> {
        let mut table = self.table();
        let session = table.get_mut(id)?;
        if now.saturating_duration_since(session.last_seen) >= self.idle {
            table.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Whether `id` is a live session, without restarting its idle clock (a live page's
    /// stream must not keep its session alive).
    pub fn is_live(&self, id: &str, now: Instant) -> bool {
        self.table().get(id).is_some_and(|s| now.saturating_duration_since(s.last_seen) < self.idle)
    }

    pub fn remove(&self, id: &str) {
        self.table().remove(id);
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A one-time sign-in link's token, for whom, until when.
struct Link {
    token: String,
    access_key_id: String,
    expires: Instant,
}

/// The one-time sign-in links `fleetjobs serve` prints: each token random, good for one
/// sign-in within `ttl`, then refused; at most `max` outstanding (issuing more forgets the
/// oldest). Compared in constant time against every outstanding token.
pub struct SigninLinks {
    links: Mutex<Vec<Link>>,
    ttl: Duration,
    max: usize,
}

impl std::fmt::Debug for SigninLinks {
    // Never the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninLinks").field("ttl", &self.ttl).field("max", &self.max).finish_non_exhaustive()
    }
}

impl Default for SigninLinks {
    fn default() -> Self {
        SigninLinks::new(SIGNIN_LINK_TTL, MAX_SIGNIN_LINKS)
    }
}

/// How long a printed sign-in link stays good.
pub const SIGNIN_LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Sign-in links outstanding at once.
pub const MAX_SIGNIN_LINKS: usize = 16;

impl SigninLinks {
    pub fn new(ttl: Duration, max: usize) -> Self {
        SigninLinks { links: Mutex::new(Vec::new()), ttl, max: max.max(1) }
    }

    fn links(&self) -> std::sync::MutexGuard<'_, Vec<Link>> {
        self.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new token signing in as `access_key_id` once, until `now + ttl`.
    pub fn issue(&self, access_key_id: &str, now: Instant) -> String {
        let token = random_token();
        let mut links = self.links();
        links.retain(|l| now < l.expires);
        while links.len() >= self.max {
            links.remove(0);
        }
        links.push(Link { token: token.clone(), access_key_id: access_key_id.to_string(), expires: now + self.ttl });
        token
    }

    /// The access key id `token` would sign in as, if it is outstanding and not expired,
    /// leaving it outstanding: what the link's page shows before the sign-in is confirmed.
    pub fn peek(&self, token: &str, now: Instant) -> Option<String> {
        let links = self.links();
        let link = &links[find(&links, token)?];
        (now < link.expires).then(|| link.access_key_id.clone())
    }

    /// The access key id `token` signs in as, if it is outstanding and not expired; it is
    /// spent either way (a second use is refused).
    pub fn redeem(&self, token: &str, now: Instant) -> Option<String> {
        let mut links = self.links();
        let found = find(&links, token)?;
        let link = links.remove(found);
        (now < link.expires).then_some(link.access_key_id)
    }

    pub fn len(&self) -> usize {
        self.links().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which of `links` has `token`. Every token is compared (no early exit), so the time taken
/// says nothing of which.
fn find(links: &[Link], token: &str) -> Option<usize> {
    links.iter().enumerate().fold(None, |found, (i, l)| if same_secret(&l.token, token) { Some(i) } else { found })
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console: HttpOnly, SameSite=Strict, scoped to `/console`.
/// `None` clears it.
pub fn set_cookie(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{name}={v}; Path=/console; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// The request came from a page of another site: its `Origin` names another host than the
/// one it was sent to, or the browser says so (`Sec-Fetch-Site: cross-site`). Refused before
/// the CSRF token is even looked at.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (get("origin"), get("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// A script's request (htmx, or an `EventSource`): refused with 401, not redirected to the
/// sign-in page, which it could not show.
pub fn wants_status_not_redirect(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
        || headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "x"));
        assert!(credentials_match(Some("s3cr3t"), "s3cr3t"));
        assert!(!credentials_match(Some("s3cr3t"), "s3cr3T"));
        assert!(!credentials_match(None, "s3cr3t"));
    }

    #[test]
    fn every_sign_in_gets_a_fresh_session_and_token() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let a = sessions.create("AKIA1", now);
        let b = sessions.create("AKIA1", now);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_ne!(a.id, a.csrf);
        assert_eq!(a.id.len(), 64);
        assert_eq!(sessions.touch(&a.id, now).map(|s| s.access_key_id), Some("AKIA1".to_string()));
        assert_eq!(sessions.touch("not-a-session", now), None);
    }

    #[test]
    fn sessions_expire_when_idle_and_each_request_restarts_the_clock() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        let s = sessions.create("AKIA1", t0);
        assert!(sessions.touch(&s.id, t0 + Duration::from_secs(59)).is_some());
        assert!(sessions.is_live(&s.id, t0 + Duration::from_secs(118)));
        assert!(!sessions.is_live(&s.id, t0 + Duration::from_secs(119)), "is_live does not restart the clock");
        // 59 s after the last request, not after sign-in.
        assert!(sessions.touch(&s.id, t0 + Duration::from_secs(118)).is_some());
        assert!(sessions.touch(&s.id, t0 + Duration::from_secs(178)).is_none(), "idle for 60 s");
        assert!(sessions.touch(&s.id, t0).is_none(), "removed once expired");
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_least_recently_used() {
        let sessions = Sessions::new(Duration::from_secs(600), 3);
        let t0 = Instant::now();
        let a = sessions.create("k", t0);
        let b = sessions.create("k", t0 + Duration::from_secs(1));
        let c = sessions.create("k", t0 + Duration::from_secs(2));
        assert!(sessions.touch(&a.id, t0 + Duration::from_secs(3)).is_some());
        let d = sessions.create("k", t0 + Duration::from_secs(4));
        assert_eq!(sessions.len(), 3);
        let at = t0 + Duration::from_secs(5);
        assert!(sessions.touch(&b.id, at).is_none(), "b was the least recently used");
        for s in [&a, &c, &d] {
            assert!(sessions.touch(&s.id, at).is_some());
        }
        // Expired sessions are dropped first, whatever their order.
        let later = t0 + Duration::from_secs(700);
        sessions.create("k", later);
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn sign_out_removes_the_session() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let s = sessions.create("k", now);
        sessions.remove(&s.id);
        assert!(sessions.touch(&s.id, now).is_none());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let s = sessions.create("k", Instant::now());
        assert!(s.csrf_ok(Some(&s.csrf.clone())));
        assert!(!s.csrf_ok(None));
        assert!(!s.csrf_ok(Some("")));
        assert!(!s.csrf_ok(Some(&s.csrf[1..])));
        let other = sessions.create("k", Instant::now());
        assert!(!s.csrf_ok(Some(&other.csrf)), "another session's token");
    }

    #[test]
    fn a_sign_in_link_works_once_and_not_after_it_expires() {
        let links = SigninLinks::new(Duration::from_secs(900), 3);
        let t0 = Instant::now();
        let token = links.issue("AKIA1", t0);
        assert_eq!(token.len(), 64);
        assert_eq!(links.peek(&token, t0).as_deref(), Some("AKIA1"));
        assert_eq!(links.peek(&token, t0).as_deref(), Some("AKIA1"), "looking does not spend it");
        assert_eq!(links.peek(&token[1..], t0), None);
        assert_eq!(links.peek(&token, t0 + Duration::from_secs(900)), None, "expired");
        assert_eq!(links.redeem("", t0), None);
        assert_eq!(links.redeem(&token[1..], t0), None, "a prefix is not the token");
        assert_eq!(links.redeem(&token, t0 + Duration::from_secs(60)), Some("AKIA1".to_string()));
        assert_eq!(links.redeem(&token, t0 + Duration::from_secs(61)), None, "used once");
        assert_eq!(links.peek(&token, t0), None, "and gone");
        let late = links.issue("AKIA1", t0);
        assert_eq!(links.redeem(&late, t0 + Duration::from_secs(900)), None, "expired");
        assert_eq!(links.redeem(&late, t0), None, "and spent");
        assert!(links.is_empty());
    }

    #[test]
    fn sign_in_links_are_bounded_and_each_is_its_own() {
        let links = SigninLinks::new(Duration::from_secs(900), 3);
        let t0 = Instant::now();
        let tokens: Vec<String> = (0..5).map(|_| links.issue("k", t0)).collect();
        assert_eq!(links.len(), 3);
        assert_eq!(links.redeem(&tokens[0], t0), None, "the oldest went first");
        assert_eq!(links.redeem(&tokens[1], t0), None);
        for t in &tokens[2..] {
            assert_eq!(links.redeem(t, t0).as_deref(), Some("k"));
        }
        // Expired links make room before live ones are dropped.
        let old = links.issue("k", t0);
        let later = t0 + Duration::from_secs(1000);
        let fresh: Vec<String> = (0..3).map(|_| links.issue("k", later)).collect();
        assert_eq!(links.len(), 3);
        assert_eq!(links.redeem(&old, later), None);
        assert!(fresh.iter().all(|t| links.redeem(t, later).is_some()));
        assert!(!format!("{links:?}").contains(&fresh[0]));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = headers(&[("cookie", "a=1; fleetjobs_session=abc"), ("cookie", "fleetjobs_sessionx=no")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "a"), Some("1"));
        assert_eq!(cookie(&h, "b"), None);
        let set = set_cookie(SESSION_COOKIE, Some("abc"));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/console"));
        assert!(set_cookie(SESSION_COOKIE, None).contains("Max-Age=0"));
    }

    #[test]
    fn cross_site_requests_are_recognized() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn scripts_get_a_status_not_a_redirect() {
        assert!(wants_status_not_redirect(&headers(&[("hx-request", "true")])));
        assert!(wants_status_not_redirect(&headers(&[("accept", "text/event-stream")])));
        assert!(!wants_status_not_redirect(&headers(&[("accept", "text/html")])));
    }
}
