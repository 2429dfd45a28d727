"""fleetjobs-agent against a real ``fleetjobs serve``: documents it runs, refuses and times out.

Each test has its own thing and agent (own state dir, handler dir and boot-id file); the
module shares one server. The agent connects with the JS samples' flags
(``-f CERTS -H localhost -p PORT -T THING``).
"""

from __future__ import annotations

import json
import subprocess
import time

from e2elib.agent import (
    agent_bin, details, file_server, install_document, pids_alive, sha256, start_agent, wait_status, wait_until,
)

__all__ = ["agent_bin", "file_server", "start_agent"]  # fixtures used below


def test_tutorial_custom_job_succeeds(server, make_device, create_job, start_agent):
    """The tutorial's document, unchanged: customJob with no handler installed → SUCCEEDED,
    statusDetails name the operation; `status` shows the finished job."""
    device = make_device("agent-tutorial")
    agent = start_agent(device)
    create_job("agent-example-job-01", [device.thing_name], {"operation": "customJob", "otherInfo": "someValue"})
    execution = wait_status(server, "agent-example-job-01", device.thing_name, "SUCCEEDED", agent=agent)
    assert details(execution)["operation"] == "customJob"
    assert details(execution)["step"].startswith("1/1")
    text = agent.status(json_output=False)
    assert "agent-example-job-01#1 SUCCEEDED" in text, text
    assert "connected (MQTT" in text, text


def test_handler_runs_with_the_document(server, make_device, create_job, start_agent):
    """An `operation` routed to `<handler dir>/<operation>` (the JS samples' routing): the
    handler gets the document in FLEETJOBS_JOB_DOCUMENT; includeStdOut puts its output in
    statusDetails."""
    device = make_device("agent-handler")
    agent = start_agent(device, run=False)
    out = agent.base / "seen.json"
    agent.write_handler("greet", f'#!/bin/sh\nprintf "%s" "$FLEETJOBS_JOB_DOCUMENT" > {out}\necho hello-from-handler\n')
    agent.start()
    doc = {"operation": "greet", "includeStdOut": True, "who": "world"}
    create_job("agent-greet", [device.thing_name], doc)
    execution = wait_status(server, "agent-greet", device.thing_name, "SUCCEEDED", agent=agent)
    assert json.loads(out.read_text())["who"] == "world"
    assert "hello-from-handler" in json.dumps(details(execution)), details(execution)


def test_install_with_checksum_then_wrong_checksum(server, make_device, create_job, start_agent, file_server,
                                                   tmp_path):
    """jobs-agent.js `install` with sha256 checksums from a local HTTP server: the right
    checksum installs the file; a wrong one FAILS the job and installs nothing."""
    payload = b"#!/bin/sh\necho app v1\n" * 1000
    files = file_server({"app.sh": payload})
    device = make_device("agent-install")
    agent = start_agent(device)

    good_dir = tmp_path / "app-good"
    create_job("agent-install-ok", [device.thing_name],
               install_document("app", good_dir, [("app.sh", files.url("app.sh"), sha256(payload))]))
    execution = wait_status(server, "agent-install-ok", device.thing_name, "SUCCEEDED", agent=agent)
    assert (good_dir / "app.sh").read_bytes() == payload
    assert details(execution)["operation"] == "install"

    bad_dir = tmp_path / "app-bad"
    create_job("agent-install-bad", [device.thing_name],
               install_document("app2", bad_dir, [("app.sh", files.url("app.sh"), "0" * 64)]))
    execution = wait_status(server, "agent-install-bad", device.thing_name, "FAILED", agent=agent)
    reason = details(execution).get("reason", "")
    assert "sha256" in reason.lower() or "checksum" in reason.lower(), details(execution)
    assert not (bad_dir / "app.sh").exists(), "a file with the wrong checksum was installed"
    leftovers = [p.name for p in bad_dir.rglob("*")] if bad_dir.exists() else []
    assert not [n for n in leftovers if n.startswith("app.sh")], leftovers


def test_unknown_operation_is_rejected_and_the_next_job_runs(server, make_device, create_job, start_agent):
    """An operation with no handler (jobs-agent.js would never answer and block the queue)
    is REJECTED within seconds with a reason, and the job queued behind it runs."""
    device = make_device("agent-unknown")
    create_job("agent-unknown-op", [device.thing_name], {"operation": "frobnicate"})
    create_job("agent-after-unknown", [device.thing_name], {"operation": "customJob"})
    started = time.monotonic()
    agent = start_agent(device)
    rejected = wait_status(server, "agent-unknown-op", device.thing_name, "REJECTED", timeout=20, agent=agent)
    assert time.monotonic() - started < 20
    assert "frobnicate" in details(rejected)["reason"], details(rejected)
    wait_status(server, "agent-after-unknown", device.thing_name, "SUCCEEDED", agent=agent)


def test_malformed_document_is_rejected(server, make_device, create_job, start_agent):
    """A document the agent cannot read (no `operation`, no `version`) → REJECTED with a reason."""
    device = make_device("agent-malformed")
    agent = start_agent(device)
    create_job("agent-malformed-doc", [device.thing_name], {"hello": "world"})
    rejected = wait_status(server, "agent-malformed-doc", device.thing_name, "REJECTED", timeout=20, agent=agent)
    assert "invalid job document" in details(rejected)["reason"], details(rejected)


def test_step_timeout_fails_the_job_and_kills_the_process_group(server, make_device, create_job, start_agent):
    """A handler that outlives its `timeoutSeconds`: the job FAILS with a TIMED_OUT reason
    and the handler and its child are killed (the whole process group)."""
    device = make_device("agent-timeout")
    agent = start_agent(device, run=False)
    pid_file = agent.base / "pids"
    agent.write_handler("hang", f"#!/bin/sh\necho $$ >> {pid_file}\nsleep 300 &\necho $! >> {pid_file}\nwait\n")
    agent.start()
    create_job("agent-timeout-job", [device.thing_name], {"operation": "hang", "timeoutSeconds": 3})
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, what="the pid file")
    pids = [int(p) for p in pid_file.read_text().split()]
    execution = wait_status(server, "agent-timeout-job", device.thing_name, "FAILED", timeout=60, agent=agent)
    assert "TIMED_OUT" in details(execution)["reason"], details(execution)
    assert pids_alive(pids) == [], f"still alive after the timeout: {pids_alive(pids)}"


def test_signed_document_runs_and_tampered_or_unsigned_are_rejected(server, make_device, create_job, start_agent,
                                                                    agent_bin, tmp_path):
    """With --require-signed: a document signed with `fleetjobs-agent sign` by a trusted key
    runs; the same document changed after signing, and an unsigned one, are REJECTED."""
    keys = tmp_path / "keys"
    subprocess.run([str(agent_bin), "keygen", "--key-id", "ops", "--out", str(keys)], check=True)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "ops.pub").write_text((keys / "ops.pub").read_text())
    doc_file = tmp_path / "doc.json"
    doc_file.write_text(json.dumps({"operation": "customJob", "otherInfo": "signed"}))
    signed = json.loads(subprocess.run(
        [str(agent_bin), "sign", "--key", str(keys / "ops.key"), str(doc_file)],
        check=True, stdout=subprocess.PIPE, text=True).stdout)
    assert signed["fleetjobsSignature"]["keyId"] == "ops"
    tampered = dict(signed, otherInfo="changed")

    device = make_device("agent-signed")
    agent = start_agent(device, "--require-signed", "--trusted-keys", str(trusted))
    create_job("agent-signed-ok", [device.thing_name], signed)
    create_job("agent-signed-tampered", [device.thing_name], tampered)
    create_job("agent-unsigned", [device.thing_name], {"operation": "customJob"})
    wait_status(server, "agent-signed-ok", device.thing_name, "SUCCEEDED", agent=agent)
    bad = wait_status(server, "agent-signed-tampered", device.thing_name, "REJECTED", agent=agent)
    assert "signature" in details(bad)["reason"], details(bad)
    unsigned = wait_status(server, "agent-unsigned", device.thing_name, "REJECTED", agent=agent)
    assert "not signed" in details(unsigned)["reason"], details(unsigned)


def test_an_update_behind_the_agents_back_does_not_wedge_it(server, make_device, create_job, start_agent,
                                                              connect_device):
    """Another client bumps the execution's version while a step runs: the agent's next
    update (with the old expectedVersion) is rejected with VersionMismatch; the agent
    resyncs from the rejected executionState and its SUCCEEDED gets through."""
    device = make_device("agent-version")
    agent = start_agent(device, run=False)
    go = agent.base / "go"
    agent.write_handler("wait-go", f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.2; done\n")
    agent.start()
    create_job("agent-version-job", [device.thing_name], {"operation": "wait-go"})
    wait_status(server, "agent-version-job", device.thing_name, "IN_PROGRESS", agent=agent)
    wait_until(lambda: agent.journal()["outbox"] == [], timeout=10, what="the agent's updates to be acknowledged")
    other = connect_device(device, subscribe=False)
    other.update("agent-version-job", "IN_PROGRESS", statusDetails={"note": "someone else"})
    go.touch()
    execution = wait_status(server, "agent-version-job", device.thing_name, "SUCCEEDED", agent=agent)
    assert details(execution)["operation"] == "wait-go"
    mismatches = agent.log().count("version mismatch")
    # Once with the stale version, then resynced from the rejection's executionState (three
    # would mean it fell back to sending without expectedVersion).
    assert 1 <= mismatches < 3, f"{mismatches} version mismatches"


def test_managed_template_run_command(server, make_device, arn_prefix, start_agent, tmp_path):
    """A job from AWS's managed template AWS-Run-Command (as the AWS console's "Run command"
    makes it): the agent runs the substituted command, split on commas as the Device Client
    does; its optional runAsUser left out runs as the agent's own user."""
    device = make_device("agent-managed-run")
    agent = start_agent(device)
    marker = tmp_path / "ran-by-managed-template"
    server.aws(
        "create-job", "--job-id", "agent-managed-run", "--targets", f"{arn_prefix}:thing/{device.thing_name}",
        "--job-template-arn", "arn:aws:iot:us-east-1::jobtemplate/AWS-Run-Command:1.0",
        "--document-parameters", json.dumps({"command": f"touch,{marker}"}),
    )
    wait_status(server, "agent-managed-run", device.thing_name, "SUCCEEDED", agent=agent)
    assert marker.exists(), "the command of the managed template did not run"
