//! CA certificates (bring your own PKI): GetRegistrationCode, DeleteRegistrationCode, RegisterCACertificate,
//! DescribeCACertificate, ListCACertificates, UpdateCACertificate, DeleteCACertificate,
//! ListCertificatesByCA.

use serde::{Deserialize, Serialize};

use super::certificates::{CertificateSummary, CertificateValidity};
use super::tags::{check_tag, MAX_TAGS};
use super::{check_page_size, Empty, Timestamp};
use crate::model::{AutoRegistrationStatus, CaCertificateStatus, CertificateMode, RegistrationConfig, Tag};
use crate::{validate, ApiError, ApiResult, Millis};

/// At most this many CA certificates are registered at once (AWS allows 10 per subject).
pub const MAX_CA_CERTIFICATES: usize = 100;

/// Checks a registration config's members against the model's limits.
fn check_registration_config(c: &RegistrationConfig) -> ApiResult<()> {
    validate::registration_config(c.template_body.as_deref(), c.role_arn.as_deref(), c.template_name.as_deref())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GetRegistrationCodeRequest {}

impl GetRegistrationCodeRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRegistrationCodeResponse {
    pub registration_code: String,
}

/// DeleteRegistrationCode: the next GetRegistrationCode makes a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeleteRegistrationCodeRequest {}

impl DeleteRegistrationCodeRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCaCertificateRequest {
    pub ca_certificate: String,
    pub verification_certificate: Option<String>,
    #[serde(default)]
    pub set_as_active: bool,
    #[serde(default)]
    pub allow_auto_registration: bool,
    pub registration_config: Option<RegistrationConfig>,
    pub tags: Option<Vec<Tag>>,
    /// A `CertificateMode`, kept as text so that a wrong value gets this API's message.
    pub certificate_mode: Option<String>,
}

impl RegisterCaCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_pem(&self.ca_certificate, "caCertificate")?;
        let mode = self.mode()?;
        match (&self.verification_certificate, mode) {
            (Some(v), _) => validate::certificate_pem(v, "verificationCertificate")?,
            (None, CertificateMode::Default) => {
                return Err(ApiError::invalid(
                    "A verificationCertificate is required to register a CA certificate in DEFAULT mode",
                ))
            }
            (None, CertificateMode::SniOnly) => {}
        }
        self.registration_config.as_ref().map_or(Ok(()), check_registration_config)?;
        let tags = self.tags.as_deref().unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(format!("tags must have at most {MAX_TAGS} items")));
        }
        tags.iter().try_for_each(check_tag)
    }

    /// `DEFAULT` unless asked otherwise.
    pub fn mode(&self) -> ApiResult<CertificateMode> {
        match &self.certificate_mode {
            None => Ok(CertificateMode::Default),
            Some(m) => CertificateMode::parse(m)
                .ok_or_else(|| ApiError::invalid(format!("Invalid value for certificateMode: {m}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCaCertificateResponse {
    pub certificate_arn: String,
    pub certificate_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DescribeCaCertificateRequest {
    /// `certificateId`, which travels in the path as `caCertificateId`.
    #[serde(rename = "caCertificateId")]
    pub certificate_id: String,
}

impl DescribeCaCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)
    }
}

/// `CACertificateDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateDescription {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CaCertificateStatus,
    pub certificate_pem: String,
    pub owned_by: String,
    pub creation_date: Timestamp,
    pub auto_registration_status: AutoRegistrationStatus,
    pub last_modified_date: Timestamp,
    pub customer_version: i64,
    pub generation_id: String,
    pub validity: CertificateValidity,
    pub certificate_mode: CertificateMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCaCertificateResponse {
    pub certificate_description: CaCertificateDescription,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_config: Option<RegistrationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCaCertificatesRequest {
    pub page_size: Option<i64>,
    pub marker: Option<String>,
    /// Oldest first when set; newest first by default.
    #[serde(default)]
    pub ascending_order: bool,
    /// Only the CAs whose registration config names this provisioning template.
    pub template_name: Option<String>,
}

impl ListCaCertificatesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_page_size(self.page_size)?;
        validate::registration_config(None, None, self.template_name.as_deref())
    }
}

/// `CACertificate`: one CA certificate of ListCACertificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateSummary {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub status: CaCertificateStatus,
    pub creation_date: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCaCertificatesResponse {
    pub certificates: Vec<CaCertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCaCertificateRequest {
    /// `certificateId`, which travels in the path as `caCertificateId`.
    #[serde(rename = "caCertificateId")]
    pub certificate_id: String,
    /// A `CACertificateStatus`, as text (see [`Self::status`]).
    pub new_status: Option<String>,
    /// An `AutoRegistrationStatus`, as text (see [`Self::auto_registration_status`]).
    pub new_auto_registration_status: Option<String>,
    pub registration_config: Option<RegistrationConfig>,
    /// Drop the registration config.
    #[serde(default)]
    pub remove_auto_registration: bool,
}

impl UpdateCaCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)?;
        self.status()?;
        self.auto_registration_status()?;
        self.registration_config.as_ref().map_or(Ok(()), check_registration_config)
    }

    pub fn status(&self) -> ApiResult<Option<CaCertificateStatus>> {
        self.new_status
            .as_deref()
            .map(|s| {
                CaCertificateStatus::parse(s)
                    .ok_or_else(|| ApiError::invalid(format!("Invalid value for newStatus: {s}")))
            })
            .transpose()
    }

    pub fn auto_registration_status(&self) -> ApiResult<Option<AutoRegistrationStatus>> {
        self.new_auto_registration_status
            .as_deref()
            .map(|s| {
                AutoRegistrationStatus::parse(s)
                    .ok_or_else(|| ApiError::invalid(format!("Invalid value for newAutoRegistrationStatus: {s}")))
            })
            .transpose()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeleteCaCertificateRequest {
    /// `certificateId`, which travels in the path as `caCertificateId`.
    #[serde(rename = "caCertificateId")]
    pub certificate_id: String,
}

impl DeleteCaCertificateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.certificate_id)
    }
}

/// DeleteCACertificate answers no members.
pub type DeleteCaCertificateResponse = Empty;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesByCaRequest {
    pub ca_certificate_id: String,
    pub page_size: Option<i64>,
    pub marker: Option<String>,
    /// Oldest first when set; newest first by default.
    #[serde(default)]
    pub ascending_order: bool,
}

impl ListCertificatesByCaRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::certificate_id(&self.ca_certificate_id)?;
        check_page_size(self.page_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesByCaResponse {
    pub certificates: Vec<CertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(mode: Option<&str>, verification: Option<&str>) -> RegisterCaCertificateRequest {
        RegisterCaCertificateRequest {
            ca_certificate: "pem".into(),
            verification_certificate: verification.map(str::to_string),
            certificate_mode: mode.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn default_mode_needs_a_verification_certificate_and_sni_only_does_not() {
        assert!(register(None, Some("v")).check(0).is_ok());
        assert_eq!(register(None, None).check(0).unwrap_err().code, crate::ErrorCode::InvalidRequest);
        assert!(register(Some("SNI_ONLY"), None).check(0).is_ok());
        assert_eq!(register(Some("SNI_ONLY"), None).mode().unwrap(), CertificateMode::SniOnly);
        let err = register(Some("LOOSE"), Some("v")).check(0).unwrap_err();
        assert_eq!(err.message, "Invalid value for certificateMode: LOOSE");
        let mut r = register(None, Some("v"));
        r.ca_certificate = String::new();
        assert!(r.check(0).is_err());
        r.ca_certificate = "pem".into();
        r.registration_config =
            Some(RegistrationConfig { template_name: Some("bad name".into()), ..Default::default() });
        assert!(r.check(0).is_err());
        r.registration_config = Some(RegistrationConfig { role_arn: Some("short".into()), ..Default::default() });
        assert!(r.check(0).is_err());
        r.registration_config = Some(RegistrationConfig { template_name: Some("tpl_1".into()), ..Default::default() });
        assert!(r.check(0).is_ok());
        r.tags = Some(vec![Tag { key: "aws:x".into(), value: None }]);
        assert!(r.check(0).is_err());
    }

    #[test]
    fn update_statuses_are_the_modeled_ones() {
        let mut r = UpdateCaCertificateRequest { certificate_id: "a".repeat(64), ..Default::default() };
        assert_eq!(r.status().unwrap(), None);
        r.new_status = Some("INACTIVE".into());
        assert_eq!(r.status().unwrap(), Some(CaCertificateStatus::Inactive));
        r.new_status = Some("REVOKED".into());
        assert_eq!(r.check(0).unwrap_err().message, "Invalid value for newStatus: REVOKED");
        r.new_status = None;
        r.new_auto_registration_status = Some("ENABLE".into());
        assert_eq!(r.auto_registration_status().unwrap(), Some(AutoRegistrationStatus::Enable));
        r.new_auto_registration_status = Some("on".into());
        assert!(r.check(0).is_err());
    }

    #[test]
    fn the_description_carries_the_aws_member_names() {
        let d = CaCertificateDescription {
            certificate_arn: "arn".into(),
            certificate_id: "id".into(),
            status: CaCertificateStatus::Active,
            certificate_pem: "pem".into(),
            owned_by: "123".into(),
            creation_date: Timestamp(1_000),
            auto_registration_status: AutoRegistrationStatus::Disable,
            last_modified_date: Timestamp(2_000),
            customer_version: 1,
            generation_id: "g".into(),
            validity: CertificateValidity { not_before: Timestamp(0), not_after: Timestamp(5_000) },
            certificate_mode: CertificateMode::SniOnly,
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"certificateArn": "arn", "certificateId": "id", "status": "ACTIVE",
                "certificatePem": "pem", "ownedBy": "123", "creationDate": 1.0,
                "autoRegistrationStatus": "DISABLE", "lastModifiedDate": 2.0, "customerVersion": 1,
                "generationId": "g", "validity": {"notBefore": 0.0, "notAfter": 5.0},
                "certificateMode": "SNI_ONLY"})
        );
    }
}
