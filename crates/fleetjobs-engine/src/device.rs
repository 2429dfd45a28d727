//! The device side: who a connection is (certificate → session), what its policies allow, and
//! the Jobs MQTT API (`$aws/things/{thing}/jobs/...`), answered on `/accepted` or
//! `/rejected` to the requester only.

use fleetjobs_core::execution::{self, DeviceUpdate, Rejection};
use fleetjobs_core::model::{CertificateStatus, JobExecution, JobExecutionStatus, StatusDetails};
use fleetjobs_core::policy::{self, IotAction, PolicyContext};
use fleetjobs_core::topics::{self, JobsRequest, JobsTopic};
use fleetjobs_core::validate;
use fleetjobs_core::ApiError;
use serde_json::{json, Map, Value};

use crate::state::State;
use crate::wire::{self, secs};
use crate::Engine;

/// An authenticated MQTT connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    pub client_id: String,
    pub certificate_id: String,
    pub certificate_arn: String,
}

impl DeviceSession {
    /// The thing this connection speaks for *now*: the client id, while a thing of that name
    /// is attached to the certificate (as AWS sets `iot:Connection.Thing.ThingName`). Read
    /// from the registry at each action, so a detach-thing-principal takes what the
    /// attachment gave away at the connection's next action, as a detach-policy does.
    fn thing_name<'s>(&'s self, s: &State) -> Option<&'s str> {
        s.is_attached(&self.certificate_arn, &self.client_id).then_some(self.client_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceAuthError {
    #[error("no client certificate")]
    NoCertificate,
    #[error("certificate {0} is not registered")]
    UnknownCertificate(String),
    #[error("certificate {0} is not ACTIVE")]
    NotActive(String),
    #[error("iot:Connect denied for client id {0}")]
    ConnectDenied(String),
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
}

/// A request rejected with an MQTT Jobs error code.
struct Rejected {
    code: &'static str,
    message: String,
    execution_state: Option<Value>,
}

/// The engine's own failures (the store refusing a write, say) as a device sees them.
impl From<ApiError> for Rejected {
    fn from(e: ApiError) -> Self {
        Rejected::new("InternalError", e.message)
    }
}

impl Rejected {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Rejected { code, message: message.into(), execution_state: None }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidRequest", message)
    }
}

fn resource(action: IotAction, name: &str) -> String {
    match action {
        IotAction::Connect => format!("client/{name}"),
        IotAction::Publish | IotAction::Receive | IotAction::RetainPublish => format!("topic/{name}"),
        IotAction::Subscribe => format!("topicfilter/{name}"),
    }
}

fn allowed(s: &State, session: &DeviceSession, action: IotAction, name: &str) -> bool {
    let active = s.certificates.get(&session.certificate_id).is_some_and(|c| c.status == CertificateStatus::Active);
    if !active {
        return false;
    }
    let docs: Vec<_> = s.policies_of_target(&session.certificate_arn).map(|(_, d)| d.as_ref()).collect();
    let ctx = PolicyContext {
        client_id: &session.client_id,
        thing_name: session.thing_name(s),
        certificate_id: Some(&session.certificate_id),
    };
    policy::is_allowed(&docs, action, &resource(action, name), &ctx)
}

/// The request payload as a JSON object (an empty payload is `{}`).
fn parse_payload(payload: &[u8]) -> Result<Map<String, Value>, Rejected> {
    validate::json_object(payload).map_err(|e| Rejected::new("InvalidJson", format!("The request payload {e}")))
}

fn integer(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, Rejected> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| Rejected::invalid(format!("{key} must be an integer")))
        }
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| Rejected::invalid(format!("{key} must be an integer")))
        }
        Some(_) => Err(Rejected::invalid(format!("{key} must be an integer"))),
    }
}

fn boolean(m: &Map<String, Value>, key: &str, default: bool) -> Result<bool, Rejected> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Rejected::invalid(format!("{key} must be a boolean"))),
    }
}

fn status_details(m: &Map<String, Value>) -> Result<Option<StatusDetails>, Rejected> {
    match m.get("statusDetails") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => validate::status_details(v).map(Some).map_err(Rejected::invalid),
    }
}

fn step_timeout(m: &Map<String, Value>, allow_discard: bool) -> Result<Option<i64>, Rejected> {
    let v = integer(m, "stepTimeoutInMinutes")?;
    if let Some(t) = v {
        validate::step_timeout(t, allow_discard).map_err(Rejected::invalid)?;
    }
    Ok(v)
}

fn execution_not_found(job_id: &str, thing: &str) -> Rejected {
    Rejected::new("ResourceNotFound", format!("Job execution for job {job_id} and thing {thing} does not exist."))
}

fn rejection(r: Rejection, e: &JobExecution) -> Rejected {
    let (code, message) = match r {
        Rejection::VersionMismatch => {
            ("VersionMismatch", "The expected version does not match the job execution version.".to_string())
        }
        Rejection::InvalidStateTransition(m) => ("InvalidStateTransition", m),
    };
    Rejected { code, message, execution_state: Some(wire::execution_state(e)) }
}

impl Engine {
    /// Authenticate a CONNECT: an ACTIVE certificate of ours whose policies allow
    /// `iot:Connect` on `client/{clientId}`.
    pub fn authenticate_device(
        &self,
        cert_der: Option<&[u8]>,
        client_id: &str,
    ) -> Result<DeviceSession, DeviceAuthError> {
        let der = cert_der.ok_or(DeviceAuthError::NoCertificate)?;
        let certificate_id = fleetjobs_pki::certificate_id(der);
        let s = self.lock().map_err(|e| DeviceAuthError::Unavailable(e.message))?;
        let cert = s
            .certificates
            .get(&certificate_id)
            .ok_or_else(|| DeviceAuthError::UnknownCertificate(certificate_id.clone()))?;
        if cert.status != CertificateStatus::Active {
            return Err(DeviceAuthError::NotActive(certificate_id));
        }
        let session = DeviceSession {
            client_id: client_id.to_string(),
            certificate_arn: cert.certificate_arn.clone(),
            certificate_id,
        };
        if !allowed(&s, &session, IotAction::Connect, client_id) {
            return Err(DeviceAuthError::ConnectDenied(client_id.to_string()));
        }
        Ok(session)
    }

    /// Authorize one MQTT action on a topic (or topic filter) for a session. The policies are
    /// read at each call, so attaching, detaching or deactivating takes effect at once.
    pub fn authorize_device(&self, session: &DeviceSession, action: IotAction, topic: &str) -> bool {
        self.lock().is_ok_and(|s| allowed(&s, session, action, topic))
    }

    /// Handle a publish if it is a Jobs API request. `None`: not a jobs topic. `Some`: the
    /// replies, `(topic, payload)`, for the requester only.
    pub async fn handle_jobs_request(&self, topic: &str, payload: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        let parsed = topics::parse(topic);
        if parsed == JobsTopic::NotJobs {
            return None;
        }
        Some(self.handle_jobs_topic(topic, parsed, payload).await)
    }

    /// Answer a publish on a jobs topic that the caller has parsed already (the device plane
    /// parses each topic once, to decide whether the service owns it).
    pub async fn handle_jobs_topic(
        &self,
        topic: &str,
        parsed: JobsTopic<'_>,
        payload: &[u8],
    ) -> Vec<(String, Vec<u8>)> {
        // The token is echoed on every answer, rejections of bad topics included.
        let request = parse_payload(payload).and_then(|m| match m.get("clientToken") {
            None | Some(Value::Null) => Ok((m, None)),
            Some(Value::String(t)) if t.chars().count() <= 64 => {
                let token = Some(t.clone());
                Ok((m, token))
            }
            Some(_) => Err(Rejected::invalid("clientToken must be a string of at most 64 characters")),
        });
        let (result, token) = match (parsed, request) {
            (_, Err(r)) => (Err(r), None),
            (JobsTopic::Request { thing, request }, Ok((m, token))) => {
                (self.jobs_request(thing, request, &m).await, token)
            }
            (_, Ok((_, token))) => {
                (Err(Rejected::new("InvalidTopic", format!("The topic {topic} is not a valid jobs topic"))), token)
            }
        };
        vec![self.reply(topic, result, token.as_deref())]
    }

    fn reply(
        &self,
        topic: &str,
        result: Result<Map<String, Value>, Rejected>,
        token: Option<&str>,
    ) -> (String, Vec<u8>) {
        let now = secs(self.now());
        let (accepted, mut body) = match result {
            Ok(body) => (true, body),
            Err(r) => {
                let mut m = Map::new();
                m.insert("code".into(), json!(r.code));
                m.insert("message".into(), json!(r.message));
                if let Some(state) = r.execution_state {
                    m.insert("executionState".into(), state);
                }
                (false, m)
            }
        };
        body.insert("timestamp".into(), json!(now));
        if let Some(t) = token {
            body.insert("clientToken".into(), json!(t));
        }
        (topics::reply(topic, accepted), serde_json::to_vec(&body).expect("json serializes"))
    }

    async fn jobs_request(
        &self,
        thing: &str,
        request: JobsRequest<'_>,
        m: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Rejected> {
        match request {
            JobsRequest::GetPending => self.mqtt_get_pending(thing).await,
            JobsRequest::StartNext => self.mqtt_start_next(thing, m).await,
            JobsRequest::Describe { job_id } => self.mqtt_describe(thing, job_id, m).await,
            JobsRequest::Update { job_id } => self.mqtt_update(thing, job_id, m).await,
        }
    }

    async fn mqtt_get_pending(&self, thing: &str) -> Result<Map<String, Value>, Rejected> {
        self.read(|s| {
            let pending = s.pending_of_thing(thing);
            let list = |status| -> Vec<Value> {
                pending
                    .iter()
                    .take(fleetjobs_core::pending::MAX_PENDING_SHOWN)
                    .filter(|e| e.status == status)
                    .map(|e| wire::mqtt_summary(e))
                    .collect()
            };
            let mut m = Map::new();
            m.insert("inProgressJobs".into(), json!(list(JobExecutionStatus::InProgress)));
            m.insert("queuedJobs".into(), json!(list(JobExecutionStatus::Queued)));
            Ok(m)
        })
        .await
    }

    async fn mqtt_start_next(&self, thing: &str, m: &Map<String, Value>) -> Result<Map<String, Value>, Rejected> {
        let details = status_details(m)?;
        step_timeout(m, false)?;
        self.write(|txn| {
            let mut out = Map::new();
            let Some(head) = txn.s.pending_of_thing(thing).first().map(|e| (*e).clone()) else { return Ok(out) };
            let mut e = head;
            if execution::start(&mut e, details.as_ref(), txn.now) {
                txn.put_execution(e.clone());
            }
            out.insert("execution".into(), wire::mqtt_execution(&e, txn.s.document(&e.job_id)));
            Ok(out)
        })
        .await
    }

    async fn mqtt_describe(
        &self,
        thing: &str,
        job_id: &str,
        m: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Rejected> {
        let number = integer(m, "executionNumber")?;
        let include_document = boolean(m, "includeJobDocument", true)?;
        self.read(|s| {
            let e = if job_id == "$next" {
                match s.pending_of_thing(thing).first() {
                    Some(e) => *e,
                    None => return Ok(Map::new()),
                }
            } else {
                match s.execution(job_id, thing, number) {
                    Some(e) => e,
                    None => return Err(execution_not_found(job_id, thing)),
                }
            };
            let mut out = Map::new();
            out.insert("execution".into(), wire::mqtt_execution(e, s.document(&e.job_id).filter(|_| include_document)));
            Ok(out)
        })
        .await
    }

    async fn mqtt_update(
        &self,
        thing: &str,
        job_id: &str,
        m: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Rejected> {
        let status = match m.get("status") {
            Some(Value::String(s)) => {
                JobExecutionStatus::parse(s).ok_or_else(|| Rejected::invalid(format!("Invalid status: {s}")))?
            }
            Some(_) => return Err(Rejected::invalid("status must be a string")),
            None => return Err(Rejected::invalid("Missing required field: status")),
        };
        if !execution::is_device_settable(status) {
            return Err(Rejected::invalid(format!("A device cannot set the status {}", status.as_str())));
        }
        let update = DeviceUpdate {
            status,
            status_details: status_details(m)?,
            expected_version: integer(m, "expectedVersion")?,
        };
        let number = integer(m, "executionNumber")?;
        let include_state = boolean(m, "includeJobExecutionState", false)?;
        let include_document = boolean(m, "includeJobDocument", false)?;
        step_timeout(m, true)?;
        self.write(|txn| {
            let Some(mut e) = txn.s.execution(job_id, thing, number).cloned() else {
                return Err(execution_not_found(job_id, thing));
            };
            if let Err(r) = execution::apply_device_update(&mut e, &update, txn.now) {
                return Err(rejection(r, &e));
            }
            let mut out = Map::new();
            if include_state {
                out.insert("executionState".into(), wire::execution_state(&e));
            }
            if let Some(document) = txn.s.document(job_id).filter(|_| include_document) {
                out.insert("jobDocument".into(), document.clone());
            }
            txn.put_execution(e);
            Ok(out)
        })
        .await
    }
}
