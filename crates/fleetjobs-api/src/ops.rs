//! The one table of API operations: name, signing service, method, URI template, and where
//! each non-body member travels (path label, query string or header) with its type, as in the
//! botocore models. [`call`] is every operation's handler: it deserializes the merged members
//! into the operation's request type, invokes the engine method and serializes its response.

use std::future::Future;
use std::pin::Pin;

use fleetjobs_core::{ApiError, ApiResult};
use fleetjobs_engine::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// An operation's handler: the merged members in, the response's members out.
pub type Handler = for<'a> fn(&'a Engine, Map<String, Value>) -> BoxFuture<'a, ApiResult<Value>>;

/// The SigV4 signing name that selects the service (`iot` vs `iot-jobs-data` share paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iot,
    /// The device data plane (`iot-jobs-data`): the same rules as the Jobs MQTT API.
    IotJobsData,
}

impl Service {
    pub fn from_signing_name(name: &str) -> Option<Service> {
        match name {
            "iot" => Some(Service::Iot),
            "iot-jobs-data" => Some(Service::IotJobsData),
            _ => None,
        }
    }
}

/// How a member that travels outside the body (path label, query parameter) is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
}

pub struct Operation {
    pub name: &'static str,
    pub service: Service,
    pub method: &'static str,
    pub path: &'static str,
    /// Path labels that are not strings (label name, type).
    pub labels: &'static [(&'static str, Kind)],
    /// (wire name, member name, type).
    pub query: &'static [(&'static str, &'static str, Kind)],
    /// (header name, member name).
    pub headers: &'static [(&'static str, &'static str)],
    pub handler: Handler,
}

/// Run one operation: `members` (labels, query, headers and body merged under their AWS
/// member names) become its request type, `op` applies it, its response becomes the answer's
/// members. A member of the wrong type, or a required member missing, answers
/// `InvalidRequestException` naming the member and changes nothing.
pub fn call<'a, R, S, F>(
    engine: &'a Engine,
    members: Map<String, Value>,
    op: fn(&'a Engine, R) -> F,
) -> BoxFuture<'a, ApiResult<Value>>
where
    R: DeserializeOwned + Send + 'a,
    S: Serialize,
    F: Future<Output = ApiResult<S>> + Send + 'a,
{
    Box::pin(async move {
        let request: R = serde_path_to_error::deserialize(Value::Object(members)).map_err(invalid_request)?;
        let response = op(engine, request).await?;
        serde_json::to_value(response)
            .map_err(|e| ApiError::new(fleetjobs_core::ErrorCode::InternalFailure, e.to_string()))
    })
}

/// AWS's wording for a request that does not match the operation's input shape (also used by
/// `fleetjobs rollout-preview`, so a config typo reads the same there).
pub fn invalid_request(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    if let Some(member) = inner.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        let member = if path == "." { member.to_string() } else { format!("{path}.{member}") };
        return ApiError::invalid(format!("Missing required parameter: {member}"));
    }
    ApiError::invalid(format!("Invalid type for parameter {path}: {inner}"))
}

use Kind::{Bool, Int, Str};

macro_rules! op {
    (jobs_data: $name:literal, $method:literal, $path:literal, $f:ident
        $(, query: [$(($qw:literal, $qm:literal, $qk:ident)),* $(,)?])?) => {
        Operation {
            name: $name,
            service: Service::IotJobsData,
            method: $method,
            path: $path,
            labels: &[],
            query: &[$($(($qw, $qm, $qk)),*)?],
            headers: &[],
            handler: |engine, members| call(engine, members, Engine::$f),
        }
    };
    ($name:literal, $method:literal, $path:literal, $f:ident
        $(, labels: [$(($lm:literal, $lk:ident)),* $(,)?])?
        $(, query: [$(($qw:literal, $qm:literal, $qk:ident)),* $(,)?])?
        $(, headers: [$(($hw:literal, $hm:literal)),* $(,)?])?) => {
        Operation {
            name: $name,
            service: Service::Iot,
            method: $method,
            path: $path,
            labels: &[$($(($lm, $lk)),*)?],
            query: &[$($(($qw, $qm, $qk)),*)?],
            headers: &[$($(($hw, $hm)),*)?],
            handler: |engine, members| call(engine, members, Engine::$f),
        }
    };
}

pub static OPERATIONS: &[Operation] = &[
    // Things
    op!("CreateThing", "POST", "/things/{thingName}", create_thing),
    op!("DescribeThing", "GET", "/things/{thingName}", describe_thing),
    op!("ListThings", "GET", "/things", list_things, query: [
        ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int), ("attributeName", "attributeName", Str),
        ("attributeValue", "attributeValue", Str), ("thingTypeName", "thingTypeName", Str),
        ("usePrefixAttributeValue", "usePrefixAttributeValue", Bool)]),
    op!("UpdateThing", "PATCH", "/things/{thingName}", update_thing),
    op!("DeleteThing", "DELETE", "/things/{thingName}", delete_thing, query: [("expectedVersion", "expectedVersion", Int)]),
    // Thing groups
    op!("CreateThingGroup", "POST", "/thing-groups/{thingGroupName}", create_thing_group),
    op!("DescribeThingGroup", "GET", "/thing-groups/{thingGroupName}", describe_thing_group),
    op!("ListThingGroups", "GET", "/thing-groups", list_thing_groups, query: [
        ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int), ("parentGroup", "parentGroup", Str),
        ("namePrefixFilter", "namePrefixFilter", Str), ("recursive", "recursive", Bool)]),
    op!("UpdateThingGroup", "PATCH", "/thing-groups/{thingGroupName}", update_thing_group),
    op!("DeleteThingGroup", "DELETE", "/thing-groups/{thingGroupName}", delete_thing_group,
        query: [("expectedVersion", "expectedVersion", Int)]),
    op!("AddThingToThingGroup", "PUT", "/thing-groups/addThingToThingGroup", add_thing_to_thing_group),
    op!("RemoveThingFromThingGroup", "PUT", "/thing-groups/removeThingFromThingGroup", remove_thing_from_thing_group),
    op!("UpdateThingGroupsForThing", "PUT", "/thing-groups/updateThingGroupsForThing", update_thing_groups_for_thing),
    op!("ListThingsInThingGroup", "GET", "/thing-groups/{thingGroupName}/things", list_things_in_thing_group, query: [
        ("recursive", "recursive", Bool), ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int)]),
    op!("ListThingGroupsForThing", "GET", "/things/{thingName}/thing-groups", list_thing_groups_for_thing,
        query: [("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int)]),
    // Dynamic thing groups
    op!("CreateDynamicThingGroup", "POST", "/dynamic-thing-groups/{thingGroupName}", create_dynamic_thing_group),
    op!("UpdateDynamicThingGroup", "PATCH", "/dynamic-thing-groups/{thingGroupName}", update_dynamic_thing_group),
    op!("DeleteDynamicThingGroup", "DELETE", "/dynamic-thing-groups/{thingGroupName}", delete_dynamic_thing_group,
        query: [("expectedVersion", "expectedVersion", Int)]),
    // Thing types
    op!("CreateThingType", "POST", "/thing-types/{thingTypeName}", create_thing_type),
    op!("DescribeThingType", "GET", "/thing-types/{thingTypeName}", describe_thing_type),
    op!("ListThingTypes", "GET", "/thing-types", list_thing_types, query: [
        ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int), ("thingTypeName", "thingTypeName", Str)]),
    op!("UpdateThingType", "PATCH", "/thing-types/{thingTypeName}", update_thing_type),
    op!("DeprecateThingType", "POST", "/thing-types/{thingTypeName}/deprecate", deprecate_thing_type),
    op!("DeleteThingType", "DELETE", "/thing-types/{thingTypeName}", delete_thing_type),
    // Certificates
    op!("CreateKeysAndCertificate", "POST", "/keys-and-certificate", create_keys_and_certificate, query: [("setAsActive", "setAsActive", Bool)]),
    op!("CreateCertificateFromCsr", "POST", "/certificates", create_certificate_from_csr, query: [("setAsActive", "setAsActive", Bool)]),
    op!("DescribeCertificate", "GET", "/certificates/{certificateId}", describe_certificate),
    op!("ListCertificates", "GET", "/certificates", list_certificates, query: [
        ("pageSize", "pageSize", Int), ("marker", "marker", Str), ("isAscendingOrder", "ascendingOrder", Bool)]),
    op!("UpdateCertificate", "PUT", "/certificates/{certificateId}", update_certificate, query: [("newStatus", "newStatus", Str)]),
    op!("DeleteCertificate", "DELETE", "/certificates/{certificateId}", delete_certificate, query: [("forceDelete", "forceDelete", Bool)]),
    op!("RegisterCertificate", "POST", "/certificate/register", register_certificate, query: [("setAsActive", "setAsActive", Bool)]),
    op!("RegisterCertificateWithoutCA", "POST", "/certificate/register-no-ca", register_certificate_without_ca),
    // CA certificates (bring your own PKI)
    op!("GetRegistrationCode", "GET", "/registrationcode", get_registration_code),
    op!("DeleteRegistrationCode", "DELETE", "/registrationcode", delete_registration_code),
    op!("RegisterCACertificate", "POST", "/cacertificate", register_ca_certificate, query: [
        ("setAsActive", "setAsActive", Bool), ("allowAutoRegistration", "allowAutoRegistration", Bool)]),
    op!("DescribeCACertificate", "GET", "/cacertificate/{caCertificateId}", describe_ca_certificate),
    op!("ListCACertificates", "GET", "/cacertificates", list_ca_certificates, query: [
        ("pageSize", "pageSize", Int), ("marker", "marker", Str), ("isAscendingOrder", "ascendingOrder", Bool),
        ("templateName", "templateName", Str)]),
    op!("UpdateCACertificate", "PUT", "/cacertificate/{caCertificateId}", update_ca_certificate, query: [
        ("newStatus", "newStatus", Str), ("newAutoRegistrationStatus", "newAutoRegistrationStatus", Str)]),
    op!("DeleteCACertificate", "DELETE", "/cacertificate/{caCertificateId}", delete_ca_certificate),
    op!("ListCertificatesByCA", "GET", "/certificates-by-ca/{caCertificateId}", list_certificates_by_ca, query: [
        ("pageSize", "pageSize", Int), ("marker", "marker", Str), ("isAscendingOrder", "ascendingOrder", Bool)]),
    // Policies
    op!("CreatePolicy", "POST", "/policies/{policyName}", create_policy),
    op!("GetPolicy", "GET", "/policies/{policyName}", get_policy),
    op!("ListPolicies", "GET", "/policies", list_policies, query: [
        ("marker", "marker", Str), ("pageSize", "pageSize", Int), ("isAscendingOrder", "ascendingOrder", Bool)]),
    op!("DeletePolicy", "DELETE", "/policies/{policyName}", delete_policy),
    op!("AttachPolicy", "PUT", "/target-policies/{policyName}", attach_policy),
    op!("DetachPolicy", "POST", "/target-policies/{policyName}", detach_policy),
    op!("ListAttachedPolicies", "POST", "/attached-policies/{target}", list_attached_policies, query: [
        ("recursive", "recursive", Bool), ("marker", "marker", Str), ("pageSize", "pageSize", Int)]),
    op!("ListTargetsForPolicy", "POST", "/policy-targets/{policyName}", list_targets_for_policy, query: [
        ("marker", "marker", Str), ("pageSize", "pageSize", Int)]),
    // Policy versions
    op!("CreatePolicyVersion", "POST", "/policies/{policyName}/version", create_policy_version,
        query: [("setAsDefault", "setAsDefault", Bool)]),
    op!("ListPolicyVersions", "GET", "/policies/{policyName}/version", list_policy_versions),
    op!("GetPolicyVersion", "GET", "/policies/{policyName}/version/{policyVersionId}", get_policy_version),
    op!("DeletePolicyVersion", "DELETE", "/policies/{policyName}/version/{policyVersionId}", delete_policy_version),
    op!(
        "SetDefaultPolicyVersion",
        "PATCH",
        "/policies/{policyName}/version/{policyVersionId}",
        set_default_policy_version
    ),
    // What a principal's policies allow
    op!("GetEffectivePolicies", "POST", "/effective-policies", get_effective_policies,
        query: [("thingName", "thingName", Str)]),
    op!("TestAuthorization", "POST", "/test-authorization", test_authorization,
        query: [("clientId", "clientId", Str)]),
    // Principal policies (deprecated forms of the target ones)
    op!("AttachPrincipalPolicy", "PUT", "/principal-policies/{policyName}", attach_principal_policy,
        headers: [("x-amzn-iot-principal", "principal")]),
    op!("DetachPrincipalPolicy", "DELETE", "/principal-policies/{policyName}", detach_principal_policy,
        headers: [("x-amzn-iot-principal", "principal")]),
    op!("ListPrincipalPolicies", "GET", "/principal-policies", list_principal_policies, query: [
        ("marker", "marker", Str), ("pageSize", "pageSize", Int), ("isAscendingOrder", "ascendingOrder", Bool)],
        headers: [("x-amzn-iot-principal", "principal")]),
    op!("ListPolicyPrincipals", "GET", "/policy-principals", list_policy_principals, query: [
        ("marker", "marker", Str), ("pageSize", "pageSize", Int), ("isAscendingOrder", "ascendingOrder", Bool)],
        headers: [("x-amzn-iot-policy", "policyName")]),
    // Thing principals
    op!("AttachThingPrincipal", "PUT", "/things/{thingName}/principals", attach_thing_principal,
        query: [("thingPrincipalType", "thingPrincipalType", Str)], headers: [("x-amzn-principal", "principal")]),
    op!("DetachThingPrincipal", "DELETE", "/things/{thingName}/principals", detach_thing_principal,
        headers: [("x-amzn-principal", "principal")]),
    op!("ListThingPrincipals", "GET", "/things/{thingName}/principals", list_thing_principals,
        query: [("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int)]),
    op!("ListPrincipalThings", "GET", "/principals/things", list_principal_things,
        query: [("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int)], headers: [("x-amzn-principal", "principal")]),
    op!("ListThingPrincipalsV2", "GET", "/things/{thingName}/principals-v2", list_thing_principals_v2, query: [
        ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int), ("thingPrincipalType", "thingPrincipalType", Str)]),
    op!("ListPrincipalThingsV2", "GET", "/principals/things-v2", list_principal_things_v2, query: [
        ("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int), ("thingPrincipalType", "thingPrincipalType", Str)],
        headers: [("x-amzn-principal", "principal")]),
    // Fleet indexing (the registry index dynamic groups query)
    op!("GetIndexingConfiguration", "GET", "/indexing/config", get_indexing_configuration),
    op!("UpdateIndexingConfiguration", "POST", "/indexing/config", update_indexing_configuration),
    op!("SearchIndex", "POST", "/indices/search", search_index),
    op!("DescribeIndex", "GET", "/indices/{indexName}", describe_index),
    op!("ListIndices", "GET", "/indices", list_indices,
        query: [("nextToken", "nextToken", Str), ("maxResults", "maxResults", Int)]),
    // Endpoint and events
    op!("DescribeEndpoint", "GET", "/endpoint", describe_endpoint, query: [("endpointType", "endpointType", Str)]),
    op!("UpdateEventConfigurations", "PATCH", "/event-configurations", update_event_configurations),
    op!("DescribeEventConfigurations", "GET", "/event-configurations", describe_event_configurations),
    // Jobs
    op!("CreateJob", "PUT", "/jobs/{jobId}", create_job),
    op!("UpdateJob", "PATCH", "/jobs/{jobId}", update_job, query: [("namespaceId", "namespaceId", Str)]),
    op!("DescribeJob", "GET", "/jobs/{jobId}", describe_job, query: [("beforeSubstitution", "beforeSubstitution", Bool)]),
    op!("ListJobs", "GET", "/jobs", list_jobs, query: [
        ("status", "status", Str), ("targetSelection", "targetSelection", Str), ("maxResults", "maxResults", Int),
        ("nextToken", "nextToken", Str), ("thingGroupName", "thingGroupName", Str), ("thingGroupId", "thingGroupId", Str),
        ("namespaceId", "namespaceId", Str)]),
    op!("CancelJob", "PUT", "/jobs/{jobId}/cancel", cancel_job, query: [("force", "force", Bool)]),
    op!("DeleteJob", "DELETE", "/jobs/{jobId}", delete_job, query: [("force", "force", Bool), ("namespaceId", "namespaceId", Str)]),
    op!("GetJobDocument", "GET", "/jobs/{jobId}/job-document", get_job_document, query: [("beforeSubstitution", "beforeSubstitution", Bool)]),
    op!("AssociateTargetsWithJob", "POST", "/jobs/{jobId}/targets", associate_targets_with_job, query: [("namespaceId", "namespaceId", Str)]),
    op!("ListJobExecutionsForJob", "GET", "/jobs/{jobId}/things", list_job_executions_for_job, query: [
        ("status", "status", Str), ("maxResults", "maxResults", Int), ("nextToken", "nextToken", Str)]),
    op!("ListJobExecutionsForThing", "GET", "/things/{thingName}/jobs", list_job_executions_for_thing, query: [
        ("status", "status", Str), ("namespaceId", "namespaceId", Str), ("maxResults", "maxResults", Int),
        ("nextToken", "nextToken", Str), ("jobId", "jobId", Str)]),
    op!("DescribeJobExecution", "GET", "/things/{thingName}/jobs/{jobId}", describe_job_execution, query: [("executionNumber", "executionNumber", Int)]),
    op!("CancelJobExecution", "PUT", "/things/{thingName}/jobs/{jobId}/cancel", cancel_job_execution, query: [("force", "force", Bool)]),
    op!("DeleteJobExecution", "DELETE", "/things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber}", delete_job_execution, labels: [("executionNumber", Int)],
        query: [("force", "force", Bool), ("namespaceId", "namespaceId", Str)]),
    // Job templates
    op!("CreateJobTemplate", "PUT", "/job-templates/{jobTemplateId}", create_job_template),
    op!("DescribeJobTemplate", "GET", "/job-templates/{jobTemplateId}", describe_job_template),
    op!("ListJobTemplates", "GET", "/job-templates", list_job_templates,
        query: [("maxResults", "maxResults", Int), ("nextToken", "nextToken", Str)]),
    op!("DeleteJobTemplate", "DELETE", "/job-templates/{jobTemplateId}", delete_job_template),
    op!("ListManagedJobTemplates", "GET", "/managed-job-templates", list_managed_job_templates, query: [
        ("templateName", "templateName", Str), ("maxResults", "maxResults", Int), ("nextToken", "nextToken", Str)]),
    op!("DescribeManagedJobTemplate", "GET", "/managed-job-templates/{templateName}", describe_managed_job_template,
        query: [("templateVersion", "templateVersion", Str)]),
    // Tags
    op!("TagResource", "POST", "/tags", tag_resource),
    op!("UntagResource", "POST", "/untag", untag_resource),
    op!("ListTagsForResource", "GET", "/tags", list_tags_for_resource,
        query: [("resourceArn", "resourceArn", Str), ("nextToken", "nextToken", Str)]),
    // iot-jobs-data: same paths as some `iot` rows, told apart by the signing name
    op!(jobs_data: "GetPendingJobExecutions", "GET", "/things/{thingName}/jobs", jobs_data_get_pending),
    op!(jobs_data: "StartNextPendingJobExecution", "PUT", "/things/{thingName}/jobs/$next", jobs_data_start_next),
    op!(jobs_data: "DescribeJobExecution", "GET", "/things/{thingName}/jobs/{jobId}", jobs_data_describe,
        query: [("includeJobDocument", "includeJobDocument", Bool), ("executionNumber", "executionNumber", Int)]),
    op!(jobs_data: "UpdateJobExecution", "POST", "/things/{thingName}/jobs/{jobId}", jobs_data_update),
];

/// Find the operation for a request. `segments` are the path's segments, percent-decoded.
/// Returns the operation and its path labels (label name, value).
pub fn route<'s>(
    service: Service,
    method: &str,
    segments: &'s [String],
) -> Option<(&'static Operation, Vec<(&'static str, &'s str)>)> {
    OPERATIONS.iter().filter(|op| op.service == service && op.method == method).find_map(|op| {
        let template: Vec<&'static str> = op.path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut labels = Vec::new();
        for (t, s) in template.iter().zip(segments) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(label) if !s.is_empty() => labels.push((label, s.as_str())),
                Some(_) => return None,
                None if t == s => {}
                None => return None,
            }
        }
        Some((op, labels))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').skip(1).map(str::to_string).collect()
    }

    #[test]
    fn routes_by_method_and_literal_segments() {
        let s = segs("/jobs/example-job-01");
        assert_eq!(route(Service::Iot, "PUT", &s).unwrap().0.name, "CreateJob");
        assert_eq!(route(Service::Iot, "GET", &s).unwrap().0.name, "DescribeJob");
        let s = segs("/jobs/j1/cancel");
        assert_eq!(route(Service::Iot, "PUT", &s).unwrap().0.name, "CancelJob");
        let s = segs("/things/t1/jobs/j1/executionNumber/3");
        let (op, labels) = route(Service::Iot, "DELETE", &s).unwrap();
        assert_eq!(op.name, "DeleteJobExecution");
        assert_eq!(labels, vec![("thingName", "t1"), ("jobId", "j1"), ("executionNumber", "3")]);
        assert!(route(Service::Iot, "GET", &segs("/nope")).is_none());
        // The two services share paths; the signing name decides.
        let s = segs("/things/t1/jobs");
        assert_eq!(route(Service::Iot, "GET", &s).unwrap().0.name, "ListJobExecutionsForThing");
        assert_eq!(route(Service::IotJobsData, "GET", &s).unwrap().0.name, "GetPendingJobExecutions");
        let s = segs("/things/t1/jobs/$next");
        assert_eq!(route(Service::IotJobsData, "PUT", &s).unwrap().0.name, "StartNextPendingJobExecution");
        assert_eq!(route(Service::IotJobsData, "GET", &s).unwrap().0.name, "DescribeJobExecution");
    }

    #[test]
    fn every_operation_is_listed_once() {
        let mut names: Vec<_> = OPERATIONS.iter().map(|o| (o.service as u8, o.name)).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
        for op in OPERATIONS {
            assert!(op.path.starts_with('/'), "{}", op.name);
        }
    }
}
