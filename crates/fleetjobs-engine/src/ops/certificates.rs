//! Certificates: CreateKeysAndCertificate, DescribeCertificate, ListCertificates,
//! UpdateCertificate, DeleteCertificate.

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{Certificate, CertificateMode, CertificateStatus};
use fleetjobs_core::ops::ca_certificates::CertificateValidity;
use fleetjobs_core::ops::certificates::*;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::certificate_not_found;
use crate::Engine;

/// Certificates are keyed by their id in lowercase hex (the model allows either case).
fn key(certificate_id: &str) -> String {
    certificate_id.to_lowercase()
}

pub(super) fn summary(c: &Certificate) -> CertificateSummary {
    CertificateSummary {
        certificate_arn: c.certificate_arn.clone(),
        certificate_id: c.certificate_id.clone(),
        status: c.status,
        certificate_mode: c.certificate_mode.as_str(),
        creation_date: c.created_at.into(),
    }
}

impl Engine {
    pub async fn create_keys_and_certificate(
        &self,
        r: CreateKeysAndCertificateRequest,
    ) -> ApiResult<CreateKeysAndCertificateResponse> {
        r.check(self.now())?;
        // Issued outside the state lock: key generation is the slow part.
        let issued =
            self.ca.issue_device_cert().map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))?;
        self.write(|txn| {
            let cert = Certificate {
                certificate_arn: txn.scope.arn(ResourceKind::Cert, &issued.certificate_id),
                certificate_id: issued.certificate_id.clone(),
                certificate_pem: issued.cert_pem.clone(),
                status: if r.set_as_active { CertificateStatus::Active } else { CertificateStatus::Inactive },
                created_at: txn.now,
                last_modified_at: txn.now,
                ca_certificate_id: None,
                certificate_mode: CertificateMode::Default,
            };
            let out = CreateKeysAndCertificateResponse {
                certificate_arn: cert.certificate_arn.clone(),
                certificate_id: cert.certificate_id.clone(),
                certificate_pem: cert.certificate_pem.clone(),
                key_pair: KeyPair {
                    public_key: issued.public_key_pem.clone(),
                    private_key: issued.private_key_pem.clone(),
                },
            };
            txn.put_certificate(cert);
            Ok(out)
        })
        .await
    }

    pub async fn describe_certificate(&self, r: DescribeCertificateRequest) -> ApiResult<DescribeCertificateResponse> {
        r.check(self.now())?;
        let id = key(&r.certificate_id);
        self.read(|s| {
            let c = s.certificates.get(&id).ok_or_else(|| certificate_not_found(&id))?;
            Ok(DescribeCertificateResponse {
                certificate_description: CertificateDescription {
                    certificate_arn: c.certificate_arn.clone(),
                    certificate_id: c.certificate_id.clone(),
                    ca_certificate_id: c.ca_certificate_id.clone(),
                    status: c.status,
                    certificate_pem: c.certificate_pem.clone(),
                    owned_by: self.config.scope.account_id.clone(),
                    creation_date: c.created_at.into(),
                    last_modified_date: c.last_modified_at.into(),
                    customer_version: 1,
                    transfer_data: Empty {},
                    generation_id: c.last_modified_at.to_string(),
                    validity: fleetjobs_pki::validity_of_pem(&c.certificate_pem).map(|(not_before, not_after)| {
                        CertificateValidity { not_before: not_before.into(), not_after: not_after.into() }
                    }),
                    certificate_mode: c.certificate_mode.as_str(),
                },
            })
        })
        .await
    }

    pub async fn list_certificates(&self, r: ListCertificatesRequest) -> ApiResult<ListCertificatesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let mut certs: Vec<&Certificate> = s.certificates.values().collect();
            certs.sort_by_key(|c| (c.created_at, c.certificate_id.clone()));
            if !r.ascending_order {
                certs.reverse();
            }
            let items: Vec<CertificateSummary> = certs.into_iter().map(summary).collect();
            let (certificates, next_marker) = page(items, r.marker.as_deref(), r.page_size, 25)?;
            Ok(ListCertificatesResponse { certificates, next_marker })
        })
        .await
    }

    pub async fn update_certificate(&self, r: UpdateCertificateRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let status = r.status()?;
        let id = key(&r.certificate_id);
        self.write(|txn| {
            let mut c = txn.s.certificates.get(&id).cloned().ok_or_else(|| certificate_not_found(&id))?;
            if c.status == CertificateStatus::Revoked && status != CertificateStatus::Revoked {
                return Err(ApiError::new(
                    ErrorCode::CertificateState,
                    "A revoked certificate cannot change its status",
                ));
            }
            c.status = status;
            c.last_modified_at = txn.now;
            txn.put_certificate(c);
            // A certificate that is no longer active ends its live connections too.
            if status != CertificateStatus::Active {
                txn.disconnect_certificate(&id);
            }
            Ok(Empty {})
        })
        .await
    }

    pub async fn delete_certificate(&self, r: DeleteCertificateRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        let id = key(&r.certificate_id);
        self.write(|txn| {
            let c = txn.s.certificates.get(&id).ok_or_else(|| certificate_not_found(&id))?;
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
            if !policies.is_empty() && !r.force_delete {
                return Err(ApiError::new(
                    ErrorCode::DeleteConflict,
                    "Policies are still attached to the certificate.",
                ));
            }
            for p in policies {
                txn.detach_policy(&p, &arn);
            }
            txn.delete_certificate(&id);
            Ok(Empty {})
        })
        .await
    }
}
