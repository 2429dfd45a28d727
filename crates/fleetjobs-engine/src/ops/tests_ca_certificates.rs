//! Unit tests of bring-your-own-CA: the registration code, registering a CA (proof of its key,
//! the code, refusals), describing, listing, updating and deleting it; device certificates
//! registered under it or without a CA; devices let in while their certificate and its CA are
//! ACTIVE; and persistence.

use fleetjobs_core::model::{AutoRegistrationStatus, CaCertificateStatus, CertificateMode, CertificateStatus};
use fleetjobs_core::model::{RegistrationConfig, Tag};
use fleetjobs_core::ops::ca_certificates::*;
use fleetjobs_core::ops::certificates::*;
use fleetjobs_core::ops::policies::{CreatePolicyRequest, PolicyTargetRequest};
use fleetjobs_core::ops::tags::ListTagsForResourceRequest;
use fleetjobs_core::{ApiError, ErrorCode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::tests::{harness, Harness};
use crate::DeviceAuthError;

/// A CA of one's own, as a customer would make it (rcgen's default validity: 1975 to 4096).
struct OwnCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn own_ca(cn: &str) -> OwnCa {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    OwnCa { pem: cert.pem(), issuer: Issuer::new(p, key) }
}

/// A self-signed end-entity certificate (PEM, DER).
fn self_signed(cn: &str) -> (String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

impl OwnCa {
    /// An end-entity certificate signed by this CA (PEM, DER).
    fn sign(&self, cn: &str) -> (String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), cert.der().to_vec())
    }
}

async fn code(h: &Harness) -> String {
    h.engine.get_registration_code(GetRegistrationCodeRequest {}).await.unwrap().registration_code
}

fn register(ca: &OwnCa, verification: Option<String>) -> RegisterCaCertificateRequest {
    RegisterCaCertificateRequest {
        ca_certificate: ca.pem.clone(),
        verification_certificate: verification,
        set_as_active: true,
        ..Default::default()
    }
}

/// Registers `ca` ACTIVE with a proper verification certificate; returns its id.
async fn register_active(h: &Harness, ca: &OwnCa) -> String {
    let verification = ca.sign(&code(h).await).0;
    h.engine.register_ca_certificate(register(ca, Some(verification))).await.unwrap().certificate_id
}

async fn describe_ca(h: &Harness, id: &str) -> Result<DescribeCaCertificateResponse, ApiError> {
    h.engine.describe_ca_certificate(DescribeCaCertificateRequest { certificate_id: id.into() }).await
}

async fn set_ca_status(h: &Harness, id: &str, status: &str) -> Result<(), ApiError> {
    let r =
        UpdateCaCertificateRequest { certificate_id: id.into(), new_status: Some(status.into()), ..Default::default() };
    h.engine.update_ca_certificate(r).await.map(drop)
}

fn register_device(pem: &str, ca_pem: Option<&str>) -> RegisterCertificateRequest {
    RegisterCertificateRequest {
        certificate_pem: pem.into(),
        ca_certificate_pem: ca_pem.map(Into::into),
        set_as_active: Some(true),
        status: None,
    }
}

/// A policy that allows every connect, attached to `certificate_arn`.
async fn allow_connect(h: &Harness, certificate_arn: &str) {
    let document = r#"{"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}"#;
    let name = format!("p{}", &certificate_arn[certificate_arn.len() - 8..]);
    let r = CreatePolicyRequest { policy_name: name.clone(), policy_document: document.into() };
    h.engine.create_policy(r).await.unwrap();
    let r = PolicyTargetRequest { policy_name: name, target: certificate_arn.into() };
    h.engine.attach_policy(r).await.unwrap();
}

fn err_code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ErrorCode {
    r.unwrap_err().code
}

#[tokio::test]
async fn a_ca_proven_with_the_registration_code_is_registered_described_and_survives_a_restart() {
    let h = harness();
    let first = code(&h).await;
    assert_eq!(first.len(), 64);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(code(&h).await, first, "one code per account");

    let ca = own_ca("My Root CA");
    let verification = ca.sign(&first).0;
    let mut r = register(&ca, Some(verification));
    r.set_as_active = false;
    r.allow_auto_registration = true;
    r.registration_config = Some(RegistrationConfig { template_name: Some("tpl".into()), ..Default::default() });
    r.tags = Some(vec![Tag { key: "team".into(), value: Some("fleet".into()) }]);
    let out = h.engine.register_ca_certificate(r).await.unwrap();
    assert_eq!(out.certificate_arn, format!("arn:aws:iot:us-east-1:123456789012:cacert/{}", out.certificate_id));

    let d = describe_ca(&h, &out.certificate_id.to_uppercase()).await.unwrap();
    let c = &d.certificate_description;
    assert_eq!((c.status, c.certificate_mode), (CaCertificateStatus::Inactive, CertificateMode::Default));
    assert_eq!(c.auto_registration_status, AutoRegistrationStatus::Enable);
    assert_eq!(
        (c.owned_by.as_str(), c.customer_version, c.certificate_pem.as_str()),
        ("123456789012", 1, ca.pem.as_str())
    );
    assert!(c.validity.not_before.0 < c.validity.not_after.0);
    assert_eq!(d.registration_config.as_ref().unwrap().template_name.as_deref(), Some("tpl"));
    let tags = ListTagsForResourceRequest { resource_arn: out.certificate_arn.clone(), next_token: None };
    assert_eq!(h.engine.list_tags_for_resource(tags.clone()).await.unwrap().tags.len(), 1);

    let h = h.reopen();
    assert_eq!(code(&h).await, first, "the code survives a restart");
    assert_eq!(describe_ca(&h, &out.certificate_id).await.unwrap(), d);
    let list = h.engine.list_ca_certificates(ListCaCertificatesRequest::default()).await.unwrap();
    assert_eq!(list.certificates.len(), 1);
    assert_eq!(list.certificates[0].certificate_id, out.certificate_id);
    let none = ListCaCertificatesRequest { template_name: Some("other".into()), ..Default::default() };
    assert!(h.engine.list_ca_certificates(none).await.unwrap().certificates.is_empty());
}

#[tokio::test]
async fn registration_refuses_wrong_codes_foreign_keys_non_cas_garbage_and_duplicates() {
    let h = harness();
    let ca = own_ca("Root");
    let other = own_ca("Root");
    // No code was ever asked for: nothing can match it.
    let e = h.engine.register_ca_certificate(register(&ca, Some(ca.sign("whatever").0))).await;
    assert_eq!(err_code(e), ErrorCode::RegistrationCodeValidation);
    let good = code(&h).await;
    let e = h.engine.register_ca_certificate(register(&ca, Some(ca.sign("0123").0))).await;
    assert_eq!(err_code(e), ErrorCode::RegistrationCodeValidation);
    // The right code, signed by another key.
    let e = h.engine.register_ca_certificate(register(&ca, Some(other.sign(&good).0))).await;
    assert_eq!(err_code(e), ErrorCode::CertificateValidation);
    // Not a CA.
    let leaf = OwnCa { pem: ca.sign("leaf").0, issuer: own_ca("x").issuer };
    let e = h.engine.register_ca_certificate(register(&leaf, Some(ca.sign(&good).0))).await;
    assert_eq!(err_code(e), ErrorCode::CertificateValidation);
    let garbage = OwnCa {
        pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        issuer: own_ca("y").issuer,
    };
    let e = h.engine.register_ca_certificate(register(&garbage, Some(ca.sign(&good).0))).await;
    assert_eq!(err_code(e), ErrorCode::CertificateValidation);
    // DEFAULT mode needs the proof; SNI_ONLY does not.
    assert_eq!(err_code(h.engine.register_ca_certificate(register(&ca, None)).await), ErrorCode::InvalidRequest);
    let list = h.engine.list_ca_certificates(ListCaCertificatesRequest::default()).await.unwrap();
    assert!(list.certificates.is_empty(), "nothing refused was kept");

    let mut sni = register(&other, None);
    sni.certificate_mode = Some("SNI_ONLY".into());
    let id = h.engine.register_ca_certificate(sni).await.unwrap().certificate_id;
    let d = describe_ca(&h, &id).await.unwrap().certificate_description;
    assert_eq!((d.certificate_mode, d.status), (CertificateMode::SniOnly, CaCertificateStatus::Active));

    register_active(&h, &ca).await;
    let e = h.engine.register_ca_certificate(register(&ca, Some(ca.sign(&good).0))).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceAlreadyExists);
    assert!(e.resource_arn.is_some_and(|a| a.contains(":cacert/")));
    assert_eq!(err_code(describe_ca(&h, &"0".repeat(64)).await), ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn device_certificates_register_under_an_active_ca_and_connect_while_both_are_active() {
    let mut h = harness();
    let ca = own_ca("Devices CA");
    let ca_id = register_active(&h, &ca).await;
    let (pem, der) = ca.sign("device-1");

    // Named CA, or found among the registered ones.
    let out = h.engine.register_certificate(register_device(&pem, Some(&ca.pem))).await.unwrap();
    h.tick(1);
    let (pem2, _) = ca.sign("device-2");
    let out2 = h.engine.register_certificate(register_device(&pem2, None)).await.unwrap();
    let e = h.engine.register_certificate(register_device(&pem, Some(&ca.pem))).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceAlreadyExists);

    let d = h.engine.describe_certificate(DescribeCertificateRequest { certificate_id: out.certificate_id.clone() });
    let d = d.await.unwrap().certificate_description;
    assert_eq!((d.ca_certificate_id.as_deref(), d.status), (Some(ca_id.as_str()), CertificateStatus::Active));
    assert!(d.validity.is_some());
    let by_ca =
        ListCertificatesByCaRequest { ca_certificate_id: ca_id.clone(), ascending_order: true, ..Default::default() };
    let listed = h.engine.list_certificates_by_ca(by_ca.clone()).await.unwrap().certificates;
    let ids: Vec<&str> = listed.iter().map(|c| c.certificate_id.as_str()).collect();
    assert_eq!(ids, [out.certificate_id.as_str(), out2.certificate_id.as_str()]);

    // Unregistered CA, a certificate its CA did not sign.
    let stranger = own_ca("Stranger");
    let (spem, _) = stranger.sign("x");
    assert_eq!(
        err_code(h.engine.register_certificate(register_device(&spem, None)).await),
        ErrorCode::CertificateValidation
    );
    let e = h.engine.register_certificate(register_device(&spem, Some(&stranger.pem))).await;
    assert_eq!(err_code(e), ErrorCode::CertificateValidation);
    let e = h.engine.register_certificate(register_device(&spem, Some(&ca.pem))).await;
    assert_eq!(err_code(e), ErrorCode::CertificateValidation);

    allow_connect(&h, &out.certificate_arn).await;
    h.engine.authenticate_device(Some(&der), "device-1").unwrap();
    h.disconnects();

    // The CA goes INACTIVE: its devices are refused and the live ones disconnected.
    set_ca_status(&h, &ca_id, "INACTIVE").await.unwrap();
    let e = h.engine.authenticate_device(Some(&der), "device-1").unwrap_err();
    assert!(matches!(e, DeviceAuthError::CaNotActive { .. }), "{e:?}");
    let mut gone = h.disconnects();
    gone.sort();
    let mut expected = vec![out.certificate_id.clone(), out2.certificate_id.clone()];
    expected.sort();
    assert_eq!(gone, expected);
    let d = describe_ca(&h, &ca_id).await.unwrap().certificate_description;
    assert_eq!((d.status, d.customer_version), (CaCertificateStatus::Inactive, 2));
    // No new registrations under an INACTIVE CA.
    let (pem3, _) = ca.sign("device-3");
    assert_eq!(
        err_code(h.engine.register_certificate(register_device(&pem3, None)).await),
        ErrorCode::CertificateState
    );

    // Back ACTIVE: in again; and the whole thing survives a restart.
    set_ca_status(&h, &ca_id, "ACTIVE").await.unwrap();
    let h = h.reopen();
    h.engine.authenticate_device(Some(&der), "device-1").unwrap();
    assert_eq!(h.engine.list_certificates_by_ca(by_ca).await.unwrap().certificates.len(), 2);
    // An unknown certificate, even one signed by the registered CA, is not let in.
    let (_, unregistered) = ca.sign("device-4");
    let e = h.engine.authenticate_device(Some(&unregistered), "device-4").unwrap_err();
    assert!(matches!(e, DeviceAuthError::UnknownCertificate(_)), "{e:?}");
}

#[tokio::test]
async fn certificates_without_a_ca_connect_while_active() {
    let h = harness();
    let (pem, der) = self_signed("lonely");
    let r = RegisterCertificateWithoutCaRequest { certificate_pem: pem.clone(), status: Some("ACTIVE".into()) };
    let out = h.engine.register_certificate_without_ca(r.clone()).await.unwrap();
    assert_eq!(err_code(h.engine.register_certificate_without_ca(r).await), ErrorCode::ResourceAlreadyExists);
    let d = h.engine.describe_certificate(DescribeCertificateRequest { certificate_id: out.certificate_id.clone() });
    let d = d.await.unwrap().certificate_description;
    assert_eq!((d.certificate_mode, d.ca_certificate_id), ("SNI_ONLY", None));
    allow_connect(&h, &out.certificate_arn).await;
    h.engine.authenticate_device(Some(&der), "lonely").unwrap();
    let r = UpdateCertificateRequest { certificate_id: out.certificate_id.clone(), new_status: "REVOKED".into() };
    h.engine.update_certificate(r).await.unwrap();
    assert!(matches!(h.engine.authenticate_device(Some(&der), "lonely"), Err(DeviceAuthError::NotActive(_))));
    let bad = RegisterCertificateWithoutCaRequest { certificate_pem: "nope".into(), status: None };
    assert_eq!(err_code(h.engine.register_certificate_without_ca(bad).await), ErrorCode::CertificateValidation);
}

#[tokio::test]
async fn a_ca_is_deleted_only_inactive_and_without_certificates() {
    let h = harness();
    let ca = own_ca("Short-lived CA");
    let ca_id = register_active(&h, &ca).await;
    let (pem, _) = ca.sign("d");
    let device = h.engine.register_certificate(register_device(&pem, None)).await.unwrap();
    let delete = || DeleteCaCertificateRequest { certificate_id: ca_id.clone() };
    assert_eq!(err_code(h.engine.delete_ca_certificate(delete()).await), ErrorCode::CertificateState);
    set_ca_status(&h, &ca_id, "INACTIVE").await.unwrap();
    assert_eq!(err_code(h.engine.delete_ca_certificate(delete()).await), ErrorCode::CertificateState);
    let r = UpdateCertificateRequest { certificate_id: device.certificate_id.clone(), new_status: "INACTIVE".into() };
    h.engine.update_certificate(r).await.unwrap();
    let r = DeleteCertificateRequest { certificate_id: device.certificate_id.clone(), force_delete: false };
    h.engine.delete_certificate(r).await.unwrap();
    h.engine.delete_ca_certificate(delete()).await.unwrap();
    assert_eq!(err_code(describe_ca(&h, &ca_id).await), ErrorCode::ResourceNotFound);
    assert_eq!(err_code(h.engine.delete_ca_certificate(delete()).await), ErrorCode::ResourceNotFound);
    assert_eq!(err_code(set_ca_status(&h, &ca_id, "ACTIVE").await), ErrorCode::ResourceNotFound);
    let h = h.reopen();
    assert_eq!(err_code(describe_ca(&h, &ca_id).await), ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn a_deleted_registration_code_is_replaced_by_a_new_one_and_survives_a_restart() {
    let h = harness();
    let refused = h.engine.delete_registration_code(DeleteRegistrationCodeRequest {}).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::ResourceNotFound, "nothing to delete before the first code");
    let first = code(&h).await;
    h.engine.delete_registration_code(DeleteRegistrationCodeRequest {}).await.unwrap();
    let h = h.reopen();
    let second = code(&h).await;
    assert_ne!(first, second);
    assert_eq!(second, code(&h.reopen()).await);
}

#[tokio::test]
async fn a_ca_with_auto_registration_registers_its_devices_at_their_first_connect() {
    let mut h = harness();
    let ca = own_ca("Auto Root");
    let verification = ca.sign(&code(&h).await).0;
    let mut r = register(&ca, Some(verification));
    r.allow_auto_registration = true;
    let ca_id = h.engine.register_ca_certificate(r).await.unwrap().certificate_id;
    let _ = h.published();
    assert!(h.engine.registers_at_connect());

    // The first connect is refused (the certificate is unknown) and registers it, pending.
    let (pem, der) = ca.sign("auto-device-1");
    let e = h.engine.authenticate_device(Some(&der), "auto-device-1").unwrap_err();
    assert!(matches!(e, DeviceAuthError::UnknownCertificate(_)), "{e:?}");
    let out = h.engine.register_certificate_at_connect(&der).await.unwrap().expect("registered");
    let d = h
        .engine
        .describe_certificate(DescribeCertificateRequest { certificate_id: out.certificate_id.clone() })
        .await
        .unwrap()
        .certificate_description;
    assert_eq!(d.status, CertificateStatus::PendingActivation);
    assert_eq!(d.ca_certificate_id.as_deref(), Some(ca_id.as_str()));
    assert_eq!(fleetjobs_pki::ForeignCertificate::from_pem(&d.certificate_pem).unwrap().der, der);
    assert_eq!(
        fleetjobs_pki::ForeignCertificate::from_pem(&pem).unwrap().certificate_id,
        out.certificate_id,
        "the id of the device's own PEM"
    );
    // Announced as AWS announces it.
    let published = h.published();
    let (topic, event) = published.iter().find(|(t, _)| t.starts_with("$aws/events/certificates")).unwrap();
    assert_eq!(topic, &format!("$aws/events/certificates/registered/{ca_id}"));
    assert_eq!(event["certificateId"], out.certificate_id.as_str());
    assert_eq!(event["caCertificateId"], ca_id.as_str());
    assert_eq!(
        (event["certificateStatus"].as_str(), event["awsAccountId"].as_str()),
        (Some("PENDING_ACTIVATION"), Some("123456789012"))
    );
    assert!(event["timestamp"].as_i64().is_some() && event["certificateRegistrationTimestamp"].as_i64().is_some());

    // Pending: still refused, and not registered twice.
    let e = h.engine.authenticate_device(Some(&der), "auto-device-1").unwrap_err();
    assert!(matches!(e, DeviceAuthError::NotActive(_)), "{e:?}");
    assert_eq!(h.engine.register_certificate_at_connect(&der).await.unwrap(), None);
    // Once activated (by the operator, or a rule's function), the certificate is in.
    let activate = UpdateCertificateRequest { certificate_id: out.certificate_id.clone(), new_status: "ACTIVE".into() };
    h.engine.update_certificate(activate).await.unwrap();
    let e = h.engine.authenticate_device(Some(&der), "auto-device-1").unwrap_err();
    assert!(matches!(e, DeviceAuthError::ConnectDenied(_)), "active, and only its policies refuse: {e:?}");

    // Nothing for certificates no auto-registering CA signed, nor once the CA stops it.
    let (_, stranger) = self_signed("stranger");
    assert_eq!(h.engine.register_certificate_at_connect(&stranger).await.unwrap(), None);
    let off = UpdateCaCertificateRequest {
        certificate_id: ca_id.clone(),
        new_auto_registration_status: Some("DISABLE".into()),
        ..Default::default()
    };
    h.engine.update_ca_certificate(off).await.unwrap();
    assert!(!h.engine.registers_at_connect(), "a refused connect then starts nothing");
    let (_, second) = ca.sign("auto-device-2");
    assert_eq!(h.engine.register_certificate_at_connect(&second).await.unwrap(), None);
    assert_eq!(
        h.engine.register_certificate_at_connect(b"not a certificate").await.map_err(|e| e.code).unwrap_err(),
        ErrorCode::CertificateValidation
    );
}
