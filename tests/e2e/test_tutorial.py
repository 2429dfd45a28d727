"""(a) The AWS tutorial "Create and Track an AWS IoT Core Job", end to end.

The commands are the tutorial's, run with the real AWS CLI; the device is the
tutorial's own sample, aws-iot-device-sdk (v1) ``examples/jobs-example.js`` on Node,
unchanged. A paho-mqtt watcher with its own certificate follows the job through
the ``$aws/events/...`` topics. Then the registry calls a user makes around the
tutorial: describe/list, certificate deactivation, event configuration, clean-up.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from types import SimpleNamespace

import pytest

from e2elib.identity import DeviceIdentity, arn_prefix_of, policy, allow
from e2elib.jobs import assert_counters, describe_execution, describe_job
from e2elib.jsdevice import CONNECTED, CUSTOM_JOB_INVOKED, DEFAULT_JOB_INVOKED, NOTIFICATIONS_STARTED, JobsExample
from e2elib.mqtt import JobsDevice, MqttClient
from e2elib.util import assert_epoch_millis, assert_epoch_seconds, eventually

THING = "MyRaspberryPi"
POLICY = "MyRaspberryPiJobsPolicy"
JOB_ID = "example-job-01"
# example-job.json, byte for byte as the tutorial writes it
JOB_DOCUMENT_TEXT = '{"operation":"customJob","otherInfo":"someValue"}'
JOB_DESCRIPTION = "My First test job"
FINAL_DETAILS = {"operation": "customJob", "step": "finished all steps"}


def tutorial_policy(prefix: str) -> dict:
    """The tutorial's policy: connect, the thing's jobs topics, and testTopic."""
    return policy(
        allow("iot:Connect", f"{prefix}:client/*"),
        allow(
            ["iot:Publish", "iot:Receive"],
            [f"{prefix}:topic/$aws/things/{THING}/jobs/*", f"{prefix}:topic/testTopic"],
        ),
        allow(
            "iot:Subscribe",
            [f"{prefix}:topicfilter/$aws/things/{THING}/jobs/*", f"{prefix}:topicfilter/testTopic"],
        ),
    )


@pytest.fixture(scope="module")
def tutorial(server, tmp_path_factory):
    """Steps 1-5 of the tutorial: thing, keys and certificate, policy, attachments,
    endpoint. Returns every response so the tests can check them."""
    certs = tmp_path_factory.mktemp("tutorial-certs")
    aws = server.aws
    thing = aws("create-thing", "--thing-name", THING)
    cert = aws(
        "create-keys-and-certificate",
        "--set-as-active",
        "--certificate-pem-outfile", str(certs / "certificate.pem.crt"),
        "--public-key-outfile", str(certs / "public.pem.key"),
        "--private-key-outfile", str(certs / "private.pem.key"),
    )
    # On AWS the tutorial downloads Amazon's root CA; here the server generated its own.
    shutil.copyfile(server.root_ca, certs / "root-CA.crt")
    prefix = arn_prefix_of(thing["thingArn"])
    policy_file = server.write_file("tutorial-policy.json", json.dumps(tutorial_policy(prefix), indent=2))
    created_policy = aws("create-policy", "--policy-name", POLICY, "--policy-document", f"file://{policy_file}")
    attach_policy = aws("attach-policy", "--policy-name", POLICY, "--target", cert["certificateArn"])
    attach_principal = aws("attach-thing-principal", "--thing-name", THING, "--principal", cert["certificateArn"])
    endpoint = aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    identity = DeviceIdentity(
        thing_name=THING, thing_arn=thing["thingArn"], cert_dir=certs,
        certificate_arn=cert["certificateArn"], certificate_id=cert["certificateId"], policy_name=POLICY,
    )
    return SimpleNamespace(
        identity=identity, prefix=prefix, thing=thing, cert=cert, policy=created_policy,
        policy_document=tutorial_policy(prefix), attach_policy=attach_policy,
        attach_principal=attach_principal, endpoint=endpoint, certs=certs,
    )


def test_tutorial_setup_commands_answer_like_aws(tutorial):
    """create-thing, create-keys-and-certificate (with the three --*-outfile files),
    create-policy and describe-endpoint answer with the AWS response shapes."""
    t = tutorial
    assert t.thing["thingName"] == THING
    assert re.fullmatch(r"arn:aws:iot:us-east-1:\d{12}:thing/" + THING, t.thing["thingArn"]), t.thing
    assert t.thing.get("thingId"), t.thing

    assert re.fullmatch(r"[0-9a-f]{64}", t.cert["certificateId"]), t.cert
    assert t.cert["certificateArn"] == f"{t.prefix}:cert/{t.cert['certificateId']}"
    assert t.cert["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(t.cert["keyPair"]) >= {"PublicKey", "PrivateKey"}, "KeyPair members are PascalCase"
    assert (t.certs / "certificate.pem.crt").read_text() == t.cert["certificatePem"]
    assert "PRIVATE KEY-----" in (t.certs / "private.pem.key").read_text()
    assert "PUBLIC KEY-----" in (t.certs / "public.pem.key").read_text()

    assert t.policy["policyName"] == POLICY
    assert t.policy["policyArn"] == f"{t.prefix}:policy/{POLICY}"
    assert json.loads(t.policy["policyDocument"]) == t.policy_document
    assert str(t.policy.get("policyVersionId")) == "1"

    assert t.attach_policy == {} and t.attach_principal == {}
    assert isinstance(t.endpoint.get("endpointAddress"), str) and t.endpoint["endpointAddress"], t.endpoint


def test_tutorial_job_runs_on_the_js_sdk_device(server, tutorial, connect_watcher):
    """The tutorial's job: jobs-example.js gets it, runs the customJob handler and
    reports IN_PROGRESS then SUCCEEDED; the job completes; the JOB_EXECUTION
    `succeeded` and JOB `completed` events carry AWS's fields; describe-job,
    describe-job-execution, get-job-document and the three list calls agree."""
    aws = server.aws
    watcher = connect_watcher(
        "tutorial-watcher", f"$aws/events/job/{JOB_ID}/#", f"$aws/events/jobExecution/{JOB_ID}/#"
    )
    device = JobsExample(tutorial.certs, server.mqtt_port, THING).start()
    try:
        device.wait_line(CONNECTED)
        device.wait_line(NOTIFICATIONS_STARTED.format(thing=THING))

        doc_file = server.write_file("example-job.json", JOB_DOCUMENT_TEXT)
        created = aws(
            "create-job",
            "--job-id", JOB_ID,
            "--targets", f"arn:aws:iot:::thing/{THING}",
            "--document", f"file://{doc_file}",
            "--description", JOB_DESCRIPTION,
            "--target-selection", "SNAPSHOT",
        )
        assert created == {
            "jobArn": f"{tutorial.prefix}:job/{JOB_ID}",
            "jobId": JOB_ID,
            "description": JOB_DESCRIPTION,
        }

        device.wait_line(CUSTOM_JOB_INVOKED.format(job_id=JOB_ID))

        execution_event = watcher.wait_topic(f"$aws/events/jobExecution/{JOB_ID}/succeeded", timeout=20).json
        check_execution_event(execution_event, tutorial.thing["thingArn"])
        job_event = watcher.wait_topic(f"$aws/events/job/{JOB_ID}/completed", timeout=20).json
        check_completed_event(job_event)

        # The handler ran exactly once: no second notify-next re-offered the job. The barrier:
        # a second job's notify-next leaves the server after any stray one for the first (one
        # outbox, in commit order), so once the device has run it, a stray would have arrived.
        barrier = "tutorial-barrier-job"  # not a prefix match of JOB_ID in the device output
        aws("create-job", "--job-id", barrier, "--targets", f"arn:aws:iot:::thing/{THING}",
            "--document", f"file://{doc_file}")
        device.wait_line(CUSTOM_JOB_INVOKED.format(job_id=barrier))
        assert device.count(CUSTOM_JOB_INVOKED.format(job_id=JOB_ID)) == 1, device.output()
        assert device.count(DEFAULT_JOB_INVOKED.format(job_id="")) == 0, device.output()
        eventually(lambda: _assert_equal(describe_job(server, barrier)["status"], "COMPLETED"))
    finally:
        device.stop()
    aws("delete-job", "--job-id", barrier)

    job = describe_job(server, JOB_ID)
    assert job["jobId"] == JOB_ID
    assert job["jobArn"] == f"{tutorial.prefix}:job/{JOB_ID}"
    assert job["status"] == "COMPLETED"
    assert job["targetSelection"] == "SNAPSHOT"
    assert job["description"] == JOB_DESCRIPTION
    assert len(job["targets"]) == 1 and job["targets"][0].endswith(f":thing/{THING}"), job["targets"]
    for field in ("createdAt", "lastUpdatedAt", "completedAt"):
        assert_epoch_seconds(job.get(field), f"job.{field}")
    assert_counters(job, succeeded=1)

    execution = describe_execution(server, JOB_ID, THING)
    assert execution["jobId"] == JOB_ID
    assert execution["status"] == "SUCCEEDED"
    assert execution["thingArn"] == tutorial.thing["thingArn"]
    assert execution["statusDetails"] == {"detailsMap": FINAL_DETAILS}
    assert execution["executionNumber"] == 1
    assert execution["versionNumber"] == 3, "QUEUED (1) -> IN_PROGRESS (2) -> SUCCEEDED (3)"
    for field in ("queuedAt", "startedAt", "lastUpdatedAt"):
        assert_epoch_seconds(execution.get(field), f"execution.{field}")

    assert aws("get-job-document", "--job-id", JOB_ID) == {"document": JOB_DOCUMENT_TEXT}

    jobs = aws("list-jobs")["jobs"]
    summary = next((j for j in jobs if j["jobId"] == JOB_ID), None)
    assert summary is not None, jobs
    assert summary["status"] == "COMPLETED" and summary["targetSelection"] == "SNAPSHOT", summary
    assert summary["jobArn"] == job["jobArn"]

    for_job = aws("list-job-executions-for-job", "--job-id", JOB_ID)["executionSummaries"]
    assert [(e["thingArn"], e["jobExecutionSummary"]["status"], e["jobExecutionSummary"]["executionNumber"])
            for e in for_job] == [(tutorial.thing["thingArn"], "SUCCEEDED", 1)], for_job

    for_thing = aws("list-job-executions-for-thing", "--thing-name", THING)["executionSummaries"]
    assert [(e["jobId"], e["jobExecutionSummary"]["status"]) for e in for_thing] == [(JOB_ID, "SUCCEEDED")], for_thing


def check_execution_event(event: dict, thing_arn: str) -> None:
    """JOB_EXECUTION event payload as in the AWS developer guide (events-jobs)."""
    assert event["eventType"] == "JOB_EXECUTION", event
    uuid.UUID(event["eventId"])
    assert_epoch_seconds(event["timestamp"], "event.timestamp")
    assert event["operation"] == "succeeded", event
    assert event["jobId"] == JOB_ID, event
    assert event["thingArn"] == thing_arn, event
    assert event["status"] == "SUCCEEDED", event
    assert event["statusDetails"] == FINAL_DETAILS, event


def check_completed_event(event: dict) -> None:
    """JOB `completed` event payload as in the AWS developer guide (events-jobs)."""
    assert event["eventType"] == "JOB", event
    uuid.UUID(event["eventId"])
    assert_epoch_seconds(event["timestamp"], "event.timestamp")
    assert event["operation"] == "completed", event
    assert event["jobId"] == JOB_ID, event
    assert event["status"] == "COMPLETED", event
    assert event["targetSelection"] == "SNAPSHOT", event
    assert len(event["targets"]) == 1 and event["targets"][0].endswith(f":thing/{THING}"), event
    assert event["description"] == JOB_DESCRIPTION, event
    for field in ("createdAt", "lastUpdatedAt", "completedAt"):
        assert_epoch_millis(event.get(field), f"event.{field}")
    details = event["jobProcessDetails"]
    assert details["numberOfSucceededThings"] == 1, details
    for name in ("numberOfCanceledThings", "numberOfRejectedThings", "numberOfFailedThings", "numberOfRemovedThings"):
        assert details[name] == 0, details


def test_registry_describes_the_tutorial_resources(server, tutorial):
    """create-thing again (idempotent), describe-thing, describe-certificate,
    get-policy, list-policies, list-things, list-certificates, list-thing-principals
    and list-attached-policies show what the tutorial created."""
    aws = server.aws
    cert_arn, cert_id = tutorial.cert["certificateArn"], tutorial.cert["certificateId"]

    # CreateThing is idempotent: the same name with the same (empty) configuration
    # answers 200 with the existing ids.
    assert aws("create-thing", "--thing-name", THING) == tutorial.thing

    thing = aws("describe-thing", "--thing-name", THING)
    assert thing["thingName"] == THING and thing["thingArn"] == tutorial.thing["thingArn"], thing
    assert thing["thingId"] == tutorial.thing["thingId"]
    assert thing.get("attributes", {}) == {} and thing["version"] == 1, thing
    assert thing.get("defaultClientId") == THING, thing

    described = aws("describe-certificate", "--certificate-id", cert_id)["certificateDescription"]
    assert described["certificateId"] == cert_id and described["certificateArn"] == cert_arn, described
    assert described["status"] == "ACTIVE", described
    assert described["certificatePem"].strip() == tutorial.cert["certificatePem"].strip()

    got = aws("get-policy", "--policy-name", POLICY)
    assert got["policyName"] == POLICY and got["policyArn"] == tutorial.policy["policyArn"], got
    assert json.loads(got["policyDocument"]) == tutorial.policy_document
    assert str(got.get("defaultVersionId")) == "1", got

    policies = aws("list-policies")["policies"]
    assert {"policyName": POLICY, "policyArn": tutorial.policy["policyArn"]} in policies, policies

    things = aws("list-things")["things"]
    listed = next((t for t in things if t["thingName"] == THING), None)
    assert listed and listed["thingArn"] == tutorial.thing["thingArn"], things

    certificates = aws("list-certificates")["certificates"]
    listed_cert = next((c for c in certificates if c["certificateId"] == cert_id), None)
    assert listed_cert and listed_cert["certificateArn"] == cert_arn and listed_cert["status"] == "ACTIVE", certificates

    assert aws("list-thing-principals", "--thing-name", THING)["principals"] == [cert_arn]
    attached = aws("list-attached-policies", "--target", cert_arn)["policies"]
    assert attached == [{"policyName": POLICY, "policyArn": tutorial.policy["policyArn"]}], attached


def test_inactive_certificate_is_refused_until_reactivated(server, tutorial):
    """update-certificate --new-status INACTIVE: new MQTT connections with that
    certificate are refused; back to ACTIVE: it connects and is authorized again."""
    aws = server.aws
    cert_id = tutorial.cert["certificateId"]
    aws("update-certificate", "--certificate-id", cert_id, "--new-status", "INACTIVE")
    try:
        assert aws("describe-certificate", "--certificate-id", cert_id)["certificateDescription"]["status"] == "INACTIVE"
        client = MqttClient(tutorial.identity, server.mqtt_port)
        ok, why = client.try_connect()
        client.close()
        assert not ok, "an INACTIVE certificate connected"
        print(f"refused as expected: {why}")
    finally:
        aws("update-certificate", "--certificate-id", cert_id, "--new-status", "ACTIVE")

    assert aws("describe-certificate", "--certificate-id", cert_id)["certificateDescription"]["status"] == "ACTIVE"
    device = JobsDevice(tutorial.identity, server.mqtt_port)
    try:
        device.connect()
        pending = device.get_pending()  # authorized again: the Jobs API answers
        assert "inProgressJobs" in pending and "queuedJobs" in pending, pending
    finally:
        device.close()


def test_event_configurations_default_on_and_job_execution_switch(
    server, make_device, connect_device, connect_watcher, create_job
):
    """describe-event-configurations shows JOB and JOB_EXECUTION enabled (Fleetjobs
    default); with JOB_EXECUTION switched off a job still sends its JOB `completed`
    event but no `$aws/events/jobExecution/...` event; switched on again, they return."""
    aws = server.aws
    config = aws("describe-event-configurations")["eventConfigurations"]
    assert config["JOB"] == {"Enabled": True}, config
    assert config["JOB_EXECUTION"] == {"Enabled": True}, config

    device = connect_device(make_device("events-thing"))
    watcher = connect_watcher("events-watcher", "$aws/events/job/#", "$aws/events/jobExecution/#")

    def run_job(job_id: str) -> None:
        create_job(job_id, ["events-thing"])
        assert device.start_next()["execution"]["jobId"] == job_id
        device.update(job_id, "SUCCEEDED")

    aws("update-event-configurations", "--event-configurations", {"JOB_EXECUTION": {"Enabled": False}})
    try:
        config = aws("describe-event-configurations")["eventConfigurations"]
        assert config["JOB_EXECUTION"] == {"Enabled": False} and config["JOB"] == {"Enabled": True}, config
        since = watcher.mark()
        run_job("events-off-job")
        # A (wrong) execution event would leave in the same commit, before the job's
        # completion event (one outbox, in order): once that is here, so would it be.
        watcher.wait_topic("$aws/events/job/events-off-job/completed", since, timeout=15)
        stray = watcher.received(lambda m: m.topic.startswith("$aws/events/jobExecution/"), since)
        assert stray == [], f"JOB_EXECUTION events while disabled: {stray}"
    finally:
        aws("update-event-configurations", "--event-configurations", {"JOB_EXECUTION": {"Enabled": True}})

    assert aws("describe-event-configurations")["eventConfigurations"]["JOB_EXECUTION"] == {"Enabled": True}
    since = watcher.mark()
    run_job("events-on-job")
    event = watcher.wait_topic("$aws/events/jobExecution/events-on-job/succeeded", since, timeout=15).json
    assert event["status"] == "SUCCEEDED" and event["jobId"] == "events-on-job", event


def test_detach_and_delete_tutorial_resources(server, tutorial):
    """Clean-up as a user would: detach-thing-principal, detach-policy (the
    certificate then may not connect: no policy allows iot:Connect), delete-policy,
    delete-thing; each disappears from describe and list calls."""
    aws, expect_error = server.aws, server.expect_error
    cert_arn = tutorial.cert["certificateArn"]

    aws("detach-thing-principal", "--thing-name", THING, "--principal", cert_arn)
    eventually(lambda: _assert_equal(aws("list-thing-principals", "--thing-name", THING)["principals"], []))

    aws("detach-policy", "--policy-name", POLICY, "--target", cert_arn)
    assert aws("list-attached-policies", "--target", cert_arn)["policies"] == []
    client = MqttClient(tutorial.identity, server.mqtt_port)
    ok, why = client.try_connect()
    client.close()
    assert not ok, "a certificate without any policy was allowed to connect"

    aws("delete-policy", "--policy-name", POLICY)
    expect_error("ResourceNotFoundException", "get-policy", "--policy-name", POLICY, operation="GetPolicy")
    assert POLICY not in [p["policyName"] for p in aws("list-policies")["policies"]]

    aws("delete-thing", "--thing-name", THING)
    expect_error("ResourceNotFoundException", "describe-thing", "--thing-name", THING, operation="DescribeThing")
    assert THING not in [t["thingName"] for t in aws("list-things")["things"]]


def _assert_equal(got, want) -> None:
    assert got == want, f"{got!r} != {want!r}"
