//! The in-memory state and `Txn`, the only way to change it.
//!
//! A `Txn` applies each change to the maps at once, records the matching store mutation,
//! and remembers which things' pending queues and which jobs it touched. `finish` then
//! derives what follows from the changes: SNAPSHOT job completion, `jobs/notify` and
//! `jobs/notify-next` for every thing whose queue changed, and the events, in that order, as
//! domain [`Notification`]s (rendered into topics and payloads by the commit pipeline, after
//! the lock is released).

use std::collections::{BTreeMap, BTreeSet};

// foldhash, not std's SipHash: the keys here are names an operator chose (things, jobs,
// groups) or certificate ARNs, not strings a device picks, and SipHash was ~4 % of the
// instructions of every execution. Its per-map random seed still defeats simple collisions.
use foldhash::HashMap;
use std::sync::Arc;

use fleetjobs_core::arn::{ArnScope, ResourceKind};
use fleetjobs_core::events::{ExecutionCounts, JobEvent};
use fleetjobs_core::execution;
use fleetjobs_core::fleet_query::{Query, ThingView};
use fleetjobs_core::model::{
    CaCertificate, Certificate, EventConfigurations, IndexingConfiguration, Job, JobExecution, JobExecutionStatus,
    JobStatus, JobTemplate, Policy, TargetSelection, Thing, ThingGroup, ThingType,
};
use fleetjobs_core::pending::{self, Place, QueueShape};
use fleetjobs_core::policy::PolicyDocument;
use fleetjobs_core::Millis;
use fleetjobs_store::{Mutation, Record, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::credentials::{AdminKey, SealedKey, SecretBox};
use crate::device::Execution;
use crate::document_source::{expiry_secs, DeviceDocument, DocumentSource};
use crate::notification::Notification;

/// (jobId, thingName, executionNumber).
pub type ExecKey = (String, String, i64);

/// An execution key as borrowed parts: maps keyed by [`ExecKey`] are searched with
/// `exec_key(job, thing, n)`, not with two new `String`s per lookup (the device path looks
/// executions up several times per request).
pub trait ExecKeyParts {
    fn parts(&self) -> (&str, &str, i64);
}

impl ExecKeyParts for ExecKey {
    fn parts(&self) -> (&str, &str, i64) {
        (&self.0, &self.1, self.2)
    }
}

impl ExecKeyParts for (&str, &str, i64) {
    fn parts(&self) -> (&str, &str, i64) {
        *self
    }
}

// The order of the parts is the tuple's own (`String` and `str` order alike), as `Borrow`
// requires.
impl<'a> std::borrow::Borrow<dyn ExecKeyParts + 'a> for ExecKey {
    fn borrow(&self) -> &(dyn ExecKeyParts + 'a) {
        self
    }
}

impl PartialEq for dyn ExecKeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn ExecKeyParts + '_ {}

// The tuple's hash: `&str` hashes as `String` does.
impl std::hash::Hash for dyn ExecKeyParts + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialOrd for dyn ExecKeyParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn ExecKeyParts + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// The borrowed key of (job, thing, execution number), for `get` on maps keyed by [`ExecKey`].
pub fn exec_key<'k>(key: &'k (&'k str, &'k str, i64)) -> &'k (dyn ExecKeyParts + 'k) {
    key
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt {kind} record {key}: {reason}")]
    Corrupt { kind: String, key: String, reason: String },
}

const THING: &str = "thing";
const CERTIFICATE: &str = "certificate";
const POLICY: &str = "policy";
const POLICY_TARGET: &str = "policy_target";
const THING_PRINCIPAL: &str = "thing_principal";
/// The `thingPrincipalType` an exclusive attachment's record holds.
const EXCLUSIVE_THING: &str = "EXCLUSIVE_THING";
pub(crate) const JOB: &str = "job";
pub(crate) const EXECUTION: &str = "execution";
const EVENT_CONFIGURATIONS: &str = "event_configurations";
const INDEXING_CONFIGURATION: &str = "indexing_configuration";
pub(crate) const ACCESS_KEY: &str = "access_key";
const THING_GROUP: &str = "thing_group";
/// Key: group name, newline, thing name.
const THING_GROUP_MEMBER: &str = "thing_group_member";
const THING_TYPE: &str = "thing_type";
const JOB_TEMPLATE: &str = "job_template";
const CA_CERTIFICATE: &str = "ca_certificate";
/// One record, key [`REGISTRATION_CODE_KEY`]: the account's registration code (a JSON string).
const REGISTRATION_CODE: &str = "registration_code";
const REGISTRATION_CODE_KEY: &str = "account";

/// Keys made of several parts join them with a newline (never valid inside any part).
fn join_key(parts: &[&str]) -> String {
    parts.join("\n")
}

/// `job\nthing\nnumber`, written once per execution update: one allocation, the number
/// written into it rather than into a `String` of its own.
fn exec_store_key(k: &impl ExecKeyParts) -> String {
    use std::fmt::Write;
    let (job, thing, number) = k.parts();
    let mut key = String::with_capacity(job.len() + thing.len() + 2 + 20);
    key.push_str(job);
    key.push('\n');
    key.push_str(thing);
    key.push('\n');
    // Writing to a `String` cannot fail.
    let _ = write!(key, "{number}");
    key
}

#[derive(Default)]
pub struct State {
    /// Sequence number of the last batch handed to the store.
    pub seq: u64,
    /// Which reading of the store this state is (starts at 1; each re-read after a failed
    /// commit starts the next). Batches carry it, so the store can refuse what built on a
    /// failed batch.
    pub epoch: u64,
    /// Which batch last wrote each job: what a read of one job waits for (`Engine::read_job`).
    pub written: crate::watermarks::Watermarks,
    pub things: BTreeMap<String, Thing>,
    pub certificates: BTreeMap<String, Certificate>,
    /// Registered CA certificates, by id. Devices' connects read their status here (one map
    /// lookup, in memory), so deactivating a CA refuses its devices' next connects at once.
    pub ca_certificates: BTreeMap<String, CaCertificate>,
    /// The account's registration code (GetRegistrationCode), made on first use.
    pub registration_code: Option<String>,
    pub policies: BTreeMap<String, (Policy, Arc<PolicyDocument>)>,
    /// Target ARN → the names of the policies attached to it. Keyed by target so that the
    /// policy check of every device packet finds a certificate's policies with one borrowed
    /// lookup.
    pub policy_targets: BTreeMap<String, BTreeSet<String>>,
    /// (thing name, principal ARN).
    pub thing_principals: BTreeSet<(String, String)>,
    /// Derived: (principal ARN, thing name), the reverse of `thing_principals`.
    /// Keyed by principal so that "is this thing attached to this certificate", asked at
    /// every policy check, is one hash lookup and one ordered-set lookup, with no allocation.
    pub principal_things: HashMap<String, BTreeSet<String>>,
    /// (thing name, principal ARN) of the attachments made `EXCLUSIVE_THING` (the record's
    /// value says so; the others are `NON_EXCLUSIVE_THING`).
    pub exclusive_principals: BTreeSet<(String, String)>,
    /// Shared with the durable view (`crate::durable_view`), which keeps the stored version
    /// of each record without copying it: a change replaces the record, never edits it.
    pub jobs: BTreeMap<String, Arc<Job>>,
    /// Derived: each job's document, parsed once (MQTT payloads embed it as an object).
    pub documents: HashMap<String, Arc<DeviceDocument>>,
    /// Derived: per-job execution counts by status.
    pub counts: HashMap<String, ExecutionCounts>,
    pub executions: BTreeMap<ExecKey, JobExecution>,
    /// Derived: thing name -> its executions (jobId, executionNumber).
    pub by_thing: HashMap<String, BTreeSet<(String, i64)>>,
    /// Derived: thing name -> its pending (QUEUED, IN_PROGRESS) executions, the part of
    /// `by_thing` that every device request and every change of the thing's queue reads: what
    /// they cost does not grow with the thing's finished executions.
    /// Each with its place in the queue, so that the queue's shape (asked before and after
    /// every change) reads no execution record.
    pending_by_thing: HashMap<String, BTreeMap<(String, i64), Place>>,
    pub events: Option<EventConfigurations>,
    /// The fleet-indexing configuration (AWS's default, all OFF, until one is stored).
    pub indexing: IndexingConfiguration,
    pub admin_keys: BTreeMap<String, AdminKey>,
    pub thing_groups: BTreeMap<String, ThingGroup>,
    /// Derived: group name -> its direct child groups.
    pub group_children: HashMap<String, BTreeSet<String>>,
    /// (group name, thing name): static memberships.
    pub group_members: BTreeSet<(String, String)>,
    /// Derived: thing name -> the groups it was added to, the reverse of `group_members`.
    pub thing_memberships: HashMap<String, BTreeSet<String>>,
    /// Derived: each dynamic group's parsed query (the stored record keeps its text).
    pub queries: HashMap<String, Arc<Query>>,
    /// Derived: (dynamic group name, thing name) for every thing its query matches now.
    pub dynamic_members: BTreeSet<(String, String)>,
    /// Derived: thing name -> the dynamic groups it matches, the reverse of `dynamic_members`.
    pub thing_dynamic: HashMap<String, BTreeSet<String>>,
    pub thing_types: BTreeMap<String, ThingType>,
    pub job_templates: BTreeMap<String, JobTemplate>,
    /// Derived: the running timers (IN_PROGRESS executions with an in-progress or step
    /// timeout), by deadline, and each execution's deadline.
    timers: BTreeSet<(Millis, ExecKey)>,
    timer_of: HashMap<ExecKey, Millis>,
    /// Who presigns the documents' `${aws:iot:s3-presigned-url:…}` placeholders.
    document_source: Option<Arc<dyn DocumentSource>>,
}

/// The job document as a JSON object, kept parsed for the MQTT answers that embed it (it was
/// validated at creation), with the expiry of the presigned URLs they get and who signs them.
fn document_object(job: &Job, presigner: Option<&Arc<dyn DocumentSource>>) -> DeviceDocument {
    let value = serde_json::from_str(&job.document).unwrap_or(Value::Null);
    DeviceDocument::new(value, presign_expiry(job), presigner.cloned())
}

fn presign_expiry(job: &Job) -> Option<i64> {
    job.configs.presigned_url_config.as_ref().and_then(|c| c.expires_in_sec)
}

fn decode<T: DeserializeOwned>(r: &Record) -> Result<T, LoadError> {
    serde_json::from_str(&r.value).map_err(|e| LoadError::Corrupt {
        kind: r.kind.clone(),
        key: r.key.clone(),
        reason: e.to_string(),
    })
}

fn split2(r: &Record) -> Result<(String, String), LoadError> {
    r.key.split_once('\n').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| LoadError::Corrupt {
        kind: r.kind.clone(),
        key: r.key.clone(),
        reason: "bad key".into(),
    })
}

impl State {
    pub fn load(records: Vec<Record>, secrets: &SecretBox, now: Millis) -> Result<State, LoadError> {
        let mut s = State { epoch: 1, ..State::default() };
        for r in &records {
            match r.kind.as_str() {
                THING => {
                    let t: Thing = decode(r)?;
                    s.things.insert(t.thing_name.clone(), t);
                }
                CERTIFICATE => {
                    let c: Certificate = decode(r)?;
                    s.certificates.insert(c.certificate_id.clone(), c);
                }
                CA_CERTIFICATE => {
                    let c: CaCertificate = decode(r)?;
                    s.ca_certificates.insert(c.certificate_id.clone(), c);
                }
                REGISTRATION_CODE => s.registration_code = Some(decode(r)?),
                POLICY => {
                    let p: Policy = decode::<Policy>(r)?.with_versions();
                    let doc = PolicyDocument::parse(&p.policy_document).map_err(|e| LoadError::Corrupt {
                        kind: r.kind.clone(),
                        key: r.key.clone(),
                        reason: e.to_string(),
                    })?;
                    s.policies.insert(p.policy_name.clone(), (p, Arc::new(doc)));
                }
                POLICY_TARGET => {
                    let (policy, target) = split2(r)?;
                    s.policy_targets.entry(target).or_default().insert(policy);
                }
                THING_PRINCIPAL => {
                    let (thing, principal) = split2(r)?;
                    if r.value.contains(EXCLUSIVE_THING) {
                        s.exclusive_principals.insert((thing.clone(), principal.clone()));
                    }
                    s.principal_things.entry(principal.clone()).or_default().insert(thing.clone());
                    s.thing_principals.insert((thing, principal));
                }
                JOB => {
                    let j: Job = decode(r)?;
                    s.documents.insert(j.job_id.clone(), Arc::new(document_object(&j, None)));
                    s.jobs.insert(j.job_id.clone(), Arc::new(j));
                }
                EXECUTION => {
                    let e: JobExecution = decode(r)?;
                    s.index_execution(&e, 1);
                    s.executions.insert((e.job_id.clone(), e.thing_name.clone(), e.execution_number), e);
                }
                EVENT_CONFIGURATIONS => s.events = Some(decode(r)?),
                INDEXING_CONFIGURATION => s.indexing = decode(r)?,
                ACCESS_KEY => {
                    let sealed: SealedKey = decode(r)?;
                    let key = secrets.open(&sealed).map_err(|reason| LoadError::Corrupt {
                        kind: r.kind.clone(),
                        key: r.key.clone(),
                        reason,
                    })?;
                    s.admin_keys.insert(key.access_key_id.clone(), key);
                }
                THING_GROUP => {
                    let g: ThingGroup = decode(r)?;
                    if let Some(parent) = &g.parent_group_name {
                        s.group_children.entry(parent.clone()).or_default().insert(g.thing_group_name.clone());
                    }
                    if let Some(q) = &g.query_string {
                        match fleetjobs_core::fleet_query::parse(q) {
                            Ok(query) => {
                                s.queries.insert(g.thing_group_name.clone(), Arc::new(query));
                            }
                            // Accepted when created: a later, stricter parser must not keep
                            // the server from starting. The group matches nothing.
                            Err(e) => {
                                tracing::warn!(group = %g.thing_group_name, error = %e, "dynamic group query no longer parses")
                            }
                        }
                    }
                    s.thing_groups.insert(g.thing_group_name.clone(), g);
                }
                THING_GROUP_MEMBER => {
                    let (group, thing) = split2(r)?;
                    s.thing_memberships.entry(thing.clone()).or_default().insert(group.clone());
                    s.group_members.insert((group, thing));
                }
                THING_TYPE => {
                    let t: ThingType = decode(r)?;
                    s.thing_types.insert(t.thing_type_name.clone(), t);
                }
                JOB_TEMPLATE => {
                    let t: JobTemplate = decode(r)?;
                    s.job_templates.insert(t.job_template_id.clone(), t);
                }
                other => tracing::warn!(kind = other, "ignoring unknown record kind"),
            }
        }
        if s.events.is_none() {
            s.events = Some(EventConfigurations::fleetjobs_default(now));
        }
        // Dynamic memberships are derived from the stored queries and things.
        let things: Vec<String> = s.things.keys().cloned().collect();
        for thing in things {
            s.reevaluate_dynamic(&thing);
        }
        // Timers are derived from the stored executions and their jobs' configs, so every
        // deadline continues after a restart (an overdue one fires at once, and only once:
        // the execution is no longer IN_PROGRESS afterwards).
        let running: Vec<(ExecKey, JobExecution)> = s
            .executions
            .iter()
            .filter(|(_, e)| e.status == JobExecutionStatus::InProgress)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (key, e) in running {
            s.set_timer(&key, Some(&e));
        }
        Ok(s)
    }

    /// Keep the timer index in step with an execution's new state (`None`: it is gone).
    fn set_timer(&mut self, key: &impl ExecKeyParts, e: Option<&JobExecution>) {
        let owned = |k: &dyn ExecKeyParts| {
            let (job, thing, number) = k.parts();
            (job.to_string(), thing.to_string(), number)
        };
        // Most executions have no timer: nothing is allocated for them.
        if let Some(old) = self.timer_of.remove(key as &dyn ExecKeyParts) {
            self.timers.remove(&(old, owned(key)));
        }
        let Some(e) = e.filter(|e| e.status == JobExecutionStatus::InProgress) else { return };
        let minutes = self
            .jobs
            .get(&e.job_id)
            .and_then(|j| j.configs.timeout_config.as_ref())
            .and_then(|t| t.in_progress_timeout_in_minutes);
        if let Some(deadline) = execution::deadline(e, minutes) {
            self.timers.insert((deadline, owned(key)));
            self.timer_of.insert(owned(key), deadline);
        }
    }

    /// The source that presigns documents, if one is wired.
    pub fn document_source(&self) -> Option<Arc<dyn DocumentSource>> {
        self.document_source.clone()
    }

    /// Presign documents' placeholders with `source` from now on (also the documents already
    /// loaded).
    pub fn set_document_source(&mut self, source: Arc<dyn DocumentSource>) {
        for job in self.jobs.values() {
            self.documents.insert(job.job_id.clone(), Arc::new(document_object(job, Some(&source))));
        }
        self.document_source = Some(source);
    }

    /// When the execution times out, if a timer runs.
    pub fn deadline_of(&self, key: &impl ExecKeyParts) -> Option<Millis> {
        self.timer_of.get(key as &dyn ExecKeyParts).copied()
    }

    /// The earliest running deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|(d, _)| *d)
    }

    /// The executions whose timers have expired at `now`.
    pub fn due_timers(&self, now: Millis) -> Vec<ExecKey> {
        self.timers.iter().take_while(|(d, _)| *d <= now).map(|(_, k)| k.clone()).collect()
    }

    /// Keep the derived indexes in step with one execution being added (+1) or removed (-1).
    fn index_execution(&mut self, e: &JobExecution, delta: i64) {
        self.counts.entry(e.job_id.clone()).or_default().add(e.status, delta);
        let set = self.by_thing.entry(e.thing_name.clone()).or_default();
        if delta > 0 {
            set.insert((e.job_id.clone(), e.execution_number));
        } else {
            set.remove(&(e.job_id.clone(), e.execution_number));
        }
        self.index_pending(e, delta > 0 && e.is_pending());
    }

    /// `pending_by_thing` is what it would be if derived from the executions afresh.
    #[cfg(test)]
    fn assert_pending_index(&self) {
        let mut fresh: HashMap<String, BTreeMap<(String, i64), Place>> = HashMap::default();
        for e in self.executions.values().filter(|e| e.is_pending()) {
            fresh.entry(e.thing_name.clone()).or_default().insert((e.job_id.clone(), e.execution_number), Place::of(e));
        }
        assert_eq!(self.pending_by_thing, fresh, "the pending index is out of step with the executions");
    }

    /// Keep `pending_by_thing` in step with whether the execution is pending now.
    fn index_pending(&mut self, e: &JobExecution, pending: bool) {
        let key = (e.job_id.clone(), e.execution_number);
        if pending {
            self.pending_by_thing.entry(e.thing_name.clone()).or_default().insert(key, Place::of(e));
        } else if let Some(set) = self.pending_by_thing.get_mut(&e.thing_name) {
            set.remove(&key);
            // A thing's queue empties after each job: the entry goes, and comes back with the next.
            if set.is_empty() {
                self.pending_by_thing.remove(&e.thing_name);
            }
        }
    }

    pub fn event_configurations(&self) -> &EventConfigurations {
        self.events.as_ref().expect("set at load")
    }

    /// All executions of a thing.
    pub fn executions_of_thing<'a>(&'a self, thing: &str) -> impl Iterator<Item = &'a JobExecution> + 'a {
        // Looked up by borrowed key: nothing allocated per execution (a hot path of CreateJob
        // on large groups, and of every device request).
        self.by_thing.get_key_value(thing).into_iter().flat_map(move |(thing, entries)| {
            entries
                .iter()
                .filter_map(move |(job, n)| self.executions.get(exec_key(&(job.as_str(), thing.as_str(), *n))))
        })
    }

    /// A thing's pending executions (QUEUED, IN_PROGRESS), in no particular order.
    pub fn pending_executions_of_thing<'a>(&'a self, thing: &str) -> impl Iterator<Item = &'a JobExecution> + 'a {
        self.pending_by_thing.get_key_value(thing).into_iter().flat_map(move |(thing, entries)| {
            entries
                .keys()
                .filter_map(move |(job, n)| self.executions.get(exec_key(&(job.as_str(), thing.as_str(), *n))))
        })
    }

    /// The part of a thing's pending executions that `jobs/get` and `jobs/notify` show: 10, or
    /// 15 when one of them belongs to a scheduled job.
    pub fn shown<'p, 'e>(&self, pending: &'p [&'e JobExecution]) -> &'p [&'e JobExecution] {
        let scheduled =
            pending.iter().any(|e| self.jobs.get(&e.job_id).is_some_and(|j| j.configs.scheduling_config.is_some()));
        &pending[..pending.len().min(pending::shown(scheduled))]
    }

    /// The job namespace an execution of `job` lives in (`None`: the default namespace).
    pub fn namespace_of(&self, job: &str) -> Option<&str> {
        self.jobs.get(job).and_then(|j| j.namespace_id.as_deref())
    }

    /// The thing's pending executions in one job namespace, in `$next` order: each namespace
    /// is a queue of its own, with its own head and its own `notify` / `notify-next` topics.
    pub fn pending_of_thing(&self, thing: &str, namespace: Option<&str>) -> Vec<&JobExecution> {
        pending::ordered(self.pending_executions_of_thing(thing).filter(|e| self.namespace_of(&e.job_id) == namespace))
    }

    /// The shape of each of the thing's queues, by the namespaces it has pending executions in
    /// (a namespace without any has the empty shape, so it is left out).
    ///
    /// Asked twice per change of a thing's executions (before and after): the common case, no
    /// job with a namespace, builds one shape without grouping anything.
    pub fn queue_shapes(&self, thing: &str) -> QueueShapes {
        // A thing with nothing pending has no entry (the index drops emptied ones).
        let Some(pending) = self.pending_by_thing.get(thing) else { return QueueShapes::default() };
        let places = pending.iter().map(|((job, n), place)| (*place, job.as_str(), *n));
        if pending.keys().all(|(job, _)| self.namespace_of(job).is_none()) {
            return QueueShapes(vec![(None, QueueShape::of_places(places))]);
        }
        let mut by_namespace: BTreeMap<Option<&str>, Vec<(Place, &str, i64)>> = BTreeMap::new();
        for p in places {
            by_namespace.entry(self.namespace_of(p.1)).or_default().push(p);
        }
        QueueShapes(
            by_namespace.into_iter().map(|(ns, ps)| (ns.map(str::to_string), QueueShape::of_places(ps))).collect(),
        )
    }

    /// The latest execution of (job, thing), or the given execution number.
    pub fn execution(&self, job: &str, thing: &str, number: Option<i64>) -> Option<&JobExecution> {
        match number {
            Some(n) => self.executions.get(exec_key(&(job, thing, n))),
            // The last of (job, thing)'s executions: the greatest key up to number i64::MAX.
            None => {
                let hi = (job, thing, i64::MAX);
                let range = (std::ops::Bound::Unbounded, std::ops::Bound::Included(exec_key(&hi)));
                self.executions
                    .range::<dyn ExecKeyParts, _>(range)
                    .next_back()
                    .filter(|(k, _)| k.0 == job && k.1 == thing)
                    .map(|(_, e)| e)
            }
        }
    }

    /// All executions of a job.
    pub fn executions_of_job<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a JobExecution> + 'a {
        let lo = (job.to_string(), String::new(), i64::MIN);
        let job = job.to_string();
        self.executions.range(lo..).take_while(move |(k, _)| k.0 == job).map(|(_, e)| e)
    }

    /// A job's document as a JSON object.
    pub fn counts(&self, job: &str) -> ExecutionCounts {
        self.counts.get(job).copied().unwrap_or_default()
    }

    /// Policies attached to a target (certificate ARN).
    pub fn policies_of_target<'a>(
        &'a self,
        target: &str,
    ) -> impl Iterator<Item = &'a (Policy, Arc<PolicyDocument>)> + 'a {
        self.policy_targets.get(target).into_iter().flatten().filter_map(|p| self.policies.get(p))
    }

    /// Things a principal (certificate ARN) is attached to.
    pub fn things_of_principal<'a>(&'a self, principal: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.principal_things.get(principal).into_iter().flatten().map(String::as_str)
    }

    /// `thingPrincipalType` of an attachment.
    pub fn principal_type(&self, thing: &str, principal: &str) -> &'static str {
        if self.exclusive_principals.contains(&(thing.to_string(), principal.to_string())) {
            EXCLUSIVE_THING
        } else {
            "NON_EXCLUSIVE_THING"
        }
    }

    /// Whether `thing` is attached to `principal`.
    pub fn is_attached(&self, principal: &str, thing: &str) -> bool {
        self.principal_things.get(principal).is_some_and(|things| things.contains(thing))
    }

    /// A group's ancestors, parent first, root last. Bounded by the depth limit so that a
    /// corrupt store cannot loop it.
    pub fn ancestors(&self, group: &str) -> Vec<&ThingGroup> {
        let mut out: Vec<&ThingGroup> = Vec::new();
        let mut parent = self.thing_groups.get(group).and_then(|g| g.parent_group_name.as_deref());
        while let Some(p) = parent {
            let Some(g) = self.thing_groups.get(p) else { break };
            if out.len() > fleetjobs_core::ops::thing_groups::MAX_DEPTH || g.thing_group_name == group {
                break;
            }
            out.push(g);
            parent = g.parent_group_name.as_deref();
        }
        out
    }

    /// A group's direct child groups.
    pub fn child_groups<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.group_children.get(group).into_iter().flatten().map(String::as_str)
    }

    /// All groups below `group` (children, their children, ...), without it.
    pub fn descendants(&self, group: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&str> = self.child_groups(group).collect();
        while let Some(g) = todo.pop() {
            if out.insert(g.to_string()) {
                todo.extend(self.child_groups(g));
            }
        }
        out
    }

    /// The things added to `group` itself.
    pub fn members_of_group<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> + 'a {
        let lo = (group.to_string(), String::new());
        let group = group.to_string();
        self.group_members.range(lo..).take_while(move |(g, _)| *g == group).map(|(_, t)| t.as_str())
    }

    /// The things a dynamic group's query matches now.
    pub fn dynamic_members_of<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> + 'a {
        let lo = (group.to_string(), String::new());
        let group = group.to_string();
        self.dynamic_members.range(lo..).take_while(move |(g, _)| *g == group).map(|(_, t)| t.as_str())
    }

    /// The dynamic groups whose query matches the thing now.
    pub fn dynamic_groups_of<'a>(&'a self, thing: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.thing_dynamic.get(thing).into_iter().flatten().map(String::as_str)
    }

    /// What a query sees of a thing: its registry fields and the static groups it was added to.
    pub fn thing_view<'a>(&'a self, thing: &'a Thing) -> ThingView<'a> {
        ThingView {
            name: &thing.thing_name,
            thing_type: thing.thing_type_name.as_deref(),
            attributes: &thing.attributes,
            group_names: self.groups_of_thing(&thing.thing_name).collect(),
        }
    }

    /// Bring the dynamic membership index of one thing in line with the queries (a thing that
    /// is gone matches none). Memory only: memberships are derived, never stored.
    pub fn reevaluate_dynamic(&mut self, thing: &str) {
        let now: BTreeSet<String> = match self.things.get(thing) {
            Some(t) => {
                let view = self.thing_view(t);
                self.queries.iter().filter(|(_, q)| q.matches(&view)).map(|(g, _)| g.clone()).collect()
            }
            None => BTreeSet::new(),
        };
        let before = self.thing_dynamic.remove(thing).unwrap_or_default();
        for g in before.difference(&now) {
            self.dynamic_members.remove(&(g.clone(), thing.to_string()));
        }
        for g in now.difference(&before) {
            self.dynamic_members.insert((g.clone(), thing.to_string()));
        }
        if !now.is_empty() {
            self.thing_dynamic.insert(thing.to_string(), now);
        }
    }

    /// The things of `group`, and with `recursive` those of every descendant group too, once.
    /// A dynamic group's things are those its query matches.
    pub fn things_in_group(&self, group: &str, recursive: bool) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.members_of_group(group).map(str::to_string).collect();
        out.extend(self.dynamic_members_of(group).map(str::to_string));
        if recursive {
            for g in self.descendants(group) {
                out.extend(self.members_of_group(&g).map(str::to_string));
            }
        }
        out
    }

    /// The groups a thing was added to (not their ancestors).
    pub fn groups_of_thing<'a>(&'a self, thing: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.thing_memberships.get(thing).into_iter().flatten().map(String::as_str)
    }

    /// Every group whose target covers the thing: the groups it was added to and their
    /// ancestors, and the dynamic groups it matches (which have neither parent nor child).
    pub fn covering_groups(&self, thing: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.dynamic_groups_of(thing).map(str::to_string).collect();
        for g in self.groups_of_thing(thing) {
            out.insert(g.to_string());
            out.extend(self.ancestors(g).into_iter().map(|a| a.thing_group_name.clone()));
        }
        out
    }

    pub fn principals_of_thing<'a>(&'a self, thing: &str) -> impl Iterator<Item = &'a str> + 'a {
        let lo = (thing.to_string(), String::new());
        let thing = thing.to_string();
        self.thing_principals.range(lo..).take_while(move |(t, _)| *t == thing).map(|(_, p)| p.as_str())
    }
}

/// A thing's queue shape in each job namespace it has pending executions in, by namespace
/// (no namespace first). Usually one: a `Vec`, not a map.
#[derive(Debug, Default)]
pub struct QueueShapes(Vec<(Option<String>, QueueShape)>);

impl QueueShapes {
    fn get(&self, namespace: &Option<String>) -> Option<&QueueShape> {
        self.0.iter().find(|(ns, _)| ns == namespace).map(|(_, shape)| shape)
    }

    /// The namespaces of `self` and of `other`, in order, each once.
    fn namespaces_with<'s>(&'s self, other: &'s QueueShapes) -> Vec<&'s Option<String>> {
        let mut namespaces: Vec<&Option<String>> = self.0.iter().chain(&other.0).map(|(ns, _)| ns).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        namespaces
    }
}

/// What a transaction produced: store mutations, then what devices must be told and the
/// status changes to log, both once durable.
#[derive(Default)]
pub struct Changes {
    pub mutations: Vec<Mutation>,
    pub notifications: Vec<Notification>,
    pub transitions: Vec<Transition>,
}

/// A job's or an execution's status change (`None`: it does not exist on that side), logged
/// once it is durable, one line each, so an operator can follow every job in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Job { job_id: String, from: Option<JobStatus>, to: Option<JobStatus> },
    Execution { job_id: String, thing_name: String, from: Option<JobExecutionStatus>, to: Option<JobExecutionStatus> },
}

impl Transition {
    pub fn log(&self) {
        fn name(status: Option<&'static str>) -> &'static str {
            status.unwrap_or("(none)")
        }
        match self {
            Transition::Job { job_id, from, to } => tracing::info!(
                "job {job_id}: {} -> {}",
                name(from.map(JobStatus::as_str)),
                name(to.map(JobStatus::as_str))
            ),
            Transition::Execution { job_id, thing_name, from, to } => tracing::info!(
                "job execution {job_id} on {thing_name}: {} -> {}",
                name(from.map(JobExecutionStatus::as_str)),
                name(to.map(JobExecutionStatus::as_str))
            ),
        }
    }
}

pub struct Txn<'a> {
    pub s: &'a mut State,
    pub scope: &'a ArnScope,
    pub now: Millis,
    changes: Changes,
    /// Things whose pending queue may have changed, with its shape before the first change.
    touched_things: BTreeMap<String, QueueShapes>,
    touched_jobs: BTreeSet<String>,
    /// Events in the order they happened (execution events before the job's completion).
    events: Vec<Notification>,
    /// Executions that became FAILED or TIMED_OUT here: candidates for a retry.
    failed: Vec<ExecKey>,
}

fn put<T: Serialize>(kind: &'static str, key: String, value: &T) -> Mutation {
    Mutation::Put { kind, key, value: serde_json::to_string(value).expect("records serialize") }
}

impl<'a> Txn<'a> {
    pub fn begin(s: &'a mut State, scope: &'a ArnScope, now: Millis) -> Self {
        Txn {
            s,
            scope,
            now,
            changes: Changes::default(),
            touched_things: BTreeMap::new(),
            touched_jobs: BTreeSet::new(),
            events: vec![],
            failed: vec![],
        }
    }

    pub fn is_clean(&self) -> bool {
        self.changes.mutations.is_empty() && self.changes.notifications.is_empty() && self.events.is_empty()
    }

    // --- registry -------------------------------------------------------------------------

    pub fn put_thing(&mut self, t: Thing) {
        self.changes.mutations.push(put(THING, t.thing_name.clone(), &t));
        self.s.things.insert(t.thing_name.clone(), t);
    }

    pub fn delete_thing(&mut self, name: &str) {
        self.s.things.remove(name);
        self.changes.mutations.push(Mutation::Delete { kind: THING, key: name.to_string() });
    }

    pub fn put_certificate(&mut self, c: Certificate) {
        self.changes.mutations.push(put(CERTIFICATE, c.certificate_id.clone(), &c));
        self.s.certificates.insert(c.certificate_id.clone(), c);
    }

    pub fn delete_certificate(&mut self, id: &str) {
        self.s.certificates.remove(id);
        self.changes.mutations.push(Mutation::Delete { kind: CERTIFICATE, key: id.to_string() });
    }

    pub fn put_ca_certificate(&mut self, c: CaCertificate) {
        self.changes.mutations.push(put(CA_CERTIFICATE, c.certificate_id.clone(), &c));
        self.s.ca_certificates.insert(c.certificate_id.clone(), c);
    }

    pub fn delete_ca_certificate(&mut self, id: &str) {
        self.s.ca_certificates.remove(id);
        self.changes.mutations.push(Mutation::Delete { kind: CA_CERTIFICATE, key: id.to_string() });
    }

    pub fn set_registration_code(&mut self, code: String) {
        self.changes.mutations.push(put(REGISTRATION_CODE, REGISTRATION_CODE_KEY.to_string(), &code));
        self.s.registration_code = Some(code);
    }

    pub fn clear_registration_code(&mut self) {
        self.changes
            .mutations
            .push(Mutation::Delete { kind: REGISTRATION_CODE, key: REGISTRATION_CODE_KEY.to_string() });
        self.s.registration_code = None;
    }

    /// Store a policy with its default version's parsed document (what devices are judged by
    /// from now on).
    pub fn put_policy(&mut self, p: Policy, doc: Arc<PolicyDocument>) {
        self.changes.mutations.push(put(POLICY, p.policy_name.clone(), &p));
        self.s.policies.insert(p.policy_name.clone(), (p, doc));
    }

    pub fn delete_policy(&mut self, name: &str) {
        self.s.policies.remove(name);
        self.changes.mutations.push(Mutation::Delete { kind: POLICY, key: name.to_string() });
    }

    pub fn attach_policy(&mut self, policy: &str, target: &str) {
        self.s.policy_targets.entry(target.to_string()).or_default().insert(policy.to_string());
        self.changes.mutations.push(Mutation::Put {
            kind: POLICY_TARGET,
            key: join_key(&[policy, target]),
            value: "{}".into(),
        });
    }

    pub fn detach_policy(&mut self, policy: &str, target: &str) {
        if let Some(policies) = self.s.policy_targets.get_mut(target) {
            policies.remove(policy);
            if policies.is_empty() {
                self.s.policy_targets.remove(target);
            }
        }
        self.changes.mutations.push(Mutation::Delete { kind: POLICY_TARGET, key: join_key(&[policy, target]) });
    }

    pub fn attach_principal(&mut self, thing: &str, principal: &str, exclusive: bool) {
        self.s.thing_principals.insert((thing.to_string(), principal.to_string()));
        let value = if exclusive {
            self.s.exclusive_principals.insert((thing.to_string(), principal.to_string()));
            format!(r#"{{"thingPrincipalType":"{EXCLUSIVE_THING}"}}"#)
        } else {
            self.s.exclusive_principals.remove(&(thing.to_string(), principal.to_string()));
            "{}".into()
        };
        self.s.principal_things.entry(principal.to_string()).or_default().insert(thing.to_string());
        self.changes.mutations.push(Mutation::Put { kind: THING_PRINCIPAL, key: join_key(&[thing, principal]), value });
    }

    pub fn detach_principal(&mut self, thing: &str, principal: &str) {
        self.s.thing_principals.remove(&(thing.to_string(), principal.to_string()));
        self.s.exclusive_principals.remove(&(thing.to_string(), principal.to_string()));
        if let Some(things) = self.s.principal_things.get_mut(principal) {
            things.remove(thing);
            if things.is_empty() {
                self.s.principal_things.remove(principal);
            }
        }
        self.changes.mutations.push(Mutation::Delete { kind: THING_PRINCIPAL, key: join_key(&[thing, principal]) });
    }

    pub fn put_thing_group(&mut self, g: ThingGroup) {
        if let Some(parent) = &g.parent_group_name {
            self.s.group_children.entry(parent.clone()).or_default().insert(g.thing_group_name.clone());
        }
        self.changes.mutations.push(put(THING_GROUP, g.thing_group_name.clone(), &g));
        self.s.thing_groups.insert(g.thing_group_name.clone(), g);
    }

    /// Install (or replace, or with `None` drop) a dynamic group's parsed query. Members are
    /// not touched: the caller re-evaluates the things (see `follow_membership`).
    pub fn set_query(&mut self, group: &str, query: Option<Query>) {
        match query {
            Some(q) => self.s.queries.insert(group.to_string(), Arc::new(q)),
            None => self.s.queries.remove(group),
        };
    }

    /// Delete a group (without children: the caller checks) and the index entries naming it.
    pub fn delete_thing_group(&mut self, name: &str) {
        if let Some(parent) = self.s.thing_groups.remove(name).and_then(|g| g.parent_group_name) {
            if let Some(children) = self.s.group_children.get_mut(&parent) {
                children.remove(name);
                if children.is_empty() {
                    self.s.group_children.remove(&parent);
                }
            }
        }
        self.s.group_children.remove(name);
        self.changes.mutations.push(Mutation::Delete { kind: THING_GROUP, key: name.to_string() });
    }

    pub fn add_thing_to_group(&mut self, group: &str, thing: &str) {
        self.s.group_members.insert((group.to_string(), thing.to_string()));
        self.s.thing_memberships.entry(thing.to_string()).or_default().insert(group.to_string());
        self.changes.mutations.push(Mutation::Put {
            kind: THING_GROUP_MEMBER,
            key: join_key(&[group, thing]),
            value: "{}".into(),
        });
    }

    pub fn remove_thing_from_group(&mut self, group: &str, thing: &str) {
        self.s.group_members.remove(&(group.to_string(), thing.to_string()));
        if let Some(groups) = self.s.thing_memberships.get_mut(thing) {
            groups.remove(group);
            if groups.is_empty() {
                self.s.thing_memberships.remove(thing);
            }
        }
        self.changes.mutations.push(Mutation::Delete { kind: THING_GROUP_MEMBER, key: join_key(&[group, thing]) });
    }

    pub fn put_thing_type(&mut self, t: ThingType) {
        self.changes.mutations.push(put(THING_TYPE, t.thing_type_name.clone(), &t));
        self.s.thing_types.insert(t.thing_type_name.clone(), t);
    }

    pub fn delete_thing_type(&mut self, name: &str) {
        self.s.thing_types.remove(name);
        self.changes.mutations.push(Mutation::Delete { kind: THING_TYPE, key: name.to_string() });
    }

    pub fn put_job_template(&mut self, t: JobTemplate) {
        self.changes.mutations.push(put(JOB_TEMPLATE, t.job_template_id.clone(), &t));
        self.s.job_templates.insert(t.job_template_id.clone(), t);
    }

    pub fn delete_job_template(&mut self, id: &str) {
        self.s.job_templates.remove(id);
        self.changes.mutations.push(Mutation::Delete { kind: JOB_TEMPLATE, key: id.to_string() });
    }

    pub fn put_indexing_configuration(&mut self, c: IndexingConfiguration) {
        self.changes.mutations.push(put(INDEXING_CONFIGURATION, "default".into(), &c));
        self.s.indexing = c;
    }

    pub fn put_event_configurations(&mut self, c: EventConfigurations) {
        self.changes.mutations.push(put(EVENT_CONFIGURATIONS, "default".into(), &c));
        self.s.events = Some(c);
    }

    pub fn put_admin_key(&mut self, key: AdminKey, sealed: &SealedKey) {
        self.changes.mutations.push(put(ACCESS_KEY, key.access_key_id.clone(), sealed));
        self.s.admin_keys.insert(key.access_key_id.clone(), key);
    }

    /// Announce a certificate registered when its device first connected, on
    /// `$aws/events/certificates/registered/{caCertificateId}` (just-in-time registration).
    pub fn certificate_registered(&mut self, certificate_id: &str, ca_certificate_id: &str) {
        self.changes.notifications.push(Notification::CertificateRegistered {
            certificate_id: certificate_id.to_string(),
            ca_certificate_id: ca_certificate_id.to_string(),
            account_id: self.scope.account_id.clone(),
            at: self.now,
        });
    }

    pub fn disconnect_certificate(&mut self, certificate_id: &str) {
        let certificate_id = certificate_id.to_string();
        self.changes.notifications.push(Notification::DisconnectCertificate { certificate_id });
    }

    // --- jobs -----------------------------------------------------------------------------

    pub fn put_job(&mut self, j: Job) {
        self.job_transition(&j.job_id, Some(j.status));
        self.changes.mutations.push(put(JOB, j.job_id.clone(), &j));
        self.touched_jobs.insert(j.job_id.clone());
        let expiry = presign_expiry(&j);
        let current = self.s.documents.get(&j.job_id);
        if current.is_none_or(|d| d.presign_expiry_secs != expiry_secs(expiry)) {
            // Documents are immutable: parse once, when the job first appears (again only if
            // UpdateJob changed the presigned URLs' expiry).
            let document = document_object(&j, self.s.document_source.as_ref());
            self.s.documents.insert(j.job_id.clone(), Arc::new(document));
        }
        self.s.jobs.insert(j.job_id.clone(), Arc::new(j));
    }

    pub fn delete_job(&mut self, id: &str) {
        self.job_transition(id, None);
        self.s.jobs.remove(id);
        self.s.documents.remove(id);
        self.s.counts.remove(id);
        self.changes.mutations.push(Mutation::Delete { kind: JOB, key: id.to_string() });
    }

    // Transitions exist to be logged: none is built (no allocation on the update path) when
    // info lines go nowhere.
    fn job_transition(&mut self, job_id: &str, to: Option<JobStatus>) {
        let from = self.s.jobs.get(job_id).map(|j| j.status);
        if from != to && tracing::enabled!(tracing::Level::INFO) {
            self.changes.transitions.push(Transition::Job { job_id: job_id.to_string(), from, to });
        }
    }

    fn execution_transition(
        &mut self,
        e: &JobExecution,
        from: Option<JobExecutionStatus>,
        to: Option<JobExecutionStatus>,
    ) {
        if from != to && tracing::enabled!(tracing::Level::INFO) {
            let (job_id, thing_name) = (e.job_id.clone(), e.thing_name.clone());
            self.changes.transitions.push(Transition::Execution { job_id, thing_name, from, to });
        }
    }

    /// A job-level event (JOB events enabled).
    pub fn job_event(&mut self, kind: JobEvent, job_id: &str) {
        if !self.events_enabled("JOB") {
            return;
        }
        if let Some(job) = self.s.jobs.get(job_id) {
            let (job, counts) = (Box::new(Job::clone(job)), self.s.counts(job_id));
            self.events.push(Notification::JobEvent { kind, job, counts, at: self.now });
        }
    }

    fn events_enabled(&self, event_type: &str) -> bool {
        self.s.event_configurations().is_enabled(event_type)
    }

    fn touch_thing(&mut self, thing: &str) {
        if !self.touched_things.contains_key(thing) {
            let shapes = self.s.queue_shapes(thing);
            self.touched_things.insert(thing.to_string(), shapes);
        }
    }

    /// Insert or replace an execution. A newly terminal status publishes its event.
    pub fn put_execution(&mut self, e: JobExecution) {
        self.touch_thing(&e.thing_name);
        if !self.touched_jobs.contains(&e.job_id) {
            self.touched_jobs.insert(e.job_id.clone());
        }
        // Borrowed: a replacement (the common case, a device's update) allocates no key.
        let key = (e.job_id.as_str(), e.thing_name.as_str(), e.execution_number);
        let old_status = self.s.executions.get(exec_key(&key)).map(|old| old.status);
        match old_status {
            // A replacement keeps its place in the thing's index; the counts move, and so does
            // its place among the thing's pending ones (started, or ended: then it leaves them).
            Some(old) if old != e.status => {
                let counts = self.s.counts.entry(e.job_id.clone()).or_default();
                counts.add(old, -1);
                counts.add(e.status, 1);
                // (Also QUEUED -> IN_PROGRESS: the execution's place in the queue moves.)
                self.s.index_pending(&e, e.is_pending());
            }
            Some(_) => {}
            None => self.s.index_execution(&e, 1),
        }
        if e.status.is_terminal() && old_status != Some(e.status) && self.events_enabled("JOB_EXECUTION") {
            let thing_arn = self.scope.arn(ResourceKind::Thing, &e.thing_name);
            let execution = e.clone();
            self.events.push(Notification::ExecutionEvent { execution, thing_arn, deleted: false, at: self.now });
        }
        if matches!(e.status, JobExecutionStatus::Failed | JobExecutionStatus::TimedOut) && old_status != Some(e.status)
        {
            self.failed.push((e.job_id.clone(), e.thing_name.clone(), e.execution_number));
        }
        self.execution_transition(&e, old_status, Some(e.status));
        self.changes.mutations.push(put(EXECUTION, exec_store_key(&key), &e));
        self.s.set_timer(&key, Some(&e));
        // One more search of the executions only for a replacement (a new one, CreateJob's
        // case, is inserted without a second miss first).
        if old_status.is_some() {
            if let Some(slot) = self.s.executions.get_mut(exec_key(&key)) {
                *slot = e;
            }
        } else {
            let key = (e.job_id.clone(), e.thing_name.clone(), e.execution_number);
            self.s.executions.insert(key, e);
        }
    }

    pub fn delete_execution(&mut self, key: &ExecKey) {
        self.touch_thing(&key.1);
        self.touched_jobs.insert(key.0.clone());
        if let Some(e) = self.s.executions.remove(key) {
            self.s.index_execution(&e, -1);
            self.s.set_timer(key, None);
            self.execution_transition(&e, Some(e.status), None);
            if self.events_enabled("JOB_EXECUTION") {
                let thing_arn = self.scope.arn(ResourceKind::Thing, &e.thing_name);
                self.events.push(Notification::ExecutionEvent {
                    execution: e.clone(),
                    thing_arn,
                    deleted: true,
                    at: self.now,
                });
            }
            self.changes.mutations.push(Mutation::Delete { kind: EXECUTION, key: exec_store_key(key) });
        }
    }

    /// CancelJob's effect, also an abort's: the job CANCELED with its reason, its pending
    /// executions canceled (IN_PROGRESS ones only with `force`), with the job's events.
    pub fn cancel_job(&mut self, mut job: Job, force: bool, reason_code: Option<String>, comment: Option<String>) {
        let job_id = job.job_id.clone();
        job.status = JobStatus::Canceled;
        // A canceled job creates no more executions.
        job.rollout = None;
        job.force_canceled |= force;
        job.reason_code = reason_code.or(job.reason_code);
        job.comment = comment.or(job.comment);
        job.last_updated_at = self.now;
        self.put_job(job);
        self.job_event(JobEvent::CancellationInProgress, &job_id);
        let affected: Vec<JobExecution> =
            self.s.executions_of_job(&job_id).filter(|e| e.is_pending()).cloned().collect();
        for mut e in affected {
            if execution::cancel(&mut e, force, None, None, self.now).is_ok() {
                self.put_execution(e);
            }
        }
        self.job_event(JobEvent::Canceled, &job_id);
    }

    /// The rollout rules that follow from executions finishing: `abortConfig` (a job whose
    /// failures reach a threshold is canceled) then `jobExecutionsRetryConfig` (a FAILED or
    /// TIMED_OUT execution of a job still IN_PROGRESS gets a new attempt).
    fn apply_rollout_rules(&mut self) {
        // Only jobs with an abort config are copied out: on a device's update (one touched job,
        // usually without one) this costs a lookup, no allocation.
        let with_abort: Vec<String> = self
            .touched_jobs
            .iter()
            .filter(|id| self.s.jobs.get(*id).is_some_and(|j| j.configs.abort_config.is_some()))
            .cloned()
            .collect();
        for job_id in with_abort {
            let Some(job) = self.s.jobs.get(&job_id).filter(|j| j.status == JobStatus::InProgress) else { continue };
            let Some(config) = &job.configs.abort_config else { continue };
            if let Some(abort) = fleetjobs_rollout::abort::evaluate(config, &self.s.counts(&job_id)) {
                tracing::info!(job_id, comment = %abort.comment, "job aborted");
                let job = Job::clone(job);
                self.cancel_job(job, false, Some(abort.reason_code.to_string()), Some(abort.comment));
            }
        }
        for key in std::mem::take(&mut self.failed) {
            let Some(e) = self.s.executions.get(&key) else { continue };
            let Some(job) = self.s.jobs.get(&key.0).filter(|j| j.status == JobStatus::InProgress) else { continue };
            let Some(config) = &job.configs.job_executions_retry_config else { continue };
            // The attempts before this one (its retryAttempt of them) ended FAILED or TIMED_OUT.
            let mut so_far = fleetjobs_rollout::retry::Attempts::default();
            for n in (e.execution_number - i64::from(e.retry_attempt))..e.execution_number {
                match self.s.executions.get(exec_key(&(key.0.as_str(), key.1.as_str(), n))).map(|p| p.status) {
                    Some(JobExecutionStatus::Failed) => so_far.failed += 1,
                    Some(JobExecutionStatus::TimedOut) => so_far.timed_out += 1,
                    _ => {}
                }
            }
            let Some(attempt) = fleetjobs_rollout::retry::decide(config, e.status, so_far) else { continue };
            let latest = self.s.execution(&key.0, &key.1, None).map_or(e.execution_number, |l| l.execution_number);
            let mut retry = JobExecution::queued(&key.0, &key.1, latest + 1, self.now);
            retry.retry_attempt = attempt;
            self.put_execution(retry);
        }
    }

    /// Derive what follows from the changes and hand them over.
    pub fn finish(mut self) -> Changes {
        self.apply_rollout_rules();
        self.complete_snapshot_jobs();
        // Every transaction of the engine's own tests checks the index against the executions.
        #[cfg(test)]
        self.s.assert_pending_index();
        let now = self.now;
        let touched = std::mem::take(&mut self.touched_things);
        let empty = QueueShape::default();
        for (thing, before) in touched {
            let after = self.s.queue_shapes(&thing);
            for namespace in before.namespaces_with(&after) {
                let before = before.get(namespace).unwrap_or(&empty);
                let n = pending::notifications(before, after.get(namespace).unwrap_or(&empty));
                if !(n.notify || n.notify_next) {
                    continue;
                }
                let pending = self.s.pending_of_thing(&thing, namespace.as_deref());
                if n.notify {
                    let shown = self.s.shown(&pending).iter().map(|e| (*e).clone()).collect();
                    let (thing, namespace) = (thing.clone(), namespace.clone());
                    self.changes.notifications.push(Notification::Notify { thing, namespace, pending: shown, at: now });
                }
                if n.notify_next {
                    let head = pending.first().map(|e| Execution::new(e, self.s.documents.get(&e.job_id).cloned()));
                    let (thing, namespace) = (thing.clone(), namespace.clone());
                    self.changes.notifications.push(Notification::NotifyNext { thing, namespace, head, at: now });
                }
            }
        }
        self.changes.notifications.append(&mut self.events);
        self.changes
    }

    /// A SNAPSHOT job whose executions are all terminal is COMPLETED.
    fn complete_snapshot_jobs(&mut self) {
        for job_id in std::mem::take(&mut self.touched_jobs) {
            let Some(job) = self.s.jobs.get(&job_id) else { continue };
            let counts = self.s.counts(&job_id);
            let total: i64 = counts.by_status.iter().sum();
            // A job still rolling out has targets waiting for their executions: not complete.
            if job.status == JobStatus::InProgress
                && job.target_selection == TargetSelection::Snapshot
                && job.rollout.is_none()
                && total > 0
                && counts.pending() == 0
            {
                let mut job = Job::clone(job);
                job.status = JobStatus::Completed;
                job.completed_at = Some(self.now);
                job.last_updated_at = self.now;
                self.job_transition(&job_id, Some(JobStatus::Completed));
                self.changes.mutations.push(put(JOB, job.job_id.clone(), &job));
                self.s.jobs.insert(job_id.clone(), Arc::new(job));
                self.job_event(JobEvent::Completed, &job_id);
            }
        }
    }
}

#[cfg(test)]
mod exec_key_tests {
    use super::*;

    #[test]
    fn borrowed_keys_find_what_owned_keys_do() {
        let owned = |j: &str, t: &str, n: i64| (j.to_string(), t.to_string(), n);
        let keys =
            [owned("a", "t1", 1), owned("a", "t1", 2), owned("a", "t2", 1), owned("ab", "t", 1), owned("b", "", 0)];
        let tree: BTreeMap<ExecKey, usize> = keys.iter().cloned().zip(0..).collect();
        let hash: HashMap<ExecKey, usize> = keys.iter().cloned().zip(0..).collect();
        for (i, k) in keys.iter().enumerate() {
            let parts = (k.0.as_str(), k.1.as_str(), k.2);
            assert_eq!(tree.get(exec_key(&parts)), Some(&i));
            assert_eq!(hash.get(exec_key(&parts)), Some(&i));
        }
        assert_eq!(tree.get(exec_key(&("a", "t1", 3))), None);
        assert_eq!(hash.get(exec_key(&("a", "t", 1))), None);
    }
}
