//! CA certificates (bring your own PKI): GetRegistrationCode, DeleteRegistrationCode, RegisterCACertificate,
//! DescribeCACertificate, ListCACertificates, UpdateCACertificate, DeleteCACertificate,
//! ListCertificatesByCA; and RegisterCertificate / RegisterCertificateWithoutCA, which admit
//! device certificates made elsewhere.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{
    AutoRegistrationStatus, CaCertificate, CaCertificateStatus, Certificate, CertificateMode, CertificateStatus,
};
use fleetjobs_core::ops::ca_certificates::*;
use fleetjobs_core::ops::certificates::{
    CertificateValidity, RegisterCertificateRequest, RegisterCertificateResponse, RegisterCertificateWithoutCaRequest,
    RegisterCertificateWithoutCaResponse,
};
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode, Millis};
use fleetjobs_pki::ForeignCertificate;
use rand::Rng;

use super::certificates::summary;
use crate::state::Txn;
use crate::Engine;

/// CA certificates are keyed by their id in lowercase hex, as certificates are.
fn key(certificate_id: &str) -> String {
    certificate_id.to_lowercase()
}

fn ca_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("The CA certificate {id} does not exist"))
}

fn invalid_certificate(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::CertificateValidation, message)
}

/// Reads a PEM the caller sent as `member`: a malformed one, or one outside its validity at
/// `now`, is a `CertificateValidationException`.
fn read_pem(pem: &str, member: &str, now: Millis) -> ApiResult<ForeignCertificate> {
    let cert = ForeignCertificate::from_pem(pem).map_err(|e| invalid_certificate(format!("{member}: {e}")))?;
    if !cert.valid_at(now) {
        return Err(invalid_certificate(format!("{member}: the certificate is expired or not yet valid")));
    }
    Ok(cert)
}

/// A fresh registration code: 64 lowercase hex digits, as AWS's.
fn new_registration_code() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a device certificate that is already registered (or issued here).
fn check_not_registered(txn: &Txn<'_>, id: &str) -> ApiResult<()> {
    match txn.s.certificates.get(id) {
        Some(c) => Err(ApiError::already_exists("The certificate is already registered", id, &c.certificate_arn)),
        None => Ok(()),
    }
}

/// A CA that registers the unknown certificates it signed at their devices' first connect.
fn auto_registers(c: &CaCertificate) -> bool {
    c.status == CaCertificateStatus::Active && c.auto_registration_status == AutoRegistrationStatus::Enable
}

/// The id of the CA among `cas` (id, PEM) whose key verifies `cert`. Signatures are checked
/// by the caller outside the state lock.
fn signer_of(cert: &ForeignCertificate, cas: Vec<(String, String)>) -> Option<String> {
    cas.into_iter()
        .find(|(_, pem)| ForeignCertificate::from_pem(pem).is_ok_and(|ca| cert.is_signed_by(&ca)))
        .map(|(id, _)| id)
}

impl Engine {
    pub async fn get_registration_code(&self, r: GetRegistrationCodeRequest) -> ApiResult<GetRegistrationCodeResponse> {
        r.check(self.now())?;
        if let Some(registration_code) = self.read(|s| Ok::<_, ApiError>(s.registration_code.clone())).await? {
            return Ok(GetRegistrationCodeResponse { registration_code });
        }
        // The first call makes it; it is stored so that it stays the same across restarts.
        let fresh = new_registration_code();
        self.write(|txn| {
            let registration_code = match &txn.s.registration_code {
                Some(code) => code.clone(),
                None => {
                    txn.set_registration_code(fresh.clone());
                    fresh
                }
            };
            Ok(GetRegistrationCodeResponse { registration_code })
        })
        .await
    }

    /// AWS lists `ResourceNotFoundException` for it: there is no code to delete before the first
    /// GetRegistrationCode (or after a delete).
    pub async fn delete_registration_code(&self, r: DeleteRegistrationCodeRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            if txn.s.registration_code.is_none() {
                return Err(ApiError::new(ErrorCode::ResourceNotFound, "There is no registration code to delete"));
            }
            txn.clear_registration_code();
            Ok(Empty {})
        })
        .await
    }

    pub async fn register_ca_certificate(
        &self,
        r: RegisterCaCertificateRequest,
    ) -> ApiResult<RegisterCaCertificateResponse> {
        let now = self.now();
        r.check(now)?;
        let mode = r.mode()?;
        // Parsing and signature checks happen before the state lock.
        let ca = read_pem(&r.ca_certificate, "caCertificate", now)?;
        if !ca.is_ca {
            return Err(invalid_certificate("caCertificate: the certificate is not a CA certificate"));
        }
        let verification = r
            .verification_certificate
            .as_deref()
            .map(|pem| read_pem(pem, "verificationCertificate", now))
            .transpose()?;
        if let Some(v) = &verification {
            if !v.is_signed_by(&ca) {
                return Err(invalid_certificate(
                    "verificationCertificate: the certificate is not signed by the CA certificate's key",
                ));
            }
        }
        self.write(|txn| {
            if let Some(v) = &verification {
                let code = txn.s.registration_code.as_deref();
                if code.is_none() || v.common_name.as_deref() != code {
                    return Err(ApiError::new(
                        ErrorCode::RegistrationCodeValidation,
                        "The verification certificate's common name is not this account's registration code \
                         (GetRegistrationCode)",
                    ));
                }
            }
            if let Some(existing) = txn.s.ca_certificates.get(&ca.certificate_id) {
                return Err(ApiError::already_exists(
                    "The CA certificate is already registered",
                    &ca.certificate_id,
                    &existing.certificate_arn,
                ));
            }
            if txn.s.ca_certificates.len() >= MAX_CA_CERTIFICATES {
                return Err(ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("At most {MAX_CA_CERTIFICATES} CA certificates can be registered"),
                ));
            }
            let c = CaCertificate {
                certificate_arn: txn.scope.arn(ResourceKind::CaCert, &ca.certificate_id),
                certificate_id: ca.certificate_id.clone(),
                certificate_pem: r.ca_certificate.clone(),
                status: if r.set_as_active { CaCertificateStatus::Active } else { CaCertificateStatus::Inactive },
                certificate_mode: mode,
                auto_registration_status: if r.allow_auto_registration {
                    AutoRegistrationStatus::Enable
                } else {
                    AutoRegistrationStatus::Disable
                },
                registration_config: r.registration_config.clone(),
                tags: r.tags.clone().filter(|t| !t.is_empty()),
                not_before: ca.not_before,
                not_after: ca.not_after,
                created_at: txn.now,
                last_modified_at: txn.now,
                customer_version: 1,
            };
            let out = RegisterCaCertificateResponse {
                certificate_arn: c.certificate_arn.clone(),
                certificate_id: c.certificate_id.clone(),
            };
            txn.put_ca_certificate(c);
            Ok(out)
        })
        .await
    }

    pub async fn describe_ca_certificate(
        &self,
        r: DescribeCaCertificateRequest,
    ) -> ApiResult<DescribeCaCertificateResponse> {
        r.check(self.now())?;
        let id = key(&r.certificate_id);
        self.read(|s| {
            let c = s.ca_certificates.get(&id).ok_or_else(|| ca_not_found(&id))?;
            Ok(DescribeCaCertificateResponse {
                certificate_description: CaCertificateDescription {
                    certificate_arn: c.certificate_arn.clone(),
                    certificate_id: c.certificate_id.clone(),
                    status: c.status,
                    certificate_pem: c.certificate_pem.clone(),
                    owned_by: self.config.scope.account_id.clone(),
                    creation_date: c.created_at.into(),
                    auto_registration_status: c.auto_registration_status,
                    last_modified_date: c.last_modified_at.into(),
                    customer_version: c.customer_version,
                    generation_id: c.last_modified_at.to_string(),
                    validity: CertificateValidity { not_before: c.not_before.into(), not_after: c.not_after.into() },
                    certificate_mode: c.certificate_mode,
                },
                registration_config: c.registration_config.clone(),
            })
        })
        .await
    }

    pub async fn list_ca_certificates(&self, r: ListCaCertificatesRequest) -> ApiResult<ListCaCertificatesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let mut cas: Vec<&CaCertificate> = s
                .ca_certificates
                .values()
                .filter(|c| {
                    r.template_name.as_ref().is_none_or(|t| {
                        c.registration_config.as_ref().and_then(|rc| rc.template_name.as_ref()) == Some(t)
                    })
                })
                .collect();
            cas.sort_by_key(|c| (c.created_at, c.certificate_id.clone()));
            if !r.ascending_order {
                cas.reverse();
            }
            let items: Vec<CaCertificateSummary> = cas
                .into_iter()
                .map(|c| CaCertificateSummary {
                    certificate_arn: c.certificate_arn.clone(),
                    certificate_id: c.certificate_id.clone(),
                    status: c.status,
                    creation_date: c.created_at.into(),
                })
                .collect();
            let (certificates, next_marker) = page(items, r.marker.as_deref(), r.page_size, 25)?;
            Ok(ListCaCertificatesResponse { certificates, next_marker })
        })
        .await
    }

    pub async fn update_ca_certificate(&self, r: UpdateCaCertificateRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let status = r.status()?;
        let auto_registration = r.auto_registration_status()?;
        let id = key(&r.certificate_id);
        self.write(|txn| {
            let mut c = txn.s.ca_certificates.get(&id).cloned().ok_or_else(|| ca_not_found(&id))?;
            let deactivated = c.status == CaCertificateStatus::Active && status == Some(CaCertificateStatus::Inactive);
            if let Some(status) = status {
                c.status = status;
            }
            if let Some(a) = auto_registration {
                c.auto_registration_status = a;
            }
            if r.remove_auto_registration {
                c.registration_config = None;
            } else if let Some(rc) = &r.registration_config {
                c.registration_config = Some(rc.clone());
            }
            c.last_modified_at = txn.now;
            c.customer_version += 1;
            txn.put_ca_certificate(c);
            // Its devices are refused from now on: live sessions end too, as when a
            // certificate is deactivated (their policies would no longer allow anything).
            if deactivated {
                let under: Vec<String> = txn
                    .s
                    .certificates
                    .values()
                    .filter(|d| d.ca_certificate_id.as_deref() == Some(id.as_str()))
                    .map(|d| d.certificate_id.clone())
                    .collect();
                for device in under {
                    txn.disconnect_certificate(&device);
                }
            }
            Ok(Empty {})
        })
        .await
    }

    pub async fn delete_ca_certificate(&self, r: DeleteCaCertificateRequest) -> ApiResult<DeleteCaCertificateResponse> {
        r.check(self.now())?;
        let id = key(&r.certificate_id);
        self.write(|txn| {
            let c = txn.s.ca_certificates.get(&id).ok_or_else(|| ca_not_found(&id))?;
            if c.status == CaCertificateStatus::Active {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    "The CA certificate must be deactivated before deletion.",
                ));
            }
            if txn.s.certificates.values().any(|d| d.ca_certificate_id.as_deref() == Some(id.as_str())) {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    "Certificates are still registered under the CA certificate: delete them first.",
                ));
            }
            txn.delete_ca_certificate(&id);
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_certificates_by_ca(
        &self,
        r: ListCertificatesByCaRequest,
    ) -> ApiResult<ListCertificatesByCaResponse> {
        r.check(self.now())?;
        let id = key(&r.ca_certificate_id);
        self.read(|s| {
            let mut certs: Vec<&Certificate> =
                s.certificates.values().filter(|c| c.ca_certificate_id.as_deref() == Some(id.as_str())).collect();
            certs.sort_by_key(|c| (c.created_at, c.certificate_id.clone()));
            if !r.ascending_order {
                certs.reverse();
            }
            let items = certs.into_iter().map(summary).collect();
            let (certificates, next_marker) = page(items, r.marker.as_deref(), r.page_size, 25)?;
            Ok(ListCertificatesByCaResponse { certificates, next_marker })
        })
        .await
    }

    pub async fn register_certificate(&self, r: RegisterCertificateRequest) -> ApiResult<RegisterCertificateResponse> {
        let now = self.now();
        r.check(now)?;
        let status = r.status()?;
        let cert = read_pem(&r.certificate_pem, "certificatePem", now)?;
        // Which registered CA signed it: the one named, or else the one whose key verifies
        // it. Signatures are checked here, before the state lock.
        let ca_id = match &r.ca_certificate_pem {
            Some(pem) => {
                let ca = ForeignCertificate::from_pem(pem)
                    .map_err(|e| invalid_certificate(format!("caCertificatePem: {e}")))?;
                if !cert.is_signed_by(&ca) {
                    return Err(invalid_certificate("The certificate is not signed by the CA certificate"));
                }
                ca.certificate_id
            }
            None => {
                let registered: Vec<(String, String)> = self
                    .read(|s| {
                        Ok::<_, ApiError>(
                            s.ca_certificates
                                .values()
                                .map(|c| (c.certificate_id.clone(), c.certificate_pem.clone()))
                                .collect(),
                        )
                    })
                    .await?;
                signer_of(&cert, registered).ok_or_else(|| {
                    invalid_certificate("The certificate is not signed by a registered CA certificate")
                })?
            }
        };
        self.write(|txn| {
            let ca = txn.s.ca_certificates.get(&ca_id).ok_or_else(|| {
                invalid_certificate(format!("The CA certificate {ca_id} is not registered (RegisterCACertificate)"))
            })?;
            if ca.status != CaCertificateStatus::Active {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    format!("The CA certificate {ca_id} is not ACTIVE"),
                ));
            }
            let mode = ca.certificate_mode;
            check_not_registered(txn, &cert.certificate_id)?;
            Ok(put_registered(txn, &cert, &r.certificate_pem, status, Some(ca_id.clone()), mode))
        })
        .await
    }

    /// Whether any CA registers certificates at connect: a refused connect starts
    /// [`Self::register_certificate_at_connect`] only then (one lookup, no task, otherwise).
    pub fn registers_at_connect(&self) -> bool {
        self.lock().is_ok_and(|s| s.ca_certificates.values().any(auto_registers))
    }

    /// Just-in-time registration: the certificate a device presented at CONNECT, unknown
    /// here, registered `PENDING_ACTIVATION` under the registered CA that signed it, if that
    /// CA is ACTIVE with auto-registration ENABLE (then announced on
    /// `$aws/events/certificates/registered/{caCertificateId}`). The connect itself is refused,
    /// as AWS refuses it: the device connects again once someone has activated the
    /// certificate. `None`: no such CA, or the certificate is registered already.
    pub async fn register_certificate_at_connect(&self, der: &[u8]) -> ApiResult<Option<RegisterCertificateResponse>> {
        let now = self.now();
        let cert = ForeignCertificate::from_der(der.to_vec()).map_err(|e| invalid_certificate(e.to_string()))?;
        if !cert.valid_at(now) {
            return Ok(None);
        }
        let candidates: Vec<(String, String)> = self
            .read(|s| {
                Ok::<_, ApiError>(if s.certificates.contains_key(&cert.certificate_id) {
                    vec![]
                } else {
                    s.ca_certificates
                        .values()
                        .filter(|c| auto_registers(c))
                        .map(|c| (c.certificate_id.clone(), c.certificate_pem.clone()))
                        .collect()
                })
            })
            .await?;
        let Some(ca_id) = signer_of(&cert, candidates) else { return Ok(None) };
        self.write(|txn| {
            // Checked again under the lock: the CA may have changed, or another connect won.
            let Some(ca) = txn.s.ca_certificates.get(&ca_id).filter(|c| auto_registers(c)) else { return Ok(None) };
            if txn.s.certificates.contains_key(&cert.certificate_id) {
                return Ok(None);
            }
            let mode = ca.certificate_mode;
            let status = CertificateStatus::PendingActivation;
            let out = put_registered(txn, &cert, &cert.to_pem(), status, Some(ca_id.clone()), mode);
            txn.certificate_registered(&out.certificate_id, &ca_id);
            Ok(Some(out))
        })
        .await
    }

    pub async fn register_certificate_without_ca(
        &self,
        r: RegisterCertificateWithoutCaRequest,
    ) -> ApiResult<RegisterCertificateWithoutCaResponse> {
        let now = self.now();
        r.check(now)?;
        let status = r.status()?;
        let cert = read_pem(&r.certificate_pem, "certificatePem", now)?;
        self.write(|txn| {
            check_not_registered(txn, &cert.certificate_id)?;
            Ok(put_registered(txn, &cert, &r.certificate_pem, status, None, CertificateMode::SniOnly))
        })
        .await
    }
}

/// Stores a registered device certificate; it then behaves like any other.
fn put_registered(
    txn: &mut Txn<'_>,
    cert: &ForeignCertificate,
    pem: &str,
    status: CertificateStatus,
    ca_certificate_id: Option<String>,
    certificate_mode: CertificateMode,
) -> RegisterCertificateResponse {
    let c = Certificate {
        certificate_arn: txn.scope.arn(ResourceKind::Cert, &cert.certificate_id),
        certificate_id: cert.certificate_id.clone(),
        certificate_pem: pem.to_string(),
        status,
        created_at: txn.now,
        last_modified_at: txn.now,
        ca_certificate_id,
        certificate_mode,
    };
    let out = RegisterCertificateResponse {
        certificate_arn: c.certificate_arn.clone(),
        certificate_id: c.certificate_id.clone(),
    };
    txn.put_certificate(c);
    out
}
