"""`fleetjobs rollout-preview`: a job's rollout timeline from the configs `aws iot create-job`
would send, printed by the real binary before anything is sent (no server needed, but one:
create-job's message for a refused config is compared with the preview's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import botocore.exceptions
import pytest

# 2026-12-02 is a Wednesday; the windows below open on Saturdays at 02:00 for 240 minutes.
WEDNESDAY = "2026-12-02T10:00"
SATURDAY_WINDOWS = [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]


def preview(fleetjobs_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(fleetjobs_bin), "rollout-preview", *args], capture_output=True, text=True, timeout=120
    )


def preview_json(fleetjobs_bin: Path, *args: str) -> dict:
    out = preview(fleetjobs_bin, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_an_exponential_rate_grows_by_its_factor_up_to_maximum_per_minute(fleetjobs_bin):
    rollout = {
        "maximumPerMinute": 300,
        "exponentialRate": {"baseRatePerMinute": 50, "incrementFactor": 2,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1000}},
    }
    args = ("--things", "5000", "--start", WEDNESDAY, "--job-executions-rollout-config", json.dumps(rollout))
    p = preview_json(fleetjobs_bin, *args)
    batches = p["batches"]
    assert sum(b["count"] for b in batches) == p["created"] == 5000
    assert (p["notCreated"], p["stop"], p["windows"]) == (0, None, [])
    assert batches[0]["at"] == "2026-12-02T10:00:00Z"
    # One batch a minute, each at most its rate; the rate doubles at each 1000 notified
    # things until maximumPerMinute caps it.
    minutes = [b["at"][11:16] for b in batches]
    assert minutes == [f"{10 + m // 60:02}:{m % 60:02}" for m in range(len(batches))]
    rates = [b["perMinute"] for b in batches]
    assert list(dict.fromkeys(rates)) == [50, 100, 200, 300]
    assert all(b["count"] <= b["perMinute"] for b in batches)
    assert [b["count"] for b in batches[:19]] == [50] * 19
    assert batches[19]["count"] == 100, "the minute that reaches 1000 goes on at 100"
    assert all(b["count"] == 300 for b in batches[-5:-1]), "capped at maximumPerMinute"
    assert [b["cumulative"] for b in batches][-1] == 5000
    assert p["lastCreatedAt"] == batches[-1]["at"]

    table = preview(fleetjobs_bin, *args)
    assert table.returncode == 0, table.stderr
    assert "Wed 2026-12-02 10:00 – 10:18   19 × 50" in table.stdout, table.stdout
    assert "The last execution is created Wed 2026-12-02" in table.stdout
    assert "5000 executions in" in table.stdout


def test_a_maintenance_window_plan_waits_for_saturday(fleetjobs_bin, tmp_path):
    scheduling = tmp_path / "scheduling.json"
    scheduling.write_text(json.dumps({"maintenanceWindows": SATURDAY_WINDOWS}))
    args = ("--things", "3000", "--start", WEDNESDAY,
            "--job-executions-rollout-config", '{"maximumPerMinute": 10}',
            "--scheduling-config", f"file://{scheduling}")
    p = preview_json(fleetjobs_bin, *args)
    batches = p["batches"]
    assert batches[0] == {"at": "2026-12-05T02:00:00Z", "count": 10, "cumulative": 10, "perMinute": 10, "window": 1}
    # 240 minutes at 10 a minute on the first Saturday, the rest a week later.
    assert batches[239]["at"] == "2026-12-05T05:59:00Z"
    assert batches[240]["at"] == "2026-12-12T02:00:00Z"
    assert p["windows"] == [
        {"firstBatch": "2026-12-05T02:00:00Z", "closes": "2026-12-05T06:00:00Z", "executions": 2400},
        {"firstBatch": "2026-12-12T02:00:00Z", "closes": "2026-12-12T06:00:00Z", "executions": 600},
    ]
    assert (p["created"], p["notCreated"], p["stop"]) == (3000, 0, None)
    assert p["lastCreatedAt"] == "2026-12-12T02:59:00Z"

    table = preview(fleetjobs_bin, *args).stdout
    assert "Rollout of 3000 things, job created Wed 2026-12-02 10:00 UTC." in table
    assert "Sat 2026-12-05 02:00 – 05:59  240 × 10        2400        10  1" in table, table
    assert "Maintenance windows used:" in table
    assert "  2  Sat 2026-12-12 02:00 – 06:00 UTC  600 executions" in table, table


def test_an_end_time_stops_the_rollout_and_counts_what_is_not_created(fleetjobs_bin, tmp_path):
    # The configs as a whole create-job request (--cli-input-json), as a script would keep them.
    request = tmp_path / "create-job.json"
    request.write_text(json.dumps({
        "jobId": "firmware-42",
        "targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/fleet"],
        "document": json.dumps({"operation": "install"}),
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 10},
        "schedulingConfig": {"endTime": "2026-12-12T03:00", "endBehavior": "CANCEL",
                             "maintenanceWindows": SATURDAY_WINDOWS},
    }))
    args = ("--things", "5000", "--start", WEDNESDAY, "--cli-input-json", f"file://{request}")
    p = preview_json(fleetjobs_bin, *args)
    assert (p["created"], p["notCreated"]) == (2400 + 600, 2000)
    assert p["stop"] == {"reason": "endTime", "at": "2026-12-12T03:00:00Z", "endBehavior": "CANCEL"}
    assert p["lastCreatedAt"] == "2026-12-12T02:59:00Z"

    table = preview(fleetjobs_bin, *args).stdout
    assert ("endTime Sat 2026-12-12 03:00 UTC stops the rollout (endBehavior CANCEL): "
            "2000 of 5000 things get no execution") in table, table

    # A flag overrides the request's member, as with the AWS CLI: 20 a minute finishes in time.
    p = preview_json(fleetjobs_bin, *args, "--job-executions-rollout-config", '{"maximumPerMinute": 20}')
    assert (p["created"], p["notCreated"], p["stop"]) == (5000, 0, None)


def test_a_config_create_job_refuses_is_refused_with_its_message(fleetjobs_bin, server):
    rollout = '{"maximumPerMinute": 0}'
    out = preview(fleetjobs_bin, "--things", "10", "--job-executions-rollout-config", rollout)
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert out.stderr.strip() == "InvalidRequestException: maximumPerMinute must be between 1 and 1000"

    # The AWS CLI refuses 0 itself (botocore's min 1), so ask the server through boto3 with
    # parameter validation off: create-job answers the same message.
    server.aws("create-thing", "--thing-name", "preview-1")
    arn = server.aws("describe-thing", "--thing-name", "preview-1")["thingArn"]
    iot = server.boto3_client(parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        iot.create_job(jobId="preview-refused", targets=[arn], document='{"operation": "install"}',
                       jobExecutionsRolloutConfig=json.loads(rollout))
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert out.stderr.strip() == f"InvalidRequestException: {error['Message']}"

    # Not JSON, and a --start that is no date-time: usage errors, exit 2 too.
    out = preview(fleetjobs_bin, "--things", "10", "--abort-config", "{criteriaList")
    assert out.returncode == 2 and "Error parsing parameter '--abort-config': Invalid JSON" in out.stderr
    out = preview(fleetjobs_bin, "--things", "10", "--start", "tomorrow")
    assert out.returncode == 2 and "--start 'tomorrow'" in out.stderr


def test_json_output_parses_for_scripts(fleetjobs_bin):
    out = preview(fleetjobs_bin, "--things", "3", "--job-executions-rollout-config", '{"maximumPerMinute": 2}',
                  "--json")
    assert out.returncode == 0, out.stderr
    p = json.loads(out.stdout)
    assert set(p) == {"things", "start", "batches", "windows", "created", "lastCreatedAt", "notCreated", "stop"}
    assert [(b["count"], b["cumulative"], b["perMinute"], b["window"]) for b in p["batches"]] == [
        (2, 2, 2, None), (1, 3, 2, None)]
    # No --start: now, to the minute.
    assert p["start"].endswith(":00Z")
