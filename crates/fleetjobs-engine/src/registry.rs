//! Registry operations: things, certificates, policies, thing principals, DescribeEndpoint
//! and event configurations.

use std::collections::BTreeMap;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::execution;
use fleetjobs_core::model::{Certificate, CertificateStatus, EventConfigurations, Policy, Thing};
use fleetjobs_core::policy::PolicyDocument;
use fleetjobs_core::validate;
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use serde_json::{json, Value};

use crate::input::Input;
use crate::wire::{page, ts};
use crate::Engine;

fn thing_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Thing {name} cannot be found."))
}

fn attributes(input: &Input) -> ApiResult<Option<(BTreeMap<String, String>, bool)>> {
    let Some(payload) = input.object("attributePayload")? else { return Ok(None) };
    let payload = Input(payload.clone());
    let merge = payload.flag("merge")?;
    let mut out = BTreeMap::new();
    if let Some(attrs) = payload.object("attributes")? {
        for (k, v) in attrs {
            let v = v.as_str().ok_or_else(|| ApiError::invalid("Attribute values must be strings"))?;
            // An empty value deletes the key when merging (UpdateThing).
            if !(merge && v.is_empty()) {
                validate::attribute(k, v)?;
            }
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(Some((out, merge)))
}

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
    // --- things ---------------------------------------------------------------------------

    pub async fn create_thing(&self, input: Input) -> ApiResult<Value> {
        let name = input.thing_name()?.to_string();
        let type_name = input.str("thingTypeName")?.map(str::to_string);
        let billing = input.str("billingGroupName")?.map(str::to_string);
        if let Some(t) = &type_name {
            return Err(ApiError::not_found(format!("Thing type {t} does not exist")));
        }
        if let Some(b) = &billing {
            return Err(ApiError::not_found(format!("Billing group {b} does not exist")));
        }
        let attrs = attributes(&input)?.map(|(a, _)| a).unwrap_or_default();
        if attrs.len() > 3 {
            return Err(ApiError::invalid("A thing without a thing type can have at most 3 attributes"));
        }
        self.write(|txn| {
            if let Some(existing) = txn.s.things.get(&name) {
                if existing.attributes == attrs && existing.thing_type_name == type_name {
                    return Ok(
                        json!({"thingName": name, "thingArn": existing.thing_arn, "thingId": existing.thing_id}),
                    );
                }
                return Err(ApiError::already_exists(
                    format!("Thing {name} already exists in account with different attributes"),
                    &existing.thing_id,
                    &existing.thing_arn,
                ));
            }
            let thing = Thing {
                thing_arn: txn.scope.arn(ResourceKind::Thing, &name),
                thing_id: uuid::Uuid::new_v4().to_string(),
                thing_name: name.clone(),
                thing_type_name: None,
                billing_group_name: None,
                attributes: attrs,
                version: 1,
                created_at: txn.now,
            };
            let out = json!({"thingName": thing.thing_name, "thingArn": thing.thing_arn, "thingId": thing.thing_id});
            txn.put_thing(thing);
            Ok(out)
        })
        .await
    }

    pub async fn describe_thing(&self, input: Input) -> ApiResult<Value> {
        let name = input.thing_name()?;
        self.read(|s| {
            let t = s.things.get(name).ok_or_else(|| thing_not_found(name))?;
            let mut out = json!({
                "defaultClientId": t.thing_name,
                "thingName": t.thing_name,
                "thingId": t.thing_id,
                "thingArn": t.thing_arn,
                "attributes": t.attributes,
                "version": t.version,
            });
            if let Some(tt) = &t.thing_type_name {
                out["thingTypeName"] = json!(tt);
            }
            Ok(out)
        })
        .await
    }

    pub async fn list_things(&self, input: Input) -> ApiResult<Value> {
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        let attr_name = input.str("attributeName")?;
        let attr_value = input.str("attributeValue")?;
        let prefix = input.flag("usePrefixAttributeValue")?;
        let type_name = input.str("thingTypeName")?;
        self.read(|s| {
            let items: Vec<Value> = s
                .things
                .values()
                .filter(|t| type_name.is_none_or(|tn| t.thing_type_name.as_deref() == Some(tn)))
                .filter(|t| match (attr_name, attr_value) {
                    (Some(n), Some(v)) => t.attributes.get(n).is_some_and(|a| if prefix { a.starts_with(v) } else { a == v }),
                    (Some(n), None) => t.attributes.contains_key(n),
                    _ => true,
                })
                .map(|t| json!({"thingName": t.thing_name, "thingArn": t.thing_arn, "attributes": t.attributes, "version": t.version}))
                .collect();
            let (things, next) = page(items, token, max, 50).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "things": things }), "nextToken", next))
        })
        .await
    }

    pub async fn update_thing(&self, input: Input) -> ApiResult<Value> {
        let name = input.thing_name()?.to_string();
        if let Some(t) = input.str("thingTypeName")? {
            return Err(ApiError::not_found(format!("Thing type {t} does not exist")));
        }
        let attrs = attributes(&input)?;
        let expected = input.i64("expectedVersion")?;
        self.write(|txn| {
            let mut t = txn.s.things.get(&name).cloned().ok_or_else(|| thing_not_found(&name))?;
            if expected.is_some_and(|v| v != t.version) {
                return Err(ApiError::new(
                    ErrorCode::VersionConflict,
                    format!("The version for thing {name} does not match the expected version."),
                ));
            }
            if let Some((attrs, merge)) = attrs {
                if merge {
                    for (k, v) in attrs {
                        if v.is_empty() {
                            t.attributes.remove(&k);
                        } else {
                            t.attributes.insert(k, v);
                        }
                    }
                } else {
                    t.attributes = attrs;
                }
                if t.attributes.len() > 3 {
                    return Err(ApiError::invalid("A thing without a thing type can have at most 3 attributes"));
                }
            }
            if input.flag("removeThingType")? {
                t.thing_type_name = None;
            }
            t.version += 1;
            txn.put_thing(t);
            Ok(json!({}))
        })
        .await
    }

    pub async fn delete_thing(&self, input: Input) -> ApiResult<Value> {
        let name = input.thing_name()?.to_string();
        let expected = input.i64("expectedVersion")?;
        self.write(|txn| {
            let Some(t) = txn.s.things.get(&name) else { return Ok(json!({})) };
            if expected.is_some_and(|v| v != t.version) {
                return Err(ApiError::new(
                    ErrorCode::VersionConflict,
                    format!("The version for thing {name} does not match the expected version."),
                ));
            }
            if txn.s.principals_of_thing(&name).next().is_some() {
                return Err(ApiError::invalid(format!(
                    "Cannot delete thing {name}. Please detach all principals from the thing before deleting it."
                )));
            }
            let pending: Vec<_> = txn.s.executions_of_thing(&name).filter(|e| e.is_pending()).cloned().collect();
            for mut e in pending {
                execution::remove(&mut e, txn.now);
                txn.put_execution(e);
            }
            txn.delete_thing(&name);
            Ok(json!({}))
        })
        .await
    }

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

    // --- thing principals -----------------------------------------------------------------

    pub async fn attach_thing_principal(&self, input: Input) -> ApiResult<Value> {
        self.thing_principal(input, true).await
    }

    pub async fn detach_thing_principal(&self, input: Input) -> ApiResult<Value> {
        self.thing_principal(input, false).await
    }

    async fn thing_principal(&self, input: Input, attach: bool) -> ApiResult<Value> {
        let thing = input.thing_name()?.to_string();
        let principal = input.req_str("principal")?.to_string();
        self.write(|txn| {
            if !txn.s.things.contains_key(&thing) {
                return Err(thing_not_found(&thing));
            }
            self.check_target(txn.s, &principal)?;
            if attach {
                txn.attach_principal(&thing, &principal);
            } else {
                txn.detach_principal(&thing, &principal);
            }
            Ok(json!({}))
        })
        .await
    }

    pub async fn list_thing_principals(&self, input: Input) -> ApiResult<Value> {
        let thing = input.thing_name()?;
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(ApiError::not_found(format!(
                    "Failed to list principals for thing {thing} because the thing does not exist in your account"
                )));
            }
            let items: Vec<Value> = s.principals_of_thing(thing).map(|p| json!(p)).collect();
            let (principals, next) = page(items, token, max, 25).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "principals": principals }), "nextToken", next))
        })
        .await
    }

    pub async fn list_principal_things(&self, input: Input) -> ApiResult<Value> {
        let principal = input.req_str("principal")?;
        let max = input.max_results("maxResults")?;
        let token = input.str("nextToken")?;
        self.read(|s| {
            self.check_target(s, principal)?;
            let items: Vec<Value> = s.things_of_principal(principal).map(|t| json!(t)).collect();
            let (things, next) = page(items, token, max, 25).map_err(ApiError::invalid)?;
            Ok(with_token(json!({ "things": things }), "nextToken", next))
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
