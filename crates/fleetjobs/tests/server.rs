//! The real server, started as a process on free ports, driven over real sockets: SigV4 HTTP
//! for the control plane, MQTT 3.1.1 over mutual TLS for devices.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::time::Duration;

use serde_json::json;
use support::{own_jobs_policy, Device, Server};
use tokio::io::AsyncWriteExt;

fn job_body(thing: &str) -> serde_json::Value {
    json!({"targets": [format!("arn:aws:iot:::thing/{thing}")], "document": "{\"operation\":\"customJob\",\"otherInfo\":\"someValue\"}", "description": "My First test job", "targetSelection": "SNAPSHOT"})
}

#[tokio::test]
async fn a_device_runs_a_job_end_to_end() {
    let server = Server::start();
    let id = server.device_identity("pi", &own_jobs_policy("pi")).await;
    let mut device = Device::connect(&server, &id, "pi").await.expect("connects");
    assert_eq!(device.subscribe("$aws/things/pi/jobs/notify-next").await, 1);
    assert_eq!(device.subscribe("$aws/events/#").await, 1);

    server.ok("PUT", "/jobs/job-1", "", Some(job_body("pi"))).await;
    let next = device.expect("$aws/things/pi/jobs/notify-next").await;
    assert_eq!(next["execution"]["jobDocument"]["operation"], "customJob");

    device.publish("$aws/things/pi/jobs/job-1/update", &json!({"status": "IN_PROGRESS", "clientToken": "a"})).await;
    let accepted = device.expect("$aws/things/pi/jobs/job-1/update/accepted").await;
    assert_eq!(accepted["clientToken"], "a");
    device
        .publish("$aws/things/pi/jobs/job-1/update", &json!({"status": "SUCCEEDED", "statusDetails": {"step": "done"}}))
        .await;
    let event = device.expect("$aws/events/jobExecution/job-1/succeeded").await;
    assert_eq!(event["statusDetails"]["step"], "done");
    let completed = device.expect("$aws/events/job/job-1/completed").await;
    assert_eq!(completed["jobProcessDetails"]["numberOfSucceededThings"], 1);

    let job = server.ok("GET", "/jobs/job-1", "", None).await;
    assert_eq!(job["job"]["status"], "COMPLETED");
    let exec = server.ok("GET", "/things/pi/jobs/job-1", "", None).await;
    assert_eq!(exec["execution"]["statusDetails"]["detailsMap"]["step"], "done");
}

#[tokio::test]
async fn sigv4_failures_are_aws_shaped() {
    let server = Server::start();
    let key = server.access_key.clone();
    let (status, code, body) = server.call_as("GET", "/jobs", "", None, &[], &key, "wrong-secret").await;
    assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")));
    assert!(body["message"].as_str().unwrap().contains("signature"));
    let (status, code, _) = server.call_as("GET", "/jobs", "", None, &[], "AKIAUNKNOWN", "x").await;
    assert_eq!((status, code.as_deref()), (403, Some("UnrecognizedClientException")));
    let (status, code, body) = server.call("PUT", "/jobs/bad%20id", "", Some(job_body("nope"))).await;
    assert_eq!((status, code.as_deref()), (400, Some("InvalidRequestException")), "{body}");
    let (status, code, _) = server.call("GET", "/jobs/missing", "", None).await;
    assert_eq!((status, code.as_deref()), (404, Some("ResourceNotFoundException")));
    let (status, code, _) = server.call("PUT", "/jobs/j", "", Some(job_body("ghost"))).await;
    assert_eq!((status, code.as_deref()), (404, Some("ResourceNotFoundException")));
}

#[tokio::test]
async fn devices_are_confined_to_their_policy() {
    let server = Server::start();
    let a = server.device_identity("thing-a", &own_jobs_policy("thing-a")).await;
    server.device_identity("thing-b", &own_jobs_policy("thing-b")).await;
    server.ok("PUT", "/jobs/job-b", "", Some(job_body("thing-b"))).await;

    let mut device = Device::connect(&server, &a, "thing-a").await.unwrap();
    assert_eq!(
        device.subscribe("$aws/things/thing-b/jobs/notify-next").await,
        0x80,
        "SUBACK refuses another thing's topic"
    );
    device.publish("$aws/things/thing-b/jobs/job-b/update", &json!({"status": "SUCCEEDED"})).await;
    assert!(device.closed_within(Duration::from_secs(5)).await, "a denied PUBLISH disconnects the client");
    let exec = server.ok("GET", "/things/thing-b/jobs/job-b", "", None).await;
    assert_eq!(exec["execution"]["status"], "QUEUED", "the other thing's execution is unchanged");
}

#[tokio::test]
async fn certificates_must_be_active_and_garbage_is_survived() {
    let server = Server::start();
    let id = server.device_identity("pi", &own_jobs_policy("pi")).await;
    let mut live = Device::connect(&server, &id, "pi").await.unwrap();

    server.ok("PUT", &format!("/certificates/{}", id.certificate_id), "newStatus=INACTIVE", None).await;
    assert!(live.closed_within(Duration::from_secs(5)).await, "deactivation drops live connections");
    assert!(Device::connect(&server, &id, "pi").await.is_err(), "an INACTIVE certificate is refused");

    // Random bytes: over plain TCP (fails the TLS handshake) and inside TLS (fails MQTT).
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.mqtt_port)).await.unwrap();
    let _ = tcp.write_all(&[0x17, 0x03, 0x03, 0xff, 0xff, 1, 2, 3, 4, 5]).await;
    let mut tls = support::tls_stream(&server, &id).await.unwrap();
    let _ = tls.write_all(&[0xff; 64]).await;

    server.ok("PUT", &format!("/certificates/{}", id.certificate_id), "newStatus=ACTIVE", None).await;
    let mut again = Device::connect(&server, &id, "pi").await.expect("the server still serves");
    assert_eq!(again.subscribe("$aws/things/pi/jobs/notify").await, 1);
}

#[tokio::test]
async fn kill_9_loses_nothing_acknowledged() {
    let mut server = Server::start();
    let id = server.device_identity("pi", &own_jobs_policy("pi")).await;
    server.ok("PUT", "/jobs/job-1", "", Some(job_body("pi"))).await;
    let mut device = Device::connect(&server, &id, "pi").await.unwrap();
    device.publish("$aws/things/pi/jobs/start-next", &json!({"clientToken": "s"})).await;
    device.expect("$aws/things/pi/jobs/start-next/accepted").await;

    server.kill9_and_restart();
    let exec = server.ok("GET", "/things/pi/jobs/job-1", "", None).await;
    assert_eq!(exec["execution"]["status"], "IN_PROGRESS");
    assert_eq!(exec["execution"]["versionNumber"], 2);
    let mut device = Device::connect(&server, &id, "pi").await.expect("same CA, same certificate");
    device.publish("$aws/things/pi/jobs/$next/get", &json!({})).await;
    let next = device.expect("$aws/things/pi/jobs/$next/get/accepted").await;
    assert_eq!(next["execution"]["jobId"], "job-1");
}

#[tokio::test]
async fn retained_messages_survive_kill_9() {
    let mut server = Server::start();
    let status = "arn:aws:iot:us-east-1:123456789012";
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{status}:client/*")},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"], "Resource": format!("{status}:topic/status/*")},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{status}:topicfilter/status/*")}
    ]});
    let id = server.device_identity("sensor", &policy).await;
    let mut device = Device::connect(&server, &id, "sensor").await.unwrap();
    device.publish_retained("status/kept", b"up").await;
    device.publish_retained("status/replaced", b"first").await;
    device.publish_retained("status/replaced", b"second").await;
    device.publish_retained("status/cleared", b"soon gone").await;
    device.publish_retained("status/cleared", b"").await;

    // Acknowledged, so durable: nothing is flushed after this point.
    server.kill9_and_restart();
    let mut device = Device::connect(&server, &id, "sensor").await.expect("reconnects");
    assert_eq!(device.subscribe("status/+").await, 1);
    let mut retained = device.publishes_before_ping().await;
    retained.sort();
    assert_eq!(
        retained,
        vec![("status/kept".into(), b"up".to_vec(), true), ("status/replaced".into(), b"second".to_vec(), true)]
    );
}

#[tokio::test]
async fn detaching_the_thing_takes_its_rights_from_a_live_connection() {
    let server = Server::start();
    let arn = "arn:aws:iot:us-east-1:123456789012";
    let thing_topics = format!("{arn}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/*")},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": thing_topics},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{arn}:topicfilter/*")},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{arn}:topic/$aws/events/*")}
    ]});
    let id = server.device_identity("pi", &policy).await;
    server.ok("POST", "/things/other", "", Some(json!({}))).await;
    let mut device = Device::connect(&server, &id, "pi").await.expect("connects");
    assert_eq!(device.subscribe("$aws/things/pi/jobs/notify").await, 1);
    assert_eq!(device.subscribe("$aws/events/#").await, 1);
    server.ok("PUT", "/jobs/job-1", "", Some(job_body("pi"))).await;
    device.expect("$aws/things/pi/jobs/notify").await;

    let (status, _, _) = server
        .call_as(
            "DELETE",
            "/things/pi/principals",
            "",
            None,
            &[("x-amzn-principal", &id.certificate_arn)],
            &server.access_key,
            &server.secret_key,
        )
        .await;
    assert_eq!(status, 200);

    // The thing's notification is no longer delivered. The barrier: a later event, which
    // leaves the server after it (one outbox, in commit order).
    server.ok("PUT", "/jobs/job-2", "", Some(job_body("pi"))).await;
    server.ok("PUT", "/jobs/barrier", "", Some(job_body("other"))).await;
    server.ok("PUT", "/jobs/barrier/cancel", "", Some(json!({}))).await;
    let mut seen = vec![];
    loop {
        let (topic, _) = device.recv(support::TIMEOUT).await.expect("the barrier event");
        if topic == "$aws/events/job/barrier/canceled" {
            break;
        }
        seen.push(topic);
    }
    assert!(!seen.iter().any(|t| t.starts_with("$aws/things/pi/")), "delivered after the detach: {seen:?}");

    // Its next publish on the thing's topics is refused: AWS closes the connection.
    device.publish("$aws/things/pi/jobs/get", &json!({})).await;
    assert!(device.closed_within(support::TIMEOUT).await, "a publish the attachment no longer allows");
}
