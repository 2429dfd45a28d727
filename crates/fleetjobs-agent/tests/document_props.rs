//! Property tests of the job-document parser: a job document is whatever an operator (or an
//! attacker with create-job rights) wrote, so any JSON must parse into a plan or a clean
//! error, never a panic, and a parsed plan never runs a handler from outside its directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use fleetjobs_agent::document::parse;
use fleetjobs_agent::plan::Action;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("1.0".to_string()),
            Just("default".to_string()),
            Just("../../etc/passwd".to_string()),
            Just("/bin/sh".to_string()),
            Just("install".to_string()),
            Just("runHandler".to_string()),
            Just("runCommand".to_string()),
            Just("reboot.sh".to_string()),
            "[a-zA-Z0-9./_ -]{0,16}",
            any::<String>(),
        ]
        .prop_map(Value::String),
    ]
}

/// Keys the parsers look for, so random documents reach deep into both schemas.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("version".to_string()),
        Just("operation".to_string()),
        Just("steps".to_string()),
        Just("finalStep".to_string()),
        Just("action".to_string()),
        Just("name".to_string()),
        Just("type".to_string()),
        Just("input".to_string()),
        Just("handler".to_string()),
        Just("args".to_string()),
        Just("path".to_string()),
        Just("command".to_string()),
        Just("runAsUser".to_string()),
        Just("allowStdErr".to_string()),
        Just("ignoreStepFailure".to_string()),
        Just("timeoutSeconds".to_string()),
        Just("files".to_string()),
        Just("fileName".to_string()),
        Just("fileSource".to_string()),
        Just("url".to_string()),
        Just("checksum".to_string()),
        Just("packageName".to_string()),
        Just("workingDirectory".to_string()),
        "[a-zA-Z]{1,10}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_json_parses_or_fails_cleanly(doc in value()) {
        if let Ok(plan) = parse(&doc) {
            for step in plan.steps.iter().chain(plan.final_step.iter()) {
                if let Action::RunHandler { handler, .. } = &step.action {
                    prop_assert!(!handler.split('/').any(|c| c == ".."), "handler escapes its directory: {}", handler);
                }
            }
        }
    }

    #[test]
    fn device_client_documents_parse_or_fail_cleanly(steps in prop::collection::vec(value(), 0..4), last in value()) {
        let _ = parse(&json!({"version": "1.0", "steps": steps, "finalStep": last}));
        let wrapped: Vec<Value> = steps.into_iter().map(|s| json!({"action": s})).collect();
        let _ = parse(&json!({"version": "1.0", "steps": wrapped}));
    }
}
