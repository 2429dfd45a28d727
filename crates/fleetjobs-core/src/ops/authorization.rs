//! What a principal's policies allow: GetEffectivePolicies and TestAuthorization, answered
//! by the same evaluation that judges devices (`policy::decide`).

use serde::{Deserialize, Serialize};

use crate::policy::IotAction;
use crate::{ApiError, ApiResult, Millis};

/// At most this many `authInfos` per TestAuthorization (botocore: 1..10).
pub const MAX_AUTH_INFOS: usize = 10;
/// At most this many resources per `authInfo`, and policy names to add or skip: our bound.
pub const MAX_NAMES: usize = 100;

/// Only certificates are principals here: a Cognito identity is refused, not ignored.
fn check_principal(principal: Option<&str>, cognito: Option<&str>) -> ApiResult<()> {
    if cognito.is_some() {
        return Err(ApiError::invalid("cognitoIdentityPoolId is not supported: principals are certificates"));
    }
    match principal {
        Some(p) if !p.is_empty() => Ok(()),
        _ => Err(ApiError::invalid("principal is required (a certificate ARN)")),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEffectivePoliciesRequest {
    pub principal: Option<String>,
    pub cognito_identity_pool_id: Option<String>,
    pub thing_name: Option<String>,
}

impl GetEffectivePoliciesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_principal(self.principal.as_deref(), self.cognito_identity_pool_id.as_deref())
    }
}

/// `EffectivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicy {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEffectivePoliciesResponse {
    pub effective_policies: Vec<EffectivePolicy>,
}

/// `ActionType`: the MQTT actions TestAuthorization evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionType {
    Publish,
    Subscribe,
    Receive,
    Connect,
}

impl ActionType {
    pub fn action(self) -> IotAction {
        match self {
            ActionType::Publish => IotAction::Publish,
            ActionType::Subscribe => IotAction::Subscribe,
            ActionType::Receive => IotAction::Receive,
            ActionType::Connect => IotAction::Connect,
        }
    }
}

/// `AuthInfo`: an action on resources (full ARNs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthInfo {
    pub action_type: Option<ActionType>,
    pub resources: Vec<String>,
}

impl AuthInfo {
    /// The part of each resource ARN a policy's `Resource` is matched on (after the account).
    pub fn resource_parts(&self) -> ApiResult<Vec<&str>> {
        self.resources
            .iter()
            .map(|arn| match arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
                ["arn", _, "iot", _, _, resource] if !resource.is_empty() => Ok(*resource),
                _ => Err(ApiError::invalid(format!("Invalid resource ARN: {arn}"))),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAuthorizationRequest {
    pub principal: Option<String>,
    pub cognito_identity_pool_id: Option<String>,
    pub auth_infos: Vec<AuthInfo>,
    pub client_id: Option<String>,
    #[serde(default)]
    pub policy_names_to_add: Vec<String>,
    #[serde(default)]
    pub policy_names_to_skip: Vec<String>,
}

impl TestAuthorizationRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_principal(self.principal.as_deref(), self.cognito_identity_pool_id.as_deref())?;
        if !(1..=MAX_AUTH_INFOS).contains(&self.auth_infos.len()) {
            return Err(ApiError::invalid(format!("authInfos must have 1 to {MAX_AUTH_INFOS} items")));
        }
        for info in &self.auth_infos {
            if info.action_type.is_none() {
                return Err(ApiError::invalid("authInfos.actionType is required here"));
            }
            if !(1..=MAX_NAMES).contains(&info.resources.len()) {
                return Err(ApiError::invalid(format!("authInfos.resources must have 1 to {MAX_NAMES} items")));
            }
            info.resource_parts()?;
        }
        if self.policy_names_to_add.len() > MAX_NAMES || self.policy_names_to_skip.len() > MAX_NAMES {
            return Err(ApiError::invalid(format!("At most {MAX_NAMES} policy names to add or skip")));
        }
        Ok(())
    }
}

/// `Policy` as TestAuthorization names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    pub policy_name: String,
    pub policy_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policies {
    pub policies: Vec<PolicyRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denied {
    pub implicit_deny: Policies,
    pub explicit_deny: Policies,
}

/// `AuthDecision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthDecision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

/// `AuthResult`: the decision on one `authInfo`, and which policies allowed or denied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResult {
    pub auth_info: AuthInfo,
    pub allowed: Policies,
    pub denied: Denied,
    pub auth_decision: AuthDecision,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAuthorizationResponse {
    pub auth_results: Vec<AuthResult>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(v: serde_json::Value) -> TestAuthorizationRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn test_authorization_checks_principal_infos_and_arns() {
        let ok = json!({"principal": "arn:aws:iot:us-east-1:1:cert/abc",
                        "authInfos": [{"actionType": "PUBLISH", "resources": ["arn:aws:iot:us-east-1:1:topic/a:b"]}]});
        let r = request(ok.clone());
        assert!(r.check(0).is_ok());
        assert_eq!(r.auth_infos[0].resource_parts().unwrap(), ["topic/a:b"], "a topic may hold colons");
        for bad in [
            json!({"authInfos": ok["authInfos"]}),
            json!({"principal": "p", "cognitoIdentityPoolId": "c", "authInfos": ok["authInfos"]}),
            json!({"principal": "p", "authInfos": []}),
            json!({"principal": "p", "authInfos": [{"actionType": "PUBLISH", "resources": []}]}),
            json!({"principal": "p", "authInfos": [{"resources": ["arn:aws:iot:r:1:topic/a"]}]}),
            json!({"principal": "p", "authInfos": [{"actionType": "PUBLISH", "resources": ["topic/a"]}]}),
        ] {
            assert!(request(bad.clone()).check(0).is_err(), "{bad}");
        }
        assert!(GetEffectivePoliciesRequest::default().check(0).is_err());
    }

    #[test]
    fn results_serialize_as_the_model_names_them() {
        let result = AuthResult {
            auth_info: AuthInfo { action_type: Some(ActionType::Connect), resources: vec!["arn".into()] },
            allowed: Policies { policies: vec![PolicyRef { policy_name: "p".into(), policy_arn: "a".into() }] },
            denied: Denied::default(),
            auth_decision: AuthDecision::Allowed,
        };
        assert_eq!(
            serde_json::to_value(result).unwrap(),
            json!({"authInfo": {"actionType": "CONNECT", "resources": ["arn"]},
                   "allowed": {"policies": [{"policyName": "p", "policyArn": "a"}]},
                   "denied": {"implicitDeny": {"policies": []}, "explicitDeny": {"policies": []}},
                   "authDecision": "ALLOWED"})
        );
    }
}
