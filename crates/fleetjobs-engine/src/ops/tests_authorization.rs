//! Unit tests of GetEffectivePolicies and TestAuthorization: the policies a certificate's
//! evaluation uses, and the decision on each action with each policy's part in it.

use fleetjobs_core::ops::authorization::*;
use fleetjobs_core::ops::certificates::CreateKeysAndCertificateRequest;
use fleetjobs_core::ops::policies::*;
use fleetjobs_core::ErrorCode;
use serde_json::json;

use crate::tests::harness;

const PREFIX: &str = "arn:aws:iot:us-east-1:123456789012";

fn names(p: &Policies) -> Vec<&str> {
    p.policies.iter().map(|p| p.policy_name.as_str()).collect()
}

fn info(action: ActionType, resource: &str) -> AuthInfo {
    AuthInfo { action_type: Some(action), resources: vec![format!("{PREFIX}:{resource}")] }
}

#[tokio::test]
async fn a_certificates_policies_are_effective_and_judge_each_action() {
    let h = harness();
    let cert = h.engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await;
    let cert = cert.unwrap().certificate_arn;
    for (name, statements) in [
        ("connect", json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}])),
        (
            "jobs",
            json!([{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:ClientId}/jobs/*"}]),
        ),
        ("no-secret", json!([{"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/secret"}])),
        ("extra", json!([{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}])),
    ] {
        let document = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        h.engine
            .create_policy(CreatePolicyRequest { policy_name: name.into(), policy_document: document })
            .await
            .unwrap();
    }
    for name in ["connect", "jobs", "no-secret"] {
        let r = PolicyTargetRequest { policy_name: name.into(), target: cert.clone() };
        h.engine.attach_policy(r).await.unwrap();
    }

    let effective = GetEffectivePoliciesRequest { principal: Some(cert.clone()), ..Default::default() };
    let effective = h.engine.get_effective_policies(effective).await.unwrap().effective_policies;
    let mut listed: Vec<_> = effective.iter().map(|p| p.policy_name.as_str()).collect();
    listed.sort();
    assert_eq!(listed, ["connect", "jobs", "no-secret"]);
    assert!(effective.iter().all(|p| p.policy_document.contains("Statement")));
    let unknown = GetEffectivePoliciesRequest { principal: Some(format!("{PREFIX}:cert/00")), ..Default::default() };
    assert_eq!(h.engine.get_effective_policies(unknown).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    let r = TestAuthorizationRequest {
        principal: Some(cert.clone()),
        client_id: Some("pi".into()),
        auth_infos: vec![
            info(ActionType::Publish, "topic/$aws/things/pi/jobs/get"),
            info(ActionType::Publish, "topic/secret"),
            info(ActionType::Subscribe, "topicfilter/anything"),
        ],
        ..Default::default()
    };
    let results = h.engine.test_authorization(r.clone()).await.unwrap().auth_results;
    assert_eq!(results[0].auth_decision, AuthDecision::Allowed);
    assert_eq!(names(&results[0].allowed), ["jobs"], "${{iot:ClientId}} is the clientId asked about");
    assert_eq!(results[1].auth_decision, AuthDecision::ExplicitDeny);
    assert_eq!(names(&results[1].denied.explicit_deny), ["no-secret"]);
    assert_eq!(results[2].auth_decision, AuthDecision::ImplicitDeny);
    assert!(results[2].allowed.policies.is_empty());

    // Policies to add and to skip change the answer, not the attachments.
    let what_if = TestAuthorizationRequest {
        policy_names_to_add: vec!["extra".into()],
        policy_names_to_skip: vec!["no-secret".into()],
        ..r.clone()
    };
    let results = h.engine.test_authorization(what_if).await.unwrap().auth_results;
    assert_eq!(results[1].auth_decision, AuthDecision::Allowed);
    assert_eq!(names(&results[1].allowed), ["extra"]);
    let missing = TestAuthorizationRequest { policy_names_to_add: vec!["nope".into()], ..r };
    assert_eq!(h.engine.test_authorization(missing).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}
