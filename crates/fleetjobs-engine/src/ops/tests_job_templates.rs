//! Unit tests of the typed job template operations, built from request types: custom
//! templates (create from a document or a job, duplicate id, describe, list pages, delete,
//! persistence), jobs made from them (their document and configs, the job's own overriding),
//! managed templates (list, describe, jobs with `documentParameters`, missing and extra
//! parameters, the document before substitution).

use std::collections::BTreeMap;

use fleetjobs_core::job_config::{MaintenanceWindow, TimeoutConfig};
use fleetjobs_core::ops::job_templates::*;
use fleetjobs_core::ops::jobs::*;
use fleetjobs_core::ErrorCode;
use serde_json::Value;

use crate::tests::{describe, harness, job_request};

const TEMPLATE_ARN: &str = "arn:aws:iot:us-east-1:123456789012:jobtemplate/tpl";
const RUN_COMMAND: &str = "arn:aws:iot:us-east-1::jobtemplate/AWS-Run-Command:1.0";

fn window() -> MaintenanceWindow {
    MaintenanceWindow { start_time: "cron(0 0 * * ? *)".into(), duration_in_minutes: 60 }
}

fn template(id: &str) -> CreateJobTemplateRequest {
    CreateJobTemplateRequest {
        job_template_id: id.into(),
        description: "nightly".into(),
        document: Some(r#"{"operation":"fromTemplate"}"#.into()),
        timeout_config: Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(30) }),
        maintenance_windows: Some(vec![window()]),
        destination_package_versions: Some(vec!["arn:aws:iot:us-east-1:123456789012:package/p/version/1".into()]),
        ..Default::default()
    }
}

fn by_id(id: &str) -> JobTemplateIdRequest {
    JobTemplateIdRequest { job_template_id: id.into() }
}

fn from_template(job: &str, arn: &str) -> CreateJobRequest {
    CreateJobRequest { document: None, job_template_arn: Some(arn.into()), ..job_request(job, &["a"]) }
}

fn get_document(job: &str, before: bool) -> GetJobDocumentRequest {
    GetJobDocumentRequest { job_id: job.into(), before_substitution: before }
}

#[tokio::test]
async fn custom_templates_are_created_once_described_listed_deleted_and_survive_a_restart() {
    let h = harness();
    let out = h.engine.create_job_template(template("tpl")).await.unwrap();
    assert_eq!((out.job_template_arn.as_str(), out.job_template_id.as_str()), (TEMPLATE_ARN, "tpl"));
    let dup = h.engine.create_job_template(template("tpl")).await.unwrap_err();
    assert_eq!((dup.code, dup.resource_id.as_deref()), (ErrorCode::Conflict, Some("tpl")));
    for i in 0..3 {
        h.engine.create_job_template(template(&format!("more{i}"))).await.unwrap();
    }

    let h = h.reopen();
    let d = h.engine.describe_job_template(by_id("tpl")).await.unwrap();
    assert_eq!(d.document, r#"{"operation":"fromTemplate"}"#);
    assert_eq!(d.maintenance_windows, Some(vec![window()]));
    assert_eq!(d.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(30));
    let page1 =
        h.engine.list_job_templates(ListJobTemplatesRequest { max_results: Some(3), next_token: None }).await.unwrap();
    assert_eq!(page1.job_templates.len(), 3);
    let page2 = h
        .engine
        .list_job_templates(ListJobTemplatesRequest { max_results: Some(3), next_token: page1.next_token })
        .await
        .unwrap();
    assert_eq!((page2.job_templates.len(), page2.next_token), (1, None));

    h.engine.delete_job_template(by_id("tpl")).await.unwrap();
    let gone = h.engine.describe_job_template(by_id("tpl")).await.unwrap_err();
    assert_eq!(gone.code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.delete_job_template(by_id("tpl")).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn a_job_from_a_custom_template_takes_its_document_and_configs_and_overrides_them() {
    let h = harness();
    h.thing("a").await;
    h.engine.create_job_template(template("tpl")).await.unwrap();
    let r = CreateJobRequest {
        timeout_config: Some(TimeoutConfig { in_progress_timeout_in_minutes: Some(45) }),
        ..from_template("job1", TEMPLATE_ARN)
    };
    h.engine.create_job(r).await.unwrap();
    let d = h.engine.describe_job(describe("job1")).await.unwrap().job;
    assert_eq!(d.job_template_arn.as_deref(), Some(TEMPLATE_ARN));
    assert_eq!(d.description.as_deref(), Some("nightly"));
    assert_eq!(d.configs.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(45));
    let windows = d.configs.scheduling_config.and_then(|s| s.maintenance_windows);
    assert_eq!(windows, Some(vec![window()]));
    assert_eq!(d.destination_package_versions.map(|v| v.len()), Some(1));
    let doc = h.engine.get_job_document(get_document("job1", false)).await.unwrap();
    assert_eq!(doc.document, r#"{"operation":"fromTemplate"}"#);

    // documentParameters, a document of its own or an unknown template are refused.
    let params = CreateJobRequest {
        document_parameters: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..from_template("job2", TEMPLATE_ARN)
    };
    assert_eq!(h.engine.create_job(params).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let both = CreateJobRequest { document: Some("{}".into()), ..from_template("job2", TEMPLATE_ARN) };
    assert_eq!(h.engine.create_job(both).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let unknown = from_template("job2", "arn:aws:iot:us-east-1:123456789012:jobtemplate/nope");
    assert_eq!(h.engine.create_job(unknown).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    assert_eq!(h.engine.describe_job(describe("job2")).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    // A template from the job copies its document and configs; the job is unaffected by
    // the template's deletion.
    let from_job = CreateJobTemplateRequest {
        job_template_id: "copy".into(),
        description: "copied".into(),
        job_arn: Some("arn:aws:iot:us-east-1:123456789012:job/job1".into()),
        ..Default::default()
    };
    h.engine.create_job_template(from_job).await.unwrap();
    let copy = h.engine.describe_job_template(by_id("copy")).await.unwrap();
    assert_eq!(copy.document, r#"{"operation":"fromTemplate"}"#);
    assert_eq!(copy.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(45));
    assert_eq!(copy.maintenance_windows, Some(vec![window()]));
    h.engine.delete_job_template(by_id("tpl")).await.unwrap();
    assert!(h.engine.describe_job(describe("job1")).await.is_ok());
    let no_job = CreateJobTemplateRequest {
        job_template_id: "copy2".into(),
        description: "copied".into(),
        job_arn: Some("arn:aws:iot:us-east-1:123456789012:job/nope".into()),
        ..Default::default()
    };
    assert_eq!(h.engine.create_job_template(no_job).await.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn managed_templates_are_listed_described_and_substituted_into_jobs() {
    let h = harness();
    h.thing("a").await;
    let all = h.engine.list_managed_job_templates(ListManagedJobTemplatesRequest::default()).await.unwrap();
    assert_eq!(all.managed_job_templates.len(), 8);
    assert!(all.managed_job_templates.iter().any(|t| t.template_arn == RUN_COMMAND));
    let one = ListManagedJobTemplatesRequest { template_name: Some("AWS-Reboot".into()), ..Default::default() };
    assert_eq!(h.engine.list_managed_job_templates(one).await.unwrap().managed_job_templates.len(), 1);
    let none = ListManagedJobTemplatesRequest { template_name: Some("AWS-Nope".into()), ..Default::default() };
    assert_eq!(h.engine.list_managed_job_templates(none).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    let r = DescribeManagedJobTemplateRequest { template_name: "AWS-Download-File".into(), template_version: None };
    let d = h.engine.describe_managed_job_template(r).await.unwrap();
    let keys: Vec<_> = d.document_parameters.iter().map(|p| p.key).collect();
    assert_eq!(keys, ["downloadUrl", "filePath", "runAsUser", "pathToHandler"]);
    let r = DescribeManagedJobTemplateRequest {
        template_name: "AWS-Download-File".into(),
        template_version: Some("2.0".into()),
    };
    assert_eq!(h.engine.describe_managed_job_template(r).await.unwrap_err().code, ErrorCode::ResourceNotFound);

    let params = |pairs: &[(&str, &str)]| -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    };
    let r = CreateJobRequest {
        document_parameters: params(&[("command", "echo,hello"), ("runAsUser", "pi")]),
        ..from_template("run", RUN_COMMAND)
    };
    let out = h.engine.create_job(r).await.unwrap();
    assert_eq!(out.description.as_deref(), Some("A managed job template for running a command."));
    let doc = h.engine.get_job_document(get_document("run", false)).await.unwrap().document;
    let v: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["steps"][0]["action"]["input"]["command"], "echo,hello");
    assert_eq!(v["steps"][0]["action"]["runAsUser"], "pi");
    let before = h.engine.get_job_document(get_document("run", true)).await.unwrap().document;
    assert!(before.contains("${aws:iot:parameter:command}"));
    let d = h.engine.describe_job(describe("run")).await.unwrap().job;
    assert_eq!(d.job_template_arn.as_deref(), Some(RUN_COMMAND));
    assert_eq!(d.document_parameters.map(|p| p.len()), Some(2));

    // Missing and extra parameters, and an unknown managed template, create nothing.
    let missing = CreateJobRequest { document_parameters: params(&[]), ..from_template("bad1", RUN_COMMAND) };
    assert_eq!(h.engine.create_job(missing).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let extra = CreateJobRequest {
        document_parameters: params(&[("command", "ls"), ("colour", "red")]),
        ..from_template("bad2", RUN_COMMAND)
    };
    assert_eq!(h.engine.create_job(extra).await.unwrap_err().code, ErrorCode::InvalidRequest);
    let unknown = from_template("bad3", "arn:aws:iot:us-east-1::jobtemplate/AWS-Nope:1.0");
    assert_eq!(h.engine.create_job(unknown).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    for id in ["bad1", "bad2", "bad3"] {
        assert_eq!(h.engine.describe_job(describe(id)).await.unwrap_err().code, ErrorCode::ResourceNotFound);
    }
    // documentParameters without a template stay refused.
    let plain = CreateJobRequest { document_parameters: params(&[("command", "ls")]), ..job_request("bad4", &["a"]) };
    assert_eq!(h.engine.create_job(plain).await.unwrap_err().code, ErrorCode::InvalidRequest);
}
