"""Job configurations (rollout, abort, timeout, retry, scheduling, presigned URLs) through
the AWS CLI and boto3: DescribeJob echoes each exactly as it was sent, also after a
restart; invalid ones (a maintenance window that only looks like AWS cron, an enum typo)
answer InvalidRequestException and create nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from e2elib.jobs import describe_job

THING = "configs-thing"


def ahead(**delta) -> str:
    """A scheduling date-time (``YYYY-MM-DDTHH:MM``, UTC) this far from now."""
    return (datetime.now(timezone.utc) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M")


def all_configs() -> dict:
    return {
        "presigned-url-config": {"roleArn": "arn:aws:iam::123456789012:role/S3Download", "expiresInSec": 600},
        "job-executions-rollout-config": {
            "maximumPerMinute": 100,
            "exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 2.5,
                                "rateIncreaseCriteria": {"numberOfNotifiedThings": 5}},
        },
        "abort-config": {"criteriaList": [
            {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 12.5, "minNumberOfExecutedThings": 3},
            {"failureType": "TIMED_OUT", "action": "CANCEL", "thresholdPercentage": 50,
             "minNumberOfExecutedThings": 10},
        ]},
        "timeout-config": {"inProgressTimeoutInMinutes": 60},
        "job-executions-retry-config": {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]},
        "scheduling-config": {
            "startTime": ahead(days=1), "endTime": ahead(days=8), "endBehavior": "STOP_ROLLOUT",
            "maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}],
        },
    }


def member(option: str) -> str:
    """``abort-config`` -> ``abortConfig``."""
    first, *rest = option.split("-")
    return first + "".join(w.title() for w in rest)


def cli_args(configs: dict) -> list[str]:
    return [a for option, v in configs.items() for a in (f"--{option}", json.dumps(v))]


def test_configs_echo_as_sent_and_survive_a_restart(own_server):
    srv = own_server
    target = srv.aws("create-thing", "--thing-name", THING)["thingArn"]
    configs = all_configs()
    srv.aws("create-job", "--job-id", "all-configs", "--targets", target, "--document", '{"operation":"configs"}',
            *cli_args(configs))
    expected = {member(option): v for option, v in configs.items()}

    def echoed_by_cli() -> dict:
        job = describe_job(srv, "all-configs")
        return {k: job.get(k) for k in expected}

    assert echoed_by_cli() == expected
    job = srv.boto3_client().describe_job(jobId="all-configs")["job"]
    assert {k: job.get(k) for k in expected} == expected, "botocore parses every member"
    assert job["status"] == "SCHEDULED", job

    srv.aws("update-job", "--job-id", "all-configs", "--timeout-config", '{"inProgressTimeoutInMinutes": 5}')
    expected["timeoutConfig"] = {"inProgressTimeoutInMinutes": 5}
    srv.stop()
    srv.start()
    assert echoed_by_cli() == expected

    plain = srv.aws("create-job", "--job-id", "no-configs", "--targets", target, "--document", "{}")
    assert plain["jobId"] == "no-configs"
    absent = describe_job(srv, "no-configs")
    assert [k for k in expected if k in absent] == [], f"unset configs stay absent: {absent}"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("scheduling-config", {"maintenanceWindows": [{"startTime": "cron(0 2 * * SAT *)", "durationInMinutes": 60}]}),
        ("scheduling-config", {"maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT)", "durationInMinutes": 60}]}),
        ("scheduling-config", {"maintenanceWindows": [{"startTime": "cron(0 25 ? * SAT *)", "durationInMinutes": 60}]}),
        ("scheduling-config", {"maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)",
                                                       "durationInMinutes": 1431}]}),
        ("abort-config", {"criteriaList": [{"failureType": "CRASHED", "action": "CANCEL", "thresholdPercentage": 10,
                                            "minNumberOfExecutedThings": 1}]}),
        ("job-executions-rollout-config", {"exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 2,
                                           "rateIncreaseCriteria": {"numberOfNotifiedThings": 1,
                                                                    "numberOfSucceededThings": 1}}}),
    ],
    ids=["both-day-fields", "five-fields", "hour-25", "window-1431-min", "failure-type-typo", "two-rate-criteria"],
)
def test_invalid_config_is_invalid_request(server, arn_prefix, request, option, value):
    job_id = f"bad-{request.node.callspec.id}"
    server.aws("create-thing", "--thing-name", THING)
    server.expect_error(
        "InvalidRequestException", "create-job", "--job-id", job_id,
        "--targets", f"{arn_prefix}:thing/{THING}", "--document", "{}", f"--{option}", json.dumps(value),
        operation="CreateJob",
    )
    server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", job_id)
