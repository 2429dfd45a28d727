"""Job namespaces (``namespaceId``), as AWS IoT Core defines them for customer-managed jobs
(Greengrass deployments): the AWS CLI creates a job in a namespace, and a paho-mqtt device
runs it on the namespaced topics, in the form AWS documents
(``$aws/things/THING/jobs/JOB_ID/notify-namespace-NS/``) and the Greengrass nucleus uses:

* ``jobs/{jobId|$next}/namespace-{ns}/get`` and ``jobs/{jobId}/namespace-{ns}/update``;
* ``jobs/notify-namespace-{ns}`` and ``jobs/notify-next-namespace-{ns}``.

Each namespace is a queue of its own: its jobs are announced on its topics only, and the
plain topics see only jobs without a namespace.
"""

from __future__ import annotations

import pytest

from e2elib.jobs import describe_execution, describe_job

NS = "aws-gg-deployment"
THING = "ns-device"


@pytest.fixture
def device(make_device, connect_device):
    dev = connect_device(make_device(THING))  # subscribed to the plain notify and notify-next
    dev.subscribe_ok(dev.topic(f"notify-namespace-{NS}"))
    dev.subscribe_ok(dev.topic(f"notify-next-namespace-{NS}"))
    return dev


def test_a_namespaced_job_runs_on_its_namespace_topics_only(server, device, create_job, expect_error):
    plain_next, ns_next = device.topic("notify-next"), device.topic(f"notify-next-namespace-{NS}")
    since = device.mark()
    create_job("ns-deploy", [THING], {"operation": "deploy"}, "--namespace-id", NS)
    pushed = device.wait_topic(ns_next, since).json
    assert pushed["execution"]["jobId"] == "ns-deploy", pushed
    assert pushed["execution"]["jobDocument"] == {"operation": "deploy"}
    notify = device.wait_topic(device.topic(f"notify-namespace-{NS}"), since).json
    assert [j["jobId"] for j in notify["jobs"]["QUEUED"]] == ["ns-deploy"], notify

    # A plain job afterwards is announced on the plain topics; the server publishes in commit
    # order, so a plain announcement of the namespaced job would have arrived before it.
    create_job("ns-plain", [THING])
    plain = device.wait_topic(plain_next, since).json
    assert plain["execution"]["jobId"] == "ns-plain", plain
    assert [m.json["execution"]["jobId"] for m in device.received(lambda m: m.topic == plain_next, since)] == [
        "ns-plain"]
    assert len(device.received(lambda m: m.topic == ns_next, since)) == 1, "the plain job left the namespace alone"

    # The plain topics do not see the namespaced job.
    pending = device.get_pending()
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["ns-plain"], pending
    assert device.describe("$next")["execution"]["jobId"] == "ns-plain"
    assert device.rejected("ns-deploy/get")["code"] == "ResourceNotFound"

    # The namespace's topics do, and run it to SUCCEEDED.
    described = device.accepted(f"$next/namespace-{NS}/get", {"includeJobDocument": True})
    assert described["execution"]["jobId"] == "ns-deploy", described
    assert device.rejected(f"ns-plain/namespace-{NS}/get")["code"] == "ResourceNotFound"
    since = device.mark()
    device.accepted(f"ns-deploy/namespace-{NS}/update", {"status": "IN_PROGRESS", "statusDetails": {"step": "1"}})
    done = device.accepted(f"ns-deploy/namespace-{NS}/update",
                           {"status": "SUCCEEDED", "includeJobExecutionState": True})
    assert done["executionState"]["status"] == "SUCCEEDED", done
    emptied = device.wait_topic(ns_next, since).json
    assert "execution" not in emptied, emptied
    assert describe_execution(server, "ns-deploy", THING)["status"] == "SUCCEEDED"
    assert describe_job(server, "ns-deploy")["status"] == "COMPLETED"
    # The plain queue still holds its job.
    assert device.describe("$next")["execution"]["jobId"] == "ns-plain"


def test_the_control_plane_filters_and_finds_by_namespace(server, aws, make_device, create_job, expect_error):
    thing = "ns-listed"
    make_device(thing)
    create_job("ns-listed-gg", [thing], None, "--namespace-id", NS)
    create_job("ns-listed-plain", [thing])

    job = describe_job(server, "ns-listed-gg")
    assert job["namespaceId"] == NS
    # The ARN names the job only, as AWS's (a Greengrass deployment's iotJobArn is job/ID).
    assert job["jobArn"].endswith(":job/ns-listed-gg"), job["jobArn"]
    assert "namespaceId" not in describe_job(server, "ns-listed-plain")

    listed = aws("list-jobs", "--namespace-id", NS)["jobs"]
    assert "ns-listed-gg" in [j["jobId"] for j in listed]
    assert "ns-listed-plain" not in [j["jobId"] for j in listed]
    assert {"ns-listed-gg", "ns-listed-plain"} <= {j["jobId"] for j in aws("list-jobs")["jobs"]}
    execs = aws("list-job-executions-for-thing", "--thing-name", thing, "--namespace-id", NS)["executionSummaries"]
    assert [e["jobId"] for e in execs] == ["ns-listed-gg"], execs
    assert len(aws("list-job-executions-for-thing", "--thing-name", thing)["executionSummaries"]) == 2

    # A request naming a namespace does not reach a job of another one, and changes nothing.
    expect_error("ResourceNotFoundException", "update-job", "--job-id", "ns-listed-plain",
                 "--namespace-id", NS, "--description", "moved")
    assert "description" not in describe_job(server, "ns-listed-plain")
    expect_error("ResourceNotFoundException", "delete-job", "--job-id", "ns-listed-plain", "--force",
                 "--namespace-id", NS)
    expect_error("InvalidRequestException", "list-jobs", "--namespace-id", "bad namespace")

    # In its own namespace it is found.
    aws("update-job", "--job-id", "ns-listed-gg", "--namespace-id", NS, "--description", "updated")
    assert describe_job(server, "ns-listed-gg")["description"] == "updated"
    aws("delete-job", "--job-id", "ns-listed-gg", "--force", "--namespace-id", NS)
    expect_error("ResourceNotFoundException", "describe-job", "--job-id", "ns-listed-gg")
