//! Property tests of the policy parser and evaluator: whatever a caller sends as a policy
//! document, and whatever topic a device names, parsing and evaluation answer without
//! panicking, and evaluation keeps IAM's rules (an explicit deny wins; no match, no access).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use fleetjobs_core::policy::{decide, is_allowed, Decision, IotAction, PolicyContext, PolicyDocument};
use proptest::prelude::*;
use serde_json::{json, Value};

const ACTIONS: [IotAction; 4] = [IotAction::Connect, IotAction::Publish, IotAction::Subscribe, IotAction::Receive];

/// Resource patterns as policies write them: wildcards, policy variables, escapes, junk.
fn pattern() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        Just("${iot:ClientId}".to_string()),
        Just("${iot:Connection.Thing.ThingName}".to_string()),
        Just("${iot:Connection.Thing.IsAttached}".to_string()),
        Just("${*}".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just("/".to_string()),
        Just("$aws/things/".to_string()),
        "[a-z#+$/]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| format!("arn:aws:iot:*:*:{}", p.concat()))
}

fn statement() -> impl Strategy<Value = Value> {
    // Mostly valid, so that most documents reach evaluation.
    let effect = prop_oneof![4 => Just(json!("Allow")), 2 => Just(json!("Deny")), 1 => Just(json!("Maybe")), 1 => Just(json!(1))];
    let action = prop_oneof![
        Just(json!("iot:*")),
        Just(json!("iot:Connect")),
        Just(json!(["iot:Publish", "iot:Receive"])),
        Just(json!("iot:Subscribe")),
        Just(json!("*")),
        any::<String>().prop_map(Value::String),
    ];
    let resource =
        prop_oneof![pattern().prop_map(Value::String), prop::collection::vec(pattern(), 0..3).prop_map(|v| json!(v))];
    (effect, action, resource, any::<bool>()).prop_map(|(effect, action, resource, not_action)| {
        let key = if not_action { "NotAction" } else { "Action" };
        json!({"Effect": effect, key: action, "Resource": resource})
    })
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..4)
        .prop_map(|statements| json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

fn context() -> impl Strategy<Value = (String, Option<String>)> {
    ("[a-zA-Z0-9:_/+#-]{0,12}", proptest::option::of("[a-zA-Z0-9_-]{1,12}"))
}

fn topic() -> impl Strategy<Value = String> {
    prop_oneof!["(topic|topicfilter|client)/[a-zA-Z0-9$/+#_-]{0,40}", any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
        let _ = PolicyDocument::parse(&text);
    }

    #[test]
    fn evaluation_never_panics_and_deny_wins(doc in document(), (client, thing) in context(), resource in topic()) {
        let Ok(policy) = PolicyDocument::parse(&doc) else { return Ok(()) };
        let ctx = PolicyContext { client_id: &client, thing_name: thing.as_deref(), certificate_id: None };
        let deny_all = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"iot:*","Resource":"*"}}"#,
        ).unwrap();
        for action in ACTIONS {
            let alone = decide([&policy], action, &resource, &ctx);
            prop_assert_eq!(alone, decide([&policy], action, &resource, &ctx), "deterministic");
            prop_assert_eq!(decide([&policy, &deny_all], action, &resource, &ctx), Decision::ExplicitDeny);
            prop_assert_eq!(decide([&deny_all, &policy], action, &resource, &ctx), Decision::ExplicitDeny);
            prop_assert!(!is_allowed(std::iter::empty::<&PolicyDocument>(), action, &resource, &ctx), "no policy, no access");
            if alone == Decision::Allow {
                prop_assert!(is_allowed([&policy, &policy], action, &resource, &ctx));
            }
        }
    }

    #[test]
    fn a_star_allow_allows_every_topic_but_not_other_actions(resource in "topic/[a-zA-Z0-9$/_-]{0,40}") {
        let policy = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}}"#,
        ).unwrap();
        let ctx = PolicyContext { client_id: "c", thing_name: None, certificate_id: None };
        prop_assert!(is_allowed([&policy], IotAction::Publish, &resource, &ctx));
        prop_assert!(!is_allowed([&policy], IotAction::Subscribe, &resource, &ctx));
    }
}
