"""Control-plane helpers shared by the job tests."""

from __future__ import annotations

from .server import FleetjobsServer

#: every JobProcessDetails counter (AWS sends all eight, zeros included)
COUNTERS = (
    "numberOfCanceledThings",
    "numberOfSucceededThings",
    "numberOfFailedThings",
    "numberOfRejectedThings",
    "numberOfQueuedThings",
    "numberOfInProgressThings",
    "numberOfRemovedThings",
    "numberOfTimedOutThings",
)


def describe_job(server: FleetjobsServer, job_id: str) -> dict:
    return server.aws("describe-job", "--job-id", job_id)["job"]


def describe_execution(server: FleetjobsServer, job_id: str, thing: str, *extra: str) -> dict:
    return server.aws("describe-job-execution", "--job-id", job_id, "--thing-name", thing, *extra)["execution"]


def assert_counters(job: dict, **expected: int) -> None:
    """jobProcessDetails has all eight counters; the named ones have the given
    values (e.g. ``succeeded=1``), every other one is 0."""
    details = job.get("jobProcessDetails")
    assert isinstance(details, dict), f"no jobProcessDetails in {job}"
    want = {name: 0 for name in COUNTERS}
    for short, value in expected.items():
        key = f"numberOf{_camel(short)}Things"
        assert key in want, f"unknown counter {short}"
        want[key] = value
    got = {name: details.get(name) for name in COUNTERS}
    assert got == want, f"jobProcessDetails {details} != expected {want}"


def _camel(short: str) -> str:
    # "in_progress" -> "InProgress", "timed_out" -> "TimedOut", "succeeded" -> "Succeeded"
    return "".join(part.capitalize() for part in short.split("_"))
