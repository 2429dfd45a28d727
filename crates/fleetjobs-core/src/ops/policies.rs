//! Policies and their targets: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy; policy versions
//! (CreatePolicyVersion, ListPolicyVersions, GetPolicyVersion, DeletePolicyVersion,
//! SetDefaultPolicyVersion); the deprecated principal forms (AttachPrincipalPolicy,
//! DetachPrincipalPolicy, ListPrincipalPolicies, ListPolicyPrincipals).

use serde::{Deserialize, Serialize};

use super::{check_page_size, Timestamp};
use crate::policy::PolicyDocument;
use crate::{validate, ApiError, ApiResult, ErrorCode, Millis};

/// A policy keeps at most this many versions (AWS: five).
pub const MAX_POLICY_VERSIONS: usize = 5;

/// CreatePolicy. `tags` is accepted and ignored (not modeled, so not deserialized).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyRequest {
    pub policy_name: String,
    pub policy_document: String,
}

impl CreatePolicyRequest {
    /// The name only: the document is checked by [`Self::document`], which the engine calls
    /// anyway to keep the parsed form (parsing it twice would cost a large document twice).
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)
    }

    /// The parsed document, or `MalformedPolicyException` saying what is wrong with it.
    pub fn document(&self) -> ApiResult<PolicyDocument> {
        parse_document(&self.policy_document)
    }
}

/// A policy document parsed, or `MalformedPolicyException` saying what is wrong with it.
fn parse_document(text: &str) -> ApiResult<PolicyDocument> {
    PolicyDocument::parse(text).map_err(|e| ApiError::new(ErrorCode::MalformedPolicy, e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyResponse {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
    pub policy_version_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyRequest {
    pub policy_name: String,
}

impl GetPolicyRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyResponse {
    pub policy_name: String,
    pub policy_arn: String,
    pub policy_document: String,
    pub default_version_id: String,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    pub generation_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPoliciesRequest {
    pub marker: Option<String>,
    pub page_size: Option<i64>,
    /// By name, A to Z unless `false`.
    pub ascending_order: Option<bool>,
}

impl ListPoliciesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

/// `Policy` (botocore's name): one policy of ListPolicies and ListAttachedPolicies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    pub policy_name: String,
    pub policy_arn: String,
}

/// ListPolicies and ListAttachedPolicies (their output shapes are the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPoliciesResponse {
    pub policies: Vec<PolicySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletePolicyRequest {
    pub policy_name: String,
}

impl DeletePolicyRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)
    }
}

/// AttachPolicy and DetachPolicy. `target` is a certificate ARN (the engine checks it: it
/// must name a certificate of this server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRequest {
    pub policy_name: String,
    pub target: String,
}

impl PolicyTargetRequest {
    /// Nothing beyond the types: an ill-formed name is answered as an unknown policy.
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttachedPoliciesRequest {
    pub target: String,
    /// Thing-group inheritance; without thing groups there is nothing to recurse into.
    pub recursive: Option<bool>,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl ListAttachedPoliciesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

/// Same output shape as ListPolicies.
pub type ListAttachedPoliciesResponse = ListPoliciesResponse;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsForPolicyRequest {
    pub policy_name: String,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl ListTargetsForPolicyRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsForPolicyResponse {
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// CreatePolicyVersion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyVersionRequest {
    pub policy_name: String,
    pub policy_document: String,
    pub set_as_default: Option<bool>,
}

impl CreatePolicyVersionRequest {
    /// The name only; the document is [`Self::document`]'s (parsed once, as CreatePolicy's).
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)
    }

    pub fn document(&self) -> ApiResult<PolicyDocument> {
        parse_document(&self.policy_document)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyVersionResponse {
    pub policy_arn: String,
    pub policy_document: String,
    pub policy_version_id: String,
    pub is_default_version: bool,
}

/// GetPolicyVersion, DeletePolicyVersion and SetDefaultPolicyVersion: one version of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionRequest {
    pub policy_name: String,
    pub policy_version_id: String,
}

impl PolicyVersionRequest {
    /// AWS's patterns: the name's, and `[0-9]+` for the version id.
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)?;
        let id = &self.policy_version_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(format!(
                "1 validation error detected: Value '{id}' at 'policyVersionId' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [0-9]+"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyVersionResponse {
    pub policy_arn: String,
    pub policy_name: String,
    pub policy_document: String,
    pub policy_version_id: String,
    pub is_default_version: bool,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    pub generation_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyVersionsRequest {
    pub policy_name: String,
}

impl ListPolicyVersionsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::policy_name(&self.policy_name)
    }
}

/// `PolicyVersion` (botocore's name): one version of ListPolicyVersions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionSummary {
    pub version_id: String,
    pub is_default_version: bool,
    pub create_date: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyVersionsResponse {
    pub policy_versions: Vec<PolicyVersionSummary>,
}

/// AttachPrincipalPolicy and DetachPrincipalPolicy (deprecated forms of AttachPolicy and
/// DetachPolicy): `principal` travels in `x-amzn-iot-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalPolicyRequest {
    pub policy_name: String,
    pub principal: String,
}

impl PrincipalPolicyRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

/// ListPrincipalPolicies: `principal` travels in `x-amzn-iot-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPrincipalPoliciesRequest {
    pub principal: String,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
    pub ascending_order: Option<bool>,
}

impl ListPrincipalPoliciesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

/// ListPolicyPrincipals: `policyName` travels in `x-amzn-iot-policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyPrincipalsRequest {
    pub policy_name: String,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
    pub ascending_order: Option<bool>,
}

impl ListPolicyPrincipalsRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyPrincipalsResponse {
    pub principals: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_document_is_its_own_exception() {
        let mut r = CreatePolicyRequest { policy_name: "p".into(), policy_document: "{".into() };
        assert!(r.check(0).is_ok());
        assert_eq!(r.document().unwrap_err().code, ErrorCode::MalformedPolicy);
        r.policy_document = r#"{"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}"#.into();
        assert!(r.document().is_ok());
        r.policy_name = "no spaces".into();
        assert_eq!(r.check(0).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn lists_leave_out_an_absent_marker() {
        let page = ListPoliciesResponse {
            policies: vec![PolicySummary { policy_name: "p".into(), policy_arn: "arn".into() }],
            next_marker: None,
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            serde_json::json!({"policies": [{"policyName": "p", "policyArn": "arn"}]})
        );
    }

    #[test]
    fn policy_lists_take_aws_page_sizes() {
        let r = ListPoliciesRequest { page_size: Some(0), ..Default::default() };
        assert!(r.check(0).is_err(), "a page of 0 would never end");
        let r = ListTargetsForPolicyRequest { policy_name: "p".into(), page_size: Some(251), marker: None };
        assert!(r.check(0).is_err());
        let r = ListAttachedPoliciesRequest { target: "t".into(), page_size: Some(250), ..Default::default() };
        assert!(r.check(0).is_ok());
    }

    #[test]
    fn version_ids_are_digits() {
        let mut r = PolicyVersionRequest { policy_name: "p".into(), policy_version_id: "2".into() };
        assert!(r.check(0).is_ok());
        for bad in ["", "v2", "-1", "1.0"] {
            r.policy_version_id = bad.into();
            assert_eq!(r.check(0).unwrap_err().code, ErrorCode::InvalidRequest, "{bad:?}");
        }
        let v =
            CreatePolicyVersionRequest { policy_name: "p".into(), policy_document: "[]".into(), set_as_default: None };
        assert_eq!(v.document().unwrap_err().code, ErrorCode::MalformedPolicy);
    }
}
