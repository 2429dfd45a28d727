//! The records Fleetjobs keeps, named as AWS names them. They serialize (serde, camelCase) to
//! the store; wire shapes are built from them by the adapters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::job_config::JobConfigs;
use crate::Millis;

/// `statusDetails`: at most 10 string pairs.
pub type StatusDetails = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    InProgress,
    Canceled,
    Completed,
    DeletionInProgress,
    Scheduled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobExecutionStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    Rejected,
    Removed,
    Canceled,
}

impl JobExecutionStatus {
    pub const ALL: [JobExecutionStatus; 8] = [
        Self::Queued,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Rejected,
        Self::Removed,
        Self::Canceled,
    ];

    /// Everything but QUEUED and IN_PROGRESS is terminal.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Rejected => "REJECTED",
            Self::Removed => "REMOVED",
            Self::Canceled => "CANCELED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Canceled => "CANCELED",
            Self::Completed => "COMPLETED",
            Self::DeletionInProgress => "DELETION_IN_PROGRESS",
            Self::Scheduled => "SCHEDULED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::InProgress, Self::Canceled, Self::Completed, Self::DeletionInProgress, Self::Scheduled]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetSelection {
    Continuous,
    #[default]
    Snapshot,
}

impl TargetSelection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continuous => "CONTINUOUS",
            Self::Snapshot => "SNAPSHOT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: String,
    pub job_arn: String,
    pub targets: Vec<String>,
    pub document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub target_selection: TargetSelection,
    pub status: JobStatus,
    #[serde(default)]
    pub force_canceled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_at: Millis,
    pub last_updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_parameters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_package_versions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub configs: JobConfigs,
    /// The document as the managed template had it, before `documentParameters` were
    /// substituted into it (GetJobDocument `beforeSubstitution`); `None` when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_before_substitution: Option<String>,
    /// While the job still has targets to give executions to (a rollout rate, a schedule or
    /// maintenance windows hold them back): where the rollout stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// A custom job template: a document and configs that CreateJob copies (`jobTemplateArn`).
/// Its `configs` never carry a schedule: only `schedulingConfig.maintenanceWindows`, which
/// the API calls `maintenanceWindows` on a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate {
    pub job_template_id: String,
    pub job_template_arn: String,
    pub description: String,
    pub document: String,
    /// Where `document` was read from at creation, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_source: Option<String>,
    pub created_at: Millis,
    #[serde(default)]
    pub configs: JobConfigs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_package_versions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// A job's rollout in progress, stored with the job so that a restart continues it: the
/// things still waiting for an execution (`None` until the rollout first runs: a SNAPSHOT
/// job's groups are resolved then, as AWS does), how many executions it created, and its
/// current minute window of the rollout rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<String>>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub window_start: Millis,
    #[serde(default)]
    pub created_in_window: i64,
}

/// A resource tag as AWS spells it (`Key`, `Value`); a job keeps the tags it was created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An execution as the store keeps it. Written at every device update, so members at their
/// default (no status details, not force-canceled, first attempt) are left out of the
/// record; reading fills them in, so records written with them load alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecution {
    pub job_id: String,
    pub thing_name: String,
    pub execution_number: i64,
    pub status: JobExecutionStatus,
    #[serde(default, skip_serializing_if = "StatusDetails::is_empty")]
    pub status_details: StatusDetails,
    pub queued_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    pub last_updated_at: Millis,
    pub version_number: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_canceled: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_attempt: i32,
    /// When the step timer set by the device (`stepTimeoutInMinutes`) expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_at: Option<Millis>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl JobExecution {
    /// A new QUEUED execution (version 1).
    pub fn queued(job_id: &str, thing_name: &str, execution_number: i64, now: Millis) -> Self {
        JobExecution {
            job_id: job_id.to_string(),
            thing_name: thing_name.to_string(),
            execution_number,
            status: JobExecutionStatus::Queued,
            status_details: StatusDetails::new(),
            queued_at: now,
            started_at: None,
            last_updated_at: now,
            version_number: 1,
            force_canceled: false,
            retry_attempt: 0,
            step_timeout_at: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// A thing group, static or dynamic. Its parent is fixed at creation (AWS has no way to move a group),
/// so the hierarchy only grows at the leaves and shrinks from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroup {
    pub thing_group_name: String,
    pub thing_group_id: String,
    pub thing_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    pub version: i64,
    pub created_at: Millis,
    /// A dynamic group's query (its members are those things it matches, derived, never
    /// stored); `None` for a static group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_version: Option<String>,
}

impl ThingGroup {
    pub fn is_dynamic(&self) -> bool {
        self.query_string.is_some()
    }
}

/// `Mqtt5Configuration` of a thing type: which thing and connection attributes travel as
/// MQTT 5 user properties (stored and shown; the broker does not add them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mqtt5Configuration {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub propagating_attributes: Vec<PropagatingAttribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropagatingAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_property_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_attribute: Option<String>,
}

/// A thing type: a description, up to three searchable attribute names, and whether it is
/// deprecated (no new thing may take a deprecated type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingType {
    pub thing_type_name: String,
    pub thing_type_id: String,
    pub thing_type_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searchable_attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt5_configuration: Option<Mqtt5Configuration>,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    pub thing_name: String,
    pub thing_id: String,
    pub thing_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_group_name: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Inactive,
            Self::Revoked,
            Self::PendingTransfer,
            Self::RegisterInactive,
            Self::PendingActivation,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub certificate_id: String,
    pub certificate_arn: String,
    pub certificate_pem: String,
    pub status: CertificateStatus,
    pub created_at: Millis,
    pub last_modified_at: Millis,
    /// The registered CA that signed it (RegisterCertificate); `None` for the server's own
    /// certificates and those registered without a CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    /// `SNI_ONLY` for certificates registered without a CA.
    #[serde(default, skip_serializing_if = "CertificateMode::is_default")]
    pub certificate_mode: CertificateMode,
}

/// `CertificateMode`: how a certificate (or a CA) is told apart at connect. `DEFAULT`: by its
/// CA; `SNI_ONLY`: by itself (registered without a CA, or a CA registered without proof).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateMode {
    #[default]
    Default,
    SniOnly,
}

impl CertificateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::SniOnly => "SNI_ONLY",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Default, Self::SniOnly].into_iter().find(|m| m.as_str() == s)
    }

    pub fn is_default(&self) -> bool {
        *self == Self::Default
    }
}

/// `CACertificateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaCertificateStatus {
    Active,
    Inactive,
}

impl CaCertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Inactive].into_iter().find(|st| st.as_str() == s)
    }
}

/// `AutoRegistrationStatus` of a CA: with `ENABLE`, an unknown device certificate it signed is
/// registered `PENDING_ACTIVATION` when the device first connects (just-in-time registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AutoRegistrationStatus {
    Enable,
    Disable,
}

impl AutoRegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enable => "ENABLE",
            Self::Disable => "DISABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enable, Self::Disable].into_iter().find(|st| st.as_str() == s)
    }
}

/// `RegistrationConfig` of a CA: the provisioning template for auto-registration, kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
}

/// A CA certificate registered with RegisterCACertificate: device certificates it signed can
/// be registered (RegisterCertificate) and connect while both are ACTIVE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificate {
    pub certificate_id: String,
    pub certificate_arn: String,
    pub certificate_pem: String,
    pub status: CaCertificateStatus,
    pub certificate_mode: CertificateMode,
    pub auto_registration_status: AutoRegistrationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_config: Option<RegistrationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// The certificate's validity (epoch milliseconds), read once at registration.
    pub not_before: Millis,
    pub not_after: Millis,
    pub created_at: Millis,
    pub last_modified_at: Millis,
    /// Bumped at every update (`customerVersion`).
    pub customer_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub policy_name: String,
    pub policy_arn: String,
    /// The default version's document (the one devices are judged by).
    pub policy_document: String,
    pub created_at: Millis,
    pub last_modified_at: Millis,
    /// Every version, the default among them, oldest first. Records written before
    /// versions existed have none: [`Policy::with_versions`] makes their document version 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<PolicyVersion>,
    /// The default version's id.
    #[serde(default = "first_version")]
    pub default_version_id: String,
    /// The highest version id ever given: ids are never reused, as in AWS.
    #[serde(default = "first_version_number")]
    pub last_version_number: u64,
}

fn first_version() -> String {
    "1".to_string()
}

fn first_version_number() -> u64 {
    1
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    pub version_id: String,
    pub policy_document: String,
    pub created_at: Millis,
}

impl Policy {
    /// A new policy: its document is version 1, the default.
    pub fn new(policy_name: String, policy_arn: String, policy_document: String, now: Millis) -> Policy {
        Policy {
            policy_name,
            policy_arn,
            versions: vec![PolicyVersion {
                version_id: first_version(),
                policy_document: policy_document.clone(),
                created_at: now,
            }],
            policy_document,
            created_at: now,
            last_modified_at: now,
            default_version_id: first_version(),
            last_version_number: 1,
        }
    }

    /// A record as read from the store: one written before versions existed gets its document
    /// as version 1, the default.
    pub fn with_versions(mut self) -> Policy {
        if self.versions.is_empty() {
            self.versions.push(PolicyVersion {
                version_id: self.default_version_id.clone(),
                policy_document: self.policy_document.clone(),
                created_at: self.created_at,
            });
        }
        self
    }

    pub fn version(&self, id: &str) -> Option<&PolicyVersion> {
        self.versions.iter().find(|v| v.version_id == id)
    }
}

/// `thingIndexingMode`: what the `AWS_Things` fleet index holds. Only the registry is indexed
/// here (no shadows), so `REGISTRY_AND_SHADOW` is a value of the enum that is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThingIndexingMode {
    #[default]
    Off,
    Registry,
    RegistryAndShadow,
}

/// `thingGroupIndexingMode`: whether the `AWS_ThingGroups` index exists (not indexed here:
/// `ON` is refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThingGroupIndexingMode {
    #[default]
    Off,
    On,
}

/// The fleet-indexing configuration (UpdateIndexingConfiguration): which indexes SearchIndex
/// may query. AWS's default is everything OFF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexingConfiguration {
    pub thing_indexing_mode: ThingIndexingMode,
    pub thing_group_indexing_mode: ThingGroupIndexingMode,
}

/// Which `$aws/events/...` families are published (UpdateEventConfigurations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfigurations {
    pub enabled: BTreeMap<String, bool>,
    pub created_at: Millis,
    pub last_modified_at: Millis,
}

impl EventConfigurations {
    /// The AWS `EventType` enum.
    pub const EVENT_TYPES: [&'static str; 11] = [
        "THING",
        "THING_GROUP",
        "THING_TYPE",
        "THING_GROUP_MEMBERSHIP",
        "THING_GROUP_HIERARCHY",
        "THING_TYPE_ASSOCIATION",
        "JOB",
        "JOB_EXECUTION",
        "POLICY",
        "CERTIFICATE",
        "CA_CERTIFICATE",
    ];

    /// Fleetjobs' default: JOB and JOB_EXECUTION on (the tutorial expects them), the rest off.
    pub fn fleetjobs_default(now: Millis) -> Self {
        let enabled =
            Self::EVENT_TYPES.iter().map(|t| (t.to_string(), matches!(*t, "JOB" | "JOB_EXECUTION"))).collect();
        EventConfigurations { enabled, created_at: now, last_modified_at: now }
    }

    pub fn is_enabled(&self, event_type: &str) -> bool {
        self.enabled.get(event_type).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_execution_record_leaves_its_defaults_out_and_old_records_still_load() {
        use super::{JobExecution, JobExecutionStatus};
        let mut e = JobExecution::queued("j", "pi", 1, 1_700_000_000_000);
        let lean = serde_json::to_string(&e).unwrap();
        for absent in ["statusDetails", "forceCanceled", "retryAttempt", "startedAt", "stepTimeoutAt"] {
            assert!(!lean.contains(absent), "{absent} in {lean}");
        }
        assert_eq!(serde_json::from_str::<JobExecution>(&lean).unwrap(), e);
        // A record as written before, every member present.
        let old = r#"{"jobId":"j","thingName":"pi","executionNumber":1,"status":"QUEUED","statusDetails":{},
            "queuedAt":1700000000000,"lastUpdatedAt":1700000000000,"versionNumber":1,"forceCanceled":false,
            "retryAttempt":0}"#;
        assert_eq!(serde_json::from_str::<JobExecution>(old).unwrap(), e);
        e.status = JobExecutionStatus::Canceled;
        e.force_canceled = true;
        e.retry_attempt = 2;
        e.status_details.insert("k".into(), "v".into());
        let full = serde_json::to_string(&e).unwrap();
        assert!(full.contains(r#""forceCanceled":true"#) && full.contains(r#""retryAttempt":2"#), "{full}");
        assert_eq!(serde_json::from_str::<JobExecution>(&full).unwrap(), e);
    }

    use super::*;

    #[test]
    fn a_policy_stored_before_versions_loads_as_version_1() {
        let old = r#"{"policyName":"p","policyArn":"arn","policyDocument":"{}","createdAt":5,"lastModifiedAt":6}"#;
        let p = serde_json::from_str::<Policy>(old).unwrap().with_versions();
        assert_eq!(p.default_version_id, "1");
        assert_eq!(p.last_version_number, 1);
        assert_eq!(p.versions, [PolicyVersion { version_id: "1".into(), policy_document: "{}".into(), created_at: 5 }]);
        let again: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p, "the versions list is stored from then on");
    }
}
