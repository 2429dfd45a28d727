//! Certificates: CreateKeysAndCertificate, CreateCertificateFromCsr, DescribeCertificate,
//! ListCertificates, UpdateCertificate, DeleteCertificate, RegisterCertificate,
//! RegisterCertificateWithoutCA.

use serde::{Deserialize, Serialize};

use super::{check_page_size, Empty, Timestamp};
use crate::model::CertificateStatus;
use crate::{validate, ApiError, ApiResult, Millis};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeysAndCertificateRequest {
    #[serde(default)]
    pub set_as_active: bool,
}

impl CreateKeysAndCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

/// `KeyPair`: the only members of the API spelled in PascalCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPair {
    pub public_key: String,
    pub private_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeysAndCertificateResponse {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
    pub key_pair: KeyPair,
}

/// The model's bound on `certificateSigningRequest` (characters).
pub const MAX_CSR_CHARS: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificateFromCsrRequest {
    /// The PEM certificate signing request; its key and subject go into the certificate.
    pub certificate_signing_request: String,
    #[serde(default)]
    pub set_as_active: bool,
}

impl CreateCertificateFromCsrRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        let len = self.certificate_signing_request.chars().count();
        if len == 0 || len > MAX_CSR_CHARS {
            return Err(ApiError::invalid(format!(
                "certificateSigningRequest must have length between 1 and {MAX_CSR_CHARS}"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificateFromCsrResponse {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCertificateRequest {
    pub certificate_id: String,
}

impl DescribeCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)
    }
}

/// `CertificateDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDescription {
    pub certificate_arn: String,
    pub certificate_id: String,
    /// The registered CA that signed it, for certificates registered with RegisterCertificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    pub status: CertificateStatus,
    pub certificate_pem: String,
    pub owned_by: String,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    pub customer_version: i64,
    /// Certificates are never transferred between accounts here: always `{}`.
    pub transfer_data: Empty,
    pub generation_id: String,
    pub certificate_mode: &'static str,
    /// Absent only for a certificate whose DER does not parse (none this server issues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity: Option<CertificateValidity>,
}

/// `CertificateValidity`: when the certificate is valid, as written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateValidity {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCertificateResponse {
    pub certificate_description: CertificateDescription,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesRequest {
    pub page_size: Option<i64>,
    pub marker: Option<String>,
    /// Oldest first when set; newest first by default.
    #[serde(default)]
    pub ascending_order: bool,
}

impl ListCertificatesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)
    }
}

/// `Certificate` (botocore's name): one certificate of ListCertificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CertificateStatus,
    pub certificate_mode: &'static str,
    pub creation_date: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesResponse {
    pub certificates: Vec<CertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCertificateRequest {
    pub certificate_id: String,
    /// A `CertificateStatus`, kept as text so that a value outside the settable ones is
    /// answered with this API's own message rather than a deserializer's.
    pub new_status: String,
}

impl UpdateCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)?;
        self.status().map(|_| ())
    }

    /// The status asked for: only ACTIVE, INACTIVE and REVOKED can be set here (the other
    /// statuses belong to certificate transfer and registration, which Fleetjobs lacks).
    pub fn status(&self) -> ApiResult<CertificateStatus> {
        match CertificateStatus::parse(&self.new_status) {
            Some(s @ (CertificateStatus::Active | CertificateStatus::Inactive | CertificateStatus::Revoked)) => Ok(s),
            _ => Err(ApiError::invalid(format!("Invalid value for newStatus: {}", self.new_status))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCertificateRequest {
    pub certificate_id: String,
    /// Detach the certificate's policies instead of refusing the delete.
    #[serde(default)]
    pub force_delete: bool,
}

impl DeleteCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)
    }
}

/// The status a registered certificate starts in: ACTIVE with `setAsActive`, else `status`
/// (ACTIVE, INACTIVE or REVOKED), INACTIVE by default as in AWS.
fn registered_status(set_as_active: bool, status: Option<&str>) -> ApiResult<CertificateStatus> {
    if set_as_active {
        return Ok(CertificateStatus::Active);
    }
    match status {
        None => Ok(CertificateStatus::Inactive),
        Some(s) => match CertificateStatus::parse(s) {
            Some(st @ (CertificateStatus::Active | CertificateStatus::Inactive | CertificateStatus::Revoked)) => Ok(st),
            _ => Err(ApiError::invalid(format!("Invalid value for status: {s}"))),
        },
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateRequest {
    pub certificate_pem: String,
    /// The registered CA that signed it; when absent, the registered CA that did is looked up.
    pub ca_certificate_pem: Option<String>,
    pub set_as_active: Option<bool>,
    /// A `CertificateStatus`, as text (see [`Self::status`]).
    pub status: Option<String>,
}

impl RegisterCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_pem(&self.certificate_pem, "certificatePem")?;
        if let Some(ca) = &self.ca_certificate_pem {
            validate::certificate_pem(ca, "caCertificatePem")?;
        }
        self.status().map(|_| ())
    }

    pub fn status(&self) -> ApiResult<CertificateStatus> {
        registered_status(self.set_as_active.unwrap_or(false), self.status.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateResponse {
    pub certificate_arn: String,
    pub certificate_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateWithoutCaRequest {
    pub certificate_pem: String,
    /// A `CertificateStatus`, as text (see [`Self::status`]).
    pub status: Option<String>,
}

impl RegisterCertificateWithoutCaRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_pem(&self.certificate_pem, "certificatePem")?;
        self.status().map(|_| ())
    }

    pub fn status(&self) -> ApiResult<CertificateStatus> {
        registered_status(false, self.status.as_deref())
    }
}

/// RegisterCertificateWithoutCA answers the same members as RegisterCertificate.
pub type RegisterCertificateWithoutCaResponse = RegisterCertificateResponse;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_settable_statuses_can_be_asked_for() {
        let id = "a".repeat(64);
        let mut r = UpdateCertificateRequest { certificate_id: id, new_status: "REVOKED".into() };
        assert_eq!(r.status().unwrap(), CertificateStatus::Revoked);
        r.new_status = "PENDING_TRANSFER".into();
        let err = r.check(0).unwrap_err();
        assert_eq!(err.message, "Invalid value for newStatus: PENDING_TRANSFER");
        r.new_status = "ACTIVE".into();
        r.certificate_id = "xyz".into();
        assert!(r.check(0).is_err());
    }

    #[test]
    fn a_csr_must_fit_the_model_bound() {
        let mut r = CreateCertificateFromCsrRequest { certificate_signing_request: String::new(), set_as_active: true };
        assert!(r.check(0).unwrap_err().message.contains("between 1 and 4096"));
        r.certificate_signing_request = "x".repeat(MAX_CSR_CHARS);
        assert!(r.check(0).is_ok());
        r.certificate_signing_request.push('x');
        assert!(r.check(0).is_err());
        let v = CertificateValidity { not_before: Timestamp(1_000), not_after: Timestamp(2_524_607_999_000) };
        assert_eq!(
            serde_json::to_value(v).unwrap(),
            serde_json::json!({"notBefore": 1.0, "notAfter": 2_524_607_999.0})
        );
    }

    #[test]
    fn registered_certificates_start_inactive_unless_asked() {
        let mut r = RegisterCertificateRequest { certificate_pem: "pem".into(), ..Default::default() };
        assert_eq!(r.status().unwrap(), CertificateStatus::Inactive);
        r.status = Some("ACTIVE".into());
        assert_eq!(r.status().unwrap(), CertificateStatus::Active);
        r.status = Some("INACTIVE".into());
        r.set_as_active = Some(true);
        assert_eq!(r.status().unwrap(), CertificateStatus::Active);
        r.set_as_active = None;
        r.status = Some("PENDING_TRANSFER".into());
        assert_eq!(r.check(0).unwrap_err().message, "Invalid value for status: PENDING_TRANSFER");
        let w = RegisterCertificateWithoutCaRequest { certificate_pem: String::new(), status: None };
        assert!(w.check(0).is_err());
    }

    #[test]
    fn descriptions_carry_the_aws_member_names() {
        let d = CertificateSummary {
            certificate_arn: "arn".into(),
            certificate_id: "id".into(),
            status: CertificateStatus::PendingActivation,
            certificate_mode: "DEFAULT",
            creation_date: Timestamp(1_500),
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"certificateArn": "arn", "certificateId": "id", "status": "PENDING_ACTIVATION",
                               "certificateMode": "DEFAULT", "creationDate": 1.5})
        );
        let k = KeyPair { public_key: "pub".into(), private_key: "priv".into() };
        assert_eq!(serde_json::to_value(&k).unwrap(), serde_json::json!({"PublicKey": "pub", "PrivateKey": "priv"}));
    }
}
