//! AWS Signature Version 4: verification of header-signed requests.
//!
//! The AWS CLI and SDKs (botocore) sign every control-plane (`iot`) and
//! data-plane (`iot-jobs-data`) request with
//! `Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
//! SignedHeaders=a;b;c, Signature=hex` plus an `X-Amz-Date` header.
//! Verification recomputes that signature exactly as botocore computes it for
//! non-S3 services:
//!
//! - canonical URI: the path as received (still percent-encoded), with dot
//!   segments and empty segments removed (a trailing slash is kept), then
//!   percent-encoded *again* with everything but `A-Za-z0-9-_.~/` escaped, so
//!   `%24next` becomes `%2524next` and a literal `$next` becomes `%24next`;
//! - canonical query: each `k=v` percent-decoded and re-encoded (unreserved
//!   characters only), sorted by key then value (a key without `=` gets an
//!   empty value);
//! - canonical headers: the `SignedHeaders`, lowercase, values trimmed with
//!   inner whitespace runs collapsed, repeated headers joined with `,`;
//! - payload hash: hex SHA-256 of the body. `X-Amz-Content-Sha256`, if sent,
//!   must equal it; only services outside [`PAYLOAD_SIGNED_SERVICES`] (the data
//!   plane) may send `UNSIGNED-PAYLOAD` instead.
//!
//! Requests dated more than 15 minutes from `now`, or scoped to another region
//! than the server's, are rejected. Verification runs in two steps so that a
//! server can refuse on the headers alone before it reads a body:
//! [`check_headers`], then [`HeadersChecked::verify_body`]. Not
//! supported: presigned URLs (query-string signing), the `Date` header
//! instead of `X-Amz-Date`, SigV4a. `X-Amz-Security-Token` is accepted and
//! ignored (it is covered by the signature when signed): Fleetjobs only knows
//! long-term access keys.
//!
//! [`sign`] is the same algorithm in the other direction, for tests and tools.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, Method};
use fleetjobs_core::utc::Civil;
use fleetjobs_core::ErrorCode;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The only supported signing algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Signing names whose requests must sign the real hash of their body (the control plane acts
/// on its body; a signature that does not cover it would let the body be swapped in transit).
pub const PAYLOAD_SIGNED_SERVICES: &[&str] = &["iot"];
/// Maximum distance between `X-Amz-Date` and the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// `X-Amz-Content-Sha256` value for a body that is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Everything but the RFC 3986 unreserved characters is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// Same, keeping `/` (canonical URI).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Headers botocore never signs (also skipped by [`sign`]).
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// The credential scope of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    /// Signing name: `iot` for the control plane, `iot-jobs-data` for the data plane.
    pub service: String,
}

/// Why a request's signature was not accepted. All map to HTTP 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header.
    #[error("missing authentication token")]
    Missing,
    /// The `Authorization` header or the date is malformed (the message says how).
    #[error("incomplete signature: {0}")]
    Malformed(String),
    /// The access key id is not known.
    #[error("unrecognized access key")]
    UnknownAccessKey,
    /// The recomputed signature differs.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// `X-Amz-Date` is more than 15 minutes away from now; holds the AWS message.
    #[error("{0}")]
    Expired(String),
    /// The credential scope names another region than the server's; holds that region.
    #[error("credential scoped to region {0}")]
    WrongRegion(String),
}

impl SigV4Error {
    /// The AWS error code (`x-amzn-ErrorType` / `__type`).
    pub fn code(&self) -> ErrorCode {
        match self {
            SigV4Error::Missing => ErrorCode::MissingAuthenticationToken,
            SigV4Error::Malformed(_) => ErrorCode::IncompleteSignature,
            SigV4Error::UnknownAccessKey => ErrorCode::UnrecognizedClient,
            SigV4Error::SignatureMismatch | SigV4Error::Expired(_) | SigV4Error::WrongRegion(_) => {
                ErrorCode::InvalidSignature
            }
        }
    }

    /// The AWS error message.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::Missing => "Missing Authentication Token".to_owned(),
            SigV4Error::Malformed(m) | SigV4Error::Expired(m) => m.clone(),
            SigV4Error::UnknownAccessKey => "The security token included in the request is invalid.".to_owned(),
            SigV4Error::WrongRegion(region) => {
                format!("Credential should be scoped to a valid region, not '{region}'.")
            }
            SigV4Error::SignatureMismatch => "The request signature we calculated does not match \
                the signature you provided. Check your AWS Secret Access Key and signing method. \
                Consult the service documentation for details."
                .to_owned(),
        }
    }
}

/// The parsed `Authorization` header.
struct Authorization {
    credential: Credential,
    /// Lowercase names, in the order given.
    signed_headers: Vec<String>,
    signature: [u8; 32],
}

/// Parses the credential scope of the `Authorization` header without verifying anything
/// (the tests' view of what a request claims; the server only trusts `check_headers`).
#[cfg(test)]
fn parse_credential(headers: &HeaderMap) -> Result<Credential, SigV4Error> {
    parse_authorization(headers).map(|a| a.credential)
}

/// A request whose headers passed every check that does not need the body (syntax, date,
/// region, access key); [`HeadersChecked::verify_body`] finishes the verification. The split
/// lets the server refuse an unknown key or a stale date before it reads, or waits for, a body.
pub struct HeadersChecked {
    auth: Authorization,
    amz_date: String,
    secret: String,
}

impl std::fmt::Debug for HeadersChecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadersChecked").field("credential", &self.auth.credential).finish_non_exhaustive()
    }
}

/// Checks what the headers of a header-signed request decide on their own, in order: the
/// `Authorization` syntax, `X-Amz-Date` (format, matching the credential date, within 15
/// minutes of `now`), the credential's region (must be `region`, the server's), and the access
/// key (`secret_for` maps an access key id to its secret).
pub fn check_headers(
    headers: &HeaderMap,
    region: &str,
    now: SystemTime,
    secret_for: impl FnOnce(&str) -> Option<String>,
) -> Result<HeadersChecked, SigV4Error> {
    let auth = parse_authorization(headers)?;
    let amz_date = header_str(headers, "x-amz-date").ok_or_else(|| {
        SigV4Error::Malformed(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization={}",
            header_str(headers, "authorization").unwrap_or_default()
        ))
    })?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        SigV4Error::Malformed(format!(
            "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z', got '{amz_date}'"
        ))
    })?;
    if auth.credential.date != amz_date[..8] {
        return Err(SigV4Error::Malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.credential.date,
            &amz_date[..8]
        )));
    }
    check_clock(signed_at, unix_seconds(now))?;
    if auth.credential.region != region {
        return Err(SigV4Error::WrongRegion(auth.credential.region));
    }
    let secret = secret_for(&auth.credential.access_key_id).ok_or(SigV4Error::UnknownAccessKey)?;
    Ok(HeadersChecked { auth, amz_date: amz_date.to_owned(), secret })
}

impl HeadersChecked {
    /// The credential scope the headers claim (not yet proven by the signature).
    pub fn credential(&self) -> &Credential {
        &self.auth.credential
    }

    /// Recomputes the signature over the whole request and compares it in constant time.
    ///
    /// `raw_path` and `raw_query` are exactly as on the wire (still percent-encoded, no `?`).
    /// For services in [`PAYLOAD_SIGNED_SERVICES`] the canonical request always carries the
    /// body's real hash, so `UNSIGNED-PAYLOAD`, or any `X-Amz-Content-Sha256` that is not the
    /// body's, is a mismatch; other services may use `UNSIGNED-PAYLOAD`.
    pub fn verify_body(
        self,
        method: &Method,
        raw_path: &str,
        raw_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Credential, SigV4Error> {
        let body_hash = hex::encode(Sha256::digest(body));
        let claimed = header_str(headers, "x-amz-content-sha256");
        let payload_signed = PAYLOAD_SIGNED_SERVICES.contains(&self.auth.credential.service.as_str());
        let payload_hash = match claimed {
            None => &body_hash,
            Some(c) if payload_signed && c == body_hash => &body_hash,
            Some(UNSIGNED_PAYLOAD) if !payload_signed => UNSIGNED_PAYLOAD,
            Some(c) if !payload_signed && c.eq_ignore_ascii_case(&body_hash) => c,
            Some(_) => return Err(SigV4Error::SignatureMismatch),
        };
        let canonical =
            canonical_request(method, raw_path, raw_query, headers, &self.auth.signed_headers, payload_hash)
                .ok_or(SigV4Error::SignatureMismatch)?;
        let sts = string_to_sign(&self.amz_date, &self.auth.credential, &canonical);
        let mut mac = signing_mac(&self.secret, &self.auth.credential);
        mac.update(sts.as_bytes());
        mac.verify_slice(&self.auth.signature).map_err(|_| SigV4Error::SignatureMismatch)?;
        Ok(self.auth.credential)
    }
}

/// Inputs of [`sign`] besides the request itself.
#[derive(Debug, Clone)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub now: SystemTime,
}

/// Signs a request like botocore: sets `x-amz-date` and `authorization` in
/// `headers`, signing every header present (`host` must be) except those
/// botocore leaves out (`user-agent`, `connection`, ...).
pub fn sign(
    method: &Method,
    raw_path: &str,
    raw_query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams,
) {
    let amz_date = format_amz_date(unix_seconds(params.now));
    headers.remove("authorization");
    headers.insert("x-amz-date", HeaderValue::from_str(&amz_date).expect("ascii"));
    let mut names: Vec<String> =
        headers.keys().map(|k| k.as_str().to_owned()).filter(|k| !UNSIGNED_HEADERS.contains(&k.as_str())).collect();
    names.sort();
    names.dedup();
    let credential = Credential {
        access_key_id: params.access_key_id.to_owned(),
        date: amz_date[..8].to_owned(),
        region: params.region.to_owned(),
        service: params.service.to_owned(),
    };
    let body_hash = hex::encode(Sha256::digest(body));
    let payload_hash = header_str(headers, "x-amz-content-sha256").unwrap_or(&body_hash);
    let canonical = canonical_request(method, raw_path, raw_query, headers, &names, payload_hash)
        .expect("all signed headers are present");
    let sts = string_to_sign(&amz_date, &credential, &canonical);
    let mut mac = signing_mac(params.secret_access_key, &credential);
    mac.update(sts.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let value = format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={signature}",
        credential.access_key_id,
        credential.date,
        credential.region,
        credential.service,
        names.join(";"),
    );
    headers.insert("authorization", HeaderValue::from_str(&value).expect("visible ascii"));
}

// ---------------------------------------------------------------------------
// Authorization header

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_authorization(headers: &HeaderMap) -> Result<Authorization, SigV4Error> {
    let Some(raw) = headers.get("authorization") else {
        return Err(SigV4Error::Missing);
    };
    let value = raw
        .to_str()
        .map_err(|_| SigV4Error::Malformed("Authorization header contains invalid characters".to_owned()))?;
    let malformed = |what: &str| SigV4Error::Malformed(format!("{what} Authorization={value}"));

    let value_trimmed = value.trim();
    let (algorithm, params) = value_trimmed.split_once(char::is_whitespace).unwrap_or((value_trimmed, ""));
    if algorithm != ALGORITHM {
        return Err(malformed(&format!("Unsupported Authorization algorithm '{algorithm}', expected '{ALGORITHM}'.")));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part.split_once('=').ok_or_else(|| {
            malformed(&format!("Authorization header requires each component to be of the form key=value: '{part}'."))
        })?;
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let missing: Vec<String> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .iter()
    .filter(|(_, missing)| *missing)
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
    .collect();
    if !missing.is_empty() {
        return Err(malformed(&missing.join(" ")));
    }
    let (credential, signed_headers, signature) =
        (credential.unwrap_or_default(), signed_headers.unwrap_or_default(), signature.unwrap_or_default());

    let fields: Vec<&str> = credential.split('/').collect();
    let credential = match fields[..] {
        [akid, date, region, service, "aws4_request"]
            if !akid.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && !service.is_empty() =>
        {
            Credential {
                access_key_id: akid.to_owned(),
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
            }
        }
        _ => {
            return Err(malformed(&format!(
                "Credential should be of the form ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request, \
                 got '{credential}'."
            )))
        }
    };

    let signed_headers: Vec<String> = signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(malformed("SignedHeaders contains an empty header name."));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }

    let mut sig = [0u8; 32];
    hex::decode_to_slice(signature, &mut sig).map_err(|_| malformed("Signature must be 64 hexadecimal characters."))?;

    Ok(Authorization { credential, signed_headers, signature: sig })
}

// ---------------------------------------------------------------------------
// Canonical request

/// `None` if a signed header is missing from `headers`.
fn canonical_request(
    method: &Method,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> Option<String> {
    let mut out = String::new();
    out.push_str(method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(raw_path));
    out.push('\n');
    out.push_str(&canonical_query(raw_query));
    out.push('\n');
    for name in signed_headers {
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        values.peek()?;
        let joined: Vec<String> = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_ascii_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&joined.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Some(out)
}

/// botocore: `quote(remove_dot_segments(path), safe='/~')`.
fn canonical_uri(raw_path: &str) -> String {
    percent_encode(remove_dot_segments(raw_path).as_bytes(), PATH).to_string()
}

/// RFC 3986 dot-segment removal as botocore does it: empty segments are
/// dropped too, the leading slash kept, the trailing one kept unless the
/// result is the root.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

fn canonical_query(raw_query: &str) -> String {
    if raw_query.is_empty() {
        return String::new();
    }
    let reencode = |s: &str| {
        let bytes: Vec<u8> = percent_decode_str(s).collect();
        percent_encode(&bytes, UNRESERVED).to_string()
    };
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (reencode(k), reencode(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn string_to_sign(amz_date: &str, credential: &Credential, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        credential.date,
        credential.region,
        credential.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// HMAC keyed with the derived signing key, ready for the string to sign.
fn signing_mac(secret: &str, credential: &Credential) -> HmacSha256 {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), &credential.date);
    let k_region = hmac(&k_date, &credential.region);
    let k_service = hmac(&k_region, &credential.service);
    let k_signing = hmac(&k_service, "aws4_request");
    HmacSha256::new_from_slice(&k_signing).expect("HMAC accepts any key length")
}

// ---------------------------------------------------------------------------
// Dates (`YYYYMMDDTHHMMSSZ`, UTC)

fn check_clock(signed_at: i64, now: i64) -> Result<(), SigV4Error> {
    let signed = format_amz_date(signed_at);
    if signed_at < now - MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::Expired(format!(
            "Signature expired: {signed} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now - MAX_CLOCK_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::Expired(format!(
            "Signature not yet current: {signed} is still later than {} ({} + 15 min.)",
            format_amz_date(now + MAX_CLOCK_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `YYYYMMDDTHHMMSSZ` to Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // ASCII only: the fields below are sliced by byte offsets.
    if !s.is_ascii() || b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[range];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let field = |range| num(range).and_then(|v| u8::try_from(v).ok());
    let civil = Civil {
        year: i32::try_from(num(0..4)?).ok()?,
        month: field(4..6)?,
        day: field(6..8)?,
        hour: field(9..11)?,
        minute: field(11..13)?,
        second: field(13..15)?,
    };
    civil.to_unix()
}

fn format_amz_date(secs: i64) -> String {
    match Civil::from_unix(secs) {
        Some(c) => {
            format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
        }
        // Beyond year 9999: no request can carry it; a date that matches nothing.
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A signed request as captured on the wire.
    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    }

    /// Both verification steps, with the server's region taken from the request's own
    /// credential scope (the region rule has its own tests).
    fn verify(
        method: &Method,
        raw_path: &str,
        raw_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
        secret_for: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Credential, SigV4Error> {
        let region = parse_credential(headers).map(|c| c.region).unwrap_or_default();
        check_headers(headers, &region, now, secret_for)?.verify_body(method, raw_path, raw_query, headers, body)
    }

    fn at(amz_date: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_amz_date(amz_date).unwrap() as u64)
    }

    fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn run(v: &Vector, now: SystemTime, secrets: &[(&str, &str)]) -> Result<Credential, SigV4Error> {
        verify(
            &Method::from_bytes(v.method.as_bytes()).unwrap(),
            v.path,
            v.query,
            &header_map(v.headers),
            v.body.as_bytes(),
            now,
            |akid| secrets.iter().find(|(k, _)| *k == akid).map(|(_, s)| s.to_string()),
        )
    }

    /// Re-signs `v` with [`sign`] over the headers it signed and checks the
    /// `Authorization` header comes out identical.
    fn assert_sign_reproduces(v: &Vector, secret: &str, now: SystemTime) {
        let original = header_map(v.headers);
        let auth = original["authorization"].to_str().unwrap();
        let signed = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
        let mut headers = HeaderMap::new();
        for name in signed.split(';').filter(|n| *n != "x-amz-date") {
            for value in original.get_all(name) {
                headers.append(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.clone());
            }
        }
        let credential = parse_credential(&original).unwrap();
        sign(
            &Method::from_bytes(v.method.as_bytes()).unwrap(),
            v.path,
            v.query,
            &mut headers,
            v.body.as_bytes(),
            &SigningParams {
                access_key_id: &credential.access_key_id,
                secret_access_key: secret,
                region: &credential.region,
                service: &credential.service,
                now,
            },
        );
        assert_eq!(headers["authorization"], auth, "{}", v.name);
        assert_eq!(headers["x-amz-date"], original["x-amz-date"], "{}", v.name);
    }

    // -----------------------------------------------------------------------
    // The AWS SigV4 test suite (aws-sig-v4-test-suite), also reproduced with
    // botocore. Host example.amazonaws.com, 20150830T123600Z, us-east-1/service.

    const SUITE_KEY: (&str, &str) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");

    const SUITE: &[Vector] = &[
        Vector {
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ],
            body: "",
        },
        Vector {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            ],
            body: "",
        },
        Vector {
            name: "get-vanilla-empty-query-key",
            method: "GET",
            path: "/",
            query: "Param1=value1",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
            ],
            body: "",
        },
        Vector {
            name: "get-vanilla-query-unreserved",
            method: "GET",
            path: "/",
            query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
            ],
            body: "",
        },
        Vector {
            name: "post-vanilla",
            method: "POST",
            path: "/",
            query: "",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            ],
            body: "",
        },
        Vector {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            path: "/",
            query: "",
            headers: &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
            ],
            body: "Param1=value1",
        },
        // Not the suite's get-utf8 signature: the suite encodes the path once,
        // botocore (and AWS for non-S3 services) twice. This is botocore's.
        Vector {
            name: "get-utf8 (botocore)",
            method: "GET",
            path: "/%E1%88%B4",
            query: "",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=697b34846207a3f72246f99d74ae1ee4fe54f44bb06730c58a0d339eb079596d"),
            ],
            body: "",
        },
    ];

    #[test]
    fn aws_test_suite_vectors() {
        let now = at("20150830T123600Z");
        for v in SUITE {
            let credential = run(v, now, &[SUITE_KEY]).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            assert_eq!(
                credential,
                Credential {
                    access_key_id: "AKIDEXAMPLE".into(),
                    date: "20150830".into(),
                    region: "us-east-1".into(),
                    service: "service".into(),
                },
                "{}",
                v.name
            );
            assert_sign_reproduces(v, SUITE_KEY.1, now);
        }
    }

    // -----------------------------------------------------------------------
    // Real botocore 1.43 signatures. Generated with (time frozen, endpoint
    // http://localhost:8443, hence `host: localhost:8443`):
    //
    //   import datetime, botocore.auth, botocore.session
    //   from botocore.auth import SigV4Auth
    //   from botocore.awsrequest import AWSRequest
    //   from botocore.credentials import Credentials
    //   botocore.auth.get_current_datetime = lambda *a, **k: datetime.datetime(2024, 5, 1, 12, 0, 0)
    //   AK, SK = "AKIDFLEETJOBS", "fleetjobs/secret+key/EXAMPLE"
    //   def manual(method, url, headers, body=b"", service="iot-jobs-data", token=None):
    //       req = AWSRequest(method=method, url=url, data=body, headers=headers)
    //       SigV4Auth(Credentials(AK, SK, token), service, "us-east-1").add_auth(req)
    //       print(req.method, req.url, dict(req.headers), body)
    //   manual("PUT", "http://localhost:8443/things/t1/jobs/$next",
    //          {"Content-Type": "application/json"}, b'{"status":"IN_PROGRESS"}')
    //   manual("GET", "http://localhost:8443/things/t%3A1/jobs/%24next?includeJobDocument=true", {})
    //   ... (one call per `manual_*` vector below)
    //
    //   # `client_*` vectors: real clients, wire request captured before sending
    //   def grab(request, **kw):
    //       print(request.method, request.url, dict(request.headers), request.body)
    //       return botocore.awsrequest.AWSResponse(request.url, 200, {}, FakeRaw(b"{}"))
    //   c = botocore.session.get_session().create_client("iot-jobs-data",
    //         region_name="us-east-1", endpoint_url="http://localhost:8443",
    //         aws_access_key_id=AK, aws_secret_access_key=SK)
    //   c.meta.events.register("before-send", grab)
    //   c.describe_job_execution(thingName="t:1 x", jobId="$next", includeJobDocument=True)
    //   c.update_job_execution(thingName="thing1", jobId="job-1", status="SUCCEEDED",
    //                          statusDetails={"progress": "100%"}, expectedVersion=3)
    //   # and with create_client("iot", ...):
    //   c.list_jobs(status="IN_PROGRESS", maxResults=5, nextToken="tok+/=")
    //   c.attach_thing_principal(thingName="T", principal="arn:aws:iot:us-east-1:123456789012:cert/" + "cd" * 32)

    const BOTO_KEY: (&str, &str) = ("AKIDFLEETJOBS", "fleetjobs/secret+key/EXAMPLE");
    const BOTO_DATE: &str = "20240501T120000Z";
    const UA: &str = "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v669 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/b,D,Z,N,e cfg/retry-mode#legacy";

    const BOTO: &[Vector] = &[
        Vector {
            name: "manual_put_next_literal_dollar",
            method: "PUT",
            path: "/things/t1/jobs/$next",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("content-type", "application/json"),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=a80777c1ed280193ed522a43a92a1defb5c3720abe07161eaba2c5035c09a23b"),
            ],
            body: r#"{"status":"IN_PROGRESS"}"#,
        },
        Vector {
            name: "manual_get_encoded_next_with_query",
            method: "GET",
            path: "/things/t%3A1/jobs/%24next",
            query: "includeJobDocument=true",
            headers: &[
                ("host", "localhost:8443"),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=8822e6c7abd78b1d58469e682780c8871ee38fb06866fd7ac3be346b7ef15ae7"),
            ],
            body: "",
        },
        Vector {
            name: "manual_put_job_json_body",
            method: "PUT",
            path: "/jobs/j1",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("content-type", "application/json"),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=9ad759e7e01297d3d8769d503e0682e183c2a73dc74673b3574fdc36d57a30b6"),
            ],
            body: r#"{"targets": ["arn:aws:iot:us-east-1:123456789012:thing/t1"], "document": "{\"op\": \"reboot\"}"}"#,
        },
        Vector {
            name: "manual_put_principal_header",
            method: "PUT",
            path: "/things/T/principals",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("x-amzn-principal", "arn:aws:iot:us-east-1:123456789012:cert/abababababababababababababababababababababababababababababababab"),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date;x-amzn-principal, Signature=6241dbbde307b224b98537af531cb781d037c243be174c8757981942c8f62c5a"),
            ],
            body: "",
        },
        Vector {
            name: "manual_query_special_chars",
            method: "GET",
            path: "/jobs",
            query: "status=IN_PROGRESS&nextToken=a%2Bb%2Fc%3D%3D&thingGroupName=my%20group&maxResults=10&z=&flag",
            headers: &[
                ("host", "localhost:8443"),
                ("x-custom", "  a   b  "),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date;x-custom, Signature=7a9cffc9a3282e820578f4460806d7453d457b8c882578dde4f1060c0ab358f0"),
            ],
            body: "",
        },
        Vector {
            name: "manual_session_token",
            method: "GET",
            path: "/things/t1/jobs",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("x-amz-date", "20240501T120000Z"),
                ("x-amz-security-token", "FQoGZXIvYXdzEXAMPLETOKEN//+="),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=b3ee758b0ac59e1d7400605316b81368de159a068a812ae931a2b0ddbfdc03de"),
            ],
            body: "",
        },
        Vector {
            name: "manual_dot_segments_double_slash",
            method: "GET",
            path: "/a/./b/../c//d/",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=7cb9e241e75ae924a220ff4ee3715ef4471158e868ce5fc487011f4cc3d3299c"),
            ],
            body: "",
        },
        Vector {
            name: "client_describe_job_execution",
            method: "GET",
            path: "/things/t%3A1%20x/jobs/%24next",
            query: "includeJobDocument=true",
            headers: &[
                ("host", "localhost:8443"),
                ("user-agent", UA),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=58a9fe47aaf88bc7b60f62792d1e3501f90e90751afdbd0f0c70ddc95a5f3af5"),
                ("amz-sdk-invocation-id", "6d16715d-0d16-40fb-b56e-ec2225d3ad46"),
                ("amz-sdk-request", "attempt=1"),
            ],
            body: "",
        },
        Vector {
            name: "client_update_job_execution",
            method: "POST",
            path: "/things/thing1/jobs/job-1",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("content-type", "application/json"),
                ("user-agent", UA),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=43bdd5f060e206e6a95fc3b169a36826d8d6baf7b9f57525decc53f38767795b"),
                ("amz-sdk-invocation-id", "e98d1c3e-29ec-4de0-aa1e-b4da4e28b697"),
                ("amz-sdk-request", "attempt=1"),
                ("content-length", "84"),
            ],
            body: r#"{"status": "SUCCEEDED", "statusDetails": {"progress": "100%"}, "expectedVersion": 3}"#,
        },
        Vector {
            name: "client_list_jobs",
            method: "GET",
            path: "/jobs",
            query: "status=IN_PROGRESS&maxResults=5&nextToken=tok%2B%2F%3D",
            headers: &[
                ("host", "localhost:8443"),
                ("user-agent", UA),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=a2fa98ded544d771cd52bdaa5dca2904f6786ce936f7273d09fe8a075432c517"),
                ("amz-sdk-invocation-id", "9ca02924-0b0e-43fc-aeb3-0ca088ba7c11"),
                ("amz-sdk-request", "attempt=1"),
            ],
            body: "",
        },
        Vector {
            name: "client_attach_thing_principal",
            method: "PUT",
            path: "/things/T/principals",
            query: "",
            headers: &[
                ("host", "localhost:8443"),
                ("x-amzn-principal", "arn:aws:iot:us-east-1:123456789012:cert/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"),
                ("user-agent", UA),
                ("x-amz-date", "20240501T120000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDFLEETJOBS/20240501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date;x-amzn-principal, Signature=fcd630282ac122550c93c83a64927a1c40dd6530b31060f5408a0e4a26120c47"),
                ("amz-sdk-invocation-id", "80f7cc49-a333-493a-8a1e-6ee80ee5cf27"),
                ("amz-sdk-request", "attempt=1"),
                ("content-length", "0"),
            ],
            body: "",
        },
    ];

    fn boto(name: &str) -> &'static Vector {
        BOTO.iter().find(|v| v.name == name).unwrap()
    }

    #[test]
    fn botocore_signatures_are_accepted() {
        let now = at(BOTO_DATE);
        for v in BOTO {
            let credential = run(v, now, &[("OTHER", "x"), BOTO_KEY]).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            assert_eq!(credential.access_key_id, "AKIDFLEETJOBS");
            assert_eq!(credential.date, "20240501");
            assert_eq!(credential.region, "us-east-1");
            let expected_service =
                if v.headers.iter().any(|(_, val)| val.contains("/iot-jobs-data/")) { "iot-jobs-data" } else { "iot" };
            assert_eq!(credential.service, expected_service, "{}", v.name);
            assert_eq!(parse_credential(&header_map(v.headers)).unwrap(), credential);
            assert_sign_reproduces(v, BOTO_KEY.1, now);
            // Within the 15 minute window either way.
            for skew in [-15 * 60, -60, 60, 15 * 60] {
                let now = UNIX_EPOCH + Duration::from_secs((parse_amz_date(BOTO_DATE).unwrap() + skew) as u64);
                run(v, now, &[BOTO_KEY]).unwrap_or_else(|e| panic!("{} {skew}: {e:?}", v.name));
            }
        }
    }

    /// Applies `mutate` to a copy of vector `v` and returns the verification result.
    fn mutated(
        v: &Vector,
        mutate: impl FnOnce(&mut String, &mut String, &mut HeaderMap, &mut Vec<u8>, &mut Method),
    ) -> Result<Credential, SigV4Error> {
        let (mut path, mut query) = (v.path.to_owned(), v.query.to_owned());
        let mut headers = header_map(v.headers);
        let mut body = v.body.as_bytes().to_vec();
        let mut method = Method::from_bytes(v.method.as_bytes()).unwrap();
        mutate(&mut path, &mut query, &mut headers, &mut body, &mut method);
        verify(&method, &path, &query, &headers, &body, at(BOTO_DATE), |k| {
            (k == BOTO_KEY.0).then(|| BOTO_KEY.1.to_owned())
        })
    }

    #[test]
    fn tampered_requests_are_rejected() {
        use SigV4Error::SignatureMismatch as Mismatch;
        let put = boto("client_update_job_execution");
        assert!(mutated(put, |_, _, _, _, _| {}).is_ok());
        assert_eq!(mutated(put, |_, _, _, b, _| b[12] = b'X'), Err(Mismatch));
        assert_eq!(mutated(put, |_, _, _, b, _| b.push(b' ')), Err(Mismatch));
        assert_eq!(mutated(put, |_, _, _, b, _| b.clear()), Err(Mismatch));
        assert_eq!(mutated(put, |p, _, _, _, _| p.push('x')), Err(Mismatch));
        assert_eq!(mutated(put, |p, _, _, _, _| *p = p.replace("thing1", "thing2")), Err(Mismatch));
        assert_eq!(mutated(put, |_, _, _, _, m| *m = Method::PUT), Err(Mismatch));
        assert_eq!(mutated(put, |_, q, _, _, _| *q = "a=b".into()), Err(Mismatch));
        assert_eq!(
            mutated(put, |_, _, h, _, _| {
                h.insert("content-type", HeaderValue::from_static("text/plain"));
            }),
            Err(Mismatch)
        );
        assert_eq!(
            mutated(put, |_, _, h, _, _| {
                h.insert("host", HeaderValue::from_static("evil:8443"));
            }),
            Err(Mismatch)
        );
        // A signed header that is missing.
        assert_eq!(
            mutated(put, |_, _, h, _, _| {
                h.remove("content-type");
            }),
            Err(Mismatch)
        );
        // Unsigned headers may change freely.
        assert!(mutated(put, |_, _, h, _, _| {
            h.insert("user-agent", HeaderValue::from_static("curl"));
            h.insert("amz-sdk-request", HeaderValue::from_static("attempt=2"));
        })
        .is_ok());
        // A different signature.
        assert_eq!(
            mutated(put, |_, _, h, _, _| {
                let auth = h["authorization"].to_str().unwrap().replace("Signature=4", "Signature=5");
                h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
            }),
            Err(Mismatch)
        );

        let get = boto("client_describe_job_execution");
        assert_eq!(mutated(get, |_, q, _, _, _| *q = "includeJobDocument=false".into()), Err(Mismatch));
        assert_eq!(mutated(get, |_, q, _, _, _| q.clear()), Err(Mismatch));
        // `$next` and `%24next` sign differently.
        assert_eq!(mutated(get, |p, _, _, _, _| *p = p.replace("%24next", "$next")), Err(Mismatch));

        let principal = boto("client_attach_thing_principal");
        assert_eq!(
            mutated(principal, |_, _, h, _, _| {
                h.insert("x-amzn-principal", HeaderValue::from_static("arn:aws:iot:us-east-1:123456789012:cert/00"));
            }),
            Err(Mismatch)
        );
    }

    #[test]
    fn wrong_secret_and_unknown_key() {
        let v = boto("manual_put_job_json_body");
        let now = at(BOTO_DATE);
        assert_eq!(run(v, now, &[(BOTO_KEY.0, "fleetjobs/secret+key/EXAMPLF")]), Err(SigV4Error::SignatureMismatch));
        assert_eq!(run(v, now, &[]), Err(SigV4Error::UnknownAccessKey));
        assert_eq!(run(v, now, &[("akidfleetjobs", BOTO_KEY.1)]), Err(SigV4Error::UnknownAccessKey));
    }

    #[test]
    fn expired_and_future_dates() {
        let v = boto("manual_put_next_literal_dollar");
        let base = parse_amz_date(BOTO_DATE).unwrap();
        let now = |offset: i64| UNIX_EPOCH + Duration::from_secs((base + offset) as u64);

        let err = run(v, now(15 * 60 + 1), &[BOTO_KEY]).unwrap_err();
        assert_eq!(
            err,
            SigV4Error::Expired(
                "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z \
                 (20240501T121501Z - 15 min.)"
                    .into()
            )
        );
        assert_eq!(err.code().name(), "InvalidSignatureException");
        assert!(err.message().starts_with("Signature expired: "));

        let err = run(v, now(-(15 * 60 + 1)), &[BOTO_KEY]).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature not yet current: 20240501T120000Z is still later than 20240501T115959Z \
             (20240501T114459Z + 15 min.)"
        );
        // The clock is checked before the key: an old request with an unknown key is expired.
        assert!(matches!(run(v, now(3600), &[]), Err(SigV4Error::Expired(_))));
    }

    #[test]
    fn missing_and_malformed_authorization() {
        let v = boto("manual_put_next_literal_dollar");
        let check = |auth: Option<&str>, date: Option<&str>| {
            let mut headers = header_map(v.headers);
            headers.remove("authorization");
            headers.remove("x-amz-date");
            if let Some(a) = auth {
                headers.insert("authorization", HeaderValue::from_str(a).unwrap());
            }
            if let Some(d) = date {
                headers.insert("x-amz-date", HeaderValue::from_str(d).unwrap());
            }
            verify(&Method::PUT, v.path, v.query, &headers, v.body.as_bytes(), at(BOTO_DATE), |_| {
                Some(BOTO_KEY.1.to_owned())
            })
        };
        let good = v.headers.iter().find(|(k, _)| *k == "authorization").unwrap().1;

        assert_eq!(check(None, Some(BOTO_DATE)), Err(SigV4Error::Missing));
        assert_eq!(parse_credential(&HeaderMap::new()), Err(SigV4Error::Missing));
        assert!(check(Some(good), Some(BOTO_DATE)).is_ok());

        let malformed = |auth: &str, date: Option<&str>| match check(Some(auth), date) {
            Err(SigV4Error::Malformed(m)) => m,
            other => panic!("{auth}: {other:?}"),
        };
        let m = malformed(good, None);
        assert!(m.contains("'X-Amz-Date'"), "{m}");
        malformed(good, Some("2024-05-01T12:00:00Z"));
        malformed(good, Some("20240501T120000"));
        malformed(good, Some("20241301T120000Z"));
        let m = malformed(good, Some("20240502T120000Z"));
        assert!(m.starts_with("Date in Credential scope does not match"), "{m}");

        let m = malformed("Bearer abc", Some(BOTO_DATE));
        assert!(m.contains("Unsupported Authorization algorithm"), "{m}");
        malformed("AWS4-HMAC-SHA1 Credential=a/b", Some(BOTO_DATE));
        let m = malformed("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date", Some(BOTO_DATE));
        assert!(m.contains("requires 'Credential' parameter."), "{m}");
        assert!(m.contains("requires 'Signature' parameter."), "{m}");
        assert!(!m.contains("requires 'SignedHeaders'"), "{m}");
        assert!(m.contains("Authorization=AWS4-HMAC-SHA256 SignedHeaders"), "{m}");
        malformed("AWS4-HMAC-SHA256", Some(BOTO_DATE));
        let sig = "a80777c1ed280193ed522a43a92a1defb5c3720abe07161eaba2c5035c09a23b";
        for credential in [
            "AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data",
            "AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_reques",
            "AKIDFLEETJOBS/2024051/us-east-1/iot-jobs-data/aws4_request",
            "/20240501/us-east-1/iot-jobs-data/aws4_request",
            "AKIDFLEETJOBS/20240501//iot-jobs-data/aws4_request",
            "AKID/FLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request",
        ] {
            malformed(
                &format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"),
                Some(BOTO_DATE),
            );
        }
        let cred = "AKIDFLEETJOBS/20240501/us-east-1/iot-jobs-data/aws4_request";
        // Host must be signed.
        let m = malformed(
            &format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=content-type;x-amz-date, Signature={sig}"),
            Some(BOTO_DATE),
        );
        assert!(m.contains("'Host'"), "{m}");
        malformed(
            &format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;;x-amz-date, Signature={sig}"),
            Some(BOTO_DATE),
        );
        // Signature not 64 hex characters.
        for bad in ["abc", &sig[..63], &format!("{}g", &sig[..63]), &format!("{sig}00")] {
            malformed(
                &format!(
                    "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=content-type;host;x-amz-date, Signature={bad}"
                ),
                Some(BOTO_DATE),
            );
        }
        // Components in another order, without spaces: still fine.
        assert!(check(
            Some(&format!(
                "AWS4-HMAC-SHA256 Signature={sig},SignedHeaders=content-type;host;x-amz-date,Credential={cred}"
            )),
            Some(BOTO_DATE)
        )
        .is_ok());
        // parse_credential only parses.
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(good).unwrap());
        assert_eq!(parse_credential(&headers).unwrap().service, "iot-jobs-data");
    }

    /// A request to `/jobs/j1` signed by [`sign`] for `service`, with `X-Amz-Content-Sha256:
    /// claimed` when given.
    fn signed_patch(service: &str, claimed: Option<&str>, body: &[u8]) -> HeaderMap {
        let params = SigningParams {
            access_key_id: "AK",
            secret_access_key: "s3cr3t",
            region: "eu-west-1",
            service,
            now: at(BOTO_DATE),
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost"));
        if let Some(claimed) = claimed {
            headers.insert("x-amz-content-sha256", HeaderValue::from_str(claimed).unwrap());
        }
        sign(&Method::PATCH, "/jobs/j1", "", &mut headers, body, &params);
        headers
    }

    fn check_patch(headers: &HeaderMap, body: &[u8]) -> Result<Credential, SigV4Error> {
        check_headers(headers, "eu-west-1", at(BOTO_DATE), |_| Some("s3cr3t".to_owned()))?.verify_body(
            &Method::PATCH,
            "/jobs/j1",
            "",
            headers,
            body,
        )
    }

    #[test]
    fn content_sha256_header() {
        let body = br#"{"description":"x"}"#;
        let hash = hex::encode(Sha256::digest(body));
        for service in ["iot", "iot-jobs-data"] {
            for claimed in [None, Some(hash.as_str())] {
                let good = signed_patch(service, claimed, body);
                assert!(check_patch(&good, body).is_ok(), "{service} {claimed:?}");
                assert_eq!(check_patch(&good, b"{}"), Err(SigV4Error::SignatureMismatch), "{service} {claimed:?}");
            }
            // A claimed hash that is not the body's is refused even if signed.
            let lying = signed_patch(service, Some(&hex::encode(Sha256::digest(b"{}"))), body);
            assert_eq!(check_patch(&lying, body), Err(SigV4Error::SignatureMismatch), "{service}");
        }
        // The data plane may leave its body unsigned...
        let unsigned = signed_patch("iot-jobs-data", Some(UNSIGNED_PAYLOAD), body);
        assert!(check_patch(&unsigned, body).is_ok());
        assert!(check_patch(&unsigned, b"other").is_ok());
        // ...the control plane may not: its canonical request always has the body's real hash.
        let unsigned = signed_patch("iot", Some(UNSIGNED_PAYLOAD), body);
        assert_eq!(check_patch(&unsigned, body), Err(SigV4Error::SignatureMismatch));
        assert_eq!(check_patch(&unsigned, b""), Err(SigV4Error::SignatureMismatch));
        // Upper-case hex is the same hash for the data plane; for the control plane the
        // canonical request holds the computed (lower-case) hash, which the client did not sign.
        let upper = hash.to_ascii_uppercase();
        assert!(check_patch(&signed_patch("iot-jobs-data", Some(&upper), body), body).is_ok());
        assert_eq!(check_patch(&signed_patch("iot", Some(&upper), body), body), Err(SigV4Error::SignatureMismatch));
    }

    #[test]
    fn credential_scoped_to_another_region() {
        let body = b"{}";
        let headers = signed_patch("iot", None, body);
        let check = |region: &str, secret_for: &dyn Fn(&str) -> Option<String>| {
            check_headers(&headers, region, at(BOTO_DATE), secret_for)
        };
        let known = |_: &str| Some("s3cr3t".to_owned());
        assert!(check("eu-west-1", &known).is_ok());
        let err = check("us-east-1", &known).unwrap_err();
        assert_eq!(err, SigV4Error::WrongRegion("eu-west-1".into()));
        assert_eq!(err.code().name(), "InvalidSignatureException");
        assert_eq!(err.message(), "Credential should be scoped to a valid region, not 'eu-west-1'.");
        assert_eq!(err.code().http_status(), 403);
        // Region names are compared exactly.
        assert!(matches!(check("EU-WEST-1", &known), Err(SigV4Error::WrongRegion(_))));
        // The scope is checked before the key: an unknown key in another region hears about the region.
        assert!(matches!(check("us-east-1", &|_| None), Err(SigV4Error::WrongRegion(_))));
        assert_eq!(check("eu-west-1", &|_| None).unwrap_err(), SigV4Error::UnknownAccessKey);
        // ...and after the clock.
        let later = UNIX_EPOCH + Duration::from_secs((parse_amz_date(BOTO_DATE).unwrap() + 3600) as u64);
        assert!(matches!(check_headers(&headers, "us-east-1", later, known), Err(SigV4Error::Expired(_))));
    }

    #[test]
    fn sign_then_verify_round_trip() {
        let params = SigningParams {
            access_key_id: "AKIA1",
            secret_access_key: "secret/with+chars=",
            region: "ap-southeast-2",
            service: "iot-jobs-data",
            now: UNIX_EPOCH + Duration::from_secs(1_709_251_199), // 2024-02-29T23:59:59Z
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("[::1]:8443"));
        headers.append("x-multi", HeaderValue::from_static(" one  two "));
        headers.append("x-multi", HeaderValue::from_static("three"));
        headers.insert("user-agent", HeaderValue::from_static("aws-cli/2"));
        let path = "/things/caf%C3%A9%2Fbar/jobs/%24next/";
        let query = "b=%2a&a=x y&a=%20&c";
        sign(&Method::DELETE, path, query, &mut headers, b"", &params);
        assert_eq!(headers["x-amz-date"], "20240229T235959Z");
        let auth = headers["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-multi,"), "{auth}");

        let ok = |headers: &HeaderMap, path: &str, query: &str| {
            verify(&Method::DELETE, path, query, headers, b"", params.now, |k| {
                (k == "AKIA1").then(|| params.secret_access_key.to_owned())
            })
        };
        assert_eq!(
            ok(&headers, path, query).unwrap(),
            Credential {
                access_key_id: "AKIA1".into(),
                date: "20240229".into(),
                region: "ap-southeast-2".into(),
                service: "iot-jobs-data".into(),
            }
        );
        // Equivalent encodings of the query are the same canonical query.
        assert!(ok(&headers, path, "a=%20&c=&a=x%20y&b=%2A").is_ok());
        // Repeated header values are order-sensitive.
        let mut swapped = headers.clone();
        swapped.remove("x-multi");
        swapped.append("x-multi", HeaderValue::from_static("three"));
        swapped.append("x-multi", HeaderValue::from_static("one two"));
        assert_eq!(ok(&swapped, path, query), Err(SigV4Error::SignatureMismatch));
        let mut collapsed = headers.clone();
        collapsed.remove("x-multi");
        collapsed.append("x-multi", HeaderValue::from_static("one two"));
        collapsed.append("x-multi", HeaderValue::from_static("  three"));
        assert!(ok(&collapsed, path, query).is_ok());
    }

    #[test]
    fn canonical_uri_matches_botocore() {
        for (raw, canonical) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/things/t1/jobs/$next", "/things/t1/jobs/%24next"),
            ("/things/t1/jobs/%24next", "/things/t1/jobs/%2524next"),
            ("/things/t%3A1%20x/jobs", "/things/t%253A1%2520x/jobs"),
            ("/a/./b/../c//d/", "/a/c/d/"),
            ("/a/b/..", "/a"),
            ("/..", "/"),
            ("/../a/", "/a/"),
            ("/a/%2E%2E/b", "/a/%252E%252E/b"),
            ("/-_.~!*'()", "/-_.~%21%2A%27%28%29"),
            ("/ሴ", "/%E1%88%B4"),
            ("/a:b@c+d=e", "/a%3Ab%40c%2Bd%3De"),
        ] {
            assert_eq!(canonical_uri(raw), canonical, "{raw}");
        }
    }

    #[test]
    fn canonical_query_matches_botocore() {
        for (raw, canonical) in [
            ("", ""),
            ("b=2&a=1&a=0", "a=0&a=1&b=2"),
            ("flag", "flag="),
            ("z=&flag", "flag=&z="),
            ("a=%7e&b=%7E", "a=~&b=~"),
            ("a=b+c", "a=b%2Bc"),
            ("k=v w", "k=v%20w"),
            ("k=%2a", "k=%2A"),
            ("k=$", "k=%24"),
            ("B=1&a=1", "B=1&a=1"),
            ("a=1=2", "a=1%3D2"),
            ("nextToken=tok%2B%2F%3D", "nextToken=tok%2B%2F%3D"),
        ] {
            assert_eq!(canonical_query(raw), canonical, "{raw}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        for bad in [
            "20230229T000000Z",
            "19000229T000000Z",
            "20240431T000000Z",
            "20240100T000000Z",
            "20240101T240000Z",
            "20240101T006000Z",
            "2024010T1000000Z",
            "20240101 000000Z",
            "+2024101T000000Z",
            "20240101T000000z",
            // 16 bytes with `T` and `Z` in place, but a field boundary inside a character.
            "202\u{e9}401T120000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        for secs in [0, 951_782_400, 1_440_938_160, 1_709_251_199, 4_102_444_800, -86_400] {
            assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs), "{secs}");
        }
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
    }

    #[test]
    fn error_codes_and_messages() {
        use SigV4Error::*;
        assert_eq!(Missing.code().name(), "MissingAuthenticationTokenException");
        assert_eq!(Malformed("x".into()).code().name(), "IncompleteSignatureException");
        assert_eq!(Malformed("x".into()).message(), "x");
        assert_eq!(UnknownAccessKey.code().name(), "UnrecognizedClientException");
        assert_eq!(UnknownAccessKey.message(), "The security token included in the request is invalid.");
        assert_eq!(SignatureMismatch.code().name(), "InvalidSignatureException");
        assert_eq!(
            SignatureMismatch.message(),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
        );
        assert_eq!(Expired("e".into()).code().name(), "InvalidSignatureException");
        assert_eq!(WrongRegion("r".into()).code().name(), "InvalidSignatureException");
        for e in [
            Missing,
            Malformed("x".into()),
            UnknownAccessKey,
            SignatureMismatch,
            Expired("e".into()),
            WrongRegion("r".into()),
        ] {
            assert_eq!(e.code().http_status(), 403);
        }
    }
}

/// Properties of the canonicalization over arbitrary input: it never panics, each step is
/// stable where it must be, and what [`sign`] produces always verifies.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// A fixed instant: the properties are about the request, not the clock.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_714_564_800) // 2024-05-01T12:00:00Z
    }

    proptest! {
        #[test]
        fn dot_segment_removal_is_idempotent_and_complete(tail in "\\PC*") {
            let path = format!("/{tail}");
            let once = remove_dot_segments(&path);
            prop_assert!(once.starts_with('/'));
            prop_assert_eq!(remove_dot_segments(&once), once.clone());
            let inner = once.trim_start_matches('/').trim_end_matches('/');
            if !inner.is_empty() {
                prop_assert!(inner.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{once}");
            }
        }

        #[test]
        fn canonical_uri_is_the_escaped_normalized_path(path in any::<String>()) {
            let canonical = canonical_uri(&path);
            prop_assert!(canonical.starts_with('/') || !path.is_empty() && !path.starts_with('/'));
            prop_assert!(canonical.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)), "{canonical}");
            let decoded: Vec<u8> = percent_decode_str(&canonical).collect();
            prop_assert_eq!(decoded, remove_dot_segments(&path).into_bytes());
        }

        #[test]
        fn canonical_query_is_idempotent_and_order_free(query in any::<String>()) {
            let canonical = canonical_query(&query);
            prop_assert_eq!(canonical_query(&canonical), canonical.clone());
            let reversed: Vec<&str> = query.split('&').rev().collect();
            prop_assert_eq!(canonical_query(&reversed.join("&")), canonical.clone());
            prop_assert!(canonical.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)), "{canonical}");
        }

        #[test]
        fn dates_parse_without_panicking_and_round_trip(s in any::<String>(), secs in -2_000_000_000i64..8_000_000_000) {
            if let Some(t) = parse_amz_date(&s) {
                prop_assert_eq!(format_amz_date(t).len(), 16);
            }
            prop_assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs));
        }

        #[test]
        fn authorization_parsing_never_panics(value in "[ -~]*", date in "[ -~]{0,20}") {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
            if let Ok(d) = HeaderValue::from_str(&date) {
                headers.insert("x-amz-date", d);
            }
            let _ = parse_credential(&headers);
            let _ = check_headers(&headers, "us-east-1", now(), |_| Some("secret".to_owned()));
        }

        #[test]
        fn what_is_signed_verifies_and_a_changed_body_does_not(
            path in "/\\PC{0,40}",
            query in "\\PC{0,40}",
            body in proptest::collection::vec(any::<u8>(), 0..256),
            service in prop_oneof![Just("iot"), Just("iot-jobs-data")],
            method in prop_oneof![Just(Method::GET), Just(Method::PUT), Just(Method::PATCH), Just(Method::DELETE)],
        ) {
            let params = SigningParams {
                access_key_id: "AKIAPROP",
                secret_access_key: "prop/secret+key",
                region: "eu-central-1",
                service,
                now: now(),
            };
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
            sign(&method, &path, &query, &mut headers, &body, &params);
            let verify = |body: &[u8]| {
                check_headers(&headers, "eu-central-1", now(), |k| (k == "AKIAPROP").then(|| "prop/secret+key".to_owned()))?
                    .verify_body(&method, &path, &query, &headers, body)
            };
            let credential = verify(&body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(credential.service, service);
            let mut changed = body.clone();
            changed.push(b'x');
            prop_assert_eq!(verify(&changed), Err(SigV4Error::SignatureMismatch));
        }
    }
}
