//! Policy versions and the principal listings, built from request types: the five-version
//! limit, the default's rules, devices judged by the new default at once, and restarts.

use fleetjobs_core::ops::certificates::{CreateKeysAndCertificateRequest, CreateKeysAndCertificateResponse};
use fleetjobs_core::ops::policies::*;
use fleetjobs_core::ops::things::*;
use fleetjobs_core::policy::IotAction;
use fleetjobs_core::ErrorCode;
use serde_json::json;

use crate::tests::{harness, pem_to_der, while_state_locked, Harness};

fn document(effect: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": effect, "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/telemetry"}]})
    .to_string()
}

fn version(name: &str, id: &str) -> PolicyVersionRequest {
    PolicyVersionRequest { policy_name: name.into(), policy_version_id: id.into() }
}

fn new_version(name: &str, effect: &str, set_as_default: bool) -> CreatePolicyVersionRequest {
    CreatePolicyVersionRequest {
        policy_name: name.into(),
        policy_document: document(effect),
        set_as_default: Some(set_as_default),
    }
}

async fn create(h: &Harness, name: &str) {
    let r = CreatePolicyRequest { policy_name: name.into(), policy_document: document("Allow") };
    assert_eq!(h.engine.create_policy(r).await.unwrap().policy_version_id, "1");
}

/// Thing `pi` and an ACTIVE certificate with policy `p` (version 1: Connect, Publish on
/// `telemetry`) attached; the attachment, to detach.
async fn attached_device(h: &Harness) -> (CreateKeysAndCertificateResponse, PrincipalPolicyRequest) {
    h.thing("pi").await;
    let created = h.engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await;
    let created = created.unwrap();
    create(h, "p").await;
    let attach = PrincipalPolicyRequest { policy_name: "p".into(), principal: created.certificate_arn.clone() };
    h.engine.attach_principal_policy(attach.clone()).await.unwrap();
    (created, attach)
}

async fn ids(h: &Harness, name: &str) -> Vec<(String, bool)> {
    let r = ListPolicyVersionsRequest { policy_name: name.into() };
    let out = h.engine.list_policy_versions(r).await.unwrap();
    out.policy_versions.into_iter().map(|v| (v.version_id, v.is_default_version)).collect()
}

async fn default_id(h: &Harness, name: &str) -> String {
    h.engine.get_policy(GetPolicyRequest { policy_name: name.into() }).await.unwrap().default_version_id
}

#[tokio::test]
async fn versions_are_created_listed_limited_and_deleted_as_aws_does() {
    let h = harness();
    create(&h, "p").await;
    assert_eq!(ids(&h, "p").await, [("1".to_string(), true)]);
    let v2 = h.engine.create_policy_version(new_version("p", "Deny", false)).await.unwrap();
    assert_eq!((v2.policy_version_id.as_str(), v2.is_default_version), ("2", false));
    assert_eq!(default_id(&h, "p").await, "1");
    for id in ["3", "4", "5"] {
        let v = h.engine.create_policy_version(new_version("p", "Allow", false)).await.unwrap();
        assert_eq!(v.policy_version_id, id);
    }
    let err = h.engine.create_policy_version(new_version("p", "Allow", true)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::VersionsLimitExceeded);
    assert_eq!(ids(&h, "p").await.len(), 5, "the refused version changed nothing");

    let bad = CreatePolicyVersionRequest { policy_name: "p".into(), policy_document: "{".into(), set_as_default: None };
    assert_eq!(h.engine.create_policy_version(bad).await.unwrap_err().code, ErrorCode::MalformedPolicy);
    let missing = h.engine.create_policy_version(new_version("nope", "Allow", false)).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);

    // The default goes only with the policy; the policy only once the others are gone.
    let err = h.engine.delete_policy_version(version("p", "1")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DeleteConflict);
    let err = h.engine.delete_policy(DeletePolicyRequest { policy_name: "p".into() }).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DeleteConflict);
    h.engine.delete_policy_version(version("p", "3")).await.unwrap();
    let err = h.engine.delete_policy_version(version("p", "3")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.get_policy_version(version("p", "3")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let next = h.engine.create_policy_version(new_version("p", "Allow", false)).await.unwrap();
    assert_eq!(next.policy_version_id, "6", "ids are never reused");

    h.engine.set_default_policy_version(version("p", "2")).await.unwrap();
    assert_eq!(default_id(&h, "p").await, "2");
    let got = h.engine.get_policy(GetPolicyRequest { policy_name: "p".into() }).await.unwrap();
    assert_eq!(got.policy_document, document("Deny"), "GetPolicy shows the default's document");
    let v1 = h.engine.get_policy_version(version("p", "1")).await.unwrap();
    assert!(!v1.is_default_version);
    assert_eq!(v1.policy_document, document("Allow"));
    let err = h.engine.set_default_policy_version(version("p", "9")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.get_policy_version(version("p", "x")).await.unwrap_err().code, ErrorCode::InvalidRequest);

    for id in ["1", "4", "5", "6"] {
        h.engine.delete_policy_version(version("p", id)).await.unwrap();
    }
    h.engine.delete_policy(DeletePolicyRequest { policy_name: "p".into() }).await.unwrap();
}

#[tokio::test]
async fn versions_and_the_default_survive_a_restart() {
    let h = harness();
    create(&h, "p").await;
    h.engine.create_policy_version(new_version("p", "Deny", true)).await.unwrap();
    h.engine.create_policy_version(new_version("p", "Allow", false)).await.unwrap();
    h.engine.delete_policy_version(version("p", "1")).await.unwrap();
    let h = h.reopen();
    assert_eq!(ids(&h, "p").await, [("2".to_string(), true), ("3".to_string(), false)]);
    assert_eq!(default_id(&h, "p").await, "2");
    let v = h.engine.create_policy_version(new_version("p", "Allow", false)).await.unwrap();
    assert_eq!(v.policy_version_id, "4");
}

#[tokio::test]
async fn a_device_is_judged_by_the_new_default_at_once() {
    let h = harness();
    let (created, attach) = attached_device(&h).await;
    let arn = created.certificate_arn.clone();
    let session = h.engine.authenticate_device(Some(&pem_to_der(&created.certificate_pem)), "pi").unwrap();
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "telemetry"));

    h.engine.create_policy_version(new_version("p", "Deny", false)).await.unwrap();
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "telemetry"), "not the default yet");
    h.engine.set_default_policy_version(version("p", "2")).await.unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "telemetry"));
    let h = h.reopen();
    let session = h.engine.authenticate_device(Some(&pem_to_der(&created.certificate_pem)), "pi").unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "telemetry"), "the default is durable");
    h.engine.set_default_policy_version(version("p", "1")).await.unwrap();
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "telemetry"));

    // The deprecated listings see the attachment from both sides.
    let r = ListPrincipalPoliciesRequest { principal: arn.clone(), ..Default::default() };
    let names: Vec<String> =
        h.engine.list_principal_policies(r).await.unwrap().policies.into_iter().map(|p| p.policy_name).collect();
    assert_eq!(names, ["p"]);
    let r = ListPolicyPrincipalsRequest { policy_name: "p".into(), ..Default::default() };
    assert_eq!(h.engine.list_policy_principals(r).await.unwrap().principals, vec![arn.clone()]);
    let r = ListPolicyPrincipalsRequest { policy_name: "nope".into(), ..Default::default() };
    assert_eq!(h.engine.list_policy_principals(r).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    h.engine.detach_principal_policy(attach).await.unwrap();
    let r = ListPolicyPrincipalsRequest { policy_name: "p".into(), ..Default::default() };
    assert!(h.engine.list_policy_principals(r).await.unwrap().principals.is_empty());
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "telemetry"), "detached: no policy, no access");
    let bad = PrincipalPolicyRequest { policy_name: "p".into(), principal: "arn:aws:iot:::cert/nope".into() };
    assert_eq!(h.engine.attach_principal_policy(bad).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn v2_listings_say_how_each_principal_is_attached_and_exclusive_means_one_thing() {
    let h = harness();
    for t in ["a", "b"] {
        h.thing(t).await;
    }
    let mut certs = vec![];
    for _ in 0..2 {
        let created = h.engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true });
        certs.push(created.await.unwrap().certificate_arn);
    }
    let (only, shared) = (&certs[0], &certs[1]);
    let attach = |thing: &str, principal: &str, kind: Option<&str>| ThingPrincipalRequest {
        thing_name: thing.into(),
        principal: principal.into(),
        thing_principal_type: kind.map(str::to_string),
    };
    let exclusive = Some("EXCLUSIVE_THING");
    h.engine.attach_thing_principal(attach("a", only, exclusive)).await.unwrap();
    let err = h.engine.attach_thing_principal(attach("b", only, None)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "a holds the principal exclusively");
    h.engine.attach_thing_principal(attach("a", shared, None)).await.unwrap();
    h.engine.attach_thing_principal(attach("b", shared, None)).await.unwrap();
    let err = h.engine.attach_thing_principal(attach("a", shared, exclusive)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "b shares the principal");

    let things = |principal: &str, kind: Option<&str>| ListPrincipalThingsV2Request {
        principal: principal.into(),
        thing_principal_type: kind.map(str::to_string),
        ..Default::default()
    };
    let objects = h.engine.list_principal_things_v2(things(only, None)).await.unwrap().principal_thing_objects;
    assert_eq!(
        objects,
        [PrincipalThingObject { thing_name: "a".into(), thing_principal_type: "EXCLUSIVE_THING".into() }]
    );
    let filtered = h.engine.list_principal_things_v2(things(shared, exclusive)).await.unwrap();
    assert!(filtered.principal_thing_objects.is_empty());
    assert_eq!(
        h.engine.list_principal_things_v2(things(shared, Some("SOMETIMES"))).await.unwrap_err().code,
        ErrorCode::InvalidRequest
    );

    let h = h.reopen();
    let r = ListThingPrincipalsV2Request { thing_name: "a".into(), ..Default::default() };
    let mut objects: Vec<(String, String)> = h
        .engine
        .list_thing_principals_v2(r)
        .await
        .unwrap()
        .thing_principal_objects
        .into_iter()
        .map(|o| (o.principal, o.thing_principal_type))
        .collect();
    objects.sort();
    let mut expected =
        vec![(only.clone(), "EXCLUSIVE_THING".to_string()), (shared.clone(), "NON_EXCLUSIVE_THING".to_string())];
    expected.sort();
    assert_eq!(objects, expected, "the types survive a restart");
    let r = ListThingPrincipalsV2Request { thing_name: "ghost".into(), ..Default::default() };
    assert_eq!(h.engine.list_thing_principals_v2(r).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    // Detached, the principal is free again.
    let detach = ThingPrincipalRequest { thing_name: "a".into(), principal: only.clone(), thing_principal_type: None };
    h.engine.detach_thing_principal(detach).await.unwrap();
    h.engine.attach_thing_principal(attach("b", only, None)).await.unwrap();
}

/// A connection's Publish and Receive decisions are remembered while nothing they rest on
/// changes: job traffic keeps them (they answer even while another thread holds the state
/// lock), a registry change drops them at the next packet.
#[tokio::test]
async fn remembered_decisions_last_until_a_registry_change() {
    use fleetjobs_core::ops::certificates::UpdateCertificateRequest;
    let h = harness();
    let (created, _) = attached_device(&h).await;
    let session = h.engine.authenticate_device(Some(&pem_to_der(&created.certificate_pem)), "pi").unwrap();
    let session = std::sync::Arc::new(session);
    assert!(h.engine.authorize_device(&session, IotAction::Publish, "telemetry"));
    assert!(!h.engine.authorize_device(&session, IotAction::Receive, "telemetry"), "a denial is remembered too");
    h.job("j", &["pi"]).await.unwrap();

    let remembered = session.clone();
    let answer = while_state_locked(&h.engine, move |engine| {
        let publish = engine.authorize_device(&remembered, IotAction::Publish, "telemetry");
        (publish, engine.authorize_device(&remembered, IotAction::Receive, "telemetry"))
    });
    assert_eq!(answer.expect("a remembered decision waited for the state lock"), (true, false));

    let r = UpdateCertificateRequest { certificate_id: created.certificate_id.clone(), new_status: "INACTIVE".into() };
    h.engine.update_certificate(r).await.unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, "telemetry"), "deactivated: refused at once");
}

/// A connection's Jobs API checks read its grant (certificate admitted, thing attached,
/// policies) from what it remembers: they answer while another thread holds the state lock,
/// and each registry change they rest on (the thing's attachment, the policy's) is in force
/// at the next check.
#[tokio::test]
async fn jobs_topic_checks_use_the_connection_grant_until_a_registry_change() {
    let h = harness();
    h.thing("pi").await;
    let created = h.engine.create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: true }).await;
    let created = created.unwrap();
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"}]});
    let r = CreatePolicyRequest { policy_name: "jobs".into(), policy_document: document.to_string() };
    h.engine.create_policy(r).await.unwrap();
    let policy = PrincipalPolicyRequest { policy_name: "jobs".into(), principal: created.certificate_arn.clone() };
    h.engine.attach_principal_policy(policy.clone()).await.unwrap();
    let thing = || ThingPrincipalRequest {
        thing_name: "pi".into(),
        principal: created.certificate_arn.clone(),
        thing_principal_type: None,
    };
    h.engine.attach_thing_principal(thing()).await.unwrap();
    let session = h.engine.authenticate_device(Some(&pem_to_der(&created.certificate_pem)), "pi").unwrap();
    let session = std::sync::Arc::new(session);
    let get = "$aws/things/pi/jobs/get";
    assert!(h.engine.authorize_device(&session, IotAction::Publish, get));

    let remembered = session.clone();
    let answer = while_state_locked(&h.engine, move |engine| {
        let update = engine.authorize_device(&remembered, IotAction::Publish, "$aws/things/pi/jobs/j1/update");
        let other = engine.authorize_device(&remembered, IotAction::Receive, "$aws/things/pi2/jobs/notify-next");
        (update, other)
    });
    assert_eq!(answer.expect("a Jobs API check waited for the state lock"), (true, false));

    h.engine.detach_thing_principal(thing()).await.unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, get), "no thing: the variable has no value");
    h.engine.attach_thing_principal(thing()).await.unwrap();
    assert!(h.engine.authorize_device(&session, IotAction::Publish, get), "attached again");
    h.engine.detach_principal_policy(policy).await.unwrap();
    assert!(!h.engine.authorize_device(&session, IotAction::Publish, get), "the policy detached: refused at once");
}
