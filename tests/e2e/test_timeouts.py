"""Execution timeouts act (issue 8): a job's ``timeoutConfig.inProgressTimeoutInMinutes`` and a
device's ``stepTimeoutInMinutes`` turn an IN_PROGRESS execution whose device went quiet into
TIMED_OUT, with ``notify-next`` and the job's counters, also across a ``kill -9`` of the
server. Real devices (paho) start their job and then sleep; the AWS CLI reads the result.
Timers have minute resolution, so each test waits about a minute (on conditions, polled)."""

from __future__ import annotations

import json

from e2elib.identity import create_device
from e2elib.jobs import assert_counters, describe_execution, describe_job
from e2elib.mqtt import JobsDevice
from e2elib.util import eventually

# A one-minute timer fires within a second of its deadline; give it room on a loaded machine.
TIMEOUT_WAIT = 100.0


def test_in_progress_and_step_timers_time_out_quiet_devices(server, make_device, connect_device, create_job):
    job_timer = connect_device(make_device("to-job-timer"))
    step_timer = connect_device(make_device("to-step-timer"))
    create_job("to-job-timer", ["to-job-timer"], None, "--timeout-config", json.dumps({"inProgressTimeoutInMinutes": 1}))
    create_job("to-step-timer", ["to-step-timer"])

    started = job_timer.start_next()["execution"]
    assert started["status"] == "IN_PROGRESS" and 55 <= started["approximateSecondsBeforeTimedOut"] <= 60, started
    started = step_timer.start_next(stepTimeoutInMinutes=1)["execution"]
    assert 55 <= started["approximateSecondsBeforeTimedOut"] <= 60, started
    running = describe_execution(server, "to-step-timer", "to-step-timer")
    assert 0 < running["approximateSecondsBeforeTimedOut"] <= 60, running
    since_job, since_step = job_timer.mark(), step_timer.mark()

    # The devices now sleep: nobody reports anything.
    def timed_out(job: str) -> dict:
        e = describe_execution(server, job, job)
        assert e["status"] == "TIMED_OUT", e
        return e

    for job in ("to-job-timer", "to-step-timer"):
        e = eventually(lambda job=job: timed_out(job), timeout=TIMEOUT_WAIT, interval=1.0)
        assert "approximateSecondsBeforeTimedOut" not in e, e
        j = describe_job(server, job)
        assert j["status"] == "COMPLETED", j
        assert_counters(j, timed_out=1)
    # The queue changed: each device hears that nothing is next any more.
    assert "execution" not in job_timer.wait_notify_next(since_job)
    assert "execution" not in step_timer.wait_notify_next(since_step)

    # A late report is refused: the execution is terminal.
    late = job_timer.update_rejected("to-job-timer", "SUCCEEDED")
    assert late["code"] == "InvalidStateTransition", late
    assert late["executionState"]["status"] == "TIMED_OUT", late


def test_a_step_timer_replaced_by_an_update_and_cancelled_by_minus_one(server, make_device, connect_device,
                                                                        create_job):
    device = connect_device(make_device("to-replaced"))
    create_job("to-replaced", ["to-replaced"])
    device.start_next(stepTimeoutInMinutes=1)
    device.update("to-replaced", "IN_PROGRESS", stepTimeoutInMinutes=-1)
    assert "approximateSecondsBeforeTimedOut" not in describe_execution(server, "to-replaced", "to-replaced")
    device.update("to-replaced", "IN_PROGRESS", stepTimeoutInMinutes=10)
    running = describe_execution(server, "to-replaced", "to-replaced")
    assert 540 < running["approximateSecondsBeforeTimedOut"] <= 600, running
    device.update("to-replaced", "SUCCEEDED")
    assert describe_execution(server, "to-replaced", "to-replaced")["status"] == "SUCCEEDED"


def test_a_timer_survives_kill_9(own_server, tmp_path):
    srv = own_server
    identity = create_device(srv, "to-restart", tmp_path / "certs")
    doc = srv.write_file("to-restart.json", json.dumps({"operation": "sleep"}))
    srv.aws("create-job", "--job-id", "to-restart", "--targets", identity.thing_arn, "--document", f"file://{doc}")
    device = JobsDevice(identity, srv.mqtt_port).connect()
    try:
        device.start_next(stepTimeoutInMinutes=1)
    finally:
        device.close()

    srv.kill9()
    srv.start()

    def timed_out() -> None:
        assert describe_execution(srv, "to-restart", "to-restart")["status"] == "TIMED_OUT"

    eventually(timed_out, timeout=TIMEOUT_WAIT, interval=1.0)
    assert_counters(describe_job(srv, "to-restart"), timed_out=1)
