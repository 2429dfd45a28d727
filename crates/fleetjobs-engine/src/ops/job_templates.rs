//! Job templates: CreateJobTemplate, DescribeJobTemplate, ListJobTemplates,
//! DeleteJobTemplate, ListManagedJobTemplates, DescribeManagedJobTemplate; and what
//! CreateJob takes from a template (`JobSource`).

use std::collections::BTreeMap;

use fleetjobs_core::arn::ResourceKind;
use fleetjobs_core::model::{JobConfigs, JobTemplate};
use fleetjobs_core::ops::job_templates::*;
use fleetjobs_core::ops::jobs::CreateJobRequest;
use fleetjobs_core::ops::{page, Empty};
use fleetjobs_core::{ApiError, ApiResult, ErrorCode};

use super::job_not_found;
use crate::state::State;
use crate::Engine;

pub(crate) fn template_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job template {id} does not exist."))
}

/// What a new job is made of once its template (if any) is applied.
pub(crate) struct JobSource {
    pub document: String,
    pub document_before_substitution: Option<String>,
    pub description: Option<String>,
    pub configs: JobConfigs,
    pub destination_package_versions: Option<Vec<String>>,
    pub job_template_arn: Option<String>,
    pub document_parameters: Option<BTreeMap<String, String>>,
}

impl Engine {
    /// The document, description and configs of the job `r` creates: its own, or its
    /// template's with its own members overriding them. Managed templates take
    /// `documentParameters`; custom ones refuse them.
    pub(crate) fn job_source(&self, s: &State, r: &CreateJobRequest) -> ApiResult<JobSource> {
        let own = r.configs();
        let Some(arn) = &r.job_template_arn else {
            return Ok(JobSource {
                document: r.inline_document()?.to_string(),
                document_before_substitution: None,
                description: r.description.clone(),
                configs: own,
                destination_package_versions: r.destination_package_versions.clone(),
                job_template_arn: None,
                document_parameters: None,
            });
        };
        let resource = self
            .config
            .scope
            .parse(arn, ResourceKind::JobTemplate)
            .ok_or_else(|| ApiError::invalid(format!("Invalid job template ARN: {arn}")))?;
        if let Some(managed) = managed_of_resource(resource) {
            let managed = managed?;
            let params = r.document_parameters.clone().unwrap_or_default();
            return Ok(JobSource {
                document: substitute(managed, &params)?,
                document_before_substitution: Some(managed.document.to_string()),
                description: r.description.clone().or_else(|| Some(managed.description.to_string())),
                configs: own,
                destination_package_versions: r.destination_package_versions.clone(),
                job_template_arn: Some(arn.clone()),
                document_parameters: r.document_parameters.clone(),
            });
        }
        let t = s.job_templates.get(resource).ok_or_else(|| template_not_found(resource))?;
        if r.document_parameters.is_some() {
            return Err(ApiError::invalid(
                "documentParameters can only be used with AWS managed job templates, not custom ones",
            ));
        }
        Ok(JobSource {
            document: t.document.clone(),
            document_before_substitution: None,
            description: r.description.clone().or_else(|| Some(t.description.clone())),
            configs: merge_configs(&own, &t.configs),
            destination_package_versions: r
                .destination_package_versions
                .clone()
                .or_else(|| t.destination_package_versions.clone()),
            job_template_arn: Some(t.job_template_arn.clone()),
            document_parameters: None,
        })
    }

    pub async fn create_job_template(&self, mut r: CreateJobTemplateRequest) -> ApiResult<CreateJobTemplateResponse> {
        if let (None, None, Some(url)) = (&r.job_arn, &r.document, &r.document_source) {
            r.fetched_document = Some(self.fetch_document(url).await?);
        }
        r.check(self.now())?;
        let id = r.job_template_id.clone();
        self.write(|txn| {
            if txn.s.job_templates.contains_key(&id) {
                // The model's error for a duplicate template id (not ResourceAlreadyExists).
                return Err(ApiError {
                    resource_id: Some(id.clone()),
                    ..ApiError::new(ErrorCode::Conflict, format!("Job template {id} already exists"))
                });
            }
            let own = r.configs();
            let (document, configs, packages) = match &r.job_arn {
                Some(arn) => {
                    let job_id = txn
                        .scope
                        .parse(arn, ResourceKind::Job)
                        .ok_or_else(|| ApiError::invalid(format!("Invalid job ARN: {arn}")))?;
                    let job = txn.s.jobs.get(job_id).ok_or_else(|| job_not_found(job_id))?;
                    let from_job = template_configs(&job.configs);
                    (
                        job.document.clone(),
                        merge_configs(&own, &from_job),
                        r.destination_package_versions.clone().or_else(|| job.destination_package_versions.clone()),
                    )
                }
                None => (
                    r.document.clone().or_else(|| r.fetched_document.clone()).unwrap_or_default(),
                    own,
                    r.destination_package_versions.clone(),
                ),
            };
            let t = JobTemplate {
                job_template_arn: txn.scope.arn(ResourceKind::JobTemplate, &id),
                job_template_id: id.clone(),
                description: r.description.clone(),
                document,
                document_source: r.job_arn.is_none().then(|| r.document_source.clone()).flatten(),
                created_at: txn.now,
                configs,
                destination_package_versions: packages,
                tags: r.tags.clone().filter(|t| !t.is_empty()),
            };
            let out =
                CreateJobTemplateResponse { job_template_arn: t.job_template_arn.clone(), job_template_id: id.clone() };
            txn.put_job_template(t);
            Ok(out)
        })
        .await
    }

    pub async fn describe_job_template(&self, r: DescribeJobTemplateRequest) -> ApiResult<DescribeJobTemplateResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let t = s.job_templates.get(&r.job_template_id).ok_or_else(|| template_not_found(&r.job_template_id))?;
            Ok(DescribeJobTemplateResponse::from(t))
        })
        .await
    }

    pub async fn list_job_templates(&self, r: ListJobTemplatesRequest) -> ApiResult<ListJobTemplatesResponse> {
        r.check(self.now())?;
        self.read(|s| {
            let items: Vec<JobTemplateSummary> = s.job_templates.values().map(JobTemplateSummary::from).collect();
            let (job_templates, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
            Ok(ListJobTemplatesResponse { job_templates, next_token })
        })
        .await
    }

    pub async fn delete_job_template(&self, r: DeleteJobTemplateRequest) -> ApiResult<Empty> {
        r.check(self.now())?;
        self.write(|txn| {
            if !txn.s.job_templates.contains_key(&r.job_template_id) {
                return Err(template_not_found(&r.job_template_id));
            }
            // Jobs made from it keep their copy of its document and configs.
            txn.delete_job_template(&r.job_template_id);
            Ok(Empty {})
        })
        .await
    }

    pub async fn list_managed_job_templates(
        &self,
        r: ListManagedJobTemplatesRequest,
    ) -> ApiResult<ListManagedJobTemplatesResponse> {
        r.check(self.now())?;
        let region = &self.config.scope.region;
        let items: Vec<ManagedJobTemplateSummary> =
            r.templates()?.into_iter().map(|t| ManagedJobTemplateSummary::new(region, t)).collect();
        let (managed_job_templates, next_token) = page(items, r.next_token.as_deref(), r.max_results, 50)?;
        Ok(ListManagedJobTemplatesResponse { managed_job_templates, next_token })
    }

    pub async fn describe_managed_job_template(
        &self,
        r: DescribeManagedJobTemplateRequest,
    ) -> ApiResult<DescribeManagedJobTemplateResponse> {
        r.check(self.now())?;
        Ok(DescribeManagedJobTemplateResponse::new(&self.config.scope.region, r.template()?))
    }
}
