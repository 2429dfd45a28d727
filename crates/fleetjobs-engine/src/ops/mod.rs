//! The control-plane operations, one module per resource group, each an `Engine` method that
//! takes its request type and returns its response type (`fleetjobs_core::ops`): it checks the
//! request, then applies the rule through a `Txn` (writes) or reads the state. What several
//! operations share lives here, below them.

mod certificates;
mod endpoint;
mod event_configurations;
mod executions;
mod jobs;
mod policies;
mod things;

#[cfg(test)]
mod tests_registry;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::ApiError;

use crate::state::State;
use crate::Engine;

pub(crate) fn thing_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing {name} cannot be found."))
}

#[allow(dead_code)] // until the jobs operations are typed
pub(crate) fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job {id} does not exist."))
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
}
