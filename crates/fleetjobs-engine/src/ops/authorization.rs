//! What a principal's policies allow: GetEffectivePolicies and TestAuthorization, by the
//! evaluation that judges devices (the certificate's attached policies, each by its default
//! version).

use std::sync::Arc;

use fleetjobs_core::model::Policy;
use fleetjobs_core::ops::authorization::*;
use fleetjobs_core::policy::{self, Decision, PolicyContext, PolicyDocument};
use fleetjobs_core::ApiResult;

use super::{policy_not_found, thing_not_found};
use crate::state::State;
use crate::Engine;

fn policy_ref(p: &Policy) -> PolicyRef {
    PolicyRef { policy_name: p.policy_name.clone(), policy_arn: p.policy_arn.clone() }
}

/// The decision on one authInfo and each policy's part in it: a policy that explicitly denies
/// one of the resources denies explicitly; one that allows them all allows; the rest deny
/// implicitly.
fn judge(policies: &[&(Policy, Arc<PolicyDocument>)], info: &AuthInfo, ctx: &PolicyContext) -> ApiResult<AuthResult> {
    let resources = info.resource_parts()?;
    let action = info
        .action_type
        .map(ActionType::action)
        .ok_or_else(|| fleetjobs_core::ApiError::invalid("authInfos.actionType is required here"))?;
    let docs: Vec<&PolicyDocument> = policies.iter().map(|(_, d)| d.as_ref()).collect();
    let decisions: Vec<Decision> = resources.iter().map(|r| policy::decide(&docs, action, r, ctx)).collect();
    let auth_decision = if decisions.contains(&Decision::ExplicitDeny) {
        AuthDecision::ExplicitDeny
    } else if decisions.iter().all(|d| *d == Decision::Allow) {
        AuthDecision::Allowed
    } else {
        AuthDecision::ImplicitDeny
    };
    let (mut allowed, mut denied) = (Policies::default(), Denied::default());
    for (p, doc) in policies {
        let each: Vec<Decision> = resources.iter().map(|r| policy::decide([doc], action, r, ctx)).collect();
        if each.contains(&Decision::ExplicitDeny) {
            denied.explicit_deny.policies.push(policy_ref(p));
        } else if each.iter().all(|d| *d == Decision::Allow) {
            allowed.policies.push(policy_ref(p));
        } else {
            denied.implicit_deny.policies.push(policy_ref(p));
        }
    }
    Ok(AuthResult { auth_info: info.clone(), allowed, denied, auth_decision })
}

impl Engine {
    pub async fn get_effective_policies(
        &self,
        r: GetEffectivePoliciesRequest,
    ) -> ApiResult<GetEffectivePoliciesResponse> {
        r.check(self.now())?;
        let principal = r.principal.as_deref().unwrap_or_default();
        self.read(|s| {
            self.check_certificate_arn(s, principal)?;
            if let Some(thing) = r.thing_name.as_deref().filter(|t| !s.things.contains_key(*t)) {
                return Err(thing_not_found(thing));
            }
            let effective_policies = s
                .policies_of_target(principal)
                .map(|(p, _)| EffectivePolicy {
                    policy_name: p.policy_name.clone(),
                    policy_arn: p.policy_arn.clone(),
                    policy_document: p.policy_document.clone(),
                })
                .collect();
            Ok(GetEffectivePoliciesResponse { effective_policies })
        })
        .await
    }

    pub async fn test_authorization(&self, r: TestAuthorizationRequest) -> ApiResult<TestAuthorizationResponse> {
        r.check(self.now())?;
        let principal = r.principal.as_deref().unwrap_or_default();
        self.read(|s: &State| {
            self.check_certificate_arn(s, principal)?;
            let mut policies: Vec<&(Policy, Arc<PolicyDocument>)> = s
                .policies_of_target(principal)
                .filter(|(p, _)| !r.policy_names_to_skip.contains(&p.policy_name))
                .collect();
            for name in &r.policy_names_to_add {
                let added = s.policies.get(name).ok_or_else(|| policy_not_found(name))?;
                if !policies.iter().any(|(p, _)| p.policy_name == *name) {
                    policies.push(added);
                }
            }
            // The policy variables as a connection with this client id would have them.
            let client_id = r.client_id.as_deref().unwrap_or_default();
            let ctx = PolicyContext {
                client_id,
                thing_name: s.is_attached(principal, client_id).then_some(client_id),
                certificate_id: None,
            };
            let auth_results =
                r.auth_infos.iter().map(|info| judge(&policies, info, &ctx)).collect::<ApiResult<_>>()?;
            Ok(TestAuthorizationResponse { auth_results })
        })
        .await
    }
}
