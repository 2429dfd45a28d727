//! Policies and their targets: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy; policy versions
//! (CreatePolicyVersion, ListPolicyVersions, GetPolicyVersion, DeletePolicyVersion,
//! SetDefaultPolicyVersion); the deprecated principal forms (AttachPrincipalPolicy,
//! DetachPrincipalPolicy, ListPrincipalPolicies, ListPolicyPrincipals).

use std::sync::Arc;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{Policy, PolicyVersion};
use fleetjobs_core::ops::policies::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::policy::PolicyDocument;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::policy_not_found;
use crate::state::State;
use crate::Engine;

fn summary(p: &Policy) -> PolicySummary {
    PolicySummary { policy_name: p.policy_name.clone(), policy_arn: p.policy_arn.clone() }
}

fn policy<'a>(s: &'a State, name: &str) -> ApiResult<&'a (Policy, Arc<PolicyDocument>)> {
    s.policies.get(name).ok_or_else(|| policy_not_found(name))
}

fn version_not_found(name: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("Policy {name} version {id} does not exist"))
}

impl Engine {
    pub async fn create_policy(&self, r: CreatePolicyRequest) -> ApiResult<CreatePolicyResponse> {
        r.check(self.now())?;
        let parsed = Arc::new(r.document()?);
        let CreatePolicyRequest { policy_name: name, policy_document: document } = r;
        self.write(|txn| {
            let arn = txn.scope.arn(ResourceKind::Policy, &name);
            if txn.s.policies.contains_key(&name) {
                return Err(ApiError::already_exists(format!("Policy {name} already exists"), &name, &arn));
            }
            let policy = Policy::new(name.clone(), arn.clone(), document.clone(), txn.now);
            let out = CreatePolicyResponse {
                policy_name: name.clone(),
                policy_arn: arn,
                policy_document: document.clone(),
                policy_version_id: policy.default_version_id.clone(),
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
            let (p, _) = policy(s, name)?;
            Ok(GetPolicyResponse {
                policy_name: p.policy_name.clone(),
                policy_arn: p.policy_arn.clone(),
                policy_document: p.policy_document.clone(),
                default_version_id: p.default_version_id.clone(),
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

    /// As AWS: a policy goes only once it is detached everywhere and only its default
    /// version is left.
    pub async fn delete_policy(&self, r: DeletePolicyRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let name = &r.policy_name;
        self.write(|txn| {
            let (p, _) = policy(txn.s, name)?;
            if txn.s.policy_targets.values().any(|policies| policies.contains(name)) {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    format!(
                        "The policy cannot be deleted as the policy is attached to one or more principals (name={name})"
                    ),
                ));
            }
            if p.versions.len() > 1 {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    format!("Cannot delete the policy {name} because it has one or more non-default versions"),
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

    /// The deprecated AttachPolicy: the principal is a certificate ARN, as a target.
    pub async fn attach_principal_policy(&self, r: PrincipalPolicyRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.policy_target(PolicyTargetRequest { policy_name: r.policy_name, target: r.principal }, true).await
    }

    pub async fn detach_principal_policy(&self, r: PrincipalPolicyRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.policy_target(PolicyTargetRequest { policy_name: r.policy_name, target: r.principal }, false).await
    }

    async fn policy_target(&self, r: PolicyTargetRequest, attach: bool) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            policy(txn.s, &r.policy_name)?;
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

    /// The deprecated ListAttachedPolicies, with an order.
    pub async fn list_principal_policies(&self, r: ListPrincipalPoliciesRequest) -> ApiResult<ListPoliciesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            self.check_certificate_arn(s, &r.principal)?;
            let mut items: Vec<PolicySummary> = s.policies_of_target(&r.principal).map(|(p, _)| summary(p)).collect();
            if r.ascending_order == Some(false) {
                items.reverse();
            }
            let (policies, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListPoliciesResponse { policies, next_marker })
        })
        .await
    }

    pub async fn list_targets_for_policy(
        &self,
        r: ListTargetsForPolicyRequest,
    ) -> ApiResult<ListTargetsForPolicyResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let items = targets_of(s, &r.policy_name)?;
            let (targets, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListTargetsForPolicyResponse { targets, next_marker })
        })
        .await
    }

    /// The deprecated ListTargetsForPolicy, with an order.
    pub async fn list_policy_principals(
        &self,
        r: ListPolicyPrincipalsRequest,
    ) -> ApiResult<ListPolicyPrincipalsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let mut items = targets_of(s, &r.policy_name)?;
            if r.ascending_order == Some(false) {
                items.reverse();
            }
            let (principals, next_marker) = page(items, r.marker.as_deref(), r.page_size, 250)?;
            Ok(ListPolicyPrincipalsResponse { principals, next_marker })
        })
        .await
    }

    pub async fn create_policy_version(&self, r: CreatePolicyVersionRequest) -> ApiResult<CreatePolicyVersionResponse> {
        r.check(self.now())?;
        let parsed = Arc::new(r.document()?);
        let set_as_default = r.set_as_default == Some(true);
        let CreatePolicyVersionRequest { policy_name: name, policy_document: document, .. } = r;
        self.write(|txn| {
            let (p, current) = policy(txn.s, &name)?;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(ApiError::new(
                    ErrorCode::VersionsLimitExceeded,
                    format!(
                        "The policy {name} already has the maximum number of versions ({MAX_POLICY_VERSIONS}): \
                         delete one before creating another"
                    ),
                ));
            }
            let mut p = p.clone();
            let mut doc = Arc::clone(current);
            p.last_version_number += 1;
            let id = p.last_version_number.to_string();
            p.versions.push(PolicyVersion {
                version_id: id.clone(),
                policy_document: document.clone(),
                created_at: txn.now,
            });
            if set_as_default {
                p.default_version_id = id.clone();
                p.policy_document = document.clone();
                doc = parsed;
            }
            p.last_modified_at = txn.now;
            let out = CreatePolicyVersionResponse {
                policy_arn: p.policy_arn.clone(),
                policy_document: document,
                policy_version_id: id,
                is_default_version: set_as_default,
            };
            txn.put_policy(p, doc);
            Ok(out)
        })
        .await
    }

    pub async fn list_policy_versions(&self, r: ListPolicyVersionsRequest) -> ApiResult<ListPolicyVersionsResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let (p, _) = policy(s, &r.policy_name)?;
            let policy_versions = p
                .versions
                .iter()
                .map(|v| PolicyVersionSummary {
                    version_id: v.version_id.clone(),
                    is_default_version: v.version_id == p.default_version_id,
                    create_date: v.created_at.into(),
                })
                .collect();
            Ok(ListPolicyVersionsResponse { policy_versions })
        })
        .await
    }

    pub async fn get_policy_version(&self, r: PolicyVersionRequest) -> ApiResult<GetPolicyVersionResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let (p, _) = policy(s, &r.policy_name)?;
            let v = p
                .version(&r.policy_version_id)
                .ok_or_else(|| version_not_found(&r.policy_name, &r.policy_version_id))?;
            Ok(GetPolicyVersionResponse {
                policy_arn: p.policy_arn.clone(),
                policy_name: p.policy_name.clone(),
                policy_document: v.policy_document.clone(),
                policy_version_id: v.version_id.clone(),
                is_default_version: v.version_id == p.default_version_id,
                creation_date: v.created_at.into(),
                // A version's document never changes after it is created.
                last_modified_date: v.created_at.into(),
                generation_id: v.created_at.to_string(),
            })
        })
        .await
    }

    /// Not the default: AWS deletes that one only with the policy.
    pub async fn delete_policy_version(&self, r: PolicyVersionRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let (name, id) = (&r.policy_name, &r.policy_version_id);
        self.write(|txn| {
            let (p, doc) = policy(txn.s, name)?;
            if p.version(id).is_none() {
                return Err(version_not_found(name, id));
            }
            if p.default_version_id == *id {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    format!("Cannot delete the default version {id} of policy {name}: use DeletePolicy"),
                ));
            }
            let mut p = p.clone();
            let doc = Arc::clone(doc);
            p.versions.retain(|v| v.version_id != *id);
            p.last_modified_at = txn.now;
            txn.put_policy(p, doc);
            Ok(Empty {})
        })
        .await
    }

    /// From the commit on, every device the policy applies to is judged by this version
    /// (authorization reads the parsed default at each CONNECT, PUBLISH, SUBSCRIBE, RECEIVE).
    pub async fn set_default_policy_version(&self, r: PolicyVersionRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let (name, id) = (&r.policy_name, &r.policy_version_id);
        self.write(|txn| {
            let (p, _) = policy(txn.s, name)?;
            let v = p.version(id).ok_or_else(|| version_not_found(name, id))?;
            // Parsed when the version was created; a document a later, stricter parser refuses
            // is refused here rather than made the default.
            let doc = PolicyDocument::parse(&v.policy_document)
                .map_err(|e| ApiError::new(ErrorCode::MalformedPolicy, e.to_string()))?;
            let mut p = p.clone();
            p.policy_document = v.policy_document.clone();
            p.default_version_id = id.clone();
            p.last_modified_at = txn.now;
            txn.put_policy(p, Arc::new(doc));
            Ok(Empty {})
        })
        .await
    }
}

/// The targets (certificate ARNs) a policy is attached to, or the policy's not-found error.
fn targets_of(s: &State, name: &str) -> ApiResult<Vec<String>> {
    policy(s, name)?;
    Ok(s.policy_targets.iter().filter(|(_, policies)| policies.contains(name)).map(|(t, _)| t.clone()).collect())
}
