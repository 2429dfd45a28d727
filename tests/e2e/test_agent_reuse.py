"""fleetjobs-agent and re-used job ids: AWS lets a job id be used again once delete-job has
finished, and the new job's execution is numbered 1 again. The agent must take it for a new
execution, not for the one its journal remembers under ``jobId#1``:

* a job that SUCCEEDED, deleted and re-created with another document, runs again and reports
  its own result (not the old statusDetails);
* a job deleted while its step runs is abandoned (the step's process group is stopped), the
  re-created job (same id, same document) runs, and the device's queue goes on;
* the same while the agent is down: the journaled job it resumes is the old execution, whose
  updates must not land on the new one (same id and number, so only the identity tells them
  apart); the new one runs.
"""

from __future__ import annotations

import json

from e2elib.agent import agent_bin, describe, details, kill_group_of, pids_alive, start_agent, wait_status, wait_until
from e2elib.util import eventually

__all__ = ["agent_bin", "start_agent"]


def delete_job(server, job_id: str) -> None:
    """delete-job --force, then wait until the deletion has finished (the id is free again)."""
    server.aws("delete-job", "--job-id", job_id, "--force")

    def gone():
        err = server.aws_error("describe-job", "--job-id", job_id)
        assert err.code == "ResourceNotFoundException", err

    eventually(gone, timeout=30, interval=0.3)


def lines(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def slow_once_handler(agent):
    """Handler `slow-once`: long the first time (until its process group is killed), quick
    afterwards. Returns (file of the long run's pids, file with a line per finished run)."""
    pid_file, runs, started = agent.base / "pids", agent.base / "runs", agent.base / "started"
    agent.write_handler(
        "slow-once",
        "#!/bin/sh\n"
        f"if [ ! -e {started} ]; then\n"
        f"  touch {started}\n"
        f"  echo $$ >> {pid_file}\n"
        "  sleep 300 &\n"
        f"  echo $! >> {pid_file}\n"
        "  wait\n"
        "fi\n"
        f"echo run >> {runs}\n",
    )
    return pid_file, runs


def test_a_finished_job_recreated_with_another_document_runs_again(server, make_device, create_job, start_agent):
    device = make_device("agent-reuse-done")
    agent = start_agent(device, run=False)
    marks = agent.base / "marks"
    agent.write_handler(
        "mark",
        "#!/bin/sh\n"
        f"tag=$(printf '%s' \"$FLEETJOBS_JOB_DOCUMENT\" | sed -n 's/.*\"tag\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
        f'echo "$tag" >> {marks}\n'
        'echo "ran-$tag"\n',
    )
    agent.start()
    job = "agent-reuse-done-job"
    create_job(job, [device.thing_name], {"operation": "mark", "includeStdOut": True, "tag": "first"})
    first = wait_status(server, job, device.thing_name, "SUCCEEDED", agent=agent)
    assert lines(marks) == ["first"]
    assert "ran-first" in json.dumps(details(first)), details(first)
    wait_until(lambda: agent.journal()["outbox"] == [], timeout=15, what="the final status to be acknowledged")

    delete_job(server, job)
    create_job(job, [device.thing_name], {"operation": "mark", "includeStdOut": True, "tag": "second"})
    second = wait_status(server, job, device.thing_name, "SUCCEEDED", agent=agent)
    assert second["executionNumber"] == 1, second
    assert lines(marks) == ["first", "second"], "the re-created job was not run"
    shown = json.dumps(details(second))
    assert "ran-second" in shown and "ran-first" not in shown, details(second)

    history = [h for h in agent.journal()["history"] if h["key"]["jobId"] == job]
    assert [h["outcome"] for h in history] == ["SUCCEEDED", "SUCCEEDED"], history
    first_key, second_key = history[0]["key"], history[1]["key"]
    assert first_key["documentHash"] != second_key["documentHash"], history
    assert first_key["thing"] == device.thing_name and first_key["endpoint"].endswith(f":{server.mqtt_port}")


def start_long_job(server, make_device, create_job, start_agent, name: str):
    """A device `name` whose agent is in the long step of job `{name}-job`: (device, agent,
    pid file, runs file, job id, document, the IN_PROGRESS execution)."""
    device = make_device(name)
    agent = start_agent(device, run=False)
    pid_file, runs = slow_once_handler(agent)
    agent.start()
    job = f"{name}-job"
    document = {"operation": "slow-once"}
    create_job(job, [device.thing_name], document)
    wait_until(lambda: len(lines(pid_file)) == 2, what="the long step")
    old = wait_status(server, job, device.thing_name, "IN_PROGRESS", agent=agent)
    return device, agent, pid_file, runs, job, document, old


def test_a_job_deleted_while_running_and_recreated_does_not_block_the_queue(server, make_device, create_job,
                                                                           start_agent):
    device, agent, pid_file, runs, job, document, old = start_long_job(
        server, make_device, create_job, start_agent, "agent-reuse-running")
    pids = [int(p) for p in lines(pid_file)]
    assert pids_alive(pids) == pids

    # Deleted while its step runs, then the same id with the same document at once.
    delete_job(server, job)
    create_job(job, [device.thing_name], document)
    wait_until(lambda: pids_alive(pids) == [], timeout=30, what=f"the old step's process group {pids} to stop")
    new = wait_status(server, job, device.thing_name, "SUCCEEDED", agent=agent)
    assert new["executionNumber"] == old["executionNumber"] == 1, (old, new)
    assert lines(runs) == ["run"], "only the re-created job ran to its end"

    later = "agent-reuse-running-later"
    create_job(later, [device.thing_name], {"operation": "customJob"})
    wait_status(server, later, device.thing_name, "SUCCEEDED", agent=agent)

    outcomes = [(h["key"]["jobId"], h["outcome"]) for h in agent.journal()["history"]]
    assert outcomes == [(job, "CANCELED"), (job, "SUCCEEDED"), (later, "SUCCEEDED")], outcomes
    wait_until(lambda: agent.journal()["outbox"] == [], timeout=15, what="an empty outbox")


def test_a_job_deleted_and_recreated_while_the_agent_was_down(server, make_device, create_job, start_agent):
    device, agent, pid_file, runs, job, document, old = start_long_job(
        server, make_device, create_job, start_agent, "agent-reuse-down")
    agent.kill9()
    kill_group_of(pid_file)

    delete_job(server, job)
    create_job(job, [device.thing_name], document)
    queued = describe(server, job, device.thing_name)
    assert queued["status"] == "QUEUED" and queued["executionNumber"] == old["executionNumber"] == 1
    # The agent resumes the old execution from its journal (offline first) and finishes it;
    # none of that may reach the new execution, which must run itself.
    agent.start()
    new = wait_status(server, job, device.thing_name, "SUCCEEDED", agent=agent)
    assert lines(runs), "no run finished"
    entries = [h for h in agent.journal()["history"] if h["key"]["jobId"] == job]
    assert len(entries) == 2, f"the old and the new execution must each end here: {entries}"
    by_queued = {h["key"].get("queuedAt"): h["outcome"] for h in entries}
    assert by_queued.get(int(new["queuedAt"])) == "SUCCEEDED", f"the new execution did not run here: {entries}"
    assert by_queued.get(int(old["queuedAt"])) in ("SUCCEEDED", "CANCELED"), entries
    assert details(new)["step"].startswith("1/1"), details(new)

    later = "agent-reuse-down-later"
    create_job(later, [device.thing_name], {"operation": "customJob"})
    wait_status(server, later, device.thing_name, "SUCCEEDED", agent=agent)
    wait_until(lambda: agent.journal()["outbox"] == [], timeout=15, what="an empty outbox")
