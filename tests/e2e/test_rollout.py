"""The rollout acts (issue 8): a job on a thing group with ``maximumPerMinute`` creates its
executions minute by minute (``isConcurrent`` and ``processingTargets`` while it does), paho
devices get each one as it is created; a scheduled job with maintenance windows lists its
``scheduledJobRollouts`` and creates nothing before its start; and out-of-range rollout and
abort settings are refused by the server (sent with botocore's own validation off, as a
client without it would)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from e2elib.jobs import describe_job
from e2elib.util import eventually


def test_a_rate_limited_rollout_on_a_group_creates_one_execution_per_minute(server, make_device, connect_device,
                                                                             arn_prefix):
    iot = server.boto3_client()
    group_arn = iot.create_thing_group(thingGroupName="rollout-fleet")["thingGroupArn"]
    devices = {}
    for name in ("ro-a", "ro-b"):
        devices[name] = connect_device(make_device(name))
        iot.add_thing_to_thing_group(thingGroupName="rollout-fleet", thingName=name)
    since = {n: d.mark() for n, d in devices.items()}
    iot.create_job(jobId="ro-rated", targets=[group_arn], document=json.dumps({"operation": "update"}),
                   jobExecutionsRolloutConfig={"maximumPerMinute": 1})

    job = describe_job(server, "ro-rated")
    assert job["isConcurrent"] is True, job
    assert job["jobProcessDetails"]["processingTargets"] == [group_arn], job
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 1, "one execution in the first minute"
    first = [n for n, d in devices.items() if d.received(lambda m: m.topic == d.topic("notify-next"), since[n])]
    assert len(first) == 1, first

    def rolled_out() -> dict:
        j = describe_job(server, "ro-rated")
        assert j["jobProcessDetails"]["numberOfQueuedThings"] == 2, j
        return j

    job = eventually(rolled_out, timeout=90.0, interval=1.0)
    assert job["isConcurrent"] is False and "processingTargets" not in job["jobProcessDetails"], job
    (second,) = set(devices) - set(first)
    head = devices[second].wait_notify_next(since[second])
    assert head["execution"]["jobId"] == "ro-rated", head


def test_a_scheduled_job_waits_for_its_start_and_lists_its_windows(server, arn_prefix):
    server.aws("create-thing", "--thing-name", "ro-scheduled")
    start = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    scheduling = {"startTime": start,
                  "maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]}
    server.aws("create-job", "--job-id", "ro-scheduled", "--targets", f"{arn_prefix}:thing/ro-scheduled",
               "--document", "{}", "--scheduling-config", json.dumps(scheduling))
    job = describe_job(server, "ro-scheduled")
    assert job["status"] == "SCHEDULED", job
    rollouts = [r["startTime"] for r in job["scheduledJobRollouts"]]
    assert len(rollouts) == 7 and all(r.endswith("T02:00") for r in rollouts), rollouts
    assert all(datetime.strptime(r, "%Y-%m-%dT%H:%M").weekday() == 5 for r in rollouts), "Saturdays"
    assert server.aws("list-job-executions-for-job", "--job-id", "ro-scheduled")["executionSummaries"] == []


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jobExecutionsRolloutConfig", {"maximumPerMinute": 0}),
        ("jobExecutionsRolloutConfig", {"maximumPerMinute": 1001}),
        ("abortConfig", {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 100.5,
                                           "minNumberOfExecutedThings": 1}]}),
        ("abortConfig", {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 10,
                                           "minNumberOfExecutedThings": 0}]}),
    ],
    ids=["rate-0", "rate-1001", "threshold-100.5", "min-executed-0"],
)
def test_out_of_range_rollout_settings_are_refused(server, arn_prefix, request, member, value):
    iot = server.boto3_client(parameter_validation=False)
    job_id = f"ro-bad-{request.node.callspec.id}".replace(".", "-")
    server.aws("create-thing", "--thing-name", "ro-bad")
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId=job_id, targets=[f"{arn_prefix}:thing/ro-bad"], document="{}", **{member: value})
    assert e.value.response["Error"]["Code"] == "InvalidRequestException", e.value.response
    server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", job_id)


def test_a_rollout_continues_after_kill_9(own_server):
    srv = own_server
    arns = [srv.aws("create-thing", "--thing-name", f"ro-kill-{i}")["thingArn"] for i in range(3)]
    srv.aws("create-job", "--job-id", "ro-kill", "--targets", *arns, "--document", "{}",
            "--job-executions-rollout-config", json.dumps({"maximumPerMinute": 1}))
    assert describe_job(srv, "ro-kill")["jobProcessDetails"]["numberOfQueuedThings"] == 1

    srv.kill9()
    srv.start()
    job = describe_job(srv, "ro-kill")
    assert job["isConcurrent"] is True, job
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 1, "the restart neither lost nor re-spent the minute"

    def second_minute() -> None:
        assert describe_job(srv, "ro-kill")["jobProcessDetails"]["numberOfQueuedThings"] == 2

    eventually(second_minute, timeout=90.0, interval=1.0)
