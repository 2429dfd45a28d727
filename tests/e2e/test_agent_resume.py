"""fleetjobs-agent survives what kills other agents: reboots, kill -9 in the middle of a
download or of a step, and a server that goes away while a step finishes.

Finished steps append to a marker file, so "never rerun a finished step" is checked by
counting lines. A kill -9 of the agent is followed by killing the step's process group,
which is what systemd (KillMode=control-group) does to a crashed agent's children and what a
power cut does to everything.
"""

from __future__ import annotations



from e2elib.agent import (
    agent_bin, describe, details, file_server, install_document, kill_group_of, sha256, start_agent, wait_status,
    wait_until,
)
from e2elib.identity import create_device
from e2elib.util import eventually

__all__ = ["agent_bin", "file_server", "start_agent"]

MARK = '#!/bin/sh\n# $1 = runAsUser (Device Client convention), $2 = the mark\necho "$2" >> {marks}\n'


def step(name: str, handler: str, *args: str) -> dict:
    return {"action": {"name": name, "type": "runHandler", "input": {"handler": handler, "args": list(args)}}}


def marks(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_reboot_step_succeeds_only_after_the_boot_id_changed(server, make_device, create_job, start_agent):
    """Device Client document [mark before, reboot.sh, mark after]: the reboot command is
    issued and the job stays IN_PROGRESS; an agent restart with the same boot id does not
    complete it; a restart with a new boot id (the reboot happened) runs the step after the
    reboot and SUCCEEDS, without running the step before it again."""
    device = make_device("agent-reboot")
    agent = start_agent(device, run=False)
    marks_file = agent.base / "marks"
    agent.write_handler("mark.sh", MARK.format(marks=marks_file))
    agent.start()
    doc = {"version": "1.0", "steps": [
        step("before", "mark.sh", "before"),
        step("reboot", "reboot.sh"),
        step("after", "mark.sh", "after"),
    ]}
    create_job("agent-reboot-job", [device.thing_name], doc)
    wait_until(agent.reboot_marker.exists, what="the reboot command")
    assert marks(marks_file) == ["before"]
    assert describe(server, "agent-reboot-job", device.thing_name)["status"] == "IN_PROGRESS"

    # The agent restarts but the machine did not reboot: still waiting.
    agent.kill9()
    agent.reboot_marker.unlink()
    logged = len(agent.log())
    agent.start()
    # Once the resumed job has ended its turn waiting for the reboot, the agent has decided.
    wait_until(lambda: "AwaitingReboot" in agent.log()[logged:], what="the resumed job to wait for the reboot")
    execution = describe(server, "agent-reboot-job", device.thing_name)
    assert execution["status"] == "IN_PROGRESS", execution
    assert marks(marks_file) == ["before"]

    # Now the "machine" reboots: new boot id.
    agent.kill9()
    agent.set_boot_id("boot-2")
    agent.start()
    execution = wait_status(server, "agent-reboot-job", device.thing_name, "SUCCEEDED", agent=agent)
    assert marks(marks_file) == ["before", "after"]
    assert details(execution)["step"].startswith("3/3"), details(execution)


def test_kill_9_mid_download_resumes_with_range(server, make_device, create_job, start_agent, file_server, tmp_path):
    """kill -9 while a throttled install download is half done: after the restart the agent
    asks for the rest (HTTP Range from the journaled checkpoint), verifies the sha256 and
    SUCCEEDS (jobs-agent.js fails any interrupted install)."""
    payload = bytes(range(256)) * 4096 * 2  # 2 MiB
    files = file_server({"big.bin": payload}, rate=256 * 1024)  # ~8 s
    device = make_device("agent-dl-resume")
    agent = start_agent(device)
    workdir = tmp_path / "big-app"
    create_job("agent-dl-resume-job", [device.thing_name],
               install_document("big", workdir, [("big.bin", files.url("big.bin"), sha256(payload))]))

    def checkpointed_bytes() -> int:
        """Bytes of the running download in the journal (a Download checkpoint, or the
        install step's Marker checkpoint {staged, downloading: {fileName, bytes}})."""
        job = agent.journal().get("current") or {}
        for s in job.get("steps", []):
            cp = s.get("checkpoint") or {}
            if cp.get("kind") == "download":
                return cp.get("bytes", 0)
            downloading = (cp.get("value") or {}).get("downloading") or {}
            if downloading.get("bytes"):
                return downloading["bytes"]
        return 0

    wait_until(lambda: checkpointed_bytes() > 0, what="a download checkpoint")
    agent.kill9()
    first_requests = len(files.requests)
    agent.start()
    wait_status(server, "agent-dl-resume-job", device.thing_name, "SUCCEEDED", timeout=90, agent=agent)
    assert (workdir / "big.bin").read_bytes() == payload
    resumed = [r for r in files.requests[first_requests:] if r[0] == "big.bin"]
    assert resumed, f"no request after the restart: {files.requests}"
    assert resumed[0][1] and resumed[0][1].startswith("bytes=") and not resumed[0][1].startswith("bytes=0-"), \
        f"the download restarted from scratch: {files.requests}"


def test_kill_9_mid_step_resumes_without_rerunning_finished_steps(server, make_device, create_job, start_agent):
    """[mark first, long step, mark last]: kill -9 during the long step (and its process
    group, as systemd would). The restarted agent runs the interrupted step again and the
    last one, and SUCCEEDS; the first step ran exactly once."""
    device = make_device("agent-step-resume")
    agent = start_agent(device, run=False)
    marks_file = agent.base / "marks"
    pid_file = agent.base / "long.pid"
    agent.write_handler("mark.sh", MARK.format(marks=marks_file))
    agent.write_handler("long.sh", f'#!/bin/sh\necho $$ > {pid_file}\nsleep 4\necho long >> {marks_file}\n')
    agent.start()
    doc = {"version": "1.0", "steps": [
        step("first", "mark.sh", "first"),
        step("long", "long.sh"),
        step("last", "mark.sh", "last"),
    ]}
    create_job("agent-step-resume-job", [device.thing_name], doc)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the long step")
    agent.kill9()
    kill_group_of(pid_file)
    assert marks(marks_file) == ["first"]
    agent.start()
    execution = wait_status(server, "agent-step-resume-job", device.thing_name, "SUCCEEDED", agent=agent)
    assert marks(marks_file) == ["first", "long", "last"]
    history = agent.journal()["history"]
    assert any(h["key"]["jobId"] == "agent-step-resume-job" and h["outcome"] == "SUCCEEDED" for h in history)
    assert details(execution)["step"].startswith("3/3")


def test_updates_made_offline_are_replayed_in_order(own_server, start_agent, tmp_path):
    """The server goes away while a step runs; the step finishes offline (its SUCCEEDED is
    journaled in the outbox); when the server is back the same agent process replays it."""
    srv = own_server
    device = create_device(srv, "agent-offline", tmp_path / "certs-offline")
    agent = start_agent(device, srv=srv, run=False)
    go = agent.base / "go"
    agent.write_handler("wait-go", f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.2; done\necho done\n")
    agent.start()
    doc_file = srv.write_file("offline.json", '{"operation": "wait-go"}')
    srv.aws("create-job", "--job-id", "agent-offline-job", "--targets", device.thing_arn,
            "--document", f"file://{doc_file}")
    wait_status(srv, "agent-offline-job", device.thing_name, "IN_PROGRESS", agent=agent)
    pid = agent.proc.pid

    srv.stop()
    go.touch()

    def outbox_has_succeeded():
        outbox = agent.journal()["outbox"]
        assert any(e["status"] == "SUCCEEDED" for e in outbox), outbox

    eventually(outbox_has_succeeded, timeout=30)
    wait_until(lambda: not agent.status()["runtime"]["connected"], timeout=10, what="the agent to notice")
    srv.start()
    execution = wait_status(srv, "agent-offline-job", device.thing_name, "SUCCEEDED", timeout=60, agent=agent)
    assert details(execution)["operation"] == "wait-go"
    assert agent.proc.pid == pid and agent.running(), "the agent restarted instead of replaying"
    wait_until(lambda: agent.journal()["outbox"] == [], timeout=10, what="an empty outbox")
