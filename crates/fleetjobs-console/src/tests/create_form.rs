//! The create-job form's full set of fields through the router: each becomes the typed
//! request's config, a bad value is the engine's error beside its field with no job made, a
//! managed template's parameters, and the form's helpers (target search, the job ID check).

use fleetjobs_core::job_config::{
    AbortAction, AbortConfig, AbortCriteria, AbortFailureType, JobEndBehavior, MaintenanceWindow, PresignedUrlConfig,
    RetryConfig, RetryCriteria, RetryFailureType, SchedulingConfig,
};
use fleetjobs_core::ops::jobs::{DescribeJobRequest, GetJobDocumentRequest};
use fleetjobs_core::ops::thing_groups::CreateThingGroupRequest;

use super::*;

/// `YYYY-MM-DDTHH:MM`, `days` from now, as a `datetime-local` field holds it.
fn days_ahead(days: i64) -> String {
    let t = layout::time(now_millis() + days * 24 * 3_600_000);
    t[..16].replace(' ', "T")
}

async fn page_of(h: &Harness, cookie: &str, path: &str) -> (StatusCode, String) {
    let (status, _, body) = send(&h.app, get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await;
    (status, body)
}

async fn job_exists(h: &Harness, id: &str) -> bool {
    h.engine.describe_job(DescribeJobRequest { job_id: id.into(), before_substitution: false }).await.is_ok()
}

#[tokio::test]
async fn every_config_of_the_form_becomes_the_jobs_config() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let (start, end) = (days_ahead(1), days_ahead(8));
    let fields = [
        ("csrf", csrf.as_str()),
        ("job_id", "full-form"),
        ("things", "t1"),
        ("document", r#"{"op": "x"}"#),
        ("target_selection", "SNAPSHOT"),
        ("abort_failure_type_0", "FAILED"),
        ("abort_action_0", "CANCEL"),
        ("abort_threshold_0", "12.5"),
        ("abort_min_executed_0", "10"),
        ("abort_failure_type_1", "TIMED_OUT"),
        ("abort_threshold_1", ""),
        ("abort_min_executed_1", ""),
        ("retry_failure_type_0", "TIMED_OUT"),
        ("retry_count_0", "3"),
        ("retry_failure_type_1", "FAILED"),
        ("retry_count_1", "2"),
        ("timeout_minutes", "45"),
        ("start_time", start.as_str()),
        ("end_time", end.as_str()),
        ("end_behavior", "FORCE_CANCEL"),
        ("window_cron_0", "cron(0 2 ? * SAT *)"),
        ("window_minutes_0", "120"),
        ("window_cron_1", ""),
        ("window_minutes_1", ""),
        ("expires_in_sec", "600"),
    ];
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let job = h.engine.describe_job(DescribeJobRequest { job_id: "full-form".into(), before_substitution: false });
    let c = job.await.unwrap().job.configs;
    let abort = AbortCriteria {
        failure_type: AbortFailureType::Failed,
        action: AbortAction::Cancel,
        threshold_percentage: serde_json::from_str("12.5").unwrap(),
        min_number_of_executed_things: 10,
    };
    assert_eq!(c.abort_config, Some(AbortConfig { criteria_list: vec![abort] }));
    let retry = |failure_type, number_of_retries| RetryCriteria { failure_type, number_of_retries };
    assert_eq!(
        c.job_executions_retry_config,
        Some(RetryConfig {
            criteria_list: vec![retry(RetryFailureType::TimedOut, 3), retry(RetryFailureType::Failed, 2)]
        })
    );
    assert_eq!(c.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(45));
    assert_eq!(
        c.scheduling_config,
        Some(SchedulingConfig {
            start_time: Some(start.clone()),
            end_time: Some(end.clone()),
            end_behavior: Some(JobEndBehavior::ForceCancel),
            maintenance_windows: Some(vec![MaintenanceWindow {
                start_time: "cron(0 2 ? * SAT *)".into(),
                duration_in_minutes: 120
            }]),
        })
    );
    assert_eq!(c.presigned_url_config, Some(PresignedUrlConfig { role_arn: None, expires_in_sec: Some(600) }));

    // The preview of the same form: a day until the scheduled start.
    let (status, _, body) = send(&h.app, post_form("/console/jobs/preview", &cookie, &fields)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-first="), "{body}");
    assert!(body.contains("Abort: the job is canceled once 12.5% of at least 10"), "{body}");
}

#[tokio::test]
async fn a_bad_value_is_the_engines_error_beside_its_field_and_no_job() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let form = |extra: [(&'static str, &'static str); 2]| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("job_id", "bad-values".to_string()),
            ("things", "t1".to_string()),
            ("document", "{}".to_string()),
            // As a browser posts the selects, always.
            ("abort_failure_type_0", "FAILED".to_string()),
            ("retry_failure_type_0", "ALL".to_string()),
        ];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let cases = [
        (
            [("abort_threshold_0", "200"), ("abort_min_executed_0", "5")],
            "Abort",
            "thresholdPercentage must be between 0 and 100",
        ),
        ([("retry_count_0", "11"), ("timeout_minutes", "")], "Retry", "numberOfRetries must be between 0 and 10"),
        ([("window_cron_0", "every day"), ("window_minutes_0", "60")], "Scheduling", "is not a valid cron expression"),
        ([("end_behavior", "CANCEL"), ("start_time", "")], "Scheduling", "endBehavior requires endTime"),
        ([("expires_in_sec", "5"), ("timeout_minutes", "")], "Presigned", "expiresInSec must be between 60 and 3600"),
        (
            [("abort_threshold_0", "many"), ("abort_min_executed_0", "5")],
            "Abort",
            "thresholdPercentage must be a number",
        ),
    ];
    for (extra, field, message) in cases {
        let fields = form(extra);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &fields)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(body.contains(&format!(r#"data-field="{field}""#)), "{extra:?} beside {field}: {body}");
        assert!(body.contains(message), "{extra:?}: {body}");
        assert!(!job_exists(&h, "bad-values").await);
    }
    // The job ID as AWS checks it, first.
    let (status, _, body) = send(
        &h.app,
        post_form("/console/jobs/new", &cookie, &[("csrf", csrf.as_str()), ("job_id", "no spaces"), ("things", "")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(r#"data-field="JobId">InvalidRequestException: 1 validation error"#), "{body}");
    assert!(body.contains("at 'jobId' failed to satisfy constraint"), "{body}");
}

#[tokio::test]
async fn a_managed_template_with_its_parameters() {
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let arn = "arn:aws:iot:us-east-1::jobtemplate/AWS-Run-Command:1.0";
    let (status, page) = page_of(&h, &cookie, "/console/jobs/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!(r#"<option value="{arn}">AWS-Run-Command</option>"#)), "{page}");
    let (_, fields) = page_of(&h, &cookie, &format!("/console/jobs/template-fields?job_template={arn}")).await;
    assert!(fields.contains(r#"name="param_command""#), "{fields}");
    assert!(fields.contains(r#"name="param_runAsUser""#), "{fields}");

    let form = [
        ("csrf", csrf.as_str()),
        ("job_id", "from-template"),
        ("things", "t1"),
        ("document", ""),
        ("job_template", arn),
        ("param_command", "ls,-la,/tmp"),
        ("param_runAsUser", ""),
    ];
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let document = h
        .engine
        .get_job_document(GetJobDocumentRequest { job_id: "from-template".into(), before_substitution: false })
        .await
        .unwrap()
        .document;
    assert!(document.contains(r#""command":"ls,-la,/tmp""#), "{document}");

    // A required parameter left out: the engine's error beside the template, no job.
    let mut missing = form;
    missing[1] = ("job_id", "template-missing");
    missing[5] = ("param_command", "");
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &missing)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(r#"data-field="Template""#) && body.contains("command"), "{body}");
    assert!(body.contains(r#"name="param_command""#), "the fields stay: {body}");
    assert!(!job_exists(&h, "template-missing").await);
}

#[tokio::test]
async fn target_search_and_the_job_id_check() {
    let h = harness().await;
    let (cookie, _) = sign_in(&h, "").await;
    for t in ["pump-1", "pump-2", "valve-1"] {
        h.engine.create_thing(CreateThingRequest { thing_name: t.into(), ..Default::default() }).await.unwrap();
    }
    h.engine
        .create_thing_group(CreateThingGroupRequest { thing_group_name: "pumps".into(), ..Default::default() })
        .await
        .unwrap();
    let (status, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=pum").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-matches="3""#), "{body}");
    assert!(body.contains(r#"data-add-target="things" data-name="pump-1""#), "{body}");
    assert!(body.contains(r#"data-add-target="thing_groups" data-name="pumps""#), "{body}");
    assert!(!body.contains("valve"), "{body}");
    let (_, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=zz").await;
    assert!(body.contains(r#"data-matches="0""#), "{body}");
    let (_, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=%3Cb%3E").await;
    assert!(body.contains("&lt;b&gt;") && !body.contains("<b>"), "{body}");

    let (_, body) = page_of(&h, &cookie, "/console/jobs/check-id?job_id=bad%20id").await;
    assert!(body.contains(r#"data-job-id="invalid""#) && body.contains("InvalidRequestException"), "{body}");
    let (_, body) = page_of(&h, &cookie, "/console/jobs/check-id?job_id=fresh-id").await;
    assert!(body.contains(r#"data-job-id="free""#), "{body}");

    for path in
        ["/console/jobs/targets?target_search=p", "/console/jobs/check-id?job_id=x", "/console/jobs/template-fields"]
    {
        let (status, _, _) = send(&h.app, get(path).header("hx-request", "true").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn an_account_template_brings_its_document_and_configs() {
    use fleetjobs_core::ops::job_templates::CreateJobTemplateRequest;
    let h = harness().await;
    let (cookie, csrf) = sign_in(&h, "").await;
    h.engine.create_thing(CreateThingRequest { thing_name: "t1".into(), ..Default::default() }).await.unwrap();
    let template = h
        .engine
        .create_job_template(CreateJobTemplateRequest {
            job_template_id: "nightly".into(),
            document: Some(r#"{"op":"nightly"}"#.into()),
            description: "Nightly update".into(),
            timeout_config: Some(fleetjobs_core::job_config::TimeoutConfig {
                in_progress_timeout_in_minutes: Some(15),
            }),
            job_executions_rollout_config: Some(fleetjobs_core::job_config::RolloutConfig {
                maximum_per_minute: Some(1),
                exponential_rate: None,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let arn = template.job_template_arn;
    let (_, page) = page_of(&h, &cookie, "/console/jobs/new").await;
    assert!(
        page.contains(&format!(r#"<optgroup label="Custom templates"><option value="{arn}">nightly</option>"#)),
        "{page}"
    );
    let (_, fields) = page_of(&h, &cookie, &format!("/console/jobs/template-fields?job_template={arn}")).await;
    assert!(fields.contains(r#"data-template="nightly""#) && !fields.contains("param_"), "{fields}");
    // The preview counts the template's rate in: two things at one a minute.
    h.engine.create_thing(CreateThingRequest { thing_name: "t2".into(), ..Default::default() }).await.unwrap();
    let two = [("csrf", csrf.as_str()), ("things", "t1 t2"), ("job_template", &arn)];
    let (_, _, preview) = send(&h.app, post_form("/console/jobs/preview", &cookie, &two)).await;
    assert!(preview.contains(r#"data-things="2" data-batches="2""#), "{preview}");
    let form = [("csrf", csrf.as_str()), ("job_id", "from-own-template"), ("things", "t1"), ("job_template", &arn)];
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let job =
        h.engine.describe_job(DescribeJobRequest { job_id: "from-own-template".into(), before_substitution: false });
    let job = job.await.unwrap().job;
    assert_eq!(job.configs.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(15));
    assert_eq!(job.description.as_deref(), Some("Nightly update"));
    // A template and a pasted document: the engine's rule, beside the template.
    let both =
        [("csrf", csrf.as_str()), ("job_id", "both"), ("things", "t1"), ("job_template", &arn), ("document", "{}")];
    let (status, _, body) = send(&h.app, post_form("/console/jobs/new", &cookie, &both)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(r#"data-field="Template">InvalidRequestException: Specify either document"#), "{body}");
}

#[tokio::test]
async fn the_forms_helpers_send_strangers_to_sign_in() {
    let h = harness().await;
    for path in
        ["/console/jobs/targets?target_search=p", "/console/jobs/check-id?job_id=x", "/console/jobs/template-fields"]
    {
        let (status, headers, _) = send(&h.app, get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers[header::LOCATION], "/console/signin", "{path}");
    }
}

#[tokio::test]
async fn with_fleet_indexing_on_the_target_search_asks_the_index() {
    use fleetjobs_core::model::ThingIndexingMode;
    use fleetjobs_core::ops::indexing::{ThingIndexingConfiguration, UpdateIndexingConfigurationRequest};
    let h = harness().await;
    let (cookie, _) = sign_in(&h, "").await;
    for t in ["line:a-1", "line:a-2", "LINE:a-3", "line-b"] {
        h.engine.create_thing(CreateThingRequest { thing_name: t.into(), ..Default::default() }).await.unwrap();
    }
    let (_, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=line%3Aa").await;
    assert!(body.contains(r#"data-matches="2" data-searched="list""#), "{body}");
    h.engine
        .update_indexing_configuration(UpdateIndexingConfigurationRequest {
            thing_indexing_configuration: Some(ThingIndexingConfiguration {
                thing_indexing_mode: ThingIndexingMode::Registry,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    // The same answer from the index: the colon read literally, the case kept.
    let (_, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=line%3Aa").await;
    assert!(body.contains(r#"data-matches="2" data-searched="index""#), "{body}");
    assert!(body.contains(r#"data-name="line:a-1""#) && body.contains(r#"data-name="line:a-2""#), "{body}");
    assert!(!body.contains("LINE:a-3") && !body.contains("line-b"), "{body}");
    // Characters the query language reserves are read literally too.
    let (_, body) = page_of(&h, &cookie, "/console/jobs/targets?target_search=line%2C*").await;
    assert!(body.contains(r#"data-matches="0" data-searched="index""#), "{body}");
}
