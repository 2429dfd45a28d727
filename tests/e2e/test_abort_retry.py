"""abortConfig and jobExecutionsRetryConfig act (issue 8): real paho devices fail on purpose.
A bad firmware that fails on half the fleet is stopped by its abort criteria (the job
CANCELED with its reason, the devices that had not started get nothing more), and a flaky
device is given the retries its job allows, then no more."""

from __future__ import annotations

import json

from e2elib.jobs import describe_execution, describe_job


def test_abort_stops_a_bad_rollout(server, make_device, connect_device, create_job):
    names = [f"ab-{i}" for i in range(6)]
    devices = {n: connect_device(make_device(n)) for n in names}
    abort = {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50,
                               "minNumberOfExecutedThings": 2}]}
    create_job("ab-firmware", names, {"operation": "install", "version": "bad"},
               "--abort-config", json.dumps(abort))

    first, second, *rest = names
    devices[first].start_next()
    devices[first].update("ab-firmware", "FAILED", statusDetails={"reason": "checksum"})
    assert describe_job(server, "ab-firmware")["status"] == "IN_PROGRESS", "one executed: below the minimum"
    devices[rest[0]].start_next()
    since = {n: devices[n].mark() for n in rest[1:]}
    devices[second].start_next()
    devices[second].update("ab-firmware", "FAILED")

    job = describe_job(server, "ab-firmware")
    assert job["status"] == "CANCELED", job
    assert job["reasonCode"] == "ABORT_CRITERIA_MET", job
    assert "FAILED" in job["comment"], job
    assert describe_execution(server, "ab-firmware", rest[0])["status"] == "IN_PROGRESS", "started ones run on"
    for n in rest[1:]:
        assert describe_execution(server, "ab-firmware", n)["status"] == "CANCELED"
        assert "execution" not in devices[n].wait_notify_next(since[n]), "nothing is next any more"
        assert devices[n].get_pending()["queuedJobs"] == []


def test_retries_follow_the_budget(server, make_device, connect_device, create_job):
    device = connect_device(make_device("rt-flaky"))
    retry = {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}
    create_job("rt-flaky", ["rt-flaky"], None, "--job-executions-retry-config", json.dumps(retry))
    for attempt in range(3):
        since = device.mark()
        started = device.start_next()["execution"]
        assert (started["jobId"], started["executionNumber"]) == ("rt-flaky", attempt + 1), started
        device.update("rt-flaky", "FAILED", executionNumber=attempt + 1)
        if attempt < 2:
            nxt = device.wait_notify_next(since, predicate=lambda p: "execution" in p)
            assert nxt["execution"]["executionNumber"] == attempt + 2, nxt
    pending = device.get_pending()
    assert (pending["queuedJobs"], pending["inProgressJobs"]) == ([], []), "the budget is spent"
    summaries = server.aws("list-job-executions-for-job", "--job-id", "rt-flaky")["executionSummaries"]
    got = sorted((s["jobExecutionSummary"]["executionNumber"], s["jobExecutionSummary"]["status"],
                  s["jobExecutionSummary"]["retryAttempt"]) for s in summaries)
    assert got == [(1, "FAILED", 0), (2, "FAILED", 1), (3, "FAILED", 2)], got
    assert describe_job(server, "rt-flaky")["status"] == "COMPLETED"
