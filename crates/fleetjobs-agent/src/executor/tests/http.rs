//! A tiny HTTP/1.1 file server for download tests: optional Range support, scripted
//! failures (status codes, dropped or stalled connections), and a log of the requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// What to do with one request (consumed in order; then the route serves normally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Send the headers and this many body bytes, then close the connection.
    DropAfter(usize),
    /// Send the headers and this many body bytes, then send nothing more.
    StallAfter(usize),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    pub body: Vec<u8>,
    pub ranges: bool,
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Logged {
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Logged>,
}

pub(crate) struct TestServer {
    scheme: &'static str,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// An HTTPS server presenting `cert_pem` (with its chain) and `key_pem`.
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::listen(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn listen(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                match tls.clone() {
                    None => drop(tokio::spawn(serve(stream, state))),
                    Some(acceptor) => drop(tokio::spawn(async move {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, state).await;
                        }
                    })),
                }
            }
        });
        Self { scheme, addr, state, task }
    }

    pub fn route(&self, path: &str, route: Route) -> String {
        self.state.lock().unwrap().routes.insert(path.to_owned(), route);
        self.url(path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.path == path).collect()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Arc<Mutex<State>>) {
    let Some((path, range)) = read_request(&mut stream).await else { return };
    let (route, fault) = {
        let mut state = state.lock().unwrap();
        match state.routes.get_mut(&path) {
            Some(route) => {
                let fault = (!route.faults.is_empty()).then(|| route.faults.remove(0));
                (Some(route.clone()), fault)
            }
            None => (None, None),
        }
    };
    let Some(route) = route else {
        log(&state, &path, &range, 404);
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return;
    };
    if let Some(Fault::Status(status)) = fault {
        log(&state, &path, &range, status);
        let head = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        return;
    }
    let len = route.body.len();
    let start = range.as_deref().filter(|_| route.ranges).and_then(parse_range_start);
    let (status, head, body) = match start {
        Some(start) if start >= len => {
            (416, format!("HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{len}\r\n"), &[][..])
        }
        Some(start) => (
            206,
            format!("HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {start}-{}/{len}\r\n", len - 1),
            &route.body[start..],
        ),
        None => (200, "HTTP/1.1 200 OK\r\n".to_owned(), &route.body[..]),
    };
    log(&state, &path, &range, status);
    let head = format!("{head}content-length: {}\r\nconnection: close\r\n\r\n", body.len());
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    match fault {
        Some(Fault::DropAfter(n)) => {
            let _ = stream.write_all(&body[..n.min(body.len())]).await;
        }
        Some(Fault::StallAfter(n)) => {
            let _ = stream.write_all(&body[..n.min(body.len())]).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        _ => {
            let _ = stream.write_all(body).await;
        }
    }
    let _ = stream.shutdown().await;
}

fn log(state: &Mutex<State>, path: &str, range: &Option<String>, status: u16) {
    state.lock().unwrap().log.push(Logged { path: path.to_owned(), range: range.clone(), status });
}

/// The request path and its `Range` header.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(String, Option<String>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_owned());
    Some((path, range))
}

fn parse_range_start(range: &str) -> Option<usize> {
    range.strip_prefix("bytes=")?.split_once('-')?.0.parse().ok()
}
