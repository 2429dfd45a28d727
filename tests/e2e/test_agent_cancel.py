"""fleetjobs-agent honours cancel: `cancel-job-execution --force` in the middle of a step
stops the step's whole process group, nothing more is reported for that job, and the agent
goes on with the next job."""

from __future__ import annotations


from e2elib.agent import agent_bin, describe, pids_alive, start_agent, wait_status, wait_until

__all__ = ["agent_bin", "start_agent"]


def test_force_cancel_mid_step_kills_the_process_group(server, make_device, create_job, start_agent):
    device = make_device("agent-cancel")
    agent = start_agent(device, run=False)
    pid_file = agent.base / "pids"
    agent.write_handler("busy", f"#!/bin/sh\necho $$ >> {pid_file}\nsleep 300 &\necho $! >> {pid_file}\nwait\n")
    agent.start()
    create_job("agent-cancel-job", [device.thing_name], {"operation": "busy"})
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, what="the busy handler")
    wait_status(server, "agent-cancel-job", device.thing_name, "IN_PROGRESS", agent=agent)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert pids_alive(pids) == pids

    server.aws("cancel-job-execution", "--job-id", "agent-cancel-job", "--thing-name", device.thing_name, "--force")
    wait_until(lambda: pids_alive(pids) == [], timeout=30, what=f"the handler's process group {pids} to die")
    execution = describe(server, "agent-cancel-job", device.thing_name)
    assert execution["status"] == "CANCELED", execution

    def journaled_cancel():
        journal = agent.journal()
        return journal["current"] is None and any(
            h["key"]["jobId"] == "agent-cancel-job" and h["outcome"] == "CANCELED" for h in journal["history"])

    wait_until(journaled_cancel, timeout=10, what="the cancel in the journal")
    assert not [e for e in agent.journal()["outbox"] if e["key"]["jobId"] == "agent-cancel-job"]

    # Not stuck: the next job runs.
    create_job("agent-after-cancel", [device.thing_name], {"operation": "customJob"})
    wait_status(server, "agent-after-cancel", device.thing_name, "SUCCEEDED", agent=agent)
