//! Job templates: CreateJobTemplate, DescribeJobTemplate, ListJobTemplates,
//! DeleteJobTemplate, ListManagedJobTemplates, DescribeManagedJobTemplate; the AWS managed
//! templates (their documents and `documentParameters`, as AWS publishes them) and the
//! substitution of `${aws:iot:parameter:KEY}` placeholders (aws-iot-jobs.md §2.2, §7.8).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::jobs::MAX_DESTINATION_PACKAGE_VERSIONS;
use super::tags::{check_tag, MAX_TAGS};
use super::{check_max_results, Timestamp};
use crate::job_config::{
    AbortConfig, JobConfigs, MaintenanceWindow, PresignedUrlConfig, RetryConfig, RolloutConfig, SchedulingConfig,
    TimeoutConfig,
};
use crate::model::{JobTemplate, Tag};
use crate::{validate, ApiError, ApiResult, Millis};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobTemplateRequest {
    pub job_template_id: String,
    pub job_arn: Option<String>,
    pub document_source: Option<String>,
    pub document: Option<String>,
    pub description: String,
    pub presigned_url_config: Option<PresignedUrlConfig>,
    pub job_executions_rollout_config: Option<RolloutConfig>,
    pub abort_config: Option<AbortConfig>,
    pub timeout_config: Option<TimeoutConfig>,
    pub tags: Option<Vec<Tag>>,
    pub job_executions_retry_config: Option<RetryConfig>,
    pub maintenance_windows: Option<Vec<MaintenanceWindow>>,
    pub destination_package_versions: Option<Vec<String>>,
    /// The document read from `documentSource` (filled by the engine before the write; never
    /// from the wire).
    #[serde(skip)]
    pub fetched_document: Option<String>,
}

impl CreateJobTemplateRequest {
    pub fn check(&self, now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_template_id, "jobTemplateId")?;
        validate::free_text(&self.description, "description")?;
        match (&self.job_arn, &self.document, &self.document_source) {
            (Some(arn), None, None) => check_arn(arn, "jobArn")?,
            (None, Some(d), None) => {
                validate::job_document(d)?;
            }
            (None, None, Some(url)) => match &self.fetched_document {
                Some(d) => {
                    validate::job_document(d)?;
                }
                None => return Err(ApiError::invalid(format!("The job document at {url} could not be read"))),
            },
            (None, None, None) => {
                return Err(ApiError::invalid("One of jobArn, document or documentSource must be specified"))
            }
            _ => return Err(ApiError::invalid("Specify only one of jobArn, document and documentSource")),
        }
        self.configs().check(now)?;
        let tags = self.tags.as_deref().unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(format!("tags can have at most {MAX_TAGS} items")));
        }
        tags.iter().try_for_each(check_tag)?;
        check_package_versions(self.destination_package_versions.as_deref())
    }

    /// The configs this request sets (maintenance windows as a schedule without times).
    pub fn configs(&self) -> JobConfigs {
        JobConfigs {
            presigned_url_config: self.presigned_url_config.clone(),
            job_executions_rollout_config: self.job_executions_rollout_config.clone(),
            abort_config: self.abort_config.clone(),
            timeout_config: self.timeout_config.clone(),
            job_executions_retry_config: self.job_executions_retry_config.clone(),
            scheduling_config: windows_only(self.maintenance_windows.clone()),
        }
    }
}

/// A schedule that only carries maintenance windows (`None` without any).
pub fn windows_only(windows: Option<Vec<MaintenanceWindow>>) -> Option<SchedulingConfig> {
    windows.map(|w| SchedulingConfig {
        start_time: None,
        end_time: None,
        end_behavior: None,
        maintenance_windows: Some(w),
    })
}

/// What a template keeps of a job's configs: all but the schedule's times.
pub fn template_configs(job: &JobConfigs) -> JobConfigs {
    JobConfigs {
        scheduling_config: windows_only(job.scheduling_config.as_ref().and_then(|s| s.maintenance_windows.clone())),
        ..job.clone()
    }
}

/// The configs of a job made from a template: each config the request sets wins, the
/// template's fill the rest (maintenance windows join the request's schedule unless it has
/// its own).
pub fn merge_configs(request: &JobConfigs, template: &JobConfigs) -> JobConfigs {
    let windows = template.scheduling_config.as_ref().and_then(|s| s.maintenance_windows.clone());
    let scheduling_config = match (request.scheduling_config.clone(), windows) {
        (Some(mut s), Some(w)) if s.maintenance_windows.is_none() => {
            s.maintenance_windows = Some(w);
            Some(s)
        }
        (Some(s), _) => Some(s),
        (None, w) => windows_only(w),
    };
    JobConfigs {
        presigned_url_config: request.presigned_url_config.clone().or_else(|| template.presigned_url_config.clone()),
        job_executions_rollout_config: request
            .job_executions_rollout_config
            .clone()
            .or_else(|| template.job_executions_rollout_config.clone()),
        abort_config: request.abort_config.clone().or_else(|| template.abort_config.clone()),
        timeout_config: request.timeout_config.clone().or_else(|| template.timeout_config.clone()),
        job_executions_retry_config: request
            .job_executions_retry_config
            .clone()
            .or_else(|| template.job_executions_retry_config.clone()),
        scheduling_config,
    }
}

static ARN: LazyLock<Regex> = LazyLock::new(|| Regex::new("^arn:[!-~]+$").expect("static pattern"));

/// An ARN member (`JobArn`, `JobTemplateArn`, `PackageVersionArn`): 1..1600, `^arn:[!-~]+$`.
pub fn check_arn(value: &str, member: &str) -> ApiResult<()> {
    if !(1..=1600).contains(&value.chars().count()) || !ARN.is_match(value) {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
             Member must have length between 1 and 1600 and satisfy regular expression pattern: ^arn:[!-~]+$"
        )));
    }
    Ok(())
}

pub fn check_package_versions(versions: Option<&[String]>) -> ApiResult<()> {
    let versions = versions.unwrap_or_default();
    if versions.len() > MAX_DESTINATION_PACKAGE_VERSIONS {
        return Err(ApiError::invalid(format!(
            "destinationPackageVersions can have at most {MAX_DESTINATION_PACKAGE_VERSIONS} items"
        )));
    }
    versions.iter().try_for_each(|v| check_arn(v, "destinationPackageVersions"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobTemplateResponse {
    pub job_template_arn: String,
    pub job_template_id: String,
}

/// DescribeJobTemplate and DeleteJobTemplate: the template by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateIdRequest {
    pub job_template_id: String,
}

pub type DescribeJobTemplateRequest = JobTemplateIdRequest;
pub type DeleteJobTemplateRequest = JobTemplateIdRequest;

impl JobTemplateIdRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        validate::job_id(&self.job_template_id, "jobTemplateId")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobTemplateResponse {
    pub job_template_arn: String,
    pub job_template_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_source: Option<String>,
    pub document: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<PresignedUrlConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<RolloutConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<AbortConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<TimeoutConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<RetryConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_windows: Option<Vec<MaintenanceWindow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_package_versions: Option<Vec<String>>,
}

impl From<&JobTemplate> for DescribeJobTemplateResponse {
    fn from(t: &JobTemplate) -> Self {
        let c = &t.configs;
        DescribeJobTemplateResponse {
            job_template_arn: t.job_template_arn.clone(),
            job_template_id: t.job_template_id.clone(),
            description: t.description.clone(),
            document_source: t.document_source.clone(),
            document: t.document.clone(),
            created_at: Timestamp(t.created_at),
            presigned_url_config: c.presigned_url_config.clone(),
            job_executions_rollout_config: c.job_executions_rollout_config.clone(),
            abort_config: c.abort_config.clone(),
            timeout_config: c.timeout_config.clone(),
            job_executions_retry_config: c.job_executions_retry_config.clone(),
            maintenance_windows: c.scheduling_config.as_ref().and_then(|s| s.maintenance_windows.clone()),
            destination_package_versions: t.destination_package_versions.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobTemplatesRequest {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

impl ListJobTemplatesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_max_results(self.max_results)
    }
}

/// `JobTemplateSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateSummary {
    pub job_template_arn: String,
    pub job_template_id: String,
    pub description: String,
    pub created_at: Timestamp,
}

impl From<&JobTemplate> for JobTemplateSummary {
    fn from(t: &JobTemplate) -> Self {
        JobTemplateSummary {
            job_template_arn: t.job_template_arn.clone(),
            job_template_id: t.job_template_id.clone(),
            description: t.description.clone(),
            created_at: Timestamp(t.created_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobTemplatesResponse {
    pub job_templates: Vec<JobTemplateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ----------------------------------------------------------------------------- managed

/// The one version AWS publishes of each managed template.
pub const MANAGED_VERSION: &str = "1.0";

/// A `DocumentParameter` of a managed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DocumentParameter {
    pub key: &'static str,
    pub description: &'static str,
    pub regex: &'static str,
    pub example: &'static str,
    pub optional: bool,
}

/// An AWS managed job template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedTemplate {
    pub name: &'static str,
    pub description: &'static str,
    pub document: &'static str,
    pub parameters: &'static [DocumentParameter],
}

const RUN_AS_USER: DocumentParameter = DocumentParameter {
    key: "runAsUser",
    description:
        "Execute handler as another user. If not specified, then handler is executed as the same user as device client.",
    regex: "(.){0,256}",
    example: "user1",
    optional: true,
};

const PATH_TO_HANDLER: DocumentParameter = DocumentParameter {
    key: "pathToHandler",
    description:
        "Path to handler on the device. If not specified, then device client will use the current working directory.",
    regex: "(.){0,4096}",
    example: "/path/to/handler/script",
    optional: true,
};

const fn required(key: &'static str, description: &'static str, example: &'static str) -> DocumentParameter {
    DocumentParameter { key, description, regex: "(.*?)", example, optional: false }
}

const PACKAGES_INSTALL: DocumentParameter =
    required("packages", "Space separated list of packages to install.", "package1 package2");
const PACKAGES_REMOVE: DocumentParameter =
    required("packages", "Space separated list of packages to uninstall.", "package1 package2");
const SERVICES: DocumentParameter =
    required("services", "Space separated list of system services.", "service1 service2");

/// The managed templates AWS publishes (developer guide, "Managed template remote actions
/// and job documents"; the AWS-Download-File parameters as `describe-managed-job-template`
/// shows them). The wording of the descriptions of `packages`, `services` and `command`,
/// and of four template descriptions, is ours: AWS documents their meaning, not the text.
pub static MANAGED_TEMPLATES: &[ManagedTemplate] = &[
    ManagedTemplate {
        name: "AWS-Download-File",
        description: "A managed job template for downloading a file.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Download-File","type":"runHandler","input":{"handler":"download-file.sh","args":["${aws:iot:parameter:downloadUrl}","${aws:iot:parameter:filePath}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[
            required("downloadUrl", "URL of file to download.", "http://www.example.com/index.html"),
            required("filePath", "Path on the device where downloaded file is written.", "/path/to/file"),
            RUN_AS_USER,
            PATH_TO_HANDLER,
        ],
    },
    ManagedTemplate {
        name: "AWS-Install-Application",
        description: "A managed job template for installing one or more applications.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Install-Application","type":"runHandler","input":{"handler":"install-packages.sh","args":["${aws:iot:parameter:packages}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[PACKAGES_INSTALL, RUN_AS_USER, PATH_TO_HANDLER],
    },
    ManagedTemplate {
        name: "AWS-Reboot",
        description: "A managed job template for rebooting the device.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Reboot","type":"runHandler","input":{"handler":"reboot.sh","path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[RUN_AS_USER, PATH_TO_HANDLER],
    },
    ManagedTemplate {
        name: "AWS-Remove-Application",
        description: "A managed job template for uninstalling one or more applications.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Remove-Application","type":"runHandler","input":{"handler":"remove-packages.sh","args":["${aws:iot:parameter:packages}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[PACKAGES_REMOVE, RUN_AS_USER, PATH_TO_HANDLER],
    },
    ManagedTemplate {
        name: "AWS-Restart-Application",
        description: "A managed job template for restarting one or more system services.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Restart-Application","type":"runHandler","input":{"handler":"restart-services.sh","args":["${aws:iot:parameter:services}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[SERVICES, RUN_AS_USER, PATH_TO_HANDLER],
    },
    ManagedTemplate {
        name: "AWS-Run-Command",
        description: "A managed job template for running a command.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Run-Command","type":"runCommand","input":{"command":"${aws:iot:parameter:command}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[
            required(
                "command",
                "Comma separated command to run on the device; a comma inside the command itself must be escaped.",
                "ls,-la,/tmp",
            ),
            RUN_AS_USER,
        ],
    },
    ManagedTemplate {
        name: "AWS-Start-Application",
        description: "A managed job template for starting one or more system services.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Start-Application","type":"runHandler","input":{"handler":"start-services.sh","args":["${aws:iot:parameter:services}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[SERVICES, RUN_AS_USER, PATH_TO_HANDLER],
    },
    ManagedTemplate {
        name: "AWS-Stop-Application",
        description: "A managed job template for stopping one or more system services.",
        document: r#"{"version":"1.0","steps":[{"action":{"name":"Stop-Application","type":"runHandler","input":{"handler":"stop-services.sh","args":["${aws:iot:parameter:services}"],"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}"#,
        parameters: &[SERVICES, RUN_AS_USER, PATH_TO_HANDLER],
    },
];

/// The managed template of that name and version (`None`: the default, the only one).
pub fn managed_template(name: &str, version: Option<&str>) -> Option<&'static ManagedTemplate> {
    if version.is_some_and(|v| v != MANAGED_VERSION) {
        return None;
    }
    MANAGED_TEMPLATES.iter().find(|t| t.name == name)
}

fn managed_not_found(name: &str, version: Option<&str>) -> ApiError {
    match version {
        Some(v) => ApiError::not_found(format!("Managed job template {name} with version {v} does not exist.")),
        None => ApiError::not_found(format!("Managed job template {name} does not exist.")),
    }
}

/// The ARN of a managed template: it belongs to the region, no account.
pub fn managed_arn(region: &str, t: &ManagedTemplate) -> String {
    format!("arn:aws:iot:{region}::jobtemplate/{}:{MANAGED_VERSION}", t.name)
}

/// A `jobTemplateArn` names a managed template when its resource is `NAME:VERSION`
/// (custom template ids cannot hold a colon): the template, or not-found.
pub fn managed_of_resource(resource: &str) -> Option<ApiResult<&'static ManagedTemplate>> {
    let (name, version) = resource.split_once(':')?;
    Some(managed_template(name, Some(version)).ok_or_else(|| managed_not_found(name, Some(version))))
}

/// The placeholder of a document parameter.
fn placeholder(key: &str) -> String {
    format!("${{aws:iot:parameter:{key}}}")
}

/// A parameter's regex, matched against the whole value.
fn full_match(regex: &str, value: &str) -> bool {
    Regex::new(&format!("^(?:{regex})$")).is_ok_and(|re| re.is_match(value))
}

/// The managed template's document with `params` substituted: every key must be one of
/// its parameters and match its regex, every non-optional parameter must be given, and an
/// optional one left out becomes empty (the device client then uses its default). Values
/// are escaped as the JSON string they land in.
pub fn substitute(t: &ManagedTemplate, params: &BTreeMap<String, String>) -> ApiResult<String> {
    for key in params.keys() {
        if !t.parameters.iter().any(|p| p.key == key) {
            return Err(ApiError::invalid(format!(
                "Document parameter {key} is not a parameter of the managed template {}",
                t.name
            )));
        }
    }
    let mut document = t.document.to_string();
    for p in t.parameters {
        let value = match params.get(p.key) {
            Some(v) if !full_match(p.regex, v) => {
                return Err(ApiError::invalid(format!(
                    "Document parameter {} does not match its pattern {}",
                    p.key, p.regex
                )))
            }
            Some(v) => v.as_str(),
            None if p.optional => "",
            None => {
                return Err(ApiError::invalid(format!(
                    "The required document parameter {} of the managed template {} is missing",
                    p.key, t.name
                )))
            }
        };
        let quoted = serde_json::to_string(value).map_err(|e| ApiError::invalid(e.to_string()))?;
        let escaped = &quoted[1..quoted.len() - 1];
        document = document.replace(&placeholder(p.key), escaped);
    }
    validate::job_document(&document)?;
    Ok(document)
}

static PARAMETER_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[a-zA-Z0-9_-]+$").expect("static pattern"));

/// CreateJob's `documentParameters` map: keys 1..128 `[a-zA-Z0-9_-]+`, values 1..30720
/// characters without control characters.
pub fn check_document_parameters(params: &BTreeMap<String, String>) -> ApiResult<()> {
    for (k, v) in params {
        if !(1..=128).contains(&k.chars().count()) || !PARAMETER_KEY.is_match(k) {
            return Err(ApiError::invalid(format!(
                "documentParameters key '{k}' must have length between 1 and 128 and match [a-zA-Z0-9_-]+"
            )));
        }
        if !(1..=30_720).contains(&v.chars().count()) || v.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "documentParameters value of {k} must have length between 1 and 30720 and no control characters"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListManagedJobTemplatesRequest {
    pub template_name: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

impl ListManagedJobTemplatesRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        if let Some(n) = &self.template_name {
            check_template_name(n)?;
        }
        check_max_results(self.max_results)
    }

    /// The templates it lists: all, or every version of the one named (which must exist).
    pub fn templates(&self) -> ApiResult<Vec<&'static ManagedTemplate>> {
        match &self.template_name {
            None => Ok(MANAGED_TEMPLATES.iter().collect()),
            Some(n) => managed_template(n, None).map(|t| vec![t]).ok_or_else(|| managed_not_found(n, None)),
        }
    }
}

fn check_template_name(name: &str) -> ApiResult<()> {
    if !(1..=64).contains(&name.chars().count()) {
        return Err(ApiError::invalid("templateName must have length between 1 and 64"));
    }
    Ok(())
}

/// `ManagedJobTemplateSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedJobTemplateSummary {
    pub template_arn: String,
    pub template_name: String,
    pub description: String,
    pub environments: Vec<String>,
    pub template_version: String,
}

impl ManagedJobTemplateSummary {
    pub fn new(region: &str, t: &ManagedTemplate) -> Self {
        ManagedJobTemplateSummary {
            template_arn: managed_arn(region, t),
            template_name: t.name.to_string(),
            description: t.description.to_string(),
            environments: vec!["LINUX".to_string()],
            template_version: MANAGED_VERSION.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListManagedJobTemplatesResponse {
    pub managed_job_templates: Vec<ManagedJobTemplateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeManagedJobTemplateRequest {
    pub template_name: String,
    pub template_version: Option<String>,
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[1-9]+.[0-9]+").expect("static pattern"));

impl DescribeManagedJobTemplateRequest {
    pub fn check(&self, _now: Millis) -> ApiResult<()> {
        check_template_name(&self.template_name)?;
        match &self.template_version {
            Some(v) if !VERSION.is_match(v) => {
                Err(ApiError::invalid(format!("templateVersion '{v}' must match ^[1-9]+.[0-9]+")))
            }
            _ => Ok(()),
        }
    }

    pub fn template(&self) -> ApiResult<&'static ManagedTemplate> {
        let version = self.template_version.as_deref();
        managed_template(&self.template_name, version).ok_or_else(|| managed_not_found(&self.template_name, version))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeManagedJobTemplateResponse {
    pub template_name: String,
    pub template_arn: String,
    pub description: String,
    pub template_version: String,
    pub environments: Vec<String>,
    pub document_parameters: Vec<DocumentParameter>,
    pub document: String,
}

impl DescribeManagedJobTemplateResponse {
    pub fn new(region: &str, t: &ManagedTemplate) -> Self {
        let s = ManagedJobTemplateSummary::new(region, t);
        DescribeManagedJobTemplateResponse {
            template_name: s.template_name,
            template_arn: s.template_arn,
            description: s.description,
            template_version: s.template_version,
            environments: s.environments,
            document_parameters: t.parameters.to_vec(),
            document: t.document.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_managed_document_is_json_with_a_placeholder_per_parameter() {
        assert_eq!(MANAGED_TEMPLATES.len(), 8);
        for t in MANAGED_TEMPLATES {
            validate::job_document(t.document).unwrap();
            let used = t.document.matches("${aws:iot:parameter:").count();
            assert_eq!(used, t.parameters.len(), "{}", t.name);
            for p in t.parameters {
                assert!(t.document.contains(&placeholder(p.key)), "{} {}", t.name, p.key);
                assert!(Regex::new(p.regex).is_ok());
            }
        }
    }

    #[test]
    fn substitution_checks_keys_requires_and_escapes() {
        let t = managed_template("AWS-Run-Command", Some("1.0")).unwrap();
        let doc = substitute(t, &params(&[("command", r#"echo,"hi""#)])).unwrap();
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["steps"][0]["action"]["input"]["command"], json!(r#"echo,"hi""#));
        assert_eq!(v["steps"][0]["action"]["runAsUser"], json!(""));
        assert!(substitute(t, &params(&[])).unwrap_err().message.contains("required document parameter command"));
        let extra = substitute(t, &params(&[("command", "ls"), ("pathToHandler", "/x")])).unwrap_err();
        assert!(extra.message.contains("pathToHandler is not a parameter"));
        let long = "u".repeat(257);
        assert!(substitute(t, &params(&[("command", "ls"), ("runAsUser", &long)])).is_err());
        assert!(managed_template("AWS-Run-Command", Some("2.0")).is_none());
        assert!(matches!(managed_of_resource("AWS-Nope:1.0"), Some(Err(_))));
        assert!(managed_of_resource("custom").is_none());
    }

    #[test]
    fn create_template_needs_exactly_one_document_source() {
        let base = CreateJobTemplateRequest {
            job_template_id: "t".into(),
            description: "d".into(),
            document: Some("{}".into()),
            ..Default::default()
        };
        assert!(base.check(0).is_ok());
        let both = CreateJobTemplateRequest { job_arn: Some("arn:aws:iot:::job/j".into()), ..base.clone() };
        assert!(both.check(0).is_err());
        let none = CreateJobTemplateRequest { document: None, ..base.clone() };
        assert!(none.check(0).is_err());
        let s3 = CreateJobTemplateRequest { document: None, document_source: Some("https://s3/x".into()), ..base };
        assert!(s3.check(0).unwrap_err().message.contains("could not be read"));
        let fetched = CreateJobTemplateRequest { fetched_document: Some("{}".into()), ..s3 };
        assert!(fetched.check(0).is_ok());
    }

    #[test]
    fn request_configs_override_the_template_and_windows_join() {
        let window = MaintenanceWindow { start_time: "cron(0 0 * * ? *)".into(), duration_in_minutes: 60 };
        let template = JobConfigs {
            timeout_config: Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(5) }),
            abort_config: None,
            scheduling_config: windows_only(Some(vec![window.clone()])),
            ..Default::default()
        };
        let request = JobConfigs {
            timeout_config: Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(9) }),
            scheduling_config: Some(SchedulingConfig {
                start_time: Some("2030-01-01T00:00".into()),
                end_time: None,
                end_behavior: None,
                maintenance_windows: None,
            }),
            ..Default::default()
        };
        let merged = merge_configs(&request, &template);
        assert_eq!(merged.timeout_config.unwrap().in_progress_timeout_in_minutes, Some(9));
        let s = merged.scheduling_config.unwrap();
        assert_eq!(s.start_time.as_deref(), Some("2030-01-01T00:00"));
        assert_eq!(s.maintenance_windows, Some(vec![window]));
    }
}
