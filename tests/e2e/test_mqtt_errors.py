"""(c) Bad input on the MQTT side: policy violations, rejected Jobs API requests
(answered on ``.../rejected`` with AWS's error codes), garbage on the port, and
certificates that may not connect."""

from __future__ import annotations

import random
import socket
import ssl

import pytest

from e2elib.identity import DeviceIdentity, create_keys_and_certificate
from e2elib.jobs import describe_execution
from e2elib.mqtt import MqttClient, tls_context


def test_publishing_to_another_things_jobs_topic_is_denied(server, make_device, connect_device, create_job):
    """A device whose policy covers only its own thing publishes an update to
    another thing's job: the broker disconnects it, and the other thing's
    execution is unchanged (still QUEUED, version 1)."""
    victim = make_device("mq-victim")
    create_job("mq-victim-job", ["mq-victim"])
    intruder = connect_device(make_device("mq-intruder"))

    intruder.publish("$aws/things/mq-victim/jobs/mq-victim-job/update",
                     {"status": "SUCCEEDED", "clientToken": "intrusion"})
    assert intruder.wait_disconnected(10), "the broker kept a client that published outside its policy"

    execution = describe_execution(server, "mq-victim-job", "mq-victim")
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1), execution
    # The rightful device still sees its job untouched.
    pending = connect_device(victim).get_pending()
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["mq-victim-job"], pending


def test_subscribing_to_another_things_jobs_topics_is_refused(server, make_device, connect_device, create_job):
    """Subscribing outside the policy is refused (SUBACK 0x80, or a disconnect),
    and no notification of the other thing reaches the client."""
    make_device("mq-private")
    snoop = connect_device(make_device("mq-snoop"))
    try:
        granted = snoop.subscribe("$aws/things/mq-private/jobs/notify-next")
        print(f"SUBACK return code {granted:#x}")
        assert granted >= 0x80, f"subscription outside the policy was granted (QoS {granted})"
    except AssertionError:
        if not snoop.wait_disconnected(0):
            raise
    since = snoop.mark()
    create_job("mq-private-job", ["mq-private"])
    assert snoop.received(lambda m: "mq-private" in m.topic, since) == []


def test_update_of_a_succeeded_execution_is_invalid_state_transition(server, make_device, connect_device, create_job):
    """SUCCEEDED -> IN_PROGRESS: rejected with code InvalidStateTransition, the
    clientToken echoed and executionState showing the stored state."""
    device = connect_device(make_device("mq-ist"))
    create_job("mq-ist", ["mq-ist"])
    device.start_next()
    device.update("mq-ist", "SUCCEEDED", statusDetails={"result": "ok"})

    resp = device.request("mq-ist/update", {"status": "IN_PROGRESS", "clientToken": "ist-token-1"})
    assert resp.outcome == "rejected" and resp.topic == device.topic("mq-ist/update/rejected"), resp
    assert resp["code"] == "InvalidStateTransition", resp.payload
    assert resp["clientToken"] == "ist-token-1"
    assert isinstance(resp["timestamp"], int) and isinstance(resp.get("message"), str), resp.payload
    state = resp["executionState"]
    assert state["status"] == "SUCCEEDED" and state["versionNumber"] == 3, state
    assert state.get("statusDetails") == {"result": "ok"}, state

    assert describe_execution(server, "mq-ist", "mq-ist")["status"] == "SUCCEEDED"


def test_stale_expected_version_is_version_mismatch(server, make_device, connect_device, create_job):
    """An update with an old expectedVersion is rejected with VersionMismatch and
    the current executionState; with the current version (as a JSON number or, as
    the Embedded C SDK sends it, a numeric string) it is accepted."""
    device = connect_device(make_device("mq-version"))
    create_job("mq-version", ["mq-version"])
    assert device.start_next()["execution"]["versionNumber"] == 2

    rejected = device.update_rejected("mq-version", "IN_PROGRESS", expectedVersion=1,
                                      statusDetails={"progress": "50%"})
    assert rejected["code"] == "VersionMismatch", rejected
    assert rejected["executionState"]["versionNumber"] == 2, rejected
    assert rejected["executionState"]["status"] == "IN_PROGRESS", rejected
    assert describe_execution(server, "mq-version", "mq-version")["versionNumber"] == 2

    accepted = device.update("mq-version", "IN_PROGRESS", expectedVersion=2,
                             statusDetails={"progress": "50%"}, includeJobExecutionState=True)
    assert accepted["executionState"]["versionNumber"] == 3, accepted
    assert accepted["executionState"]["statusDetails"] == {"progress": "50%"}, accepted
    accepted = device.update("mq-version", "SUCCEEDED", expectedVersion="3", includeJobExecutionState=True)
    assert accepted["executionState"]["status"] == "SUCCEEDED", accepted


def test_bad_requests_are_invalid_request_or_resource_not_found(server, make_device, connect_device, create_job):
    """Well-formed JSON that fails validation (no status, an unknown status, a
    status only the service may set, statusDetails that is not a string map) is
    rejected with InvalidRequest; a job the thing has no execution of with
    ResourceNotFound. Each echoes the clientToken and changes nothing."""
    device = connect_device(make_device("mq-invalid"))
    create_job("mq-invalid", ["mq-invalid"])

    for payload in (
        {},
        {"status": "DONE"},
        {"status": "TIMED_OUT"},
        {"status": "IN_PROGRESS", "statusDetails": "not a map"},
        {"status": "IN_PROGRESS", "statusDetails": {"bad key!": "x"}},
    ):
        resp = device.request("mq-invalid/update", {**payload, "clientToken": "bad-request"})
        assert resp.outcome == "rejected", f"{payload} was accepted: {resp.payload}"
        assert resp["code"] == "InvalidRequest", (payload, resp.payload)
        assert resp["clientToken"] == "bad-request", resp.payload
    execution = describe_execution(server, "mq-invalid", "mq-invalid")
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1), execution

    for suffix, payload in (("no-such-job/get", {}), ("no-such-job/update", {"status": "IN_PROGRESS"})):
        rejected = device.rejected(suffix, {**payload, "clientToken": "missing"})
        assert rejected["code"] == "ResourceNotFound" and rejected["clientToken"] == "missing", rejected


@pytest.mark.parametrize("api, suffix", [("update", "{job}/update"), ("get", "get"), ("start-next", "start-next")])
def test_malformed_json_is_invalid_json(server, make_device, connect_device, create_job, api, suffix):
    """Payloads that are not JSON are rejected with InvalidJson on `<topic>/rejected`
    and change nothing."""
    thing = job = f"mq-json-{api}"
    device = connect_device(make_device(thing))
    create_job(job, [thing])

    rejected = device.rejected(suffix.format(job=job), b'{"status": "SUCCEEDED", ')
    assert rejected["code"] == "InvalidJson", rejected
    execution = describe_execution(server, job, thing)
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1), execution


@pytest.mark.parametrize("name, suffix", [("verb", "{job}/frobnicate"), ("levels", "{job}/update/extra")])
def test_unknown_jobs_topic_is_invalid_topic(server, make_device, connect_device, create_job, name, suffix):
    """A publish under `$aws/things/T/jobs/` that maps to no API (unknown verb,
    extra topic levels) is answered with InvalidTopic on `<topic>/rejected`."""
    thing = job = f"mq-topic-{name}"
    device = connect_device(make_device(thing))
    create_job(job, [thing])
    # No clientToken: a request on an unknown topic is not parsed, so there is none to echo.
    rejected = device.rejected(suffix.format(job=job), {"status": "SUCCEEDED"}, token=False)
    assert rejected["code"] == "InvalidTopic", rejected
    assert describe_execution(server, job, thing)["status"] == "QUEUED"


def test_invalid_topic_echoes_the_client_token(server, make_device, connect_device):
    """AWS documents clientToken as reflected in every response, rejected ones
    included; Python v2 and Device Client match answers only by it."""
    device = connect_device(make_device("mq-topic-token"))
    rejected = device.rejected("some-job/frobnicate", {"status": "SUCCEEDED", "clientToken": "topic-token"},
                               timeout=3)
    assert rejected["code"] == "InvalidTopic" and rejected["clientToken"] == "topic-token", rejected


def test_garbage_on_the_mqtt_port_closes_only_that_connection(server, make_device, connect_device):
    """Random bytes over plain TCP, random bytes inside a good TLS session, and a TLS
    client without a certificate: each connection is closed by the server, which
    then still serves a new device."""
    identity = make_device("mq-garbage")
    rng = random.Random(1234)

    with socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=10) as plain:
        assert closed_by_peer_after(plain, rng.randbytes(2048)), "plain-TCP garbage: connection left open"

    ctx = tls_context(identity)
    with socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # 0x00 is no MQTT packet type, so this can never parse as a CONNECT.
            assert closed_by_peer_after(tls, b"\x00" + rng.randbytes(2047)), "TLS garbage: connection left open"

    no_cert = tls_context(ca=identity.ca_path)
    with socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=10) as raw:
        try:
            tls = no_cert.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError):
            pass  # refused during the handshake
        else:
            with tls:
                connect = bytes.fromhex("101000044d5154540402003c0004") + b"anon"
                assert closed_by_peer_after(tls, connect), "TLS client without certificate was served"

    pending = connect_device(identity).get_pending()
    assert pending["inProgressJobs"] == [] and pending["queuedJobs"] == [], pending


def closed_by_peer_after(sock: socket.socket, data: bytes, timeout: float = 10.0) -> bool:
    """Send ``data``; True when the peer closes the connection within ``timeout``."""
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
        while True:
            if not sock.recv(4096):
                return True
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


def test_inactive_certificates_cannot_connect(server, make_device, tmp_path):
    """A certificate set INACTIVE, and one created without --set-as-active, are
    refused at connect even with a policy attached."""
    identity = make_device("mq-inactive")
    server.aws("update-certificate", "--certificate-id", identity.certificate_id, "--new-status", "INACTIVE")
    assert_refused(identity, server.mqtt_port)

    cert = create_keys_and_certificate(server, tmp_path / "never-active", set_as_active=False)
    described = server.aws("describe-certificate", "--certificate-id", cert["certificateId"])
    assert described["certificateDescription"]["status"] == "INACTIVE", described
    server.aws("attach-policy", "--policy-name", identity.policy_name, "--target", cert["certificateArn"])
    server.aws("attach-thing-principal", "--thing-name", "mq-inactive", "--principal", cert["certificateArn"])
    never_active = DeviceIdentity("mq-inactive", identity.thing_arn, tmp_path / "never-active",
                                  cert["certificateArn"], cert["certificateId"], identity.policy_name)
    assert_refused(never_active, server.mqtt_port)


def assert_refused(identity: DeviceIdentity, port: int) -> None:
    client = MqttClient(identity, port)
    ok, why = client.try_connect()
    client.close()
    assert not ok, f"certificate {identity.certificate_id} (not ACTIVE) was allowed to connect"
    print(f"refused as expected: {why}")
