//! Tests of the typed certificate, policy, endpoint and event-configuration operations, built
//! from their request types: each shows the success shape and a refused request that leaves
//! the state as it was.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::model::CertificateStatus;
use fleetjobs_core::ops::certificates::*;
use fleetjobs_core::ops::endpoint::*;
use fleetjobs_core::ops::event_configurations::*;
use fleetjobs_core::ops::policies::*;
use fleetjobs_core::ops::things::{CreateThingRequest, ThingPrincipalRequest};
use fleetjobs_core::{ApiError, ErrorCode};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::SqliteStore;

use crate::{DeviceCommand, Engine, EngineConfig, Outbox};

const T0: i64 = 1_700_000_000_000;
const DOCUMENT: &str = r#"{"Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}"#;

/// An engine on a fresh SQLite store, with a clock the test moves.
struct Harness {
    engine: Arc<Engine>,
    outbox: Outbox,
    clock: Arc<AtomicI64>,
    _dir: TempDir,
}

/// Removed with the test, whatever its outcome.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn harness() -> Harness {
    let dir = std::env::temp_dir().join(format!("fleetjobs-ops-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("db.sqlite")).unwrap());
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost:8883".into(),
        jobs_endpoint: "localhost:8443".into(),
        http_endpoint: "http://127.0.0.1:8080".into(),
    };
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let (engine, outbox) =
        Engine::open(config, store, ca, [7; 32], Arc::new(move || c.load(Ordering::SeqCst))).unwrap();
    Harness { engine, outbox, clock, _dir: TempDir(dir) }
}

impl Harness {
    fn tick(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    async fn cert(&self, active: bool) -> CreateKeysAndCertificateResponse {
        self.engine
            .create_keys_and_certificate(CreateKeysAndCertificateRequest { set_as_active: active })
            .await
            .unwrap()
    }

    async fn describe(&self, id: &str) -> Result<CertificateDescription, ApiError> {
        let r = DescribeCertificateRequest { certificate_id: id.into() };
        self.engine.describe_certificate(r).await.map(|d| d.certificate_description)
    }

    async fn set_status(&self, id: &str, status: &str) -> Result<(), ApiError> {
        let r = UpdateCertificateRequest { certificate_id: id.into(), new_status: status.into() };
        self.engine.update_certificate(r).await.map(drop)
    }

    async fn policy(&self, name: &str) {
        let r = CreatePolicyRequest { policy_name: name.into(), policy_document: DOCUMENT.into() };
        self.engine.create_policy(r).await.unwrap();
    }

    async fn attach(&self, policy: &str, target: &str) -> Result<(), ApiError> {
        let r = PolicyTargetRequest { policy_name: policy.into(), target: target.into() };
        self.engine.attach_policy(r).await.map(drop)
    }

    async fn targets(&self, policy: &str) -> Result<Vec<String>, ApiError> {
        let r = ListTargetsForPolicyRequest { policy_name: policy.into(), ..Default::default() };
        self.engine.list_targets_for_policy(r).await.map(|l| l.targets)
    }

    async fn attached(&self, target: &str) -> Result<Vec<String>, ApiError> {
        let r = ListAttachedPoliciesRequest { target: target.into(), ..Default::default() };
        let list = self.engine.list_attached_policies(r).await?;
        Ok(list.policies.into_iter().map(|p| p.policy_name).collect())
    }

    fn commands(&mut self) -> Vec<DeviceCommand> {
        std::iter::from_fn(|| self.outbox.try_recv().ok()).collect()
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ErrorCode {
    r.unwrap_err().code
}

// --- certificates -----------------------------------------------------------------------

#[tokio::test]
async fn create_keys_and_certificate_issues_a_key_pair_active_or_not() {
    let h = harness();
    let c = h.cert(true).await;
    assert_eq!(c.certificate_arn, format!("arn:aws:iot:us-east-1:123456789012:cert/{}", c.certificate_id));
    assert!(c.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(c.key_pair.private_key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "RSA-2048 in PKCS#1, as AWS");
    assert!(c.key_pair.public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(h.describe(&c.certificate_id).await.unwrap().status, CertificateStatus::Active);
    let inactive = h.cert(false).await;
    assert_eq!(h.describe(&inactive.certificate_id).await.unwrap().status, CertificateStatus::Inactive);
}

fn csr(common_name: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[tokio::test]
async fn create_certificate_from_csr_records_a_certificate_for_the_request() {
    let h = harness();
    let from_csr = |pem: String, set_as_active| {
        h.engine.create_certificate_from_csr(CreateCertificateFromCsrRequest {
            certificate_signing_request: pem,
            set_as_active,
        })
    };
    let c = from_csr(csr("sensor-1"), true).await.unwrap();
    assert_eq!(c.certificate_arn, format!("arn:aws:iot:us-east-1:123456789012:cert/{}", c.certificate_id));
    let d = h.describe(&c.certificate_id).await.unwrap();
    assert_eq!((d.status, d.certificate_pem), (CertificateStatus::Active, c.certificate_pem));
    let inactive = from_csr(csr("sensor-2"), false).await.unwrap();
    assert_eq!(h.describe(&inactive.certificate_id).await.unwrap().status, CertificateStatus::Inactive);

    // A bad request is the caller's error, and records nothing.
    let count = || h.engine.list_certificates(ListCertificatesRequest::default());
    let before = count().await.unwrap().certificates.len();
    let err = from_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(), true)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.starts_with("Invalid certificate signing request: "), "{}", err.message);
    assert_eq!(code(from_csr(String::new(), true).await), ErrorCode::InvalidRequest);
    assert_eq!(count().await.unwrap().certificates.len(), before);
}

#[tokio::test]
async fn describe_certificate_shows_its_validity() {
    let h = harness();
    let c = h.cert(true).await;
    let validity = h.describe(&c.certificate_id).await.unwrap().validity.expect("validity");
    let written = fleetjobs_pki::ForeignCertificate::from_pem(&c.certificate_pem).unwrap();
    assert_eq!(validity.not_before.0, written.not_before);
    assert_eq!(validity.not_after.0, 2_524_607_999_000); // 2049-12-31T23:59:59Z, as AWS's
}

#[tokio::test]
async fn describe_certificate_answers_by_id_in_either_case() {
    let h = harness();
    let c = h.cert(true).await;
    let d = h.describe(&c.certificate_id.to_uppercase()).await.unwrap();
    assert_eq!(
        (d.certificate_id.as_str(), d.certificate_pem.as_str()),
        (c.certificate_id.as_str(), c.certificate_pem.as_str())
    );
    assert_eq!((d.owned_by.as_str(), d.certificate_mode, d.customer_version), ("123456789012", "DEFAULT", 1));
    assert_eq!((d.creation_date.0, d.last_modified_date.0, d.generation_id), (T0, T0, T0.to_string()));

    let unknown = "0".repeat(64);
    let err = h.describe(&unknown).await.unwrap_err();
    assert_eq!(
        (err.code, err.message),
        (ErrorCode::ResourceNotFound, format!("The certificate {unknown} does not exist"))
    );
    assert_eq!(code(h.describe("not-hex").await), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn list_certificates_pages_newest_first_unless_ascending() {
    let h = harness();
    let first = h.cert(true).await;
    h.tick(1000);
    let second = h.cert(false).await;
    let list = |ascending_order, page_size, marker| {
        h.engine.list_certificates(ListCertificatesRequest { page_size, marker, ascending_order })
    };
    let page = list(false, Some(1), None).await.unwrap();
    assert_eq!(page.certificates[0].certificate_id, second.certificate_id);
    assert_eq!(page.certificates[0].status, CertificateStatus::Inactive);
    let rest = list(false, Some(1), page.next_marker).await.unwrap();
    assert_eq!((rest.certificates[0].certificate_id.as_str(), rest.next_marker), (first.certificate_id.as_str(), None));
    let ascending = list(true, None, None).await.unwrap();
    assert_eq!(ascending.certificates[0].certificate_id, first.certificate_id);
    assert_eq!(ascending.certificates[0].creation_date.0, T0);

    let err = list(false, Some(0), None).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::InvalidRequest, "pageSize must be between 1 and 250"));
    assert_eq!(code(list(false, None, Some("x".into())).await), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn update_certificate_disconnects_and_a_revoked_one_stays_revoked() {
    let mut h = harness();
    let c = h.cert(true).await;
    h.commands();
    h.tick(500);
    h.set_status(&c.certificate_id, "INACTIVE").await.unwrap();
    let d = h.describe(&c.certificate_id).await.unwrap();
    assert_eq!((d.status, d.last_modified_date.0, d.creation_date.0), (CertificateStatus::Inactive, T0 + 500, T0));
    assert_eq!(h.commands(), [DeviceCommand::DisconnectCertificate { certificate_id: c.certificate_id.clone() }]);

    h.set_status(&c.certificate_id, "ACTIVE").await.unwrap();
    assert!(h.commands().is_empty(), "activating disconnects nobody");
    h.set_status(&c.certificate_id, "REVOKED").await.unwrap();
    let err = h.set_status(&c.certificate_id, "ACTIVE").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CertificateState);
    assert_eq!(h.describe(&c.certificate_id).await.unwrap().status, CertificateStatus::Revoked);

    let err = h.set_status(&c.certificate_id, "PENDING_TRANSFER").await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::InvalidRequest, "Invalid value for newStatus: PENDING_TRANSFER")
    );
    assert_eq!(code(h.set_status(&"0".repeat(64), "ACTIVE").await), ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn delete_certificate_needs_it_inactive_and_detached() {
    let h = harness();
    let c = h.cert(true).await;
    let delete = |force_delete| {
        h.engine.delete_certificate(DeleteCertificateRequest { certificate_id: c.certificate_id.clone(), force_delete })
    };
    let err = delete(false).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::CertificateState, "Certificate must be deactivated before deletion.")
    );
    assert!(h.describe(&c.certificate_id).await.is_ok(), "an active certificate is kept");

    h.set_status(&c.certificate_id, "INACTIVE").await.unwrap();
    h.engine.create_thing(CreateThingRequest { thing_name: "pi".into(), ..Default::default() }).await.unwrap();
    let principal = ThingPrincipalRequest {
        thing_name: "pi".into(),
        principal: c.certificate_arn.clone(),
        thing_principal_type: None,
    };
    h.engine.attach_thing_principal(principal.clone()).await.unwrap();
    assert_eq!(code(delete(true).await), ErrorCode::DeleteConflict, "a thing holds it, even when forced");
    h.engine.detach_thing_principal(principal).await.unwrap();

    h.policy("p").await;
    h.attach("p", &c.certificate_arn).await.unwrap();
    assert_eq!(code(delete(false).await), ErrorCode::DeleteConflict);
    assert_eq!(h.targets("p").await.unwrap(), [c.certificate_arn.as_str()], "nothing detached by a refused delete");

    delete(true).await.unwrap();
    assert_eq!(code(h.describe(&c.certificate_id).await), ErrorCode::ResourceNotFound);
    assert!(h.targets("p").await.unwrap().is_empty(), "a forced delete detaches its policies");
    assert_eq!(code(delete(true).await), ErrorCode::ResourceNotFound);
}

// --- policies ---------------------------------------------------------------------------

#[tokio::test]
async fn create_policy_answers_its_version_and_refuses_duplicates_and_malformed_documents() {
    let h = harness();
    let r = CreatePolicyRequest { policy_name: "p".into(), policy_document: DOCUMENT.into() };
    let created = h.engine.create_policy(r.clone()).await.unwrap();
    assert_eq!(
        created,
        CreatePolicyResponse {
            policy_name: "p".into(),
            policy_arn: "arn:aws:iot:us-east-1:123456789012:policy/p".into(),
            policy_document: DOCUMENT.into(),
            policy_version_id: "1".into(),
        }
    );
    let err = h.engine.create_policy(r).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceAlreadyExists, "Policy p already exists"));

    let bad = CreatePolicyRequest { policy_name: "bad".into(), policy_document: "{}".into() };
    assert_eq!(code(h.engine.create_policy(bad).await), ErrorCode::MalformedPolicy);
    let get = GetPolicyRequest { policy_name: "bad".into() };
    assert_eq!(code(h.engine.get_policy(get).await), ErrorCode::ResourceNotFound, "nothing created");
}

#[tokio::test]
async fn get_policy_answers_the_document_and_its_dates() {
    let h = harness();
    h.policy("p").await;
    let p = h.engine.get_policy(GetPolicyRequest { policy_name: "p".into() }).await.unwrap();
    assert_eq!(
        (p.policy_name.as_str(), p.policy_document.as_str(), p.default_version_id.as_str()),
        ("p", DOCUMENT, "1")
    );
    assert_eq!((p.creation_date.0, p.last_modified_date.0, p.generation_id), (T0, T0, T0.to_string()));

    let err = h.engine.get_policy(GetPolicyRequest { policy_name: "q".into() }).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Policy q does not exist"));
    assert_eq!(
        code(h.engine.get_policy(GetPolicyRequest { policy_name: "a b".into() }).await),
        ErrorCode::InvalidRequest
    );
}

#[tokio::test]
async fn list_policies_pages_by_name() {
    let h = harness();
    for name in ["b", "a", "c"] {
        h.policy(name).await;
    }
    let names = |l: ListPoliciesResponse| l.policies.into_iter().map(|p| p.policy_name).collect::<Vec<_>>();
    let all = h.engine.list_policies(ListPoliciesRequest::default()).await.unwrap();
    assert_eq!(all.next_marker, None);
    assert_eq!(names(all), ["a", "b", "c"]);
    let r = ListPoliciesRequest { page_size: Some(2), ascending_order: Some(false), ..Default::default() };
    let page = h.engine.list_policies(r.clone()).await.unwrap();
    assert_eq!(page.next_marker.as_deref(), Some("2"));
    assert_eq!(names(page), ["c", "b"]);
    let rest = h.engine.list_policies(ListPoliciesRequest { marker: Some("2".into()), ..r.clone() }).await.unwrap();
    assert_eq!(names(rest), ["a"]);
    let bad = ListPoliciesRequest { marker: Some("two".into()), ..r };
    assert_eq!(code(h.engine.list_policies(bad).await), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn delete_policy_refuses_while_attached() {
    let h = harness();
    let c = h.cert(true).await;
    h.policy("p").await;
    h.attach("p", &c.certificate_arn).await.unwrap();
    let delete = || h.engine.delete_policy(DeletePolicyRequest { policy_name: "p".into() });
    let err = delete().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DeleteConflict);
    assert_eq!(
        err.message,
        "The policy cannot be deleted as the policy is attached to one or more principals (name=p)"
    );
    assert_eq!(h.targets("p").await.unwrap(), [c.certificate_arn.as_str()], "still there, still attached");

    let r = PolicyTargetRequest { policy_name: "p".into(), target: c.certificate_arn.clone() };
    h.engine.detach_policy(r).await.unwrap();
    delete().await.unwrap();
    assert_eq!(code(h.targets("p").await), ErrorCode::ResourceNotFound);
    assert_eq!(code(delete().await), ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn attach_and_detach_policy_need_a_known_policy_and_certificate() {
    let h = harness();
    let c = h.cert(true).await;
    let err = h.attach("p", &c.certificate_arn).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Policy p does not exist"));
    h.policy("p").await;
    assert!(h.targets("p").await.unwrap().is_empty(), "the refused attach attached nothing");

    let err = h.attach("p", "arn:aws:iot:us-east-1:123456789012:thing/pi").await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::InvalidRequest, "Invalid target: arn:aws:iot:us-east-1:123456789012:thing/pi")
    );
    let unknown = format!("arn:aws:iot:us-east-1:123456789012:cert/{}", "0".repeat(64));
    assert_eq!(code(h.attach("p", &unknown).await), ErrorCode::ResourceNotFound);

    h.attach("p", &c.certificate_arn).await.unwrap();
    h.attach("p", &c.certificate_arn).await.unwrap();
    assert_eq!(h.targets("p").await.unwrap(), [c.certificate_arn.as_str()], "attaching twice attaches once");
    let detach = |policy: &str| {
        h.engine.detach_policy(PolicyTargetRequest { policy_name: policy.into(), target: c.certificate_arn.clone() })
    };
    assert_eq!(code(detach("q").await), ErrorCode::ResourceNotFound);
    detach("p").await.unwrap();
    assert!(h.attached(&c.certificate_arn).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_attached_policies_answers_a_certificates_policies() {
    let h = harness();
    let c = h.cert(true).await;
    for name in ["a", "b"] {
        h.policy(name).await;
        h.attach(name, &c.certificate_arn).await.unwrap();
    }
    h.policy("unattached").await;
    assert_eq!(h.attached(&c.certificate_arn).await.unwrap(), ["a", "b"]);
    let r = ListAttachedPoliciesRequest { target: c.certificate_arn.clone(), page_size: Some(1), ..Default::default() };
    let page = h.engine.list_attached_policies(r).await.unwrap();
    assert_eq!((page.policies.len(), page.next_marker.as_deref()), (1, Some("1")));
    assert_eq!(page.policies[0].policy_arn, "arn:aws:iot:us-east-1:123456789012:policy/a");

    assert_eq!(code(h.attached("not-an-arn").await), ErrorCode::InvalidRequest);
    let unknown = format!("arn:aws:iot:us-east-1:123456789012:cert/{}", "0".repeat(64));
    assert_eq!(code(h.attached(&unknown).await), ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn list_targets_for_policy_answers_its_certificates() {
    let h = harness();
    let (c1, c2) = (h.cert(true).await, h.cert(false).await);
    h.policy("p").await;
    h.attach("p", &c1.certificate_arn).await.unwrap();
    h.attach("p", &c2.certificate_arn).await.unwrap();
    let mut expected = vec![c1.certificate_arn.clone(), c2.certificate_arn.clone()];
    expected.sort();
    assert_eq!(h.targets("p").await.unwrap(), expected);
    let r = ListTargetsForPolicyRequest { policy_name: "p".into(), marker: Some("1".into()), page_size: Some(1) };
    let page = h.engine.list_targets_for_policy(r).await.unwrap();
    assert_eq!((page.targets, page.next_marker), (vec![expected[1].clone()], None));

    let err = h.targets("q").await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::ResourceNotFound, "Policy q does not exist"));
}

// --- endpoint and event configurations ---------------------------------------------------

#[tokio::test]
async fn describe_endpoint_answers_the_configured_listeners() {
    let h = harness();
    let ask =
        |t: Option<&str>| h.engine.describe_endpoint(DescribeEndpointRequest { endpoint_type: t.map(str::to_string) });
    assert_eq!(ask(None).await.unwrap().endpoint_address, "localhost:8883");
    assert_eq!(ask(Some("iot:Data-ATS")).await.unwrap().endpoint_address, "localhost:8883");
    assert_eq!(ask(Some("iot:Jobs")).await.unwrap().endpoint_address, "localhost:8443");
    assert_eq!(ask(Some("iot:CredentialProvider")).await.unwrap().endpoint_address, "http://127.0.0.1:8080");
    let err = ask(Some("iot:Nothing")).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::InvalidRequest, "Endpoint type iot:Nothing is not valid.")
    );
}

#[tokio::test]
async fn event_configurations_switch_by_type_and_refuse_unknown_types() {
    let h = harness();
    let describe = || h.engine.describe_event_configurations(DescribeEventConfigurationsRequest {});
    let before = describe().await.unwrap();
    assert_eq!(before.event_configurations.len(), 11, "every event type is listed");
    assert_eq!(before.event_configurations["JOB"].enabled, Some(true));
    assert_eq!(before.creation_date.0, T0);

    h.tick(1000);
    let update = |configs: &[(&str, Option<bool>)]| UpdateEventConfigurationsRequest {
        event_configurations: Some(
            configs.iter().map(|(t, e)| (t.to_string(), Configuration { enabled: *e })).collect(),
        ),
    };
    h.engine.update_event_configurations(update(&[("JOB", Some(false)), ("THING", None)])).await.unwrap();
    let after = describe().await.unwrap();
    assert_eq!(after.event_configurations["JOB"].enabled, Some(false));
    assert_eq!(after.event_configurations["THING"], before.event_configurations["THING"], "no Enabled, no change");
    assert_eq!((after.creation_date.0, after.last_modified_date.0), (T0, T0 + 1000));

    h.tick(1000);
    let err = h.engine.update_event_configurations(update(&[("JOB", Some(true)), ("NOPE", Some(true))])).await;
    let err = err.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::InvalidRequest, "Invalid event type: NOPE"));
    assert_eq!(describe().await.unwrap(), after, "a refused update changes nothing");
}
