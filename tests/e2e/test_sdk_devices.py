"""The AWS IoT Device SDKs for Python as devices, unchanged: v1 (AWSIoTPythonSDK, its
``AWSIoTMQTTThingJobsClient``) with a certificate of the customer's own CA registered under it,
and v2 (awsiotsdk on awscrt, its ``iotjobs.IotJobsClient``) with the RSA-2048 keys
create-keys-and-certificate issues. Each runs a job to SUCCEEDED as the SDKs' job samples do:
notify-next, start-next, update."""

from __future__ import annotations

import json
import queue

from awscrt import mqtt
from awsiot import iotjobs, mqtt_connection_builder
from AWSIoTPythonSDK.core.jobs.thingJobManager import (
    jobExecutionStatus, jobExecutionTopicReplyType, jobExecutionTopicType,
)
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTThingJobsClient

from e2elib.byo_ca import device_identity, make_ca, make_leaf
from e2elib.identity import jobs_policy
from e2elib.jobs import describe_execution
from e2elib.util import eventually

TIMEOUT = 20


def test_sdk_v1_device_of_a_registered_ca_runs_a_job(server, aws, tmp_path, arn_prefix, create_job):
    ca = make_ca("SDK v1 Root")
    code = aws("get-registration-code")["registrationCode"]
    aws("register-ca-certificate", "--ca-certificate", f"file://{ca.write(tmp_path, 'ca')}",
        "--verification-certificate", f"file://{make_leaf(ca, code).write(tmp_path, 'verification')}",
        "--set-as-active")
    leaf = make_leaf(ca, "sdk-v1-device")
    cert = aws("register-certificate", "--certificate-pem", f"file://{leaf.write(tmp_path, 'device')}",
               "--ca-certificate-pem", f"file://{tmp_path / 'ca.pem'}", "--set-as-active")
    thing = "sdk-v1-device"
    aws("create-thing", "--thing-name", thing)
    aws("create-policy", "--policy-name", "sdk-v1-policy",
        "--policy-document", json.dumps(jobs_policy(arn_prefix, thing)))
    aws("attach-policy", "--policy-name", "sdk-v1-policy", "--target", cert["certificateArn"])
    aws("attach-thing-principal", "--thing-name", thing, "--principal", cert["certificateArn"])
    identity = device_identity(leaf, server.root_ca, tmp_path / "certs", thing, cert)

    client = AWSIoTMQTTThingJobsClient(thing, thing, QoS=1)
    client.configureEndpoint("localhost", server.mqtt_port)
    client.configureCredentials(str(identity.ca_path), str(identity.key_path), str(identity.cert_path))
    client.configureConnectDisconnectTimeout(TIMEOUT)
    client.configureMQTTOperationTimeout(TIMEOUT)
    notified: queue.Queue = queue.Queue()
    started: queue.Queue = queue.Queue()
    updated: queue.Queue = queue.Queue()
    assert client.connect(), "the v1 SDK did not connect"
    try:
        assert client.createJobSubscription(lambda c, u, m: notified.put(json.loads(m.payload)),
                                            jobExecutionTopicType.JOB_NOTIFY_NEXT_TOPIC)
        assert client.createJobSubscription(lambda c, u, m: started.put(json.loads(m.payload)),
                                            jobExecutionTopicType.JOB_START_NEXT_TOPIC,
                                            jobExecutionTopicReplyType.JOB_ACCEPTED_REPLY_TYPE)
        assert client.createJobSubscription(lambda c, u, m: updated.put(json.loads(m.payload)),
                                            jobExecutionTopicType.JOB_UPDATE_TOPIC,
                                            jobExecutionTopicReplyType.JOB_ACCEPTED_REPLY_TYPE, "+")

        create_job("sdk-v1-job", [thing], {"operation": "sdk-v1"})
        assert notified.get(timeout=TIMEOUT)["execution"]["jobId"] == "sdk-v1-job"
        assert client.sendJobsStartNext(statusDetails={"step": "start"})
        execution = started.get(timeout=TIMEOUT)["execution"]
        assert (execution["jobId"], execution["status"]) == ("sdk-v1-job", "IN_PROGRESS")
        assert execution["jobDocument"] == {"operation": "sdk-v1"}
        assert client.sendJobsUpdate("sdk-v1-job", jobExecutionStatus.JOB_EXECUTION_SUCCEEDED,
                                     statusDetails={"step": "done"}, expectedVersion=execution["versionNumber"])
        updated.get(timeout=TIMEOUT)
    finally:
        client.disconnect()
    assert describe_execution(server, "sdk-v1-job", thing)["status"] == "SUCCEEDED"


def test_sdk_v2_device_with_rsa_keys_runs_a_job(server, make_device, create_job):
    identity = make_device("sdk-v2-device")
    assert "BEGIN RSA PRIVATE KEY" in identity.key_path.read_text(), "AWS issues PKCS#1 RSA keys"
    thing = identity.thing_name
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=server.mqtt_port, cert_filepath=str(identity.cert_path),
        pri_key_filepath=str(identity.key_path), ca_filepath=str(identity.ca_path), client_id=thing,
        clean_session=True, keep_alive_secs=30)
    connection.connect().result(TIMEOUT)
    jobs = iotjobs.IotJobsClient(connection)
    qos = mqtt.QoS.AT_LEAST_ONCE
    changed: queue.Queue = queue.Queue()
    started: queue.Queue = queue.Queue()
    updated: queue.Queue = queue.Queue()
    try:
        for subscribed in (
            jobs.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), qos, changed.put),
            jobs.subscribe_to_start_next_pending_job_execution_accepted(
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing), qos, started.put),
            jobs.subscribe_to_update_job_execution_accepted(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"), qos, updated.put),
        ):
            future, _ = subscribed
            future.result(TIMEOUT)

        create_job("sdk-v2-job", [thing], {"operation": "sdk-v2"})
        assert changed.get(timeout=TIMEOUT).execution.job_id == "sdk-v2-job"
        jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing), qos).result(TIMEOUT)
        execution = started.get(timeout=TIMEOUT).execution
        assert (execution.job_id, execution.status) == ("sdk-v2-job", "IN_PROGRESS")
        assert execution.job_document == {"operation": "sdk-v2"}
        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id="sdk-v2-job", status=iotjobs.JobStatus.SUCCEEDED,
            expected_version=execution.version_number), qos).result(TIMEOUT)
        updated.get(timeout=TIMEOUT)
    finally:
        connection.disconnect().result(TIMEOUT)
    eventually(lambda: describe_execution(server, "sdk-v2-job", thing)["status"] == "SUCCEEDED" or _fail())


def _fail():
    raise AssertionError("the execution is not SUCCEEDED")
