//! A real `fleetjobs serve` process on free ports, a SigV4-signing HTTP client, and a small
//! MQTT-over-mutual-TLS device client, for the integration tests.

// Test and benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, HeaderValue, Method};
use fleetjobs_api::sigv4::{sign, SigningParams};
use mqtt_proto::v3::{Connect, Packet, Publish, Subscribe, SubscribeReturnCode};
use mqtt_proto::{Pid, QoS, QosPid, TopicFilter, TopicName};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A new path under the temp dir (not created).
pub fn temp_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fleetjobs-{what}-{}", uuid::Uuid::new_v4()))
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Server {
    pub dir: PathBuf,
    pub http_port: u16,
    pub mqtt_port: u16,
    child: Option<Child>,
    pub access_key: String,
    pub secret_key: String,
    extra_args: Vec<String>,
}

/// An HTTP response as read off the socket: status, `x-amzn-ErrorType`, JSON body.
pub type HttpAnswer = (u16, Option<String>, Value);

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start with extra `serve` flags.
    pub fn start_with(extra_args: &[&str]) -> Server {
        Server::start_in_with(temp_path("it"), extra_args)
    }

    /// A server on an existing (or new) data directory.
    pub fn start_in(dir: PathBuf) -> Server {
        Server::start_in_with(dir, &[])
    }

    fn start_in_with(dir: PathBuf, extra_args: &[&str]) -> Server {
        let mut s = Server {
            dir,
            http_port: free_port(),
            mqtt_port: free_port(),
            child: None,
            access_key: String::new(),
            secret_key: String::new(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        // A free port is only free when it is chosen: another test's server or an outgoing
        // connection's ephemeral port may take it before this server binds it. Then the server
        // exits at once, and it is started again on new ports. Ready means the server said so in
        // its log (a connect to the port alone could reach another process, or the kernel's
        // self-connect to a port nobody listens on).
        for attempt in 1..=5 {
            let log_path = self.dir.with_extension("log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_fleetjobs"))
                .args(["serve", "--data-dir"])
                .arg(&self.dir)
                .args(["--http-listen", &format!("127.0.0.1:{}", self.http_port)])
                .args(["--mqtt-listen", &format!("127.0.0.1:{}", self.mqtt_port)])
                .args(["--jobs-data-listen", "127.0.0.1:0"])
                .args(&self.extra_args)
                // The ready line is logged at info, whatever else RUST_LOG asks for.
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").map_or("info".into(), |v| format!("{v},fleetjobs::serve=info")),
                )
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start fleetjobs");
            let deadline = Instant::now() + TIMEOUT;
            loop {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                if text.contains("fleetjobs ready") {
                    self.child = Some(child);
                    break;
                }
                if child.try_wait().unwrap().is_some() {
                    assert!(
                        text.contains("Address already in use") && attempt < 5,
                        "server exited at start; see {}",
                        log_path.display()
                    );
                    self.http_port = free_port();
                    self.mqtt_port = free_port();
                    break;
                }
                assert!(Instant::now() < deadline, "server did not start; see {}", log_path.display());
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.child.is_some() {
                break;
            }
        }
        let creds = std::fs::read_to_string(self.dir.join("credentials")).unwrap();
        let field = |name: &str| {
            creds
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches([' ', '=']).trim().to_string()))
                .unwrap()
        };
        self.access_key = field("aws_access_key_id");
        self.secret_key = field("aws_secret_access_key");
    }

    /// `kill -9`, then start again on the same data dir and ports.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn();
    }

    /// `kill -9` and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("root-CA.crt")).unwrap()
    }

    /// Call the `iot` API as botocore would. Returns (status, x-amzn-ErrorType, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        self.call_as(method, path, query, body, &[], &self.access_key.clone(), &self.secret_key.clone()).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<Value>,
        extra_headers: &[(&str, &str)],
        key: &str,
        secret: &str,
    ) -> HttpAnswer {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let params = SigningParams { access_key_id: key, secret_access_key: secret, ..self.signing() };
        let head = self.signed_head(method, path, query, &body, body.len(), extra_headers, &params);
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw)).await.unwrap().unwrap();
        parse_response(&raw).expect("a complete response")
    }

    /// How `call` signs: the server's admin key, `us-east-1`, `iot`, now.
    pub fn signing(&self) -> SigningParams<'_> {
        SigningParams {
            access_key_id: &self.access_key,
            secret_access_key: &self.secret_key,
            region: "us-east-1",
            service: "iot",
            now: SystemTime::now(),
        }
    }

    /// The head of a request signed over `body` as botocore signs it, with `connection: close`
    /// and the given `content-length` (which tests may set to anything).
    #[allow(clippy::too_many_arguments)]
    pub fn signed_head(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        content_length: usize,
        extra_headers: &[(&str, &str)],
        params: &SigningParams,
    ) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&format!("127.0.0.1:{}", self.http_port)).unwrap());
        for (k, v) in extra_headers {
            headers
                .insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        sign(&method, path, query, &mut headers, body, params);
        let target = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
        let mut req =
            format!("{method} {target} HTTP/1.1\r\nconnection: close\r\ncontent-length: {content_length}\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap()));
        }
        req.push_str("\r\n");
        req
    }

    /// Call and expect 200.
    pub async fn ok(&self, method: &str, path: &str, query: &str, body: Option<Value>) -> Value {
        let (status, err, body) = self.call(method, path, query, body).await;
        assert_eq!(status, 200, "{method} {path}: {err:?} {body}");
        body
    }

    /// A thing with an ACTIVE certificate whose policy is `policy` (attached to both).
    pub async fn device_identity(&self, thing: &str, policy: &Value) -> Identity {
        self.ok("POST", &format!("/things/{thing}"), "", Some(serde_json::json!({}))).await;
        let cert = self.ok("POST", "/keys-and-certificate", "setAsActive=true", None).await;
        let arn = cert["certificateArn"].as_str().unwrap().to_string();
        let policy_name = format!("{thing}-policy");
        self.ok(
            "POST",
            &format!("/policies/{policy_name}"),
            "",
            Some(serde_json::json!({"policyDocument": policy.to_string()})),
        )
        .await;
        self.ok("PUT", &format!("/target-policies/{policy_name}"), "", Some(serde_json::json!({"target": arn}))).await;
        let (status, _, _) = self
            .call_as(
                "PUT",
                &format!("/things/{thing}/principals"),
                "",
                None,
                &[("x-amzn-principal", &arn)],
                &self.access_key,
                &self.secret_key,
            )
            .await;
        assert_eq!(status, 200);
        Identity {
            thing: thing.to_string(),
            certificate_id: cert["certificateId"].as_str().unwrap().to_string(),
            certificate_arn: arn,
            cert_pem: cert["certificatePem"].as_str().unwrap().to_string(),
            key_pem: cert["keyPair"]["PrivateKey"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Parses one complete HTTP response (head and a `content-length` body), or `None` if `raw` does
/// not hold one yet.
pub fn parse_response(raw: &[u8]) -> Option<HttpAnswer> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    if body.len() < length {
        return None;
    }
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let body = &body[..length];
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(body).expect(body) };
    Some((status, header("x-amzn-errortype"), body))
}

/// Reads one response from `stream` within `wait`; `None` if the connection closed or the
/// time ran out first.
pub async fn read_response(stream: &mut TcpStream, wait: Duration) -> Option<HttpAnswer> {
    let deadline = Instant::now() + wait;
    let mut raw = Vec::new();
    loop {
        if let Some(answer) = parse_response(&raw) {
            return Some(answer);
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => raw.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the peer closed `stream` within `wait` (reading and discarding what it sends).
pub async fn tcp_closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

pub struct Identity {
    pub thing: String,
    pub certificate_id: String,
    pub certificate_arn: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A policy that lets a device use its own jobs topics (and connect with any client id).
pub fn own_jobs_policy(thing: &str) -> Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:client/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": format!("arn:aws:iot:us-east-1:123456789012:topic/$aws/things/{thing}/jobs/*")},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/{thing}/jobs/*")},
        {"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"], "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/events/*", "arn:aws:iot:us-east-1:123456789012:topic/$aws/events/*"]}
    ]})
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A minimal MQTT 3.1.1 client over mutual TLS.
pub struct Device {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    next_pid: u16,
}

pub async fn tls_stream(server: &Server, id: &Identity) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(server.ca_pem().as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.mqtt_port)).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

impl Device {
    /// Connect; `Err(code)` carries the CONNACK return code (or 255 when the connection closed).
    pub async fn connect(server: &Server, id: &Identity, client_id: &str) -> Result<Device, u8> {
        let io = match tls_stream(server, id).await {
            Ok(s) => s,
            Err(_) => return Err(255),
        };
        let mut d = Device { io: Box::new(io), buf: Vec::new(), next_pid: 1 };
        let connect = Connect::new(Arc::from(client_id), 60);
        d.send(Packet::Connect(connect)).await;
        match d.recv_packet(TIMEOUT).await {
            Some(Packet::Connack(ack)) if ack.code as u8 == 0 => Ok(d),
            Some(Packet::Connack(ack)) => Err(ack.code as u8),
            _ => Err(255),
        }
    }

    pub async fn send(&mut self, p: Packet) {
        let bytes = p.encode().unwrap();
        let _ = self.io.write_all(bytes.as_ref()).await;
    }

    pub async fn subscribe(&mut self, filter: &str) -> u8 {
        let pid = self.pid();
        self.send(Packet::Subscribe(Subscribe::new(pid, vec![(TopicFilter::try_from(filter).unwrap(), QoS::Level1)])))
            .await;
        loop {
            match self.recv_packet(TIMEOUT).await {
                Some(Packet::Suback(s)) => {
                    return match s.topics[0] {
                        SubscribeReturnCode::MaxLevel0 => 0,
                        SubscribeReturnCode::MaxLevel1 => 1,
                        SubscribeReturnCode::MaxLevel2 => 2,
                        SubscribeReturnCode::Failure => 0x80,
                    }
                }
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    fn pid(&mut self) -> Pid {
        self.next_pid += 1;
        Pid::try_from(self.next_pid).unwrap()
    }

    pub async fn publish(&mut self, topic: &str, payload: &Value) {
        let p =
            Publish::new(QosPid::Level0, TopicName::try_from(topic).unwrap(), payload.to_string().into_bytes().into());
        self.send(Packet::Publish(p)).await;
    }

    /// Publish a retained message at QoS 1 (an empty payload clears the topic) and wait for the
    /// PUBACK.
    pub async fn publish_retained(&mut self, topic: &str, payload: &[u8]) {
        let pid = self.pid();
        let mut p = Publish::new(QosPid::Level1(pid), TopicName::try_from(topic).unwrap(), payload.to_vec().into());
        p.retain = true;
        self.send(Packet::Publish(p)).await;
        loop {
            match self.recv_packet(TIMEOUT).await {
                Some(Packet::Puback(acked)) if acked == pid => return,
                Some(_) => continue,
                None => panic!("no PUBACK for the retained message on {topic}"),
            }
        }
    }

    /// Send PINGREQ; return the PUBLISHes (topic, payload, retain) received before PINGRESP,
    /// i.e. everything the server had queued for this client before it handled the PINGREQ.
    pub async fn publishes_before_ping(&mut self) -> Vec<(String, Vec<u8>, bool)> {
        self.send(Packet::Pingreq).await;
        let mut received = Vec::new();
        loop {
            match self.recv_packet(TIMEOUT).await {
                Some(Packet::Pingresp) => return received,
                Some(Packet::Publish(p)) => {
                    if let QosPid::Level1(pid) = p.qos_pid {
                        self.send(Packet::Puback(pid)).await;
                    }
                    received.push((p.topic_name.to_string(), p.payload.to_vec(), p.retain));
                }
                Some(_) => continue,
                None => panic!("no PINGRESP"),
            }
        }
    }

    /// Next PUBLISH (acknowledging QoS 1), or None on timeout / close.
    pub async fn recv(&mut self, wait: Duration) -> Option<(String, Value)> {
        loop {
            match self.recv_packet(wait).await? {
                Packet::Publish(p) => {
                    if let QosPid::Level1(pid) = p.qos_pid {
                        self.send(Packet::Puback(pid)).await;
                    }
                    let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    return Some((p.topic_name.to_string(), v));
                }
                _ => continue,
            }
        }
    }

    /// Next PUBLISH on exactly `topic`, skipping others.
    pub async fn expect(&mut self, topic: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some((t, v)) if t == topic => return v,
                Some(_) => continue,
                None => panic!("nothing on {topic}"),
            }
        }
    }

    /// Whether the server closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(left, self.io.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    async fn recv_packet(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(p)) = Packet::decode(&self.buf) {
                let len = p.encode_len().unwrap();
                self.buf.drain(..len);
                return Some(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout(left, self.io.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
