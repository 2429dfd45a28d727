"""(f) A full disk: writes are refused with a retryable AWS error and change nothing,
reads go on, the server recovers by itself when space returns, and after kill -9 the store
and every answer agree.

The data directory sits on a small tmpfs of its own (mounting needs root, which the test
machines and CI have; elsewhere the test is skipped with that reason)."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from e2elib.identity import create_device
from e2elib.mqtt import JobsDevice
from e2elib.server import start_server
from e2elib.util import eventually

TMPFS_SIZE = "24m"
#: a 30 KB document: each create-job makes the database's log grow
BIG_DOCUMENT = json.dumps({"operation": "fill", "pad": "x" * 30_000})
OUTAGE_LOG = "the store refused a commit"
RECOVERY_LOG = "the store accepts writes again"


@pytest.fixture
def full_disk_server(fleetjobs_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the data directory needs root")
    data = tmp_path / "srv" / "data"
    data.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    srv = None
    try:
        srv = start_server(fleetjobs_bin, tmp_path / "srv", "disk_full")
        yield srv
    finally:
        if srv is not None:
            srv.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)


def fill(path) -> int:
    """Write `path` until the file system says it is full; the bytes written."""
    written = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while len(chunk) >= 512:
            try:
                written += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    return written


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    err = caught.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"].get("Message", "")


def test_a_full_disk_changes_nothing_and_the_server_recovers(full_disk_server, tmp_path):
    srv = full_disk_server
    iot = srv.boto3_client()
    identity = create_device(srv, "disk-thing", tmp_path / "certs")
    small = srv.write_file("small.json", json.dumps({"operation": "customJob"}))
    srv.aws("create-job", "--job-id", "running", "--targets", identity.thing_arn, "--document", f"file://{small}")
    device = JobsDevice(identity, srv.mqtt_port).connect().subscribe_jobs()
    try:
        assert device.start_next()["execution"]["jobId"] == "running"

        filler = srv.data_dir / "filler"
        assert fill(filler) > 0
        # A commit fails once the database's log must grow: create jobs until one is refused.
        acknowledged, refused = [], None
        for n in range(400):
            job_id = f"fill-{n}"
            try:
                iot.create_job(jobId=job_id, targets=[identity.thing_arn], document=BIG_DOCUMENT)
                acknowledged.append(job_id)
            except ClientError as e:
                response = e.response
                assert response["Error"]["Code"] == "ServiceUnavailableException", response
                assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
                assert "full" in response["Error"]["Message"], response["Error"]["Message"]
                refused = job_id
                break
        assert refused is not None, "400 large jobs fitted on a full disk"

        # Every write kind is refused and leaves nothing behind; reads go on.
        code, status, _ = error_of(lambda: iot.create_thing(thingName="lost-thing"))
        assert (code, status) == ("ServiceUnavailableException", 503)
        assert error_of(lambda: iot.describe_thing(thingName="lost-thing"))[0] == "ResourceNotFoundException"
        assert error_of(lambda: iot.describe_job(jobId=refused))[0] == "ResourceNotFoundException"
        srv.expect_error("ServiceUnavailableException", "create-thing", "--thing-name", "cli-lost")
        rejected = device.update_rejected("running", "SUCCEEDED")
        assert rejected["code"] == "InternalError", rejected
        assert iot.describe_job(jobId="running")["job"]["status"] == "IN_PROGRESS"
        execution = iot.describe_job_execution(jobId="running", thingName="disk-thing")["execution"]
        assert execution["status"] == "IN_PROGRESS", "the refused SUCCEEDED is not visible"
        pending = device.get_pending()
        assert [j["jobId"] for j in pending["inProgressJobs"]] == ["running"], "devices' reads go on"
        listed = {j["jobId"] for j in iot.list_jobs(maxResults=250)["jobs"]}
        assert listed == {"running", *acknowledged}
        log = srv.log_since(0)
        assert log.count(OUTAGE_LOG) == 1, "the outage is logged once"
        assert "job running: (none) -> IN_PROGRESS" in log, "transitions are logged"
        assert "job execution running on disk-thing: QUEUED -> IN_PROGRESS" in log
        assert f"job {refused}: (none)" not in log, "a refused change is not logged as done"
        assert "running on disk-thing: IN_PROGRESS -> SUCCEEDED" not in log

        # Space returns: the server takes writes again by itself, and the SDK's retries of
        # the refused writes create them (no conflict with a half-made earlier attempt).
        filler.unlink()

        def created():
            try:
                iot.create_thing(thingName="lost-thing")
            except ClientError as e:
                raise AssertionError(f"still refused: {e}") from e

        eventually(created, timeout=15, interval=0.3)
        iot.create_job(jobId=refused, targets=[identity.thing_arn], document=BIG_DOCUMENT)
        assert device.update("running", "SUCCEEDED") is not None
        assert iot.describe_job(jobId="running")["job"]["status"] == "COMPLETED"
        log = srv.log_since(0)
        assert RECOVERY_LOG in log
        assert "job execution running on disk-thing: IN_PROGRESS -> SUCCEEDED" in log
        assert "job running: IN_PROGRESS -> COMPLETED" in log
    finally:
        device.close()

    srv.kill9()
    srv.start()
    iot = srv.boto3_client()
    iot.describe_thing(thingName="lost-thing")
    assert error_of(lambda: iot.describe_thing(thingName="cli-lost"))[0] == "ResourceNotFoundException"
    listed = {j["jobId"] for j in iot.list_jobs(maxResults=250)["jobs"]}
    assert listed == {"running", refused, *acknowledged}
    assert iot.describe_job(jobId="running")["job"]["status"] == "COMPLETED"
    execution = iot.describe_job_execution(jobId="running", thingName="disk-thing")["execution"]
    assert execution["status"] == "SUCCEEDED"
    queued = iot.list_job_executions_for_thing(thingName="disk-thing", status="QUEUED", maxResults=250)
    assert len(queued["executionSummaries"]) == len(acknowledged) + 1
