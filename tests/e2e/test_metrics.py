"""`GET /metrics`: the Prometheus exposition, read with the official Python client's parser
while a real device runs a job over MQTT and the AWS CLI drives the API."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from e2elib.mqtt import JobsDevice
from e2elib.util import eventually


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"{server.endpoint_url}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_a_job_run_by_a_real_device(server, make_device, connect_device, create_job):
    before = scrape(server)
    device = connect_device(make_device("metrics-dev"))
    def is_connected():
        samples = scrape(server)
        assert value(samples, "fleetjobs_mqtt_connections") >= 1
        return samples

    connected = eventually(is_connected)
    assert value(connected, "fleetjobs_mqtt_connects_total") >= value(before, "fleetjobs_mqtt_connects_total") + 1

    since = device.mark()
    create_job("metrics-job", ["metrics-dev"], {"operation": "metrics"})
    device.wait_notify_next(since)
    device.start_next()
    device.update("metrics-job", "SUCCEEDED", expectedVersion=2)
    server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", "metrics-no-such-job")

    after = scrape(server)
    # The gauges are read from the engine at the scrape: the execution the device finished.
    assert value(after, "fleetjobs_job_executions", status="SUCCEEDED") >= 1
    assert value(after, "fleetjobs_jobs", status="COMPLETED") >= 1
    assert value(after, "fleetjobs_things") >= 1
    # The device's requests came in as PUBLISH packets, its answers and notifications went out.
    for name in ("fleetjobs_mqtt_messages_received_total", "fleetjobs_mqtt_messages_sent_total"):
        assert value(after, name) >= value(before, name) + 2, name
    # Latency histogram per operation, and the error by its AWS code.
    assert value(after, "fleetjobs_api_request_duration_seconds_count", operation="CreateJob", listener="api") >= 1
    assert value(after, "fleetjobs_api_errors_total", operation="DescribeJob", code="ResourceNotFoundException") >= 1
    # Every write went through a group commit.
    assert value(after, "fleetjobs_store_commit_seconds_count") > value(before, "fleetjobs_store_commit_seconds_count")
    assert value(after, "fleetjobs_store_commit_batches_sum") >= value(after, "fleetjobs_store_commit_batches_count")
    assert value(after, "fleetjobs_store_commit_failures_total") == 0

    device.close()

    def is_gone():
        assert value(scrape(server), "fleetjobs_mqtt_connections") == 0

    eventually(is_gone)


def test_refused_connections_are_counted(server, make_device, connect_device):
    """A device whose certificate is INACTIVE is refused at CONNECT, and counted."""
    identity = make_device("metrics-refused")
    server.aws("update-certificate", "--certificate-id", identity.certificate_id, "--new-status", "INACTIVE")
    before = value(scrape(server), "fleetjobs_mqtt_connects_refused_total", reason="connack_refused")
    ok, reason = JobsDevice(identity, server.mqtt_port).try_connect()
    assert not ok, reason

    def is_counted():
        assert value(scrape(server), "fleetjobs_mqtt_connects_refused_total", reason="connack_refused") >= before + 1

    eventually(is_counted)
