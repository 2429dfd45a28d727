"""The `iot-jobs-data` HTTPS API: boto3's `iot-jobs-data` client (SigV4, signing name
`iot-jobs-data`) on the main HTTP listener, and devices with their client certificates on the
mutual-TLS listener (`--jobs-data-listen`). Both run the same rules as the MQTT Jobs API.
"""

from __future__ import annotations

import json

import botocore.session
import pytest
import requests
from botocore.exceptions import ClientError

from e2elib.identity import allow, jobs_policy
from e2elib.util import assert_epoch_seconds

MODEL = botocore.session.get_session().get_service_model("iot-jobs-data")


def check_shape(value, shape, where="") -> None:
    """Every member present in ``value`` is one the output shape models, of its type."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), (where, value)
        for k, v in value.items():
            assert k in shape.members, f"{where}.{k} is not in {shape.name}"
            check_shape(v, shape.members[k], f"{where}.{k}")
    elif t == "list":
        assert isinstance(value, list), (where, value)
        for i, v in enumerate(value):
            check_shape(v, shape.member, f"{where}[{i}]")
    elif t == "map":
        assert isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), (where, value)
    elif t == "long":
        assert isinstance(value, int) and not isinstance(value, bool), (where, value)
    elif t == "boolean":
        assert isinstance(value, bool), (where, value)
    else:
        assert isinstance(value, str), (where, value)


def raw(client, operation: str, **params) -> dict:
    """The response body as sent (botocore parses `long` timestamps into ints already, but
    this checks the wire too): call, then validate against the output shape."""
    out = getattr(client, _snake(operation))(**params)
    out.pop("ResponseMetadata", None)
    check_shape(out, MODEL.operation_model(operation).output_shape, operation)
    return out


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


@pytest.fixture(scope="module")
def data(server):
    return server.boto3_client("iot-jobs-data")


def test_the_four_operations_over_sigv4(server, data, make_device, create_job):
    make_device("jd-sig")
    doc = {"operation": "install", "n": 1}
    create_job("jd-sig-a", ["jd-sig"], doc)
    create_job("jd-sig-b", ["jd-sig"])

    pending = raw(data, "GetPendingJobExecutions", thingName="jd-sig")
    assert pending["inProgressJobs"] == []
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["jd-sig-a", "jd-sig-b"]
    assert_epoch_seconds(pending["queuedJobs"][0]["queuedAt"], "queuedAt")

    nxt = raw(data, "DescribeJobExecution", thingName="jd-sig", jobId="$next")
    assert nxt["execution"]["jobId"] == "jd-sig-a" and nxt["execution"]["status"] == "QUEUED"
    assert json.loads(nxt["execution"]["jobDocument"]) == doc, "jobDocument is a JSON string"
    nodoc = raw(data, "DescribeJobExecution", thingName="jd-sig", jobId="jd-sig-b", includeJobDocument=False)
    assert "jobDocument" not in nodoc["execution"]

    started = raw(data, "StartNextPendingJobExecution", thingName="jd-sig", statusDetails={"step": "dl"},
                  stepTimeoutInMinutes=5)
    e = started["execution"]
    assert (e["jobId"], e["status"], e["versionNumber"]) == ("jd-sig-a", "IN_PROGRESS", 2)
    assert e["statusDetails"] == {"step": "dl"} and 0 < e["approximateSecondsBeforeTimedOut"] <= 300
    assert_epoch_seconds(e["startedAt"], "startedAt")

    updated = raw(data, "UpdateJobExecution", thingName="jd-sig", jobId="jd-sig-a", status="SUCCEEDED",
                  expectedVersion=2, includeJobExecutionState=True, includeJobDocument=True)
    assert updated["executionState"] == {"status": "SUCCEEDED", "statusDetails": {"step": "dl"}, "versionNumber": 3}
    assert json.loads(updated["jobDocument"]) == doc
    assert raw(data, "UpdateJobExecution", thingName="jd-sig", jobId="jd-sig-b", status="IN_PROGRESS") == {}
    raw(data, "UpdateJobExecution", thingName="jd-sig", jobId="jd-sig-b", status="SUCCEEDED")
    assert raw(data, "StartNextPendingJobExecution", thingName="jd-sig") == {}
    assert raw(data, "DescribeJobExecution", thingName="jd-sig", jobId="$next") == {}
    # The control plane sees what the data plane did.
    assert server.aws("describe-job-execution", "--job-id", "jd-sig-a", "--thing-name", "jd-sig")[
        "execution"]["status"] == "SUCCEEDED"


def _error(call, **params) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_errors_are_the_modeled_exceptions(data, make_device, create_job):
    make_device("jd-err")
    create_job("jd-err-a", ["jd-err"])
    assert _error(data.describe_job_execution, thingName="jd-err", jobId="nope") == ("ResourceNotFoundException", 404)
    assert _error(data.get_pending_job_executions, thingName="jd-ghost") == ("ResourceNotFoundException", 404)
    assert _error(data.update_job_execution, thingName="jd-err", jobId="nope", status="IN_PROGRESS") == (
        "ResourceNotFoundException", 404)
    # No version-conflict exception in the model: a mismatch is an invalid state transition.
    assert _error(data.update_job_execution, thingName="jd-err", jobId="jd-err-a", status="IN_PROGRESS",
                  expectedVersion=9) == ("InvalidStateTransitionException", 409)
    assert _error(data.start_next_pending_job_execution, thingName="jd-err", stepTimeoutInMinutes=0) == (
        "InvalidRequestException", 400)
    data.update_job_execution(thingName="jd-err", jobId="jd-err-a", status="FAILED")
    assert _error(data.update_job_execution, thingName="jd-err", jobId="jd-err-a", status="IN_PROGRESS") == (
        "InvalidStateTransitionException", 409)


def _device_policy(arn_prefix: str, thing: str) -> dict:
    doc = jobs_policy(arn_prefix, thing)
    doc["Statement"].append(allow(
        ["iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution", "iot:DescribeJobExecution",
         "iot:UpdateJobExecution"], f"{arn_prefix}:thing/{thing}"))
    return doc


def test_a_device_over_mutual_tls_and_notify_next_over_mqtt(server, arn_prefix, make_device, connect_device,
                                                             create_job):
    identity = make_device("jd-dev", _device_policy(arn_prefix, "jd-dev"))
    watcher = connect_device(identity)
    base = f"https://localhost:{server.jobs_data_port}/things/jd-dev/jobs"
    kw = {"cert": (str(identity.cert_path), str(identity.key_path)), "verify": str(server.root_ca), "timeout": 10}
    create_job("jd-dev-a", ["jd-dev"])
    create_job("jd-dev-b", ["jd-dev"])

    r = requests.get(base, **kw)
    assert r.status_code == 200, r.text
    assert [j["jobId"] for j in r.json()["queuedJobs"]] == ["jd-dev-a", "jd-dev-b"]

    r = requests.put(f"{base}/$next", json={"statusDetails": {"step": "1"}}, **kw)
    assert r.status_code == 200, r.text
    assert r.json()["execution"]["jobId"] == "jd-dev-a" and r.json()["execution"]["status"] == "IN_PROGRESS"

    since = watcher.mark()
    r = requests.post(f"{base}/jd-dev-a", json={"status": "SUCCEEDED", "includeJobExecutionState": True}, **kw)
    assert r.status_code == 200, r.text
    assert r.json()["executionState"]["status"] == "SUCCEEDED"
    head = watcher.wait_notify_next(since)
    assert head["execution"]["jobId"] == "jd-dev-b", "an HTTPS update announces the next job over MQTT"

    r = requests.post(f"{base}/jd-dev-b", json={"status": "IN_PROGRESS", "expectedVersion": 7}, **kw)
    assert (r.status_code, r.headers.get("x-amzn-ErrorType", "").split(":")[0]) == (
        409, "InvalidStateTransitionException"), r.text


def test_a_device_is_held_to_its_policies_and_its_thing(server, arn_prefix, make_device, create_job):
    mqtt_only = make_device("jd-mqtt-only")  # the tutorial policy: no jobs-data actions
    other = make_device("jd-other", _device_policy(arn_prefix, "jd-other"))
    create_job("jd-deny", ["jd-mqtt-only"])
    for identity in (mqtt_only, other):
        kw = {"cert": (str(identity.cert_path), str(identity.key_path)), "verify": str(server.root_ca),
              "timeout": 10}
        r = requests.get(f"https://localhost:{server.jobs_data_port}/things/jd-mqtt-only/jobs", **kw)
        assert r.status_code == 403, r.text
    # No client certificate: no handshake.
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"https://localhost:{server.jobs_data_port}/things/jd-mqtt-only/jobs",
                     verify=str(server.root_ca), timeout=10)


def test_describe_endpoint_names_the_jobs_host(server):
    assert server.aws("describe-endpoint", "--endpoint-type", "iot:Jobs")["endpointAddress"] == (
        f"localhost:{server.jobs_data_port}")
