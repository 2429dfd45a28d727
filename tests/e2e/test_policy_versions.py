"""Policy versions and the principal listings through the AWS CLI: CreatePolicyVersion
(five at most), ListPolicyVersions, GetPolicyVersion, DeletePolicyVersion (never the
default), SetDefaultPolicyVersion (connected devices judged by the new default at once),
DeletePolicy with versions left, the deprecated principal-policy operations and the V2
thing-principal listings."""

from __future__ import annotations

import json

from e2elib.identity import allow, create_keys_and_certificate, policy
from e2elib.mqtt import MqttClient


def telemetry_policy(prefix: str, effect: str) -> dict:
    """Connect, subscribe to and receive ``telemetry/*``; publish there as ``effect`` says."""
    return policy(
        allow("iot:Connect", f"{prefix}:client/*"),
        allow("iot:Subscribe", f"{prefix}:topicfilter/telemetry/*"),
        allow("iot:Receive", f"{prefix}:topic/telemetry/*"),
        {"Effect": effect, "Action": "iot:Publish", "Resource": f"{prefix}:topic/telemetry/*"},
    )


def versions(aws, name: str) -> list[tuple[str, bool]]:
    out = aws("list-policy-versions", "--policy-name", name)["policyVersions"]
    return [(v["versionId"], v["isDefaultVersion"]) for v in out]


def test_versions_limit_default_and_delete_rules(aws, expect_error, arn_prefix):
    doc = json.dumps(telemetry_policy(arn_prefix, "Allow"))
    created = aws("create-policy", "--policy-name", "pv-rules", "--policy-document", doc)
    assert created["policyVersionId"] == "1"
    v2 = aws("create-policy-version", "--policy-name", "pv-rules", "--policy-document", doc)
    assert (v2["policyVersionId"], v2["isDefaultVersion"]) == ("2", False), v2
    for _ in range(3):
        aws("create-policy-version", "--policy-name", "pv-rules", "--policy-document", doc)
    expect_error("VersionsLimitExceededException", "create-policy-version", "--policy-name", "pv-rules",
                 "--policy-document", doc, "--set-as-default", operation="CreatePolicyVersion")
    assert versions(aws, "pv-rules") == [("1", True), ("2", False), ("3", False), ("4", False), ("5", False)]

    expect_error("MalformedPolicyException", "create-policy-version", "--policy-name", "pv-rules",
                 "--policy-document", "{not json")
    expect_error("ResourceNotFoundException", "create-policy-version", "--policy-name", "pv-nope",
                 "--policy-document", doc)
    expect_error("DeleteConflictException", "delete-policy-version", "--policy-name", "pv-rules",
                 "--policy-version-id", "1", operation="DeletePolicyVersion")
    expect_error("DeleteConflictException", "delete-policy", "--policy-name", "pv-rules")
    expect_error("ResourceNotFoundException", "get-policy-version", "--policy-name", "pv-rules",
                 "--policy-version-id", "9")
    expect_error("ResourceNotFoundException", "set-default-policy-version", "--policy-name", "pv-rules",
                 "--policy-version-id", "9")
    expect_error("InvalidRequestException", "get-policy-version", "--policy-name", "pv-rules",
                 "--policy-version-id", "v1")

    aws("set-default-policy-version", "--policy-name", "pv-rules", "--policy-version-id", "3")
    assert aws("get-policy", "--policy-name", "pv-rules")["defaultVersionId"] == "3"
    got = aws("get-policy-version", "--policy-name", "pv-rules", "--policy-version-id", "1")
    assert (got["policyVersionId"], got["isDefaultVersion"], got["policyName"]) == ("1", False, "pv-rules"), got
    for v in ("1", "2", "4"):
        aws("delete-policy-version", "--policy-name", "pv-rules", "--policy-version-id", v)
    six = aws("create-policy-version", "--policy-name", "pv-rules", "--policy-document", doc)
    assert six["policyVersionId"] == "6", "version ids are never reused"
    for v in ("5", "6"):
        aws("delete-policy-version", "--policy-name", "pv-rules", "--policy-version-id", v)
    assert versions(aws, "pv-rules") == [("3", True)]
    aws("delete-policy", "--policy-name", "pv-rules")
    expect_error("ResourceNotFoundException", "list-policy-versions", "--policy-name", "pv-rules")


def test_a_device_loses_a_publish_when_a_denying_version_becomes_default(server, aws, arn_prefix, make_device):
    """Version 1 lets the device publish on telemetry/...; version 2, created as not the
    default, changes nothing; once set as the default, the connected device's next publish
    is refused (the broker disconnects it)."""
    identity = make_device("pv-device", telemetry_policy(arn_prefix, "Allow"))
    name = identity.policy_name
    client = MqttClient(identity, server.mqtt_port)
    try:
        client.connect()
        client.subscribe_ok("telemetry/#")
        since = client.mark()
        client.publish("telemetry/pv-device", {"n": 1})
        client.wait_for(lambda m: m.topic == "telemetry/pv-device", since)

        deny = json.dumps(telemetry_policy(arn_prefix, "Deny"))
        aws("create-policy-version", "--policy-name", name, "--policy-document", deny)
        since = client.mark()
        client.publish("telemetry/pv-device", {"n": 2})
        client.wait_for(lambda m: m.topic == "telemetry/pv-device", since)

        aws("set-default-policy-version", "--policy-name", name, "--policy-version-id", "2")
        assert aws("get-policy", "--policy-name", name)["defaultVersionId"] == "2"
        log_from = server.log_size()
        try:
            client.publish("telemetry/pv-device", {"n": 3})
        except AssertionError:
            # Seen once in CI under load: the connection was already closed when the publish
            # was attempted. Whatever closed it, the denied publish must not get through.
            pass
        assert client.wait_disconnected(10), "a publish the new default denies was let through"
        assert not client.received(lambda m: m.topic == "telemetry/pv-device" and m.json.get("n") == 3), \
            f"the denied publish was delivered\n{server.log_since(log_from)}"
    finally:
        client.close()

    # Back to version 1: the device may connect and publish again.
    aws("set-default-policy-version", "--policy-name", name, "--policy-version-id", "1")
    again = MqttClient(identity, server.mqtt_port)
    try:
        again.connect()
        again.subscribe_ok("telemetry/#")
        since = again.mark()
        again.publish("telemetry/pv-device", {"n": 4})
        again.wait_for(lambda m: m.topic == "telemetry/pv-device", since)
    finally:
        again.close()


def test_principal_policies_and_v2_principal_listings(server, aws, expect_error, arn_prefix, tmp_path):
    doc = json.dumps(telemetry_policy(arn_prefix, "Allow"))
    aws("create-policy", "--policy-name", "pv-principal", "--policy-document", doc)
    cert = create_keys_and_certificate(server, tmp_path / "pv-principal")
    arn = cert["certificateArn"]
    aws("attach-principal-policy", "--policy-name", "pv-principal", "--principal", arn)
    listed = aws("list-principal-policies", "--principal", arn)["policies"]
    assert [p["policyName"] for p in listed] == ["pv-principal"], listed
    assert aws("list-policy-principals", "--policy-name", "pv-principal")["principals"] == [arn]
    assert aws("list-targets-for-policy", "--policy-name", "pv-principal")["targets"] == [arn]
    expect_error("ResourceNotFoundException", "list-policy-principals", "--policy-name", "pv-nope")
    expect_error("ResourceNotFoundException", "attach-principal-policy", "--policy-name", "pv-nope",
                 "--principal", arn)
    expect_error("DeleteConflictException", "delete-policy", "--policy-name", "pv-principal")
    aws("detach-principal-policy", "--policy-name", "pv-principal", "--principal", arn)
    assert aws("list-policy-principals", "--policy-name", "pv-principal")["principals"] == []

    shared = create_keys_and_certificate(server, tmp_path / "pv-shared")["certificateArn"]
    aws("create-thing", "--thing-name", "pv-a")
    aws("create-thing", "--thing-name", "pv-b")
    aws("attach-thing-principal", "--thing-name", "pv-a", "--principal", arn,
        "--thing-principal-type", "EXCLUSIVE_THING")
    expect_error("InvalidRequestException", "attach-thing-principal", "--thing-name", "pv-b", "--principal", arn)
    aws("attach-thing-principal", "--thing-name", "pv-a", "--principal", shared)
    aws("attach-thing-principal", "--thing-name", "pv-b", "--principal", shared)
    objects = aws("list-principal-things-v2", "--principal", arn)["principalThingObjects"]
    assert objects == [{"thingName": "pv-a", "thingPrincipalType": "EXCLUSIVE_THING"}], objects
    objects = aws("list-principal-things-v2", "--principal", shared)["principalThingObjects"]
    assert sorted((o["thingName"], o["thingPrincipalType"]) for o in objects) == [
        ("pv-a", "NON_EXCLUSIVE_THING"), ("pv-b", "NON_EXCLUSIVE_THING")], objects
    objects = aws("list-thing-principals-v2", "--thing-name", "pv-a")["thingPrincipalObjects"]
    assert sorted((o["principal"], o["thingPrincipalType"]) for o in objects) == sorted(
        [(arn, "EXCLUSIVE_THING"), (shared, "NON_EXCLUSIVE_THING")]), objects
    only = aws("list-thing-principals-v2", "--thing-name", "pv-a", "--thing-principal-type", "EXCLUSIVE_THING")
    assert [o["principal"] for o in only["thingPrincipalObjects"]] == [arn], only
    expect_error("ResourceNotFoundException", "list-thing-principals-v2", "--thing-name", "pv-ghost")
