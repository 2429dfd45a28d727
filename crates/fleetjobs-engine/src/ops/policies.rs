//! Policies and their targets: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::Policy;
use fleetjobs_core::ops::policies::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::policy_not_found;
use crate::Engine;

fn summary(p: &Policy) -> PolicySummary {
    PolicySummary { policy_name: p.policy_name.clone(), policy_arn: p.policy_arn.clone() }
}

impl Engine {
    pub async fn create_policy(&self, r: CreatePolicyRequest) -> ApiResult<CreatePolicyResponse> {
        r.check(self.now())?;
        let parsed = r.document()?;
        let CreatePolicyRequest { policy_name: name, policy_document: document } = r;
        self.write(|txn| {
            let arn = txn.scope.arn(ResourceKind::Policy, &name);
            if txn.s.policies.contains_key(&name) {
                return Err(ApiError::already_exists(format!("Policy {name} already exists"), &name, &arn));
            }
            let out = CreatePolicyResponse {
                policy_name: name.clone(),
                policy_arn: arn.clone(),
                policy_document: document.clone(),
                policy_version_id: POLICY_VERSION_ID.to_string(),
            };
            let policy = Policy {
                policy_name: name.clone(),
                policy_arn: arn,
                policy_document: document.clone(),
                created_at: txn.now,
                last_modified_at: txn.now,
            };
            txn.put_policy(policy, parsed);
            Ok(out)
        })
        .await
    }

    pub async fn get_policy(&self, r: GetPolicyRequest) -> ApiResult<GetPolicyResponse> {
        r.check(self.now())?;
        let name = &r.policy_name;
        self.read(|s| {
            let (p, _) = s.policies.get(name).ok_or_else(|| policy_not_found(name))?;
            Ok(GetPolicyResponse {
                policy_name: p.policy_name.clone(),
                policy_arn: p.policy_arn.clone(),
                policy_document: p.policy_document.clone(),
                default_version_id: POLICY_VERSION_ID.to_string(),
                creation_date: p.created_at.into(),
                last_modified_date: p.last_modified_at.into(),
                generation_id: p.last_modified_at.to_string(),
            })
        })
        .await
    }

    pub async fn list_policies(&self, r: ListPoliciesRequest) -> ApiResult<ListPoliciesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let mut items: Vec<PolicySummary> = s.policies.values().map(|(p, _)| summary(p)).collect();
            if r.ascending_order == Some(false) {
                items.reverse();
            }
            let (policies, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListPoliciesResponse { policies, next_marker })
        })
        .await
    }

    pub async fn delete_policy(&self, r: DeletePolicyRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.policy_name;
        self.write(|txn| {
            if !txn.s.policies.contains_key(name) {
                return Err(policy_not_found(name));
            }
            if txn.s.policy_targets.iter().any(|(_, p)| p == name) {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    format!(
                        "The policy cannot be deleted as the policy is attached to one or more principals (name={name})"
                    ),
                ));
            }
            txn.delete_policy(name);
            Ok(Empty {})
        })
        .await
    }

    pub async fn attach_policy(&self, r: PolicyTargetRequest) -> ApiResult<Empty> {
        self.policy_target(r, true).await
    }

    pub async fn detach_policy(&self, r: PolicyTargetRequest) -> ApiResult<Empty> {
        self.policy_target(r, false).await
    }

    async fn policy_target(&self, r: PolicyTargetRequest, attach: bool) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            if !txn.s.policies.contains_key(&r.policy_name) {
                return Err(policy_not_found(&r.policy_name));
            }
            self.check_certificate_arn(txn.s, &r.target)?;
            if attach {
                txn.attach_policy(&r.policy_name, &r.target);
            } else {
                txn.detach_policy(&r.policy_name, &r.target);
            }
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_attached_policies(
        &self,
        r: ListAttachedPoliciesRequest,
    ) -> ApiResult<ListAttachedPoliciesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            self.check_certificate_arn(s, &r.target)?;
            let items: Vec<PolicySummary> = s.policies_of_target(&r.target).map(|(p, _)| summary(p)).collect();
            let (policies, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListAttachedPoliciesResponse { policies, next_marker })
        })
        .await
    }

    pub async fn list_targets_for_policy(
        &self,
        r: ListTargetsForPolicyRequest,
    ) -> ApiResult<ListTargetsForPolicyResponse> {
        r.check(self.now())?;
        let name = &r.policy_name;
        self.read(|s| {
            if !s.policies.contains_key(name) {
                return Err(policy_not_found(name));
            }
            let items: Vec<String> =
                s.policy_targets.iter().filter(|(_, p)| p == name).map(|(t, _)| t.clone()).collect();
            let (targets, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListTargetsForPolicyResponse { targets, next_marker })
        })
        .await
    }
}
