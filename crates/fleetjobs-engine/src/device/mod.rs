//! The device side: who a connection is (certificate → session), what its policies allow, and
//! the Jobs MQTT API (`$aws/things/{thing}/jobs/...`), answered on `/accepted` or
//! `/rejected` to the requester only. `payload` is its wire: typed requests in, typed answers
//! out, serialized after the state lock is released.

mod jobs_data;
mod payload;

use fleetjobs_core::execution::{self, DeviceUpdate};
use fleetjobs_core::model::{CaCertificateStatus, Certificate, CertificateStatus, JobExecution, StatusDetails};
use fleetjobs_core::policy::{self, IotAction, PolicyContext, PolicyDocument};
use fleetjobs_core::topics::{self, JobsRequest, JobsTopic};
use fleetjobs_core::validate::{self, SentStatusDetails};
use fleetjobs_core::ApiError;

pub(crate) use payload::{notify, notify_next, Execution};
use payload::{
    Answer, DescribeRequest, ExecutionState, Payload, PayloadError, StartNextRequest, UpdateRequest, Updated,
};

use std::sync::Arc;

use crate::state::State;
use crate::Engine;

/// An authenticated MQTT connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    pub client_id: String,
    pub certificate_id: String,
    pub certificate_arn: String,
    /// The connection's last Publish and Receive decisions (see [`Decisions`]).
    decisions: Decisions,
}

/// How many of a connection's Publish/Receive decisions are remembered: a telemetry
/// publisher's few topics, a fan-in publisher's or a fan-out subscriber's one.
const REMEMBERED: usize = 8;

/// What [`Engine::authorize_device`] remembers of one connection, valid while the engine's
/// authorization generation is the one it was read at: every committed change to anything but
/// jobs and executions (certificates, CAs, policies, attachments, things) starts a new
/// generation, so a detach or a deactivation still takes effect at the next packet.
/// - The connection's [`Grant`]: what its checks read from the registry, so that a check
///   within one generation takes no state lock and makes no lookup, only the policies'
///   evaluation (a device's Jobs API traffic: five checks per execution).
/// - Its last decisions on `iot:Publish` and `iot:Receive` outside `$aws/`, which repeat with
///   every message (a telemetry topic), so that those skip the evaluation too. The Jobs API's
///   topics name one job or request each: remembering them would only churn the memory.
#[derive(Default)]
struct Decisions(std::sync::Mutex<Remembered>);

#[derive(Default)]
struct Remembered {
    generation: u64,
    grant: Option<Grant>,
    recent: Vec<(IotAction, Box<str>, bool)>,
}

/// What a connection's policy checks read from the registry: whether its certificate is let
/// in, whether a thing named as its client id is attached to it, and its policies' documents
/// (shared with the state: a new policy version is a new document and a new generation).
struct Grant {
    admitted: bool,
    thing_attached: bool,
    policies: Vec<Arc<PolicyDocument>>,
}

impl Grant {
    fn read(s: &State, session: &DeviceSession) -> Self {
        let admitted = s
            .certificates
            .get(&session.certificate_id)
            .is_some_and(|c| c.status == CertificateStatus::Active && ca_admits(s, c));
        Grant {
            admitted,
            thing_attached: s.is_attached(&session.certificate_arn, &session.client_id),
            policies: if admitted {
                s.policies_of_target(&session.certificate_arn).map(|(_, d)| Arc::clone(d)).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn allows(&self, session: &DeviceSession, action: IotAction, name: &str) -> bool {
        if !self.admitted {
            return false;
        }
        // `iot:Connection.Thing.ThingName` is the client id while that thing is attached.
        let ctx = PolicyContext {
            client_id: &session.client_id,
            thing_name: self.thing_attached.then_some(session.client_id.as_str()),
            certificate_id: Some(&session.certificate_id),
        };
        with_resource(action, name, |resource| policy::is_allowed(&self.policies, action, resource, &ctx))
    }
}

impl Decisions {
    /// The decision from what is remembered at `generation`, if anything is.
    fn decide(&self, generation: u64, session: &DeviceSession, action: IotAction, topic: &str) -> Option<bool> {
        let mut r = self.0.lock().ok()?;
        if r.generation != generation {
            return None;
        }
        let repeats = repeats(action, topic);
        if repeats {
            let recent = r.recent.iter().find(|(a, t, _)| *a == action && **t == *topic);
            if let Some((_, _, allowed)) = recent {
                return Some(*allowed);
            }
        }
        let allowed = r.grant.as_ref()?.allows(session, action, topic);
        if repeats {
            r.remember(action, topic, allowed);
        }
        Some(allowed)
    }

    /// Remember `grant`, read at `generation`, and the decision it gives.
    fn renew(&self, generation: u64, grant: Grant, session: &DeviceSession, action: IotAction, topic: &str) -> bool {
        let allowed = grant.allows(session, action, topic);
        let Ok(mut r) = self.0.lock() else { return allowed };
        if r.generation > generation {
            return allowed; // read before a change another check already saw
        }
        if r.generation != generation {
            r.recent.clear();
            r.generation = generation;
        }
        r.grant = Some(grant);
        if repeats(action, topic) {
            r.remember(action, topic, allowed);
        }
        allowed
    }
}

impl Remembered {
    fn remember(&mut self, action: IotAction, topic: &str, allowed: bool) {
        if self.recent.len() >= REMEMBERED {
            self.recent.remove(0);
        }
        self.recent.push((action, topic.into(), allowed));
    }
}

/// Whether a decision is worth remembering by its topic: a Publish or Receive outside the
/// Jobs API's topics (`$aws/...`).
fn repeats(action: IotAction, topic: &str) -> bool {
    matches!(action, IotAction::Publish | IotAction::Receive) && !topic.starts_with("$aws/")
}

/// A session's copy starts with nothing remembered; remembered decisions do not make two
/// sessions differ.
impl Clone for Decisions {
    fn clone(&self) -> Self {
        Decisions::default()
    }
}

impl PartialEq for Decisions {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Decisions {}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions").finish_non_exhaustive()
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
    #[error("the CA certificate {ca} of certificate {certificate} is not ACTIVE (or no longer registered)")]
    CaNotActive { certificate: String, ca: String },
    #[error("iot:Connect denied for client id {0}")]
    ConnectDenied(String),
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
}

/// A request refused, in the Jobs MQTT API's dialect.
type Rejected = payload::Rejection;

/// The engine's own failures (the store refusing a write, say) as a device sees them.
impl From<ApiError> for Rejected {
    fn from(e: ApiError) -> Self {
        Rejected { cause: Some(e.code), ..Rejected::new("InternalError", e.message) }
    }
}

impl From<PayloadError> for Rejected {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::InvalidJson(m) => Rejected::new("InvalidJson", m),
            PayloadError::InvalidRequest(m) => Rejected::invalid(m),
        }
    }
}

impl Rejected {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Rejected { code, message: message.into(), execution_state: None, cause: None }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidRequest", message)
    }
}

/// The kind of resource an action is on: the start of its resource name (`topic/...`).
fn resource_prefix(action: IotAction) -> &'static str {
    match action {
        IotAction::Connect => "client/",
        IotAction::Publish | IotAction::Receive | IotAction::RetainPublish => "topic/",
        IotAction::Subscribe => "topicfilter/",
        IotAction::GetPendingJobExecutions
        | IotAction::StartNextPendingJobExecution
        | IotAction::DescribeJobExecution
        | IotAction::UpdateJobExecution => "thing/",
    }
}

/// Resource names up to this length are built on the stack.
const RESOURCE_ON_STACK: usize = 256;

/// `f` applied to the resource of `action` on `name` (`topic/{name}`, ...). The policy check
/// runs for every packet a device sends or receives, so the name is built in a stack buffer,
/// not a new `String`; only longer names (a topic may be) take the heap.
fn with_resource<R>(action: IotAction, name: &str, f: impl FnOnce(&str) -> R) -> R {
    let prefix = resource_prefix(action);
    let len = prefix.len() + name.len();
    if len <= RESOURCE_ON_STACK {
        let mut buf = [0u8; RESOURCE_ON_STACK];
        buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
        buf[prefix.len()..len].copy_from_slice(name.as_bytes());
        // Two whole `str`s end to end are UTF-8: this cannot fail.
        if let Ok(resource) = std::str::from_utf8(&buf[..len]) {
            return f(resource);
        }
    }
    f(&format!("{prefix}{name}"))
}

/// Whether the CA that signed `c` lets it in: certificates without a registered CA (ours,
/// those registered without a CA) always; the others while their CA is registered and ACTIVE.
fn ca_admits(s: &State, c: &Certificate) -> bool {
    c.ca_certificate_id
        .as_ref()
        .is_none_or(|ca| s.ca_certificates.get(ca).is_some_and(|ca| ca.status == CaCertificateStatus::Active))
}

fn allowed(s: &State, session: &DeviceSession, action: IotAction, name: &str) -> bool {
    Grant::read(s, session).allows(session, action, name)
}

fn check_step_timeout(minutes: Option<i64>, allow_discard: bool) -> Result<(), Rejected> {
    minutes.map_or(Ok(()), |t| validate::step_timeout(t, allow_discard).map_err(Rejected::invalid))
}

/// The `statusDetails` a device sent, checked against AWS's limits.
fn check_status_details(sent: Option<SentStatusDetails>) -> Result<Option<StatusDetails>, Rejected> {
    let details = sent.map(|d| d.0);
    details.as_ref().map_or(Ok(()), |d| validate::status_details(d).map_err(Rejected::invalid))?;
    Ok(details)
}

fn execution_not_found(job_id: &str, thing: &str) -> Rejected {
    Rejected::new("ResourceNotFound", format!("Job execution for job {job_id} and thing {thing} does not exist."))
}

fn rejection(r: execution::Rejection, e: &JobExecution) -> Rejected {
    let (code, message) = match r {
        execution::Rejection::VersionMismatch => {
            ("VersionMismatch", "The expected version does not match the job execution version.".to_string())
        }
        execution::Rejection::InvalidStateTransition(m) => ("InvalidStateTransition", m),
    };
    Rejected { code, message, execution_state: Some(ExecutionState::from(e)), cause: None }
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
        if !ca_admits(&s, cert) {
            let ca = cert.ca_certificate_id.clone().unwrap_or_default();
            return Err(DeviceAuthError::CaNotActive { certificate: certificate_id, ca });
        }
        let session = DeviceSession {
            client_id: client_id.to_string(),
            certificate_arn: cert.certificate_arn.clone(),
            certificate_id,
            decisions: Decisions::default(),
        };
        if !allowed(&s, &session, IotAction::Connect, client_id) {
            return Err(DeviceAuthError::ConnectDenied(client_id.to_string()));
        }
        Ok(session)
    }

    /// Authorize an `iot-jobs-data` request over mutual TLS: the client certificate, ACTIVE
    /// and ours, stands for the caller, and its policies must allow `action` on
    /// `thing/{thing}`. The thing is the connection's thing (`iot:Connection.Thing.*`) when
    /// it is attached to the certificate, as for an MQTT client whose id is the thing name.
    pub fn authorize_jobs_data(&self, cert_der: Option<&[u8]>, action: IotAction, thing: &str) -> Result<(), ApiError> {
        use fleetjobs_core::ErrorCode;
        let der = cert_der.ok_or_else(|| ApiError::new(ErrorCode::CertificateValidation, "No client certificate"))?;
        let certificate_id = fleetjobs_pki::certificate_id(der);
        let s = self.lock()?;
        let cert =
            s.certificates.get(&certificate_id).filter(|c| c.status == CertificateStatus::Active && ca_admits(&s, c));
        let Some(cert) = cert else {
            return Err(ApiError::new(
                ErrorCode::CertificateValidation,
                format!("The certificate {certificate_id} (or its CA) is not registered or not ACTIVE"),
            ));
        };
        let session = DeviceSession {
            client_id: thing.to_string(),
            certificate_arn: cert.certificate_arn.clone(),
            certificate_id,
            decisions: Decisions::default(),
        };
        if !allowed(&s, &session, action, thing) {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!("{action} on thing/{thing} is not allowed by the certificate's policies"),
            ));
        }
        Ok(())
    }

    /// Authorize one MQTT action on a topic (or topic filter) for a session. Attaching,
    /// detaching or deactivating takes effect at the next call: what the session remembers
    /// (see [`Decisions`]) is used only while no such change was made since (the
    /// authorization generation), so a connection's packets take the state lock only for
    /// its first check after a registry change.
    pub fn authorize_device(&self, session: &DeviceSession, action: IotAction, topic: &str) -> bool {
        let generation = self.authz_generation.load(std::sync::atomic::Ordering::Acquire);
        if let Some(allowed) = session.decisions.decide(generation, session, action, topic) {
            return allowed;
        }
        let Ok(s) = self.lock() else { return false };
        // Read with the state it describes: it changes only under the lock.
        let generation = self.authz_generation.load(std::sync::atomic::Ordering::Acquire);
        let grant = Grant::read(&s, session);
        drop(s);
        session.decisions.renew(generation, grant, session, action, topic)
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
        let (result, token) = match Payload::parse(payload) {
            Err(e) => (Err(Rejected::from(e)), None),
            Ok(p) => {
                let token = p.client_token.clone();
                let result = match parsed {
                    JobsTopic::Request { thing, namespace, request } => {
                        self.jobs_request(thing, namespace, request, p).await
                    }
                    _ => Err(Rejected::new("InvalidTopic", format!("The topic {topic} is not a valid jobs topic"))),
                };
                (result, token)
            }
        };
        let now = self.now();
        let accepted = result.is_ok();
        let body = match result {
            Ok(answer) => payload::reply(answer, now, token.as_deref()),
            Err(rejected) => payload::reply(rejected, now, token.as_deref()),
        };
        vec![(topics::reply(topic, accepted), body)]
    }

    async fn jobs_request(
        &self,
        thing: &str,
        ns: Option<&str>,
        request: JobsRequest<'_>,
        p: Payload<'_>,
    ) -> Result<Answer, Rejected> {
        match request {
            JobsRequest::GetPending => Ok(Answer::pending(&self.device_get_pending(thing, ns).await?)),
            JobsRequest::StartNext => {
                Ok(Answer::Execution { execution: self.device_start_next(thing, ns, p.request()?).await? })
            }
            JobsRequest::Describe { job_id } => {
                Ok(Answer::Execution { execution: self.device_describe(thing, ns, job_id, p.request()?).await? })
            }
            JobsRequest::Update { job_id } => {
                let u = self.device_update(thing, ns, job_id, p.request()?).await?;
                Ok(Answer::Updated { execution_state: u.execution_state, job_document: u.job_document })
            }
        }
    }

    // The four rules of the device API, shared by its two planes: MQTT (`jobs_request`) and
    // the `iot-jobs-data` HTTPS API (`jobs_data`). Each renders the typed answers its own way.
    // Each works in one job namespace (`ns`, `None` the default): the one of the topic over
    // MQTT; the default one over HTTPS, whose model has no namespace member. A job of another
    // namespace is not there for the request, as AWS keeps namespaced jobs off the plain
    // topics.

    /// GetPendingJobExecutions: the pending executions shown to the device, in `$next` order.
    async fn device_get_pending(&self, thing: &str, ns: Option<&str>) -> Result<Vec<JobExecution>, Rejected> {
        self.read(|s| Ok(s.shown(&s.pending_of_thing(thing, ns)).iter().map(|e| (*e).clone()).collect())).await
    }

    /// StartNextPendingJobExecution: `None` when nothing is pending.
    async fn device_start_next(
        &self,
        thing: &str,
        ns: Option<&str>,
        r: StartNextRequest,
    ) -> Result<Option<Execution>, Rejected> {
        check_step_timeout(r.step_timeout_in_minutes, false)?;
        let details = check_status_details(r.status_details)?;
        self.write(|txn| {
            let Some(mut e) = txn.s.pending_of_thing(thing, ns).first().map(|e| (*e).clone()) else {
                return Ok(None);
            };
            let started = execution::start(&mut e, details.as_ref(), txn.now);
            if started {
                execution::set_step_timer(&mut e, r.step_timeout_in_minutes, txn.now);
            }
            let execution = Execution::new(&e, txn.s.documents.get(&e.job_id).cloned());
            if started {
                txn.put_execution(e);
            }
            let key = (execution.job_id.as_str(), execution.thing_name.as_str(), execution.execution_number);
            let deadline = txn.s.deadline_of(&key);
            Ok(Some(execution.timed(deadline, txn.now)))
        })
        .await
    }

    /// DescribeJobExecution, `$next` included: `None` when `$next` and nothing is pending.
    async fn device_describe(
        &self,
        thing: &str,
        ns: Option<&str>,
        job_id: &str,
        r: DescribeRequest,
    ) -> Result<Option<Execution>, Rejected> {
        let include_document = r.include_job_document.unwrap_or(true);
        let now = self.now();
        self.read(|s| {
            let e = if job_id == "$next" {
                match s.pending_of_thing(thing, ns).first() {
                    Some(e) => *e,
                    None => return Ok(None),
                }
            } else {
                match s.execution(job_id, thing, r.execution_number).filter(|_| s.namespace_of(job_id) == ns) {
                    Some(e) => e,
                    None => return Err(execution_not_found(job_id, thing)),
                }
            };
            let document = s.documents.get(&e.job_id).filter(|_| include_document).cloned();
            let deadline = s.deadline_of(&(e.job_id.as_str(), e.thing_name.as_str(), e.execution_number));
            Ok(Some(Execution::new(e, document).timed(deadline, now)))
        })
        .await
    }

    /// UpdateJobExecution, through the same transaction whichever plane asked, so that both
    /// publish the same `notify`, `notify-next` and events.
    async fn device_update(
        &self,
        thing: &str,
        ns: Option<&str>,
        job_id: &str,
        r: UpdateRequest,
    ) -> Result<Updated, Rejected> {
        if !execution::is_device_settable(r.status) {
            return Err(Rejected::invalid(format!("A device cannot set the status {}", r.status.as_str())));
        }
        check_step_timeout(r.step_timeout_in_minutes, true)?;
        let status_details = check_status_details(r.status_details)?;
        let update = DeviceUpdate { status: r.status, status_details, expected_version: r.expected_version };
        self.write(|txn| {
            let found = txn.s.execution(job_id, thing, r.execution_number).filter(|_| txn.s.namespace_of(job_id) == ns);
            let Some(mut e) = found.cloned() else {
                return Err(execution_not_found(job_id, thing));
            };
            if let Err(rejected) = execution::apply_device_update(&mut e, &update, txn.now) {
                return Err(rejection(rejected, &e));
            }
            execution::set_step_timer(&mut e, r.step_timeout_in_minutes, txn.now);
            let updated = Updated {
                execution_state: r.include_job_execution_state.then(|| ExecutionState::from(&e)),
                job_document: txn.s.documents.get(job_id).filter(|_| r.include_job_document).cloned(),
            };
            txn.put_execution(e);
            Ok(updated)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_its_kind_then_the_name_on_the_stack_or_not() {
        let long = "a/".repeat(RESOURCE_ON_STACK);
        let edge = "b".repeat(RESOURCE_ON_STACK - "topic/".len());
        for name in ["", "x", "$aws/things/pi/jobs/get", "é/ü/☃", edge.as_str(), long.as_str()] {
            with_resource(IotAction::Publish, name, |r| assert_eq!(r, format!("topic/{name}")));
            with_resource(IotAction::Subscribe, name, |r| assert_eq!(r, format!("topicfilter/{name}")));
            with_resource(IotAction::Connect, name, |r| assert_eq!(r, format!("client/{name}")));
            with_resource(IotAction::UpdateJobExecution, name, |r| assert_eq!(r, format!("thing/{name}")));
        }
    }
}
