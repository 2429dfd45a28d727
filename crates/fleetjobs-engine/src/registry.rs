//! Registry operations: things, certificates, policies, thing principals, DescribeEndpoint
//! and event configurations.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{Certificate, CertificateStatus, EventConfigurations, Policy};
use fleetjobs_core::policy::PolicyDocument;
use fleetjobs_core::validate;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use serde_json::{json, Value};

use crate::input::Input;
use crate::wire::{page, ts};
use crate::Engine;

fn cert_summary(c: &Certificate) -> Value {
    json!({
        "certificateArn": c.certificate_arn,
        "certificateId": c.certificate_id,
        "status": c.status.as_str(),
        "certificateMode": "DEFAULT",
        "creationDate": ts(c.created_at),
    })
}

impl Engine {
    // --- certificates ---------------------------------------------------------------------

    pub async fn create_keys_and_certificate(&self, input: Input) -> ApiResult<Value> {
        let active = input.flag("setAsActive")?;
        let issued =
            self.ca.issue_device_cert().map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))?;
        self.write(|txn| {
            let cert = Certificate {
                certificate_arn: txn.scope.arn(ResourceKind::Cert, &issued.certificate_id),
                certificate_id: issued.certificate_id.clone(),
                certificate_pem: issued.cert_pem.clone(),
                status: if active { CertificateStatus::Active } else { CertificateStatus::Inactive },
                created_at: txn.now,
                last_modified_at: txn.now,
            };
            let out = json!({
                "certificateArn": cert.certificate_arn,
                "certificateId": cert.certificate_id,
                "certificatePem": cert.certificate_pem,
                "keyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem},
            });
            txn.put_certificate(cert);
            Ok(out)
        })
        .await
    }

    fn certificate_id(input: &Input) -> ApiResult<String> {
        let id = input.req_str("certificateId")?;
        validate::certificate_id(id)?;
        Ok(id.to_lowercase())
    }

    pub async fn describe_certificate(&self, input: Input) -> ApiResult<Value> {
        let id = Self::certificate_id(&input)?;
        self.read(|s| {
            let c = s
                .certificates
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))?;
            Ok(json!({"certificateDescription": {
                "certificateArn": c.certificate_arn,
                "certificateId": c.certificate_id,
                "status": c.status.as_str(),
                "certificatePem": c.certificate_pem,
                "ownedBy": self.config.scope.account_id,
                "creationDate": ts(c.created_at),
                "lastModifiedDate": ts(c.last_modified_at),
                "customerVersion": 1,
                "transferData": {},
                "generationId": c.last_modified_at.to_string(),
                "certificateMode": "DEFAULT",
            }}))
        })
        .await
    }

    pub async fn list_certificates(&self, input: Input) -> ApiResult<Value> {
        let size = input.i64("pageSize")?;
        if let Some(n) = size {
            if !(1..=250).contains(&n) {
                return Err(ApiError::invalid("pageSize must be between 1 and 250"));
            }
        }
        let marker = input.str("marker")?;
        let ascending = input.flag("ascendingOrder")?;
        self.read(|s| {
            let mut certs: Vec<&Certificate> = s.certificates.values().collect();
            certs.sort_by_key(|c| (c.created_at, c.certificate_id.clone()));
            if !ascending {
                certs.reverse();
            }
            let items: Vec<Value> = certs.into_iter().map(cert_summary).collect();
            let (certificates, next) = page(items, marker, size, 25).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "certificates": certificates }), "nextMarker", next))
        })
        .await
    }

    pub async fn update_certificate(&self, input: Input) -> ApiResult<Value> {
        let id = Self::certificate_id(&input)?;
        let status = input.req_str("newStatus")?;
        let status = match CertificateStatus::parse(status) {
            Some(s @ (CertificateStatus::Active | CertificateStatus::Inactive | CertificateStatus::Revoked)) => s,
            _ => return Err(ApiError::invalid(format!("Invalid value for newStatus: {status}"))),
        };
        self.write(|txn| {
            let mut c = txn
                .s
                .certificates
                .get(&id)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))?;
            if c.status == CertificateStatus::Revoked && status != CertificateStatus::Revoked {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    "A revoked certificate cannot change its status",
                ));
            }
            c.status = status;
            c.last_modified_at = txn.now;
            txn.put_certificate(c);
            if status != CertificateStatus::Active {
                txn.disconnect_certificate(&id);
            }
            Ok(json!({}))
        })
        .await
    }

    pub async fn delete_certificate(&self, input: Input) -> ApiResult<Value> {
        let id = Self::certificate_id(&input)?;
        let force = input.flag("forceDelete")?;
        self.write(|txn| {
            let c = txn
                .s
                .certificates
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))?;
            if c.status == CertificateStatus::Active {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    "Certificate must be deactivated before deletion.",
                ));
            }
            let arn = c.certificate_arn.clone();
            if txn.s.things_of_principal(&arn).next().is_some() {
                return Err(ApiError::new(ErrorCode::DeleteConflict, "Things are still attached to the certificate."));
            }
            let policies: Vec<String> = txn.s.policies_of_target(&arn).map(|(p, _)| p.policy_name.clone()).collect();
            if !policies.is_empty() && !force {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    "Policies are still attached to the certificate.",
                ));
            }
            for p in policies {
                txn.detach_policy(&p, &arn);
            }
            txn.delete_certificate(&id);
            Ok(json!({}))
        })
        .await
    }

    // --- policies -------------------------------------------------------------------------

    pub async fn create_policy(&self, input: Input) -> ApiResult<Value> {
        let name = input.req_str("policyName")?.to_string();
        validate::policy_name(&name)?;
        let document = input.req_str("policyDocument")?.to_string();
        let parsed =
            PolicyDocument::parse(&document).map_err(|e| ApiError::new(ErrorCode::MalformedPolicy, e.to_string()))?;
        self.write(|txn| {
            let arn = txn.scope.arn(ResourceKind::Policy, &name);
            if txn.s.policies.contains_key(&name) {
                return Err(ApiError::already_exists(format!("Policy {name} already exists"), &name, &arn));
            }
            let out = json!({"policyName": name, "policyArn": arn, "policyDocument": document, "policyVersionId": "1"});
            let policy = Policy {
                policy_name: name.clone(),
                policy_arn: arn,
                policy_document: document,
                created_at: txn.now,
                last_modified_at: txn.now,
            };
            txn.put_policy(policy, parsed);
            Ok(out)
        })
        .await
    }

    pub async fn get_policy(&self, input: Input) -> ApiResult<Value> {
        let name = input.req_str("policyName")?;
        validate::policy_name(name)?;
        self.read(|s| {
            let (p, _) =
                s.policies.get(name).ok_or_else(|| ApiError::not_found(format!("Policy {name} does not exist")))?;
            Ok(json!({
                "policyName": p.policy_name,
                "policyArn": p.policy_arn,
                "policyDocument": p.policy_document,
                "defaultVersionId": "1",
                "creationDate": ts(p.created_at),
                "lastModifiedDate": ts(p.last_modified_at),
                "generationId": p.last_modified_at.to_string(),
            }))
        })
        .await
    }

    pub async fn list_policies(&self, input: Input) -> ApiResult<Value> {
        let size = input.i64("pageSize")?;
        let marker = input.str("marker")?;
        let ascending = input.bool("ascendingOrder")?.unwrap_or(true);
        self.read(|s| {
            let mut items: Vec<Value> = s
                .policies
                .values()
                .map(|(p, _)| json!({"policyName": p.policy_name, "policyArn": p.policy_arn}))
                .collect();
            if !ascending {
                items.reverse();
            }
            let (policies, next) = page(items, marker, size, 250).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "policies": policies }), "nextMarker", next))
        })
        .await
    }

    pub async fn delete_policy(&self, input: Input) -> ApiResult<Value> {
        let name = input.req_str("policyName")?.to_string();
        validate::policy_name(&name)?;
        self.write(|txn| {
            if !txn.s.policies.contains_key(&name) {
                return Err(ApiError::not_found(format!("Policy {name} does not exist")));
            }
            if txn.s.policy_targets.iter().any(|(_, p)| *p == name) {
                return Err(ApiError::new(ErrorCode::DeleteConflict, format!("The policy cannot be deleted as the policy is attached to one or more principals (name={name})")));
            }
            txn.delete_policy(&name);
            Ok(json!({}))
        })
        .await
    }

    /// A policy target: a certificate ARN this server issued.
    fn check_target(&self, s: &crate::state::State, target: &str) -> ApiResult<()> {
        match self.config.scope.parse(target, ResourceKind::Cert) {
            Some(id) if s.certificates.contains_key(id) => Ok(()),
            Some(id) => Err(ApiError::not_found(format!("The certificate {id} does not exist"))),
            None => Err(ApiError::invalid(format!("Invalid target: {target}"))),
        }
    }

    pub async fn attach_policy(&self, input: Input) -> ApiResult<Value> {
        self.policy_attachment(input, true).await
    }

    pub async fn detach_policy(&self, input: Input) -> ApiResult<Value> {
        self.policy_attachment(input, false).await
    }

    async fn policy_attachment(&self, input: Input, attach: bool) -> ApiResult<Value> {
        let name = input.req_str("policyName")?.to_string();
        let target = input.req_str("target")?.to_string();
        self.write(|txn| {
            if !txn.s.policies.contains_key(&name) {
                return Err(ApiError::not_found(format!("Policy {name} does not exist")));
            }
            self.check_target(txn.s, &target)?;
            if attach {
                txn.attach_policy(&name, &target);
            } else {
                txn.detach_policy(&name, &target);
            }
            Ok(json!({}))
        })
        .await
    }

    pub async fn list_attached_policies(&self, input: Input) -> ApiResult<Value> {
        let target = input.req_str("target")?;
        let size = input.i64("pageSize")?;
        let marker = input.str("marker")?;
        self.read(|s| {
            self.check_target(s, target)?;
            let items: Vec<Value> = s
                .policies_of_target(target)
                .map(|(p, _)| json!({"policyName": p.policy_name, "policyArn": p.policy_arn}))
                .collect();
            let (policies, next) = page(items, marker, size, 250).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "policies": policies }), "nextMarker", next))
        })
        .await
    }

    pub async fn list_targets_for_policy(&self, input: Input) -> ApiResult<Value> {
        let name = input.req_str("policyName")?;
        let size = input.i64("pageSize")?;
        let marker = input.str("marker")?;
        self.read(|s| {
            if !s.policies.contains_key(name) {
                return Err(ApiError::not_found(format!("Policy {name} does not exist")));
            }
            let items: Vec<Value> = s.policy_targets.iter().filter(|(_, p)| p == name).map(|(t, _)| json!(t)).collect();
            let (targets, next) = page(items, marker, size, 250).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "targets": targets }), "nextMarker", next))
        })
        .await
    }

    // --- endpoint and events --------------------------------------------------------------

    pub async fn describe_endpoint(&self, input: Input) -> ApiResult<Value> {
        let address = match input.str("endpointType")?.unwrap_or("iot:Data") {
            "iot:Data" | "iot:Data-ATS" => &self.config.mqtt_endpoint,
            "iot:Jobs" | "iot:CredentialProvider" => &self.config.http_endpoint,
            other => return Err(ApiError::invalid(format!("Endpoint type {other} is not valid."))),
        };
        Ok(json!({ "endpointAddress": address }))
    }

    pub async fn update_event_configurations(&self, input: Input) -> ApiResult<Value> {
        let updates = input.object("eventConfigurations")?.cloned().unwrap_or_default();
        let mut parsed = Vec::new();
        for (key, v) in &updates {
            if !EventConfigurations::EVENT_TYPES.contains(&key.as_str()) {
                return Err(ApiError::invalid(format!("Invalid event type: {key}")));
            }
            let enabled = Input(
                v.as_object()
                    .cloned()
                    .ok_or_else(|| ApiError::invalid("Each event configuration must be an object"))?,
            )
            .bool("Enabled")?;
            if let Some(e) = enabled {
                parsed.push((key.clone(), e));
            }
        }
        self.write(|txn| {
            let mut c = txn.s.event_configurations().clone();
            for (k, e) in parsed {
                c.enabled.insert(k, e);
            }
            c.last_modified_at = txn.now;
            txn.put_event_configurations(c);
            Ok(json!({}))
        })
        .await
    }

    pub async fn describe_event_configurations(&self, _input: Input) -> ApiResult<Value> {
        self.read(|s| {
            let c = s.event_configurations();
            let configs: serde_json::Map<String, Value> = c.enabled.iter().map(|(k, v)| (k.clone(), json!({"Enabled": v}))).collect();
            Ok(json!({"eventConfigurations": configs, "creationDate": ts(c.created_at), "lastModifiedDate": ts(c.last_modified_at)}))
        })
        .await
    }
}

/// Add a pagination token member when there is a next page.
pub(crate) fn with_token(mut out: Value, member: &str, next: Option<String>) -> Value {
    if let Some(t) = next {
        out[member] = json!(t);
    }
    out
}
