//! Certificates: CreateKeysAndCertificate, CreateCertificateFromCsr, DescribeCertificate,
//! ListCertificates, UpdateCertificate, DeleteCertificate (registered ones: `ca_certificates`).

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{Certificate, CertificateMode, CertificateStatus};
use fleetjobs_core::ops::certificates::*;
use fleetjobs_core::ops::{page, Empty, Timestamp};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};
use fleetjobs_pki::{ForeignCertificate, PkiError};

use super::certificate_not_found;
use crate::state::Txn;
use crate::Engine;

/// Certificates are keyed by their id in lowercase hex (the model allows either case).
fn key(certificate_id: &str) -> String {
    certificate_id.to_lowercase()
}

fn pki_error(e: PkiError) -> ApiError {
    match e {
        PkiError::InvalidCsr(why) => ApiError::invalid(format!("Invalid certificate signing request: {why}")),
        other => ApiError::new(ErrorCode::InternalFailure, other.to_string()),
    }
}

/// Records a certificate this server just issued, ACTIVE or INACTIVE as asked.
fn put_issued(txn: &mut Txn<'_>, certificate_id: &str, certificate_pem: &str, set_as_active: bool) -> Certificate {
    let cert = Certificate {
        certificate_arn: txn.scope.arn(ResourceKind::Cert, certificate_id),
        certificate_id: certificate_id.to_owned(),
        certificate_pem: certificate_pem.to_owned(),
        status: if set_as_active { CertificateStatus::Active } else { CertificateStatus::Inactive },
        created_at: txn.now,
        last_modified_at: txn.now,
        ca_certificate_id: None,
        certificate_mode: CertificateMode::Default,
    };
    txn.put_certificate(cert.clone());
    cert
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
        // Issued on a blocking thread and outside the state lock: an RSA key is a prime
        // search of tenths of a second, which must stall neither a runtime worker nor others.
        let ca = self.ca.clone();
        let issued = tokio::task::spawn_blocking(move || ca.issue_device_cert())
            .await
            .map_err(|e| ApiError::new(ErrorCode::InternalFailure, format!("key generation stopped: {e}")))?
            .map_err(pki_error)?;
        self.write(|txn| {
            let cert = put_issued(txn, &issued.certificate_id, &issued.cert_pem, r.set_as_active);
            Ok(CreateKeysAndCertificateResponse {
                certificate_arn: cert.certificate_arn,
                certificate_id: cert.certificate_id,
                certificate_pem: cert.certificate_pem,
                key_pair: KeyPair {
                    public_key: issued.public_key_pem.clone(),
                    private_key: issued.private_key_pem.clone(),
                },
            })
        })
        .await
    }

    pub async fn create_certificate_from_csr(
        &self,
        r: CreateCertificateFromCsrRequest,
    ) -> ApiResult<CreateCertificateFromCsrResponse> {
        r.check(self.now())?;
        // Signed outside the state lock (verifying the request's signature, signing ours).
        let signed = self.ca.sign_csr(&r.certificate_signing_request).map_err(pki_error)?;
        self.write(|txn| {
            let cert = put_issued(txn, &signed.certificate_id, &signed.cert_pem, r.set_as_active);
            Ok(CreateCertificateFromCsrResponse {
                certificate_arn: cert.certificate_arn,
                certificate_id: cert.certificate_id,
                certificate_pem: cert.certificate_pem,
            })
        })
        .await
    }

    pub async fn describe_certificate(&self, r: DescribeCertificateRequest) -> ApiResult<DescribeCertificateResponse> {
        r.check(self.now())?;
        let id = key(&r.certificate_id);
        let mut described = self
            .read(|s| {
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
                        validity: None,
                        certificate_mode: c.certificate_mode.as_str(),
                    },
                })
            })
            .await?;
        // Read from the certificate itself, after the lock is released.
        let d = &mut described.certificate_description;
        d.validity = ForeignCertificate::from_pem(&d.certificate_pem)
            .ok()
            .map(|c| CertificateValidity { not_before: Timestamp(c.not_before), not_after: Timestamp(c.not_after) });
        Ok(described)
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
