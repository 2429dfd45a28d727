//! The HTTP API against hostile and misconfigured clients, over raw sockets to the real
//! server: slow headers, absent bodies, too many connections, and requests refused on their
//! headers before any body is sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::time::{Duration, Instant, SystemTime};

use fleetjobs_api::sigv4::SigningParams;
use support::{read_response, tcp_closed_within, HttpAnswer, Server, TIMEOUT};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", server.http_port)).await.unwrap()
}

/// Sends `head` alone (no body, whatever its `content-length` says) and reads the answer.
async fn head_only(server: &Server, head: &str) -> Option<HttpAnswer> {
    let mut stream = connect(server).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    read_response(&mut stream, TIMEOUT).await
}

/// An unsigned request, answered 403 MissingAuthenticationToken.
const UNSIGNED_GET: &[u8] = b"GET /jobs HTTP/1.1\r\nhost: localhost\r\n\r\n";

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_at_the_header_timeout() {
    let server = Server::start_with(&["--http-header-timeout", "1"]);

    // Half a request line, then nothing.
    let mut slow = connect(&server).await;
    let started = Instant::now();
    slow.write_all(b"GET /jobs HTTP/1.1\r\nhost: loc").await.unwrap();
    assert!(tcp_closed_within(&mut slow, Duration::from_secs(5)).await, "a trickling client is disconnected");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", started.elapsed());

    // Connected, never a byte.
    let mut silent = connect(&server).await;
    assert!(tcp_closed_within(&mut silent, Duration::from_secs(5)).await, "a silent client is disconnected");

    // A served keep-alive connection that then idles.
    let mut idle = connect(&server).await;
    idle.write_all(UNSIGNED_GET).await.unwrap();
    let (status, code, _) = read_response(&mut idle, TIMEOUT).await.expect("an answer");
    assert_eq!((status, code.as_deref()), (403, Some("MissingAuthenticationTokenException")));
    let idle_since = Instant::now();
    assert!(tcp_closed_within(&mut idle, Duration::from_secs(5)).await, "an idle keep-alive connection is closed");
    assert!(idle_since.elapsed() >= Duration::from_millis(900), "{:?}", idle_since.elapsed());

    // The server still serves.
    server.ok("GET", "/jobs", "", None).await;
}

#[tokio::test]
async fn a_missing_body_gets_408_at_the_body_timeout() {
    let server = Server::start_with(&["--http-body-timeout", "1"]);
    let body = vec![b' '; 1000];
    let head = server.signed_head("PUT", "/jobs/j1", "", &body, body.len(), &[], &server.signing());
    let started = Instant::now();
    let (status, code, answer) = head_only(&server, &head).await.expect("an answer, not a silent close");
    assert_eq!((status, code.as_deref()), (408, Some("RequestTimeoutException")), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());

    // Half a body, then nothing: the same.
    let mut stream = connect(&server).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..500]).await.unwrap();
    let (status, _, _) = read_response(&mut stream, TIMEOUT).await.expect("an answer");
    assert_eq!(status, 408);
    assert!(tcp_closed_within(&mut stream, TIMEOUT).await, "and the connection is closed");

    // With the body, the same request is served (the job's target does not exist).
    let mut stream = connect(&server).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let (status, code, _) = read_response(&mut stream, TIMEOUT).await.expect("an answer");
    assert_eq!((status, code.as_deref()), (400, Some("InvalidRequestException")));
}

#[tokio::test]
async fn refusals_on_the_headers_come_before_the_body() {
    // A body timeout far beyond TIMEOUT: an answer within TIMEOUT cannot have waited for it.
    let server = Server::start_with(&["--http-body-timeout", "600"]);
    let body = vec![b' '; 500_000];
    let server = &server;
    let refused = |params: SigningParams, length: usize| {
        let head = server.signed_head("PUT", "/jobs/j1", "", &body, length, &[], &params);
        async move { head_only(server, &head).await.expect("an answer without the body") }
    };

    let (status, code, _) =
        refused(SigningParams { access_key_id: "AKIAUNKNOWN", ..server.signing() }, body.len()).await;
    assert_eq!((status, code.as_deref()), (403, Some("UnrecognizedClientException")));

    let (status, code, answer) = refused(SigningParams { region: "eu-west-1", ..server.signing() }, body.len()).await;
    assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")));
    assert_eq!(answer["message"], "Credential should be scoped to a valid region, not 'eu-west-1'.");

    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let (status, code, answer) = refused(SigningParams { now: an_hour_ago, ..server.signing() }, body.len()).await;
    assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")));
    assert!(answer["message"].as_str().unwrap().starts_with("Signature expired: "), "{answer}");

    let unsigned = format!("PUT /jobs/j1 HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n", body.len());
    let (status, code, _) = head_only(server, &unsigned).await.expect("an answer without the body");
    assert_eq!((status, code.as_deref()), (403, Some("MissingAuthenticationTokenException")));

    // Authenticated, but announcing more than the limit: refused at once, nothing read.
    let (status, code, _) = refused(server.signing(), fleetjobs_api::MAX_BODY + 1).await;
    assert_eq!((status, code.as_deref()), (413, Some("RequestEntityTooLargeException")));
}

#[tokio::test]
async fn the_control_plane_signs_its_payload() {
    let server = Server::start();
    let key = server.access_key.clone();
    let secret = server.secret_key.clone();
    let unsigned = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
    let (status, code, _) = server.call_as("GET", "/jobs", "", None, &unsigned, &key, &secret).await;
    assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")));
    // The empty body's real hash is fine.
    let real = [("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")];
    let (status, _, answer) = server.call_as("GET", "/jobs", "", None, &real, &key, &secret).await;
    assert_eq!(status, 200, "{answer}");
}

/// A connection the server has served one request on (and keeps alive), retried until the
/// server accepts one: connections it has just refused or closed may still be releasing their
/// slots.
async fn served_connection(server: &Server, recv_buffer: Option<u32>) -> TcpStream {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let mut stream = socket.connect(([127, 0, 0, 1], server.http_port).into()).await.unwrap();
        let _ = stream.write_all(UNSIGNED_GET).await;
        if let Some((status, _, _)) = read_response(&mut stream, Duration::from_secs(1)).await {
            assert_eq!(status, 403);
            return stream;
        }
        assert!(Instant::now() < deadline, "no connection served");
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let server = Server::start_with(&["--http-max-connections", "2"]);
    let mut first = served_connection(&server, None).await;
    let second = served_connection(&server, None).await;

    let mut third = connect(&server).await;
    assert!(tcp_closed_within(&mut third, Duration::from_secs(5)).await, "the connection over the cap is closed");
    let mut fourth = connect(&server).await;
    let _ = fourth.write_all(UNSIGNED_GET).await;
    assert!(read_response(&mut fourth, Duration::from_secs(5)).await.is_none(), "and so is the next");

    // The two within the cap are still served.
    first.write_all(UNSIGNED_GET).await.unwrap();
    assert_eq!(read_response(&mut first, TIMEOUT).await.expect("still served").0, 403);

    // Once they are gone, new connections are served again.
    drop((first, second));
    served_connection(&server, None).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_connection() {
    let server = Server::start_with(&["--http-max-connections", "1", "--http-write-timeout", "1"]);
    // A small receive window, one answer read (so this connection holds the only slot), then
    // requests pipelined without ever reading the answers: the server's writes block once
    // the socket buffers are full.
    let mut stuck = served_connection(&server, Some(4096)).await;
    let writer = tokio::spawn(async move {
        let batch = UNSIGNED_GET.repeat(1000);
        while stuck.write_all(&batch).await.is_ok() {}
    });
    // The only connection slot frees up once the server gives up on the stuck client.
    served_connection(&server, None).await;
    writer.abort();
}
