"""(b) Job lifecycle with the AWS CLI and a paho-mqtt device speaking the MQTT Jobs API.

Each test uses its own things and job ids, so they do not depend on one another.
"""

from __future__ import annotations


import pytest

from e2elib.jobs import assert_counters, describe_execution, describe_job
from e2elib.mqtt import JobsDevice
from e2elib.util import assert_epoch_seconds, eventually


def test_get_start_next_and_notify_next_follow_the_queue(server, make_device, connect_device, create_job):
    """Two jobs queued for one thing: `jobs/get` lists both in queue order;
    `start-next` returns the first, now IN_PROGRESS (version 2, job document as a
    JSON object); after it SUCCEEDED, `notify-next` names the second (QUEUED)."""
    device = connect_device(make_device("lc-queue"))
    doc_a = {"operation": "first", "n": 1}
    doc_b = {"operation": "second", "n": 2}
    since = device.mark()
    create_job("lc-queue-a", ["lc-queue"], doc_a)
    create_job("lc-queue-b", ["lc-queue"], doc_b)

    # Creation is announced: notify lists the queue, notify-next names the new head.
    device.wait_notify(since, predicate=lambda p: _queued_ids(p) == ["lc-queue-a", "lc-queue-b"])
    head = device.wait_notify_next(since)
    assert head["execution"]["jobId"] == "lc-queue-a" and head["execution"]["jobDocument"] == doc_a, head

    pending = device.get_pending()
    assert pending["inProgressJobs"] == [], pending
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["lc-queue-a", "lc-queue-b"], pending
    for summary in pending["queuedJobs"]:
        assert summary["executionNumber"] == 1 and summary["versionNumber"] == 1, summary
        assert_epoch_seconds(summary["queuedAt"], "queuedAt")
        assert isinstance(summary["queuedAt"], int), "MQTT timestamps are integer epoch seconds"
    assert isinstance(pending["timestamp"], int)

    since = device.mark()
    started = device.start_next(statusDetails={"step": "download"})
    execution = started["execution"]
    assert execution["jobId"] == "lc-queue-a", started
    assert execution["thingName"] == "lc-queue"
    assert execution["status"] == "IN_PROGRESS"
    assert execution["statusDetails"] == {"step": "download"}
    assert execution["jobDocument"] == doc_a, "jobDocument is the document as a JSON object"
    assert execution["versionNumber"] == 2 and execution["executionNumber"] == 1
    assert_epoch_seconds(execution["startedAt"], "startedAt")

    # The head did not change (it only started): AWS sends no notify-next, and the
    # JS SDK's jobs-agent would run the job a second time if one came. A third job changes
    # the pending set but not its head: its `notify` leaves the server after any stray
    # notify-next would have (one outbox, in commit order), so once it is here, so is that.
    create_job("lc-queue-c", ["lc-queue"], {"operation": "third"})
    device.wait_notify(since, predicate=lambda p: _queued_ids(p) == ["lc-queue-b", "lc-queue-c"])
    stray = device.received(lambda m: m.topic == device.topic("notify-next"), since)
    assert stray == [], f"notify-next sent although the next job stayed the same: {stray}"

    # start-next on an IN_PROGRESS head returns it unchanged.
    again = device.start_next()["execution"]
    assert (again["jobId"], again["status"], again["versionNumber"]) == ("lc-queue-a", "IN_PROGRESS", 2), again

    pending = device.get_pending()
    assert [j["jobId"] for j in pending["inProgressJobs"]] == ["lc-queue-a"], pending
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["lc-queue-b", "lc-queue-c"], pending

    since = device.mark()
    device.update("lc-queue-a", "SUCCEEDED", expectedVersion=2, statusDetails={"step": "done"})
    nxt = device.wait_notify_next(since)
    assert nxt["execution"]["jobId"] == "lc-queue-b", nxt
    assert nxt["execution"]["status"] == "QUEUED"
    assert nxt["execution"]["jobDocument"] == doc_b
    notify = device.wait_notify(since)
    assert _queued_ids(notify) == ["lc-queue-b", "lc-queue-c"], notify
    assert notify["jobs"].get("IN_PROGRESS", []) == [], notify

    assert describe_execution(server, "lc-queue-a", "lc-queue")["status"] == "SUCCEEDED"
    assert describe_job(server, "lc-queue-a")["status"] == "COMPLETED"
    job_b = describe_job(server, "lc-queue-b")
    assert job_b["status"] == "IN_PROGRESS"
    assert_counters(job_b, queued=1)


def test_cancel_job_cancels_queued_executions_only(server, make_device, connect_device, connect_watcher,
                                                   create_job):
    """cancel-job (no --force): the QUEUED execution becomes CANCELED (its device
    is told by notify-next that nothing is pending, and a JOB_EXECUTION `canceled`
    event is sent); the IN_PROGRESS one keeps running and may still finish; the
    job is CANCELED with forceCanceled false and a JOB `canceled` event."""
    busy = connect_device(make_device("lc-cancel-busy"))
    idle = connect_device(make_device("lc-cancel-idle"))
    watcher = connect_watcher("lc-cancel-watcher", "$aws/events/job/lc-cancel/#",
                              "$aws/events/jobExecution/lc-cancel/#")
    create_job("lc-cancel", ["lc-cancel-busy", "lc-cancel-idle"])
    assert busy.start_next()["execution"]["jobId"] == "lc-cancel"

    since = idle.mark()
    out = server.aws("cancel-job", "--job-id", "lc-cancel", "--comment", "not needed", "--reason-code", "NOT_NEEDED")
    assert out["jobId"] == "lc-cancel" and out["jobArn"].endswith(":job/lc-cancel"), out

    job = describe_job(server, "lc-cancel")
    assert job["status"] == "CANCELED" and job.get("forceCanceled") is False, job
    assert job.get("comment") == "not needed" and job.get("reasonCode") == "NOT_NEEDED", job
    assert describe_execution(server, "lc-cancel", "lc-cancel-idle")["status"] == "CANCELED"
    assert describe_execution(server, "lc-cancel", "lc-cancel-busy")["status"] == "IN_PROGRESS"
    nxt = idle.wait_notify_next(since)
    assert "execution" not in nxt, f"queue should be empty after cancel: {nxt}"

    event = watcher.wait_topic("$aws/events/jobExecution/lc-cancel/canceled").json
    assert (event["eventType"], event["operation"], event["status"]) == ("JOB_EXECUTION", "canceled", "CANCELED"), event
    assert event["thingArn"].endswith(":thing/lc-cancel-idle"), event
    event = watcher.wait_topic("$aws/events/job/lc-cancel/canceled").json
    assert (event["eventType"], event["operation"], event["status"]) == ("JOB", "canceled", "CANCELED"), event
    assert event["jobId"] == "lc-cancel", event

    busy.update("lc-cancel", "SUCCEEDED")
    assert describe_execution(server, "lc-cancel", "lc-cancel-busy")["status"] == "SUCCEEDED"
    job = describe_job(server, "lc-cancel")
    assert job["status"] == "CANCELED", job
    assert_counters(job, canceled=1, succeeded=1)


def test_force_cancel_job_stops_in_progress_execution(server, make_device, connect_device, create_job):
    """cancel-job --force: the IN_PROGRESS execution becomes CANCELED with
    forceCanceled true, and the device's next update is rejected with
    InvalidStateTransition (executionState shows CANCELED)."""
    device = connect_device(make_device("lc-force"))
    create_job("lc-force", ["lc-force"])
    device.start_next()

    server.aws("cancel-job", "--job-id", "lc-force", "--force")
    job = describe_job(server, "lc-force")
    assert job["status"] == "CANCELED" and job.get("forceCanceled") is True, job
    execution = describe_execution(server, "lc-force", "lc-force")
    assert execution["status"] == "CANCELED" and execution.get("forceCanceled") is True, execution

    rejected = device.update_rejected("lc-force", "SUCCEEDED")
    assert rejected["code"] == "InvalidStateTransition", rejected
    assert rejected["executionState"]["status"] == "CANCELED", rejected
    assert describe_execution(server, "lc-force", "lc-force")["status"] == "CANCELED"


def test_cancel_job_execution_queued_and_with_force(server, make_device, connect_device, create_job):
    """cancel-job-execution: a QUEUED execution is canceled; an IN_PROGRESS one
    needs --force (else InvalidStateTransitionException); a canceled one cannot be
    canceled again; SNAPSHOT jobs whose executions are all terminal complete."""
    aws, expect_error = server.aws, server.expect_error
    device = connect_device(make_device("lc-cje"))
    create_job("lc-cje-queued", ["lc-cje"])
    create_job("lc-cje-running", ["lc-cje"])

    aws("cancel-job-execution", "--job-id", "lc-cje-queued", "--thing-name", "lc-cje")
    execution = describe_execution(server, "lc-cje-queued", "lc-cje")
    assert execution["status"] == "CANCELED" and execution.get("forceCanceled") in (None, False), execution
    eventually(lambda: _assert_job(server, "lc-cje-queued", "COMPLETED", canceled=1))

    assert device.start_next()["execution"]["jobId"] == "lc-cje-running"
    expect_error("InvalidStateTransitionException", "cancel-job-execution",
                 "--job-id", "lc-cje-running", "--thing-name", "lc-cje", operation="CancelJobExecution")
    assert describe_execution(server, "lc-cje-running", "lc-cje")["status"] == "IN_PROGRESS"

    aws("cancel-job-execution", "--job-id", "lc-cje-running", "--thing-name", "lc-cje", "--force")
    execution = describe_execution(server, "lc-cje-running", "lc-cje")
    assert execution["status"] == "CANCELED" and execution.get("forceCanceled") is True, execution
    assert device.update_rejected("lc-cje-running", "IN_PROGRESS")["code"] == "InvalidStateTransition"

    expect_error("InvalidStateTransitionException", "cancel-job-execution",
                 "--job-id", "lc-cje-running", "--thing-name", "lc-cje", "--force")


def test_delete_job_execution(server, make_device, connect_device, create_job):
    """delete-job-execution --execution-number 1 removes a terminal execution;
    an IN_PROGRESS one needs --force (else InvalidStateTransitionException), after
    which the device's update is rejected with ResourceNotFound."""
    aws, expect_error = server.aws, server.expect_error
    device = connect_device(make_device("lc-dje"))
    create_job("lc-dje-done", ["lc-dje"])
    create_job("lc-dje-running", ["lc-dje"])

    assert device.start_next()["execution"]["jobId"] == "lc-dje-done"
    device.update("lc-dje-done", "FAILED", statusDetails={"reason": "test"})
    aws("delete-job-execution", "--job-id", "lc-dje-done", "--thing-name", "lc-dje", "--execution-number", "1")
    expect_error("ResourceNotFoundException", "describe-job-execution",
                 "--job-id", "lc-dje-done", "--thing-name", "lc-dje", operation="DescribeJobExecution")
    assert aws("list-job-executions-for-job", "--job-id", "lc-dje-done")["executionSummaries"] == []

    assert device.start_next()["execution"]["jobId"] == "lc-dje-running"
    expect_error("InvalidStateTransitionException", "delete-job-execution", "--job-id", "lc-dje-running",
                 "--thing-name", "lc-dje", "--execution-number", "1", operation="DeleteJobExecution")
    assert describe_execution(server, "lc-dje-running", "lc-dje")["status"] == "IN_PROGRESS"

    aws("delete-job-execution", "--job-id", "lc-dje-running", "--thing-name", "lc-dje",
        "--execution-number", "1", "--force")
    expect_error("ResourceNotFoundException", "describe-job-execution",
                 "--job-id", "lc-dje-running", "--thing-name", "lc-dje")
    assert device.update_rejected("lc-dje-running", "SUCCEEDED")["code"] == "ResourceNotFound"


def test_delete_job_needs_force_while_in_progress(server, make_device, connect_device, connect_watcher,
                                                  create_job):
    """delete-job on a job with an IN_PROGRESS execution: 409
    InvalidStateTransitionException and nothing changes; with --force the job and
    its executions go away (describe-job then ResourceNotFoundException, JOB
    `deletion_in_progress` and `deleted` events) and the device learns from
    notify-next that its queue is empty."""
    aws, expect_error = server.aws, server.expect_error
    device = connect_device(make_device("lc-del"))
    watcher = connect_watcher("lc-del-watcher", "$aws/events/job/lc-del/#")
    create_job("lc-del", ["lc-del"])
    device.start_next()

    err = expect_error("InvalidStateTransitionException", "delete-job", "--job-id", "lc-del", operation="DeleteJob")
    print(err.message)
    status = _http_status_of(server, "delete_job", jobId="lc-del")
    assert status == 409, f"DeleteJob without force answered HTTP {status}, AWS models 409"
    assert describe_job(server, "lc-del")["status"] == "IN_PROGRESS"
    assert describe_execution(server, "lc-del", "lc-del")["status"] == "IN_PROGRESS"

    since = device.mark()
    aws("delete-job", "--job-id", "lc-del", "--force")
    eventually(lambda: _assert_gone(server, "lc-del"), timeout=15)
    expect_error("ResourceNotFoundException", "describe-job-execution", "--job-id", "lc-del", "--thing-name", "lc-del")
    nxt = device.wait_notify_next(since)
    assert "execution" not in nxt, nxt
    assert device.update_rejected("lc-del", "SUCCEEDED")["code"] == "ResourceNotFound"
    for operation, status in (("deletion_in_progress", "DELETION_IN_PROGRESS"), ("deleted", "DELETED")):
        event = watcher.wait_topic(f"$aws/events/job/lc-del/{operation}").json
        assert (event["eventType"], event["operation"], event["status"], event["jobId"]) == (
            "JOB", operation, status, "lc-del"), event


def test_delete_completed_job_without_force(server, make_device, connect_device, create_job):
    """A COMPLETED job can be deleted without --force."""
    device = connect_device(make_device("lc-del-done"))
    create_job("lc-del-done", ["lc-del-done"])
    device.start_next()
    device.update("lc-del-done", "SUCCEEDED")
    eventually(lambda: _assert_job(server, "lc-del-done", "COMPLETED", succeeded=1))
    server.aws("delete-job", "--job-id", "lc-del-done")
    eventually(lambda: _assert_gone(server, "lc-del-done"), timeout=15)


def test_persistent_session_receives_notifications_sent_while_offline(server, make_device, create_job):
    """A device with cleanSession=false and QoS 1 subscriptions (as the AWS IoT
    Device Client connects) gets the notify-next published while it was offline
    when it reconnects with the same client id, and the broker reports the
    session as present."""
    identity = make_device("lc-offline")
    client_id = "lc-offline-persistent"
    device = JobsDevice(identity, server.mqtt_port, client_id, clean_session=False).connect()
    try:
        device.subscribe_ok(device.topic("notify-next"), qos=1)
    finally:
        device.close()

    create_job("lc-offline", ["lc-offline"], {"operation": "while-offline"})

    device = JobsDevice(identity, server.mqtt_port, client_id, clean_session=False).connect()
    try:
        assert device.session_present, "CONNACK session present flag is 0 for a persistent session"
        nxt = device.wait_notify_next(0)
        assert nxt["execution"]["jobId"] == "lc-offline", nxt
        assert nxt["execution"]["jobDocument"] == {"operation": "while-offline"}, nxt
    finally:
        device.close()


# ----------------------------------------------------------------------------- helpers


def _queued_ids(notify: dict) -> list[str]:
    return [j["jobId"] for j in notify.get("jobs", {}).get("QUEUED", [])]


def _assert_job(server, job_id: str, status: str, **counters: int) -> None:
    job = describe_job(server, job_id)
    assert job["status"] == status, job
    assert_counters(job, **counters)


def _assert_gone(server, job_id: str) -> None:
    err = server.aws_error("describe-job", "--job-id", job_id)
    assert err.code == "ResourceNotFoundException", err


def _http_status_of(server, operation: str, **params) -> int:
    """HTTP status of a failing call, through boto3 (the CLI does not print it)."""
    from botocore.exceptions import ClientError

    try:
        getattr(server.boto3_client(), operation)(**params)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
    pytest.fail(f"{operation}({params}) succeeded")
