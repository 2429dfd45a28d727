"""(d) Durability: everything survives `kill -9` and a restart with the same data dir."""

from __future__ import annotations

import json


from e2elib.identity import create_device
from e2elib.jobs import assert_counters, describe_execution, describe_job
from e2elib.mqtt import JobsDevice


def test_state_survives_kill_9_and_restart(own_server, tmp_path):
    """A thing, its ACTIVE certificate and policy, a job with one IN_PROGRESS (with
    statusDetails) and one QUEUED execution, and the generated CA and credentials
    are all still there after SIGKILL + restart on the same data dir: the CLI
    describes them unchanged and the device certificate connects and finishes
    its jobs."""
    srv = own_server
    identity = create_device(srv, "durable-thing", tmp_path / "certs")
    doc_file = srv.write_file("durable.json", json.dumps({"operation": "persist", "n": 1}))
    targets = identity.thing_arn
    srv.aws("create-job", "--job-id", "durable-running", "--targets", targets,
            "--document", f"file://{doc_file}", "--description", "survives kill -9")
    srv.aws("create-job", "--job-id", "durable-queued", "--targets", targets, "--document", f"file://{doc_file}")

    device = JobsDevice(identity, srv.mqtt_port).connect()
    try:
        device.start_next(statusDetails={"step": "before-crash"})
    finally:
        device.close()

    before = snapshot(srv, identity)
    credentials, root_ca = srv.credentials_file.read_bytes(), srv.root_ca.read_bytes()

    srv.kill9()
    srv.start()

    assert srv.credentials_file.read_bytes() == credentials, "credentials were regenerated"
    assert srv.root_ca.read_bytes() == root_ca, "root CA was regenerated"
    after = snapshot(srv, identity)
    assert after == before

    execution = describe_execution(srv, "durable-running", "durable-thing")
    assert execution["status"] == "IN_PROGRESS"
    assert execution["statusDetails"] == {"detailsMap": {"step": "before-crash"}}

    device = JobsDevice(identity, srv.mqtt_port).connect()
    try:
        device.subscribe_jobs()
        nxt = device.describe("$next")["execution"]
        assert (nxt["jobId"], nxt["status"]) == ("durable-running", "IN_PROGRESS"), nxt
        assert nxt["statusDetails"] == {"step": "before-crash"}
        assert nxt["jobDocument"] == {"operation": "persist", "n": 1}
        device.update("durable-running", "SUCCEEDED")
        started = device.start_next()["execution"]
        assert started["jobId"] == "durable-queued", started
        device.update("durable-queued", "SUCCEEDED")
    finally:
        device.close()

    for job_id in ("durable-running", "durable-queued"):
        job = describe_job(srv, job_id)
        assert job["status"] == "COMPLETED", job
        assert_counters(job, succeeded=1)

    # A second crash right after writes: the completions are durable too.
    srv.kill9()
    srv.start()
    assert describe_job(srv, "durable-queued")["status"] == "COMPLETED"
    assert describe_execution(srv, "durable-running", "durable-thing")["status"] == "SUCCEEDED"


def snapshot(srv, identity) -> dict:
    """What the CLI shows about the test's resources (minus volatile fields)."""
    cert = srv.aws("describe-certificate", "--certificate-id", identity.certificate_id)["certificateDescription"]
    return {
        "thing": srv.aws("describe-thing", "--thing-name", identity.thing_name),
        "principals": srv.aws("list-thing-principals", "--thing-name", identity.thing_name)["principals"],
        "cert": {k: cert.get(k) for k in ("certificateArn", "certificateId", "status", "certificatePem")},
        "policy": srv.aws("get-policy", "--policy-name", identity.policy_name)["policyDocument"],
        "attached": srv.aws("list-attached-policies", "--target", identity.certificate_arn)["policies"],
        "jobs": {j: describe_job(srv, j) for j in ("durable-running", "durable-queued")},
        "document": srv.aws("get-job-document", "--job-id", "durable-running")["document"],
        "executions": srv.aws("list-job-executions-for-thing", "--thing-name", identity.thing_name),
        "events": srv.aws("describe-event-configurations")["eventConfigurations"],
    }
