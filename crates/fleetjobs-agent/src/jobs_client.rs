//! The AWS IoT Jobs MQTT API over mutual TLS (rumqttc, rustls with the ring provider).
//!
//! One background task owns the connection: it connects (MQTT 5 first, then 3.1.1 when the
//! server refuses 5; the version that worked is kept for the life of the process), with a
//! persistent session (`clean_session=false` / `clean_start=false` + session expiry) and a
//! stable client id, subscribes (QoS 1) to `notify-next` and to the response topics of every
//! request it makes, and reconnects with jittered exponential backoff for ever. Every
//! connection attempt starts from a fresh rumqttc event loop, so rumqttc never re-sends an
//! old request behind the agent's back: the agent's journal outbox is the only source of
//! retries.
//!
//! Requests carry a fresh `clientToken`; the answer (`…/accepted` or `…/rejected`) is matched
//! by that token and awaited with a timeout. While disconnected, requests fail at once with
//! [`RequestError::Offline`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use rumqttc::{Packet as Packet4, QoS, TlsConfiguration, Transport};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::{AgentConfig, MqttVersion};
use crate::execution_status::{ExecutionStatus, ReportedStatus};

/// Largest MQTT packet accepted (job documents are ≤ 32 KiB on AWS; 128 KiB MQTT limit).
const MAX_PACKET: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {source}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("no {what} in {path}")]
    Empty { what: &'static str, path: std::path::PathBuf },
    #[error("TLS configuration: {0}")]
    Tls(#[from] Box<rustls::Error>),
}

/// Why a request got no `accepted` answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    #[error("not connected")]
    Offline,
    #[error("no answer within the request timeout")]
    Timeout,
    #[error("rejected: {0}")]
    Rejected(Box<Rejection>),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// A `…/rejected` payload (AWS `ErrorResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub execution_state: Option<ExecutionState>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionState {
    #[serde(default)]
    pub status: ReportedStatus,
    #[serde(default)]
    pub status_details: Option<Map<String, Value>>,
    #[serde(default)]
    pub version_number: Option<u64>,
}

/// An MQTT `JobExecution` object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecution {
    pub job_id: String,
    #[serde(default)]
    pub status: ReportedStatus,
    #[serde(default)]
    pub status_details: Option<Map<String, Value>>,
    #[serde(default)]
    pub job_document: Option<Value>,
    #[serde(default)]
    pub version_number: Option<u64>,
    #[serde(default)]
    pub execution_number: Option<u64>,
    /// Epoch seconds (part of the execution's identity: job ids are reused).
    #[serde(default)]
    pub queued_at: Option<f64>,
}

/// `{jobId}/update` request fields.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub status: ExecutionStatus,
    pub status_details: Value,
    pub expected_version: Option<u64>,
    pub execution_number: Option<u64>,
    pub step_timeout_in_minutes: Option<i64>,
}

impl UpdateRequest {
    /// The request's JSON (without `clientToken`).
    fn payload(&self) -> Map<String, Value> {
        let mut payload = json_map(json!({
            "status": self.status,
            "statusDetails": self.status_details,
            "includeJobExecutionState": true,
        }));
        if let Some(v) = self.expected_version {
            payload.insert("expectedVersion".into(), json!(v));
        }
        if let Some(n) = self.execution_number {
            payload.insert("executionNumber".into(), json!(n));
        }
        if let Some(t) = self.step_timeout_in_minutes {
            payload.insert("stepTimeoutInMinutes".into(), json!(t));
        }
        payload
    }
}

/// What the connection task tells the agent.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    Connected {
        protocol: &'static str,
        session_present: bool,
    },
    Disconnected {
        reason: String,
    },
    /// `notify-next`: the head of the thing's queue changed (`None`: queue empty).
    NextChanged(Option<Box<JobExecution>>),
}

#[derive(Clone)]
enum Publisher {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Publisher {
    async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Self::V4(c) => c.publish(topic, QoS::AtLeastOnce, false, payload).await.map_err(|e| e.to_string()),
            Self::V5(c) => c
                .publish(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    fn subscribe(&self, filter: String) -> Result<(), String> {
        match self {
            Self::V4(c) => c.try_subscribe(filter, QoS::AtLeastOnce).map_err(|e| e.to_string()),
            Self::V5(c) => c.try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce).map_err(|e| e.to_string()),
        }
    }
}

enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What one poll of the event loop yielded.
enum Polled {
    ConnAck { session_present: bool },
    Publish { topic: String, payload: Vec<u8> },
    Other,
}

impl Loop {
    async fn poll(&mut self) -> Result<Polled, String> {
        match self {
            Self::V4(l) => match l.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(Packet4::ConnAck(a)) => {
                    Ok(Polled::ConnAck { session_present: a.session_present })
                }
                rumqttc::Event::Incoming(Packet4::Publish(p)) => {
                    Ok(Polled::Publish { topic: p.topic, payload: p.payload.to_vec() })
                }
                _ => Ok(Polled::Other),
            },
            Self::V5(l) => match l.poll().await.map_err(|e| e.to_string())? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(a)) => {
                    Ok(Polled::ConnAck { session_present: a.session_present })
                }
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => Ok(Polled::Publish {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.to_vec(),
                }),
                _ => Ok(Polled::Other),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V5,
    V311,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Self::V5 => "MQTT 5",
            Self::V311 => "MQTT 3.1.1",
        }
    }
}

struct Response {
    accepted: bool,
    payload: Value,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Response>>>>;

/// A cheap handle to the connection, for making Jobs API requests.
#[derive(Clone)]
pub struct JobsClient {
    thing: String,
    request_timeout: Duration,
    publisher: Arc<Mutex<Option<Publisher>>>,
    pending: Pending,
}

impl JobsClient {
    /// Load the certificates, then start the connection task. Events arrive on the receiver.
    pub fn start(cfg: &AgentConfig) -> Result<(JobsClient, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
        let tls = Arc::new(tls_config(cfg)?);
        let client = JobsClient {
            thing: cfg.thing_name.clone(),
            request_timeout: cfg.request_timeout,
            publisher: Arc::new(Mutex::new(None)),
            pending: Arc::new(Mutex::new(HashMap::new())),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let driver = Driver { cfg: cfg.clone(), tls, client: client.clone(), events: events_tx };
        tokio::spawn(driver.run());
        Ok((client, events_rx))
    }

    pub fn is_connected(&self) -> bool {
        self.publisher.lock().expect("publisher lock").is_some()
    }

    fn topic(&self, suffix: &str) -> String {
        format!("$aws/things/{}/jobs/{}", self.thing, suffix)
    }

    async fn request(&self, suffix: &str, mut payload: Map<String, Value>) -> Result<Value, RequestError> {
        let publisher = self.publisher.lock().expect("publisher lock").clone().ok_or(RequestError::Offline)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        payload.insert("clientToken".into(), Value::String(token.clone()));
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(token.clone(), tx);
        let bytes = serde_json::to_vec(&payload).expect("JSON serializes");
        debug!(topic = %self.topic(suffix), "request");
        if let Err(e) = publisher.publish(self.topic(suffix), bytes).await {
            self.pending.lock().expect("pending lock").remove(&token);
            debug!(error = %e, "publish failed");
            return Err(RequestError::Offline);
        }
        let answer = tokio::time::timeout(self.request_timeout, rx).await;
        self.pending.lock().expect("pending lock").remove(&token);
        match answer {
            Err(_) => Err(RequestError::Timeout),
            Ok(Err(_)) => Err(RequestError::Offline),
            Ok(Ok(Response { accepted: true, payload })) => Ok(payload),
            Ok(Ok(Response { accepted: false, payload })) => Err(RequestError::Rejected(Box::new(
                serde_json::from_value(payload).map_err(|e| RequestError::Malformed(e.to_string()))?,
            ))),
        }
    }

    /// `$next/get`: the execution at the head of the queue (with its document), if any.
    pub async fn describe_next(&self) -> Result<Option<JobExecution>, RequestError> {
        let answer = self.request("$next/get", json_map(json!({"includeJobDocument": true}))).await?;
        execution_of(&answer)
    }

    /// `{jobId}/get`: one execution; `None` when the server has no such execution.
    pub async fn describe(
        &self,
        job_id: &str,
        execution_number: u64,
        include_document: bool,
    ) -> Result<Option<JobExecution>, RequestError> {
        let req = json_map(json!({"executionNumber": execution_number, "includeJobDocument": include_document}));
        match self.request(&format!("{job_id}/get"), req).await {
            Ok(answer) => execution_of(&answer),
            Err(RequestError::Rejected(r)) if r.code == "ResourceNotFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `{jobId}/update` with `includeJobExecutionState`; returns the new state when sent back.
    pub async fn update(&self, job_id: &str, req: &UpdateRequest) -> Result<Option<ExecutionState>, RequestError> {
        let answer = self.request(&format!("{job_id}/update"), req.payload()).await?;
        match answer.get("executionState") {
            None | Some(Value::Null) => Ok(None),
            Some(state) => {
                serde_json::from_value(state.clone()).map(Some).map_err(|e| RequestError::Malformed(e.to_string()))
            }
        }
    }
}

fn json_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn execution_of(answer: &Value) -> Result<Option<JobExecution>, RequestError> {
    match answer.get("execution") {
        None | Some(Value::Null) => Ok(None),
        Some(e) => serde_json::from_value(e.clone()).map(Some).map_err(|e| RequestError::Malformed(e.to_string())),
    }
}

/// rustls client config: trust only the given root CA, present the device certificate.
fn tls_config(cfg: &AgentConfig) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ClientError::Read { path: path.to_owned(), source })
    };
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(&read(&cfg.root_ca)?).flatten() {
        roots.add(der).map_err(Box::new)?;
    }
    if roots.is_empty() {
        return Err(ClientError::Empty { what: "certificate", path: cfg.root_ca.clone() });
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&cfg.cert)?).flatten().collect();
    if chain.is_empty() {
        return Err(ClientError::Empty { what: "certificate", path: cfg.cert.clone() });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&cfg.key)?)
        .map_err(|_| ClientError::Empty { what: "private key", path: cfg.key.clone() })?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(Box::new)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(Box::new)?)
}

/// The connection task.
struct Driver {
    cfg: AgentConfig,
    tls: Arc<rustls::ClientConfig>,
    client: JobsClient,
    events: mpsc::UnboundedSender<ClientEvent>,
}

impl Driver {
    async fn run(self) {
        let mut sticky = match self.cfg.mqtt_version {
            MqttVersion::Auto => None,
            MqttVersion::V5 => Some(Proto::V5),
            MqttVersion::V311 => Some(Proto::V311),
        };
        let mut failures: u32 = 0;
        loop {
            let candidates = match sticky {
                Some(p) => vec![p],
                None => vec![Proto::V5, Proto::V311],
            };
            let mut last_error = String::new();
            let mut opened = None;
            for proto in candidates {
                match self.open(proto).await {
                    Ok(conn) => {
                        opened = Some((proto, conn));
                        break;
                    }
                    Err(e) => {
                        debug!(protocol = proto.name(), error = %e, "connect failed");
                        last_error = format!("{}: {e}", proto.name());
                    }
                }
            }
            let Some((proto, (mut el, publisher, session_present))) = opened else {
                failures += 1;
                if failures == 1 {
                    warn!(error = %last_error, "cannot connect to {}:{}; retrying", self.cfg.endpoint, self.cfg.port);
                    let _ = self.events.send(ClientEvent::Disconnected { reason: last_error });
                }
                tokio::time::sleep(backoff(failures, self.cfg.reconnect_max)).await;
                continue;
            };
            if self.cfg.mqtt_version == MqttVersion::Auto && sticky.is_none() {
                sticky = Some(proto);
            }
            info!(protocol = proto.name(), session_present, client_id = %self.cfg.client_id, "connected");
            for filter in self.filters() {
                if let Err(e) = publisher.subscribe(filter) {
                    warn!(error = %e, "subscribe");
                }
            }
            *self.client.publisher.lock().expect("publisher lock") = Some(publisher);
            let _ = self.events.send(ClientEvent::Connected { protocol: proto.name(), session_present });
            let reason = loop {
                match el.poll().await {
                    Ok(Polled::Publish { topic, payload }) => self.dispatch(&topic, &payload),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            *self.client.publisher.lock().expect("publisher lock") = None;
            // Waiters see their sender dropped: RequestError::Offline.
            self.client.pending.lock().expect("pending lock").clear();
            warn!(error = %reason, "disconnected");
            let _ = self.events.send(ClientEvent::Disconnected { reason });
            failures = 1;
            tokio::time::sleep(backoff(failures, self.cfg.reconnect_max)).await;
        }
    }

    fn filters(&self) -> Vec<String> {
        let base = format!("$aws/things/{}/jobs", self.cfg.thing_name);
        ["notify-next", "$next/get/+", "start-next/+", "+/update/+", "+/get/+"]
            .iter()
            .map(|f| format!("{base}/{f}"))
            .collect()
    }

    /// Connect with `proto` and wait for a successful CONNACK.
    async fn open(&self, proto: Proto) -> Result<(Loop, Publisher, bool), String> {
        let transport = Transport::tls_with_config(TlsConfiguration::Rustls(self.tls.clone()));
        let timeout_secs = self.cfg.request_timeout.as_secs().max(5);
        let (mut el, publisher) = match proto {
            Proto::V311 => {
                let mut o = rumqttc::MqttOptions::new(&self.cfg.client_id, &self.cfg.endpoint, self.cfg.port);
                o.set_transport(transport)
                    .set_clean_session(false)
                    .set_keep_alive(self.cfg.keep_alive)
                    .set_max_packet_size(MAX_PACKET, MAX_PACKET);
                let (c, mut el) = rumqttc::AsyncClient::new(o, 64);
                el.network_options.set_connection_timeout(timeout_secs);
                (Loop::V4(Box::new(el)), Publisher::V4(c))
            }
            Proto::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(&self.cfg.client_id, &self.cfg.endpoint, self.cfg.port);
                o.set_transport(transport)
                    .set_clean_start(false)
                    .set_session_expiry_interval(Some(3600))
                    .set_keep_alive(self.cfg.keep_alive)
                    .set_max_packet_size(Some(MAX_PACKET as u32))
                    .set_connection_timeout(timeout_secs);
                let (c, el) = rumqttc::v5::AsyncClient::new(o, 64);
                (Loop::V5(Box::new(el)), Publisher::V5(c))
            }
        };
        match el.poll().await? {
            Polled::ConnAck { session_present } => Ok((el, publisher, session_present)),
            _ => Err("no CONNACK".into()),
        }
    }

    fn dispatch(&self, topic: &str, payload: &[u8]) {
        let prefix = format!("$aws/things/{}/jobs/", self.cfg.thing_name);
        let Some(rest) = topic.strip_prefix(&prefix) else { return };
        let value: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                warn!(topic, error = %e, "unparseable message");
                return;
            }
        };
        if rest == "notify-next" {
            match execution_of(&value) {
                Ok(exec) => {
                    let _ = self.events.send(ClientEvent::NextChanged(exec.map(Box::new)));
                }
                Err(e) => warn!(error = %e, "bad notify-next"),
            }
            return;
        }
        let accepted = if rest.ends_with("/accepted") {
            true
        } else if rest.ends_with("/rejected") {
            false
        } else {
            return;
        };
        let Some(token) = value.get("clientToken").and_then(Value::as_str) else { return };
        let waiter = self.client.pending.lock().expect("pending lock").remove(token);
        if let Some(tx) = waiter {
            let _ = tx.send(Response { accepted, payload: value });
        }
    }
}

/// Exponential backoff from 1 s, capped, with ±20 % jitter.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16)).min(max);
    jitter(base, 0.2)
}

/// `d` scaled by a random factor in `[1 - spread, 1 + spread]`.
pub fn jitter(d: Duration, spread: f64) -> Duration {
    let f = rand::rng().random_range((1.0 - spread)..=(1.0 + spread));
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(60);
        assert!(backoff(1, max) <= Duration::from_millis(1200));
        assert!(backoff(3, max) >= Duration::from_millis(3200));
        assert!(backoff(40, max) <= Duration::from_secs(72));
    }

    #[test]
    fn updates_carry_the_status_as_aws_spells_it() {
        let req = UpdateRequest {
            status: ExecutionStatus::InProgress,
            status_details: json!({"step": "1/2"}),
            expected_version: Some(4),
            execution_number: Some(1),
            step_timeout_in_minutes: None,
        };
        assert_eq!(
            Value::Object(req.payload()),
            json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1/2"}, "includeJobExecutionState": true,
                "expectedVersion": 4, "executionNumber": 1})
        );
    }

    #[test]
    fn executions_and_rejections_parse() {
        let answer = json!({"execution": {"jobId": "j1", "status": "QUEUED", "versionNumber": 1,
            "executionNumber": 2, "jobDocument": {"operation": "customJob"}}, "timestamp": 1});
        let e = execution_of(&answer).unwrap().unwrap();
        assert_eq!((e.job_id.as_str(), e.execution_number, e.version_number), ("j1", Some(2), Some(1)));
        assert_eq!(e.status, ReportedStatus::Known(ExecutionStatus::Queued));
        assert_eq!(e.queued_at, None);
        let queued = execution_of(&json!({"execution": {"jobId": "j1", "queuedAt": 1700000000}})).unwrap().unwrap();
        assert_eq!(queued.queued_at, Some(1_700_000_000.0));
        assert!(queued.status.is_terminal(), "no status: not one the agent may update");
        let odd = execution_of(&json!({"execution": {"jobId": "j1", "status": "PAUSED"}})).unwrap().unwrap();
        assert_eq!(odd.status, ReportedStatus::Unknown("PAUSED".into()));
        assert!(matches!(
            execution_of(&json!({"execution": {"jobId": "j1", "status": 7}})),
            Err(RequestError::Malformed(_))
        ));
        assert_eq!(execution_of(&json!({"timestamp": 1})).unwrap(), None);
        let r: Rejection = serde_json::from_value(json!({"code": "VersionMismatch", "message": "m",
            "executionState": {"status": "IN_PROGRESS", "versionNumber": 3}}))
        .unwrap();
        let state = r.execution_state.unwrap();
        assert_eq!((state.status.known(), state.version_number), (Some(ExecutionStatus::InProgress), Some(3)));
    }
}
