//! The control-plane operations, one module per resource group, each an `Engine` method that
//! takes its request type and returns its response type (`fleetjobs_core::ops`): it checks the
//! request, then applies the rule through a `Txn` (writes) or reads the state. What several
//! operations share lives here, below them.

mod authorization;
mod ca_certificates;
mod certificates;
mod console;
mod dynamic_groups;
mod endpoint;
mod event_configurations;
mod executions;
mod indexing;
mod job_templates;
mod jobs;
mod policies;
mod tags;
mod thing_groups;
mod thing_types;
mod things;

#[cfg(test)]
mod tests_authorization;
#[cfg(test)]
mod tests_ca_certificates;
#[cfg(test)]
mod tests_console;
#[cfg(test)]
mod tests_dynamic_groups;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_indexing;
#[cfg(test)]
mod tests_job_templates;
#[cfg(test)]
mod tests_jobs;
#[cfg(test)]
mod tests_policy_versions;
#[cfg(test)]
mod tests_registry;
#[cfg(test)]
mod tests_tags;
#[cfg(test)]
mod tests_thing_types;

use std::collections::HashSet;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution::Rejection;
use fleetjobs_core::model::JobExecution;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use crate::state::{State, Txn};
use crate::Engine;

pub(crate) fn thing_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing {name} cannot be found."))
}

pub(crate) fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job {id} does not exist."))
}

/// The job `id` as a request naming a job namespace (`namespaceId`, `None`: any) finds it: a
/// job of another namespace, or of none, is not there for it.
pub(crate) fn job_in_namespace(s: &State, id: &str, namespace: Option<&str>) -> ApiResult<()> {
    match (s.jobs.get(id), namespace) {
        (None, _) => Err(job_not_found(id)),
        (Some(job), Some(ns)) if job.namespace_id.as_deref() != Some(ns) => {
            Err(ApiError::not_found(format!("Job {id} does not exist in namespace {ns}.")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn execution_not_found(job: &str, thing: &str) -> ApiError {
    ApiError::not_found(format!("Job execution for job {job} and thing {thing} does not exist."))
}

/// A refused execution transition, as the control plane answers it.
pub(crate) fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::VersionMismatch => {
            ApiError::new(ErrorCode::VersionConflict, "The expected version does not match the job execution version.")
        }
        Rejection::InvalidStateTransition(m) => ApiError::new(ErrorCode::InvalidStateTransition, m),
    }
}

pub(crate) fn certificate_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("The certificate {id} does not exist"))
}

pub(crate) fn policy_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Policy {name} does not exist"))
}

impl Engine {
    /// A principal or policy target: the ARN of a certificate this server issued.
    pub(crate) fn check_certificate_arn(&self, s: &State, target: &str) -> Result<(), ApiError> {
        match self.config.scope.parse(target, ResourceKind::Cert) {
            Some(id) if s.certificates.contains_key(id) => Ok(()),
            Some(id) => Err(certificate_not_found(id)),
            None => Err(ApiError::invalid(format!("Invalid target: {target}"))),
        }
    }

    /// Resolve job target ARNs to thing names: a thing, or a thing group's things and those
    /// of all its descendant groups (as they are now: the snapshot of membership).
    /// The things `targets` name, each once (a thing in two target groups gets one
    /// execution), in the order the targets name them.
    pub(crate) fn resolve_targets(&self, s: &State, targets: &[String]) -> ApiResult<Vec<String>> {
        let mut things = Vec::new();
        for t in targets {
            if t.len() > 2048 {
                return Err(ApiError::invalid("A target ARN can have at most 2048 characters"));
            }
            match self.config.scope.parse_any(t) {
                Some((ResourceKind::Thing, name)) if s.things.contains_key(name) => things.push(name.to_string()),
                Some((ResourceKind::Thing, name)) => return Err(thing_not_found(name)),
                Some((ResourceKind::ThingGroup, name)) if s.thing_groups.contains_key(name) => {
                    things.extend(s.things_in_group(name, true))
                }
                Some((ResourceKind::ThingGroup, name)) => return Err(thing_groups::group_not_found(name)),
                _ => return Err(ApiError::invalid(format!("Invalid target ARN: {t}"))),
            }
        }
        let mut seen = HashSet::with_capacity(things.len());
        let first: Vec<bool> = things.iter().map(|t| seen.insert(t.as_str())).collect();
        let mut first = first.into_iter();
        things.retain(|_| first.next().unwrap_or(true));
        Ok(things)
    }
}

/// Queue one execution per thing unless it already has a pending one. `things` names each
/// thing once (as [`Engine::resolve_targets`] gives them).
pub(crate) fn queue_executions(txn: &mut Txn<'_>, job_id: &str, things: &[String]) {
    // A job without executions (a new one) needs no look for each thing's latest: at 100,000
    // things that look is a tenth of CreateJob.
    let fresh = txn.s.counts(job_id).by_status.iter().all(|n| *n == 0);
    for thing in things {
        let latest = if fresh { None } else { txn.s.execution(job_id, thing, None) };
        if latest.is_some_and(|e| e.is_pending()) {
            continue;
        }
        let number = latest.map(|e| e.execution_number + 1).unwrap_or(1);
        txn.put_execution(JobExecution::queued(job_id, thing, number, txn.now));
    }
}
