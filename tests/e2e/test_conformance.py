"""Wire conformance of every operation in ``crates/fleetjobs-api/src/ops.rs`` with the
botocore ``iot`` model, through boto3.

* A valid request per operation: the HTTP status is the model's ``responseCode``, and the
  answer matches the operation's output shape, checked generically on both the parsed
  response (Python types, enums, timestamps, required members) and the raw JSON body
  (no member the shape does not define: boto3 would silently drop it; timestamps as
  epoch numbers, as AWS sends them).
* A malformed request per operation, one botocore would refuse client-side (wrong type,
  missing required member), sent with parameter validation off: it must answer
  ``InvalidRequestException`` (HTTP 400) and change nothing.

Each case sets up its own resources under names derived from its operation, so any
case runs alone (``-k``) and in any order.

Coverage: ``SCOPE`` writes down the operations a Jobs user touches (the rule is above it).
The share of them implemented must be at least 95 %, and every one not implemented must
answer a clean AWS-shaped error (a 4xx JSON answer with an error code; no 500, no hang).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import botocore.parsers
import botocore.session
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import Shape

from e2elib.byo_ca import Issued, make_ca, make_leaf, self_signed
from e2elib.identity import CA_FILE, CERT_FILE, KEY_FILE, DeviceIdentity, jobs_policy, arn_prefix_of
from e2elib.mqtt import JobsDevice
from e2elib.util import REPO_ROOT

MODEL = botocore.session.get_session().get_service_model("iot")
OPS_RS = REPO_ROOT / "crates" / "fleetjobs-api" / "src" / "ops.rs"

# ----------------------------------------------------------------------------- shape checker

#: what boto3 hands back per shape type, and what the JSON body must carry: the two differ
#: because botocore's rest-json parser coerces (int("2"), int(True), ISO text to datetime)
PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "timestamp": datetime,
    "double": (int, float),
    "float": (int, float),
    "blob": bytes,
}
JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    **PYTHON_TYPES,
    "timestamp": (int, float),  # epoch seconds, rest-json's default timestampFormat
    "blob": str,  # base64
}


def has_type(value: Any, kind: str, types: dict) -> bool:
    # bool is an int in Python: true must not pass for a number.
    return isinstance(value, types[kind]) and (kind == "boolean" or not isinstance(value, bool))


def scalar_errors(shape: Shape, parsed: Any, raw: Any, path: str) -> list[str]:
    kind = shape.type_name
    json_types = JSON_TYPES
    if kind == "timestamp" and shape.serialization.get("timestampFormat", "unixTimestamp") != "unixTimestamp":
        json_types = {**JSON_TYPES, "timestamp": str}
    if not has_type(raw, kind, json_types):
        return [f"{path}: {raw!r} is not a {kind} on the wire ({shape.name})"]
    if not has_type(parsed, kind, PYTHON_TYPES):
        return [f"{path}: boto3 parsed {parsed!r}, not a {kind} ({shape.name})"]
    if getattr(shape, "enum", None) and parsed not in shape.enum:
        return [f"{path}: {parsed!r} is not one of {shape.name} {shape.enum}"]
    return []


def body_members(shape: Shape) -> dict[str, str]:
    """Wire name -> member name of the members that travel in the JSON body."""
    return {
        member.serialization.get("name", name): name
        for name, member in shape.members.items()
        if "location" not in member.serialization
    }


def shape_errors(shape: Shape, parsed: Any, raw: Any, path: str = "") -> list[str]:
    """Every way ``parsed`` (boto3's answer) and ``raw`` (the JSON body) differ from ``shape``."""
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(parsed, dict) or not isinstance(raw, dict):
            return [f"{path or '<body>'}: {raw!r} is not an object ({shape.name})"]
        wire = body_members(shape)
        errors += [f"{path}.{key}: not a member of {shape.name}" for key in raw if key not in wire]
        errors += [f"{path}.{name}: required by {shape.name} but missing"
                   for name in shape.required_members if name not in parsed]
        for key, name in wire.items():
            if key in raw:
                errors += shape_errors(shape.members[name], parsed.get(name), raw[key], f"{path}.{name}")
    elif kind == "list":
        if not isinstance(parsed, list) or not isinstance(raw, list):
            return [f"{path}: {raw!r} is not a list ({shape.name})"]
        for i, (p, r) in enumerate(zip(parsed, raw)):
            errors += shape_errors(shape.member, p, r, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(parsed, dict) or not isinstance(raw, dict):
            return [f"{path}: {raw!r} is not a map ({shape.name})"]
        for key, value in raw.items():
            errors += shape_errors(shape.key, key, key, f"{path}<key {key!r}>")
            errors += shape_errors(shape.value, parsed.get(key), value, f"{path}[{key!r}]")
    else:
        errors += scalar_errors(shape, parsed, raw, path)
    return errors


class Recorder:
    """The status and raw body of a client's last call (boto3 drops unknown members)."""

    def __init__(self, client):
        self.last: tuple[str, int, bytes] | None = None
        client.meta.events.register("after-call.iot", self._record)

    def _record(self, http_response, model, **_):
        self.last = (model.name, http_response.status_code, http_response.content)


def raw_json(body: bytes) -> Any:
    return json.loads(body) if body.strip() else {}


# ----------------------------------------------------------------------------- resources

DOCUMENT = json.dumps({"operation": "conformance", "step": 1})
CONNECT_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


PACKAGE_VERSION = "arn:aws:iot:us-east-1:123456789012:package/conformance/version/1.0"
MANAGED_TEMPLATE = "arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:1.0"


def in_days(days: int) -> str:
    """A schedule time as the Jobs API takes it: ``yyyy-MM-ddTHH:mm`` (UTC)."""
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


#: every job config the server stores, so that DescribeJob echoes them all
JOB_CONFIGS = dict(
    description="conformance job",
    targetSelection="SNAPSHOT",
    presignedUrlConfig={"roleArn": "arn:aws:iam::123456789012:role/conformance", "expiresInSec": 300},
    jobExecutionsRolloutConfig={
        "maximumPerMinute": 50,
        "exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 2.0,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 5}},
    },
    abortConfig={"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50.0,
                                   "minNumberOfExecutedThings": 2}]},
    timeoutConfig={"inProgressTimeoutInMinutes": 600},
    jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
)


def scheduling() -> dict:
    return {"schedulingConfig": {
        "startTime": in_days(1), "endTime": in_days(2), "endBehavior": "STOP_ROLLOUT",
        "maintenanceWindows": [{"startTime": "cron(0 0 * * ? *)", "durationInMinutes": 60}],
    }}


class Env:
    """The module's server with a strict and a non-validating boto3 client, and builders
    for the resources an operation needs (each named after the case)."""

    def __init__(self, server, workdir):
        self.server = server
        self.workdir = workdir
        self.iot = server.boto3_client()
        self.loose = server.boto3_client(parameter_validation=False)
        self.strict_calls = Recorder(self.iot)
        self.loose_calls = Recorder(self.loose)

    def thing(self, name: str) -> str:
        return self.iot.create_thing(thingName=name, attributePayload={"attributes": {"color": "red"}})["thingArn"]

    def cert(self, active: bool = True) -> dict:
        return self.iot.create_keys_and_certificate(setAsActive=active)

    def csr(self, name: str) -> str:
        """A PEM certificate signing request for a fresh EC P-256 key, subject CN=name."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def own_ca(self, name: str, active: bool = True) -> tuple[str, Issued]:
        """A CA of one's own (CN ``name``) registered with its verification certificate and a
        registration config; returns its id and the CA."""
        ca = make_ca(name)
        code = self.iot.get_registration_code()["registrationCode"]
        out = self.iot.register_ca_certificate(caCertificate=ca.cert_pem, verificationCertificate=make_leaf(ca, code).cert_pem,
                                               setAsActive=active, registrationConfig={"templateName": "tpl"})
        return out["certificateId"], ca

    def ca_with_device(self, name: str) -> str:
        """A registered CA with one device certificate registered under it; returns the CA's id."""
        ca_id, ca = self.own_ca(name)
        self.iot.register_certificate(certificatePem=make_leaf(ca, name).cert_pem, caCertificatePem=ca.cert_pem)
        return ca_id

    def policy(self, name: str, document: str = CONNECT_POLICY) -> str:
        self.iot.create_policy(policyName=name, policyDocument=document)
        return name

    def policy_on_cert(self, name: str) -> tuple[str, str]:
        policy, cert = self.policy(name), self.cert()["certificateArn"]
        self.iot.attach_policy(policyName=policy, target=cert)
        return policy, cert

    def versioned_policy(self, name: str) -> str:
        """A policy with a second, non-default version ("2")."""
        self.iot.create_policy_version(policyName=self.policy(name), policyDocument=CONNECT_POLICY)
        return name

    def _thing_and_cert(self, name: str) -> tuple[str, dict]:
        arn, cert = self.thing(name), self.cert()
        self.iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
        return arn, cert

    def thing_with_cert(self, name: str) -> tuple[str, str]:
        return name, self._thing_and_cert(name)[1]["certificateArn"]

    def job(self, name: str, **extra) -> dict:
        """A job on a thing of its own (``name``); returns jobId and thingName."""
        arn = self.thing(name)
        self.iot.create_job(jobId=name, targets=[arn], document=DOCUMENT, **extra)
        return {"jobId": name, "thingName": name}

    def tagged_job(self, name: str) -> str:
        """A job with one tag; returns its ARN."""
        arn = self.thing(name)
        created = self.iot.create_job(jobId=name, targets=[arn], document=DOCUMENT, tags=[{"Key": "k", "Value": "v"}])
        return created["jobArn"]

    def started_job(self, name: str) -> dict:
        """A job whose execution a real device took (IN_PROGRESS, status details, step
        timeout), so that execution answers carry their optional members too."""
        arn, cert = self._thing_and_cert(name)
        self.policy(name, json.dumps(jobs_policy(arn_prefix_of(arn), name)))
        self.iot.attach_policy(policyName=name, target=cert["certificateArn"])
        self.iot.create_job(jobId=name, targets=[arn], document=DOCUMENT,
                            timeoutConfig={"inProgressTimeoutInMinutes": 600})
        cert_dir = self.workdir / name
        cert_dir.mkdir(parents=True)
        (cert_dir / CERT_FILE).write_text(cert["certificatePem"])
        (cert_dir / KEY_FILE).write_text(cert["keyPair"]["PrivateKey"])
        (cert_dir / CA_FILE).write_bytes(self.server.root_ca.read_bytes())
        identity = DeviceIdentity(name, arn, cert_dir, cert["certificateArn"], cert["certificateId"], name)
        device = JobsDevice(identity, self.server.mqtt_port)
        try:
            device.connect()
            started = device.start_next(statusDetails={"step": "download"}, stepTimeoutInMinutes=300)
            assert started["execution"]["jobId"] == name, started
        finally:
            device.close()
        return {"jobId": name, "thingName": name}

    def group(self, name: str, parent: str | None = None) -> str:
        """A thing group with a description and an attribute (under ``parent`` if given)."""
        extra = {"parentGroupName": parent} if parent else {}
        self.iot.create_thing_group(thingGroupName=name, **extra, thingGroupProperties={
            "thingGroupDescription": "conformance", "attributePayload": {"attributes": {"site": "lab"}}})
        return name

    def child_group(self, name: str) -> str:
        """A group under a parent of its own (``name-parent``), so its metadata is full."""
        return self.group(name, parent=self.group(name + "-parent"))

    def thing_in_group(self, name: str) -> dict:
        """Thing ``name`` in group ``name``; returns thingGroupName and thingName."""
        self.thing(name)
        self.iot.add_thing_to_thing_group(thingGroupName=self.group(name), thingName=name)
        return {"thingGroupName": name, "thingName": name}

    def dynamic_group(self, name: str) -> str:
        """A dynamic group with a description and an attribute, matching thing ``name``."""
        self.thing(name)
        self.iot.create_dynamic_thing_group(thingGroupName=name, queryString=f"thingName:{name}",
                                            thingGroupProperties={"thingGroupDescription": "conformance",
                                                                  "attributePayload": {"attributes": {"site": "lab"}}})
        return name

    def thing_type(self, name: str, deprecated: bool = False) -> str:
        """A thing type with every property set (deprecated if asked), so answers are full."""
        self.iot.create_thing_type(thingTypeName=name, thingTypeProperties={
            "thingTypeDescription": "conformance", "searchableAttributes": ["serial"],
            "mqtt5Configuration": {"propagatingAttributes": [{"userPropertyKey": "iot:serial",
                                                              "thingAttribute": "serial"}]}})
        if deprecated:
            self.iot.deprecate_thing_type(thingTypeName=name)
        return name

    def typed_thing(self, name: str) -> str:
        """A thing of a thing type of its own (``name``)."""
        return self.iot.create_thing(thingName=name, thingTypeName=self.thing_type(name),
                                     attributePayload={"attributes": {"serial": "42"}})["thingArn"]

    def job_template(self, name: str) -> str:
        """A job template with every member set, so that DescribeJobTemplate's answer is full."""
        configs = {k: v for k, v in JOB_CONFIGS.items() if k not in ("description", "targetSelection")}
        self.iot.create_job_template(jobTemplateId=name, description="conformance", document=DOCUMENT, **configs,
                                     maintenanceWindows=[{"startTime": "cron(0 0 * * ? *)", "durationInMinutes": 60}],
                                     destinationPackageVersions=[PACKAGE_VERSION],
                                     tags=[{"Key": "team", "Value": "ops"}])
        return name

    def indexing_on(self) -> None:
        """Thing indexing on (REGISTRY), so that the AWS_Things index exists."""
        self.iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})

    def canceled_execution(self, name: str) -> dict:
        job = self.job(name)
        self.iot.cancel_job_execution(**job)
        return {**job, "executionNumber": 1}


def world(iot) -> dict:
    """Everything the API can show, to compare before and after a refused request."""

    def pages(op: str, key: str, **kw) -> list:
        return iot.get_paginator(op).paginate(**kw).build_full_result().get(key, [])

    def answer(op: str, **kw) -> dict:
        out = getattr(iot, op)(**kw)
        out.pop("ResponseMetadata", None)
        return out

    things = pages("list_things", "things")
    jobs = pages("list_jobs", "jobs")
    policies = pages("list_policies", "policies")
    groups = pages("list_thing_groups", "thingGroups")
    thing_types = pages("list_thing_types", "thingTypes")
    templates = pages("list_job_templates", "jobTemplates")
    return {
        "job_templates": {t["jobTemplateId"]: answer("describe_job_template", jobTemplateId=t["jobTemplateId"])
                          for t in templates},
        "things": {t["thingName"]: t for t in things},
        "principals": {t["thingName"]: sorted(pages("list_thing_principals", "principals", thingName=t["thingName"]))
                       for t in things},
        "certificates": {c["certificateId"]: c for c in pages("list_certificates", "certificates")},
        "policies": {p["policyName"]: (answer("get_policy", policyName=p["policyName"]),
                                       sorted(pages("list_targets_for_policy", "targets", policyName=p["policyName"])))
                     for p in policies},
        "jobs": {j["jobId"]: (answer("describe_job", jobId=j["jobId"]),
                              answer("get_job_document", jobId=j["jobId"]),
                              sorted(pages("list_job_executions_for_job", "executionSummaries", jobId=j["jobId"]),
                                     key=lambda e: e["thingArn"]))
                 for j in jobs},
        "events": answer("describe_event_configurations")["eventConfigurations"],
        "groups": {g["groupName"]: (answer("describe_thing_group", thingGroupName=g["groupName"]),
                                    pages("list_things_in_thing_group", "things", thingGroupName=g["groupName"]))
                   for g in groups},
        "thing_types": {t["thingTypeName"]: (t, iot.list_tags_for_resource(resourceArn=t["thingTypeArn"])["tags"])
                        for t in thing_types},
        "indexing": answer("get_indexing_configuration"),
    }


# ----------------------------------------------------------------------------- the cases

Builder = Callable[[Env, str], dict]
Breaker = Callable[[dict], dict]


def wrong(member: str, value: Any) -> Breaker:
    """The request with ``member`` (dotted path into nested objects) set to ``value``."""

    def breaker(kwargs: dict) -> dict:
        out = copy.deepcopy(kwargs)
        *parents, last = member.split(".")
        target = out
        for p in parents:
            target = target.setdefault(p, {})
        target[last] = value
        return out

    breaker.__doc__ = f"{member}={value!r}"
    return breaker


def missing(member: str) -> Breaker:
    """The request without the required ``member``."""

    def breaker(kwargs: dict) -> dict:
        assert member in kwargs, f"{member} is not in the valid request {kwargs}"
        return {k: v for k, v in kwargs.items() if k != member}

    breaker.__doc__ = f"without {member}"
    return breaker


@dataclass
class Case:
    op: str
    valid: Builder
    #: members AWS always returns, here with a value (not empty: lists must hold something
    #: for their member shape to be checked at all)
    present: tuple[str, ...] = ()
    #: the malformed variant of the valid request; None where no member can be malformed
    #: on the wire (see NOT_MALFORMABLE)
    malformed: Breaker | None = None
    xfail_valid: str | None = None
    xfail_malformed: str | None = None


def after(*_setup: Any, **request: Any) -> dict:
    """``request``, once the resources built by the arguments exist."""
    return request


CASES = [
    # Things
    Case("CreateThing", lambda e, n: {"thingName": n, "attributePayload": {"attributes": {"color": "red"}}},
         ("thingName", "thingArn", "thingId"), wrong("attributePayload.attributes.color", 5)),
    Case("DescribeThing", lambda e, n: after(e.typed_thing(n), thingName=n),
         ("thingName", "thingArn", "thingId", "thingTypeName", "attributes", "version", "defaultClientId")),
    Case("ListThings", lambda e, n: after(e.thing(n)), ("things",), wrong("maxResults", "ten")),
    Case("UpdateThing", lambda e, n: after(e.thing(n), thingName=n, expectedVersion=1,
                                           attributePayload={"attributes": {"size": "L"}, "merge": True}),
         (), wrong("expectedVersion", "one")),
    Case("DeleteThing", lambda e, n: after(e.thing(n), thingName=n), (), wrong("expectedVersion", "one")),
    # Thing groups
    Case("CreateThingGroup", lambda e, n: {"thingGroupName": n, "parentGroupName": e.group(n + "-parent"),
                                           "thingGroupProperties": {"thingGroupDescription": "new",
                                                                    "attributePayload": {"attributes": {"k": "v"}}},
                                           "tags": [{"Key": "team", "Value": "ops"}]},
         ("thingGroupName", "thingGroupArn", "thingGroupId"), wrong("thingGroupProperties.thingGroupDescription", 5)),
    Case("DescribeThingGroup", lambda e, n: {"thingGroupName": e.child_group(n)},
         ("thingGroupName", "thingGroupId", "thingGroupArn", "version", "thingGroupProperties", "thingGroupMetadata")),
    Case("ListThingGroups", lambda e, n: after(e.group(n)), ("thingGroups",), wrong("maxResults", "ten")),
    Case("UpdateThingGroup", lambda e, n: {"thingGroupName": e.group(n), "expectedVersion": 1,
                                           "thingGroupProperties": {"thingGroupDescription": "updated"}},
         ("version",), missing("thingGroupProperties")),
    Case("DeleteThingGroup", lambda e, n: {"thingGroupName": e.group(n), "expectedVersion": 1},
         (), wrong("expectedVersion", "one")),
    Case("AddThingToThingGroup", lambda e, n: after(e.thing(n), thingGroupName=e.group(n), thingName=n),
         (), wrong("overrideDynamicGroups", "maybe")),
    Case("RemoveThingFromThingGroup", lambda e, n: e.thing_in_group(n), (), wrong("thingName", 5)),
    Case("UpdateThingGroupsForThing", lambda e, n: after(e.thing(n), thingName=n, thingGroupsToAdd=[e.group(n)]),
         (), wrong("thingGroupsToAdd", [5])),
    Case("ListThingsInThingGroup", lambda e, n: {"thingGroupName": e.thing_in_group(n)["thingGroupName"],
                                                 "recursive": True},
         ("things",), wrong("maxResults", "ten")),
    Case("ListThingGroupsForThing", lambda e, n: {"thingName": e.thing_in_group(n)["thingName"]},
         ("thingGroups",), wrong("maxResults", "ten")),
    # Dynamic thing groups
    Case("CreateDynamicThingGroup", lambda e, n: after(e.thing(n), thingGroupName=n, queryString=f"thingName:{n}",
                                                       indexName="AWS_Things", queryVersion="2017-09-30",
                                                       thingGroupProperties={"thingGroupDescription": "new"},
                                                       tags=[{"Key": "team", "Value": "ops"}]),
         ("thingGroupName", "thingGroupArn", "thingGroupId", "indexName", "queryString", "queryVersion"),
         missing("queryString")),
    Case("UpdateDynamicThingGroup", lambda e, n: {"thingGroupName": e.dynamic_group(n), "expectedVersion": 1,
                                                  "queryString": "attributes.color:red",
                                                  "thingGroupProperties": {"thingGroupDescription": "updated"}},
         ("version",), missing("thingGroupProperties")),
    Case("DeleteDynamicThingGroup", lambda e, n: {"thingGroupName": e.dynamic_group(n), "expectedVersion": 1},
         (), wrong("expectedVersion", "one")),
    # Thing types
    Case("CreateThingType", lambda e, n: {"thingTypeName": n,
                                          "thingTypeProperties": {"thingTypeDescription": "new",
                                                                  "searchableAttributes": ["serial", "room"]},
                                          "tags": [{"Key": "team", "Value": "ops"}]},
         ("thingTypeName", "thingTypeArn", "thingTypeId"), wrong("thingTypeProperties.searchableAttributes", "serial")),
    Case("DescribeThingType", lambda e, n: {"thingTypeName": e.thing_type(n, deprecated=True)},
         ("thingTypeName", "thingTypeId", "thingTypeArn", "thingTypeProperties", "thingTypeMetadata")),
    Case("ListThingTypes", lambda e, n: after(e.thing_type(n, deprecated=True)), ("thingTypes",),
         wrong("maxResults", "ten")),
    Case("UpdateThingType", lambda e, n: {"thingTypeName": e.thing_type(n),
                                          "thingTypeProperties": {"thingTypeDescription": "updated"}},
         (), wrong("thingTypeProperties.thingTypeDescription", 5)),
    Case("DeprecateThingType", lambda e, n: {"thingTypeName": e.thing_type(n), "undoDeprecate": False},
         (), wrong("undoDeprecate", "maybe")),
    Case("DeleteThingType", lambda e, n: {"thingTypeName": e.thing_type(n, deprecated=True)}),
    # Certificates
    Case("CreateKeysAndCertificate", lambda e, n: {"setAsActive": True},
         ("certificateArn", "certificateId", "certificatePem", "keyPair"), wrong("setAsActive", "maybe")),
    Case("CreateCertificateFromCsr", lambda e, n: {"certificateSigningRequest": e.csr(n), "setAsActive": True},
         ("certificateArn", "certificateId", "certificatePem"), wrong("setAsActive", "maybe")),
    Case("DescribeCertificate", lambda e, n: {"certificateId": e.cert()["certificateId"]},
         ("certificateDescription",)),
    Case("ListCertificates", lambda e, n: after(e.cert()), ("certificates",), wrong("pageSize", "ten")),
    Case("UpdateCertificate", lambda e, n: {"certificateId": e.cert()["certificateId"], "newStatus": "INACTIVE"},
         (), missing("newStatus")),
    Case("DeleteCertificate", lambda e, n: {"certificateId": e.cert(active=False)["certificateId"]},
         (), wrong("forceDelete", "maybe")),
    Case("RegisterCertificate", lambda e, n: (lambda ca: {"certificatePem": make_leaf(ca, n).cert_pem,
                                                          "caCertificatePem": ca.cert_pem, "setAsActive": True})(
        e.own_ca(n)[1]), ("certificateArn", "certificateId"), missing("certificatePem")),
    Case("RegisterCertificateWithoutCA", lambda e, n: {"certificatePem": self_signed(n).cert_pem, "status": "ACTIVE"},
         ("certificateArn", "certificateId"), missing("certificatePem")),
    # CA certificates (bring your own PKI)
    Case("GetRegistrationCode", lambda e, n: {}, ("registrationCode",)),
    Case("DeleteRegistrationCode", lambda e, n: after(e.iot.get_registration_code()), ()),
    Case("RegisterCACertificate", lambda e, n: (lambda ca: {
        "caCertificate": ca.cert_pem,
        "verificationCertificate": make_leaf(ca, e.iot.get_registration_code()["registrationCode"]).cert_pem,
        "setAsActive": True, "allowAutoRegistration": True, "certificateMode": "DEFAULT",
        "registrationConfig": {"templateName": "tpl", "templateBody": "{}"},
        "tags": [{"Key": "team", "Value": "ops"}]})(make_ca(n)),
         ("certificateArn", "certificateId"), missing("caCertificate")),
    Case("DescribeCACertificate", lambda e, n: {"certificateId": e.own_ca(n)[0]},
         ("certificateDescription", "registrationConfig")),
    Case("ListCACertificates", lambda e, n: after(e.own_ca(n)), ("certificates",), wrong("pageSize", "ten")),
    Case("UpdateCACertificate", lambda e, n: {"certificateId": e.own_ca(n)[0], "newStatus": "INACTIVE",
                                              "newAutoRegistrationStatus": "ENABLE",
                                              "registrationConfig": {"templateName": "tpl2"}},
         (), wrong("removeAutoRegistration", "maybe")),
    Case("DeleteCACertificate", lambda e, n: {"certificateId": e.own_ca(n, active=False)[0]}),
    Case("ListCertificatesByCA", lambda e, n: {"caCertificateId": e.ca_with_device(n)}, ("certificates",),
         wrong("pageSize", "ten")),
    # Policies
    Case("CreatePolicy", lambda e, n: {"policyName": n, "policyDocument": CONNECT_POLICY},
         ("policyName", "policyArn", "policyDocument", "policyVersionId"), missing("policyDocument")),
    Case("GetPolicy", lambda e, n: {"policyName": e.policy(n)},
         ("policyName", "policyArn", "policyDocument", "defaultVersionId", "creationDate", "lastModifiedDate",
          "generationId")),
    Case("ListPolicies", lambda e, n: after(e.policy(n)), ("policies",), wrong("pageSize", "ten")),
    Case("DeletePolicy", lambda e, n: {"policyName": e.policy(n)}),
    Case("AttachPolicy", lambda e, n: {"policyName": e.policy(n), "target": e.cert()["certificateArn"]},
         (), missing("target")),
    Case("DetachPolicy", lambda e, n: dict(zip(("policyName", "target"), e.policy_on_cert(n))),
         (), wrong("target", 12345)),
    Case("ListAttachedPolicies", lambda e, n: {"target": e.policy_on_cert(n)[1]}, ("policies",),
         wrong("pageSize", "ten")),
    Case("ListTargetsForPolicy", lambda e, n: {"policyName": e.policy_on_cert(n)[0]}, ("targets",),
         wrong("pageSize", "ten")),
    # Policy versions
    Case("CreatePolicyVersion", lambda e, n: {"policyName": e.policy(n), "policyDocument": CONNECT_POLICY,
                                              "setAsDefault": True},
         ("policyArn", "policyDocument", "policyVersionId", "isDefaultVersion"), wrong("setAsDefault", "maybe")),
    Case("ListPolicyVersions", lambda e, n: {"policyName": e.versioned_policy(n)}, ("policyVersions",)),
    Case("GetPolicyVersion", lambda e, n: {"policyName": e.versioned_policy(n), "policyVersionId": "2"},
         ("policyArn", "policyName", "policyDocument", "policyVersionId", "creationDate", "lastModifiedDate",
          "generationId")),
    Case("DeletePolicyVersion", lambda e, n: {"policyName": e.versioned_policy(n), "policyVersionId": "2"}),
    Case("SetDefaultPolicyVersion", lambda e, n: {"policyName": e.versioned_policy(n), "policyVersionId": "2"}),
    # Principal policies (deprecated)
    Case("AttachPrincipalPolicy", lambda e, n: {"policyName": e.policy(n), "principal": e.cert()["certificateArn"]},
         (), missing("principal")),
    Case("DetachPrincipalPolicy", lambda e, n: dict(zip(("policyName", "principal"), e.policy_on_cert(n))),
         (), missing("principal")),
    Case("ListPrincipalPolicies", lambda e, n: {"principal": e.policy_on_cert(n)[1], "ascendingOrder": False},
         ("policies",), wrong("pageSize", "ten")),
    Case("ListPolicyPrincipals", lambda e, n: {"policyName": e.policy_on_cert(n)[0]}, ("principals",),
         wrong("pageSize", "ten")),
    # Thing principals
    Case("AttachThingPrincipal", lambda e, n: after(e.thing(n), thingName=n, principal=e.cert()["certificateArn"]),
         (), missing("principal")),
    Case("DetachThingPrincipal", lambda e, n: dict(zip(("thingName", "principal"), e.thing_with_cert(n))),
         (), missing("principal")),
    Case("ListThingPrincipals", lambda e, n: {"thingName": e.thing_with_cert(n)[0]}, ("principals",),
         wrong("maxResults", "ten")),
    Case("ListPrincipalThings", lambda e, n: {"principal": e.thing_with_cert(n)[1]}, ("things",),
         missing("principal")),
    Case("ListThingPrincipalsV2", lambda e, n: {"thingName": e.thing_with_cert(n)[0]}, ("thingPrincipalObjects",),
         wrong("maxResults", "ten")),
    Case("ListPrincipalThingsV2", lambda e, n: {"principal": e.thing_with_cert(n)[1],
                                                "thingPrincipalType": "NON_EXCLUSIVE_THING"},
         ("principalThingObjects",), missing("principal")),
    # What a principal's policies allow
    Case("GetEffectivePolicies", lambda e, n: {"principal": e.policy_on_cert(n)[1]}, ("effectivePolicies",),
         wrong("principal", 5)),
    Case("TestAuthorization", lambda e, n: (lambda cert: {
        "principal": cert, "clientId": n,
        "authInfos": [{"actionType": "CONNECT", "resources": [f"{arn_prefix_of(cert)}:client/{n}"]},
                      {"actionType": "PUBLISH", "resources": [f"{arn_prefix_of(cert)}:topic/{n}"]}],
    })(e.policy_on_cert(n)[1]), ("authResults",), missing("authInfos")),
    # Fleet indexing
    Case("GetIndexingConfiguration", lambda e, n: {},
         ("thingIndexingConfiguration", "thingGroupIndexingConfiguration")),
    Case("UpdateIndexingConfiguration", lambda e, n: {"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY"}},
         (), wrong("thingIndexingConfiguration.thingIndexingMode", 5)),
    Case("SearchIndex", lambda e, n: after(e.indexing_on(), e.thing(n), indexName="AWS_Things",
                                           queryString=f"thingName:{n}", queryVersion="2017-09-30"),
         ("things",), wrong("maxResults", "ten")),
    Case("DescribeIndex", lambda e, n: after(e.indexing_on(), indexName="AWS_Things"),
         ("indexName", "indexStatus", "schema")),
    Case("ListIndices", lambda e, n: after(e.indexing_on()), ("indexNames",), wrong("maxResults", "ten")),
    # Endpoint and event configurations
    Case("DescribeEndpoint", lambda e, n: {"endpointType": "iot:Data-ATS"}, ("endpointAddress",)),
    Case("UpdateEventConfigurations", lambda e, n: {"eventConfigurations": {"JOB": {"Enabled": True},
                                                                            "JOB_EXECUTION": {"Enabled": True}}},
         (), wrong("eventConfigurations.JOB.Enabled", "yes")),
    Case("DescribeEventConfigurations", lambda e, n: {}, ("eventConfigurations", "creationDate", "lastModifiedDate")),
    # Jobs
    Case("CreateJob", lambda e, n: {"jobId": n, "targets": [e.thing(n)], "document": DOCUMENT, **JOB_CONFIGS},
         ("jobArn", "jobId", "description"), wrong("document", {"operation": "not a string"})),
    Case("UpdateJob", lambda e, n: {"jobId": e.job(n, **JOB_CONFIGS)["jobId"], "description": "updated",
                                    "timeoutConfig": {"inProgressTimeoutInMinutes": 700}},
         (), wrong("description", 42)),
    Case("DescribeJob", lambda e, n: {"jobId": e.job(n, **JOB_CONFIGS, **scheduling())["jobId"]}, ("job",),
         wrong("beforeSubstitution", "maybe")),
    Case("ListJobs", lambda e, n: after(e.job(n)), ("jobs",), wrong("maxResults", "ten")),
    Case("CancelJob", lambda e, n: {"jobId": e.job(n)["jobId"], "reasonCode": "CONFORMANCE", "comment": "stop"},
         ("jobArn", "jobId"), wrong("comment", 42)),
    Case("DeleteJob", lambda e, n: {"jobId": e.job(n)["jobId"], "force": True}, (), wrong("force", "maybe")),
    Case("GetJobDocument", lambda e, n: {"jobId": e.job(n)["jobId"]}, ("document",),
         wrong("beforeSubstitution", "maybe")),
    Case("AssociateTargetsWithJob",
         lambda e, n: {"jobId": e.job(n, targetSelection="CONTINUOUS")["jobId"], "targets": [e.thing(n + "-more")],
                       "comment": "more"},
         ("jobArn", "jobId"), missing("targets")),
    Case("ListJobExecutionsForJob", lambda e, n: {"jobId": e.started_job(n)["jobId"]}, ("executionSummaries",),
         wrong("maxResults", "ten")),
    Case("ListJobExecutionsForThing", lambda e, n: {"thingName": e.started_job(n)["thingName"]},
         ("executionSummaries",), wrong("maxResults", "ten")),
    Case("DescribeJobExecution", lambda e, n: e.started_job(n), ("execution",), wrong("executionNumber", "first")),
    Case("CancelJobExecution", lambda e, n: {**e.job(n), "expectedVersion": 1, "statusDetails": {"why": "test"}},
         (), wrong("expectedVersion", "one")),
    # executionNumber is a path label of type long: a non-number there is malformed on the wire.
    Case("DeleteJobExecution", lambda e, n: e.canceled_execution(n), (), wrong("executionNumber", "first")),
    # Job templates
    Case("CreateJobTemplate", lambda e, n: {"jobTemplateId": n, "description": "new", "document": DOCUMENT,
                                            "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
                                            "maintenanceWindows": [{"startTime": "cron(0 0 * * ? *)",
                                                                    "durationInMinutes": 60}],
                                            "destinationPackageVersions": [PACKAGE_VERSION],
                                            "tags": [{"Key": "team", "Value": "ops"}]},
         ("jobTemplateArn", "jobTemplateId"), missing("description")),
    Case("DescribeJobTemplate", lambda e, n: {"jobTemplateId": e.job_template(n)},
         ("jobTemplateArn", "jobTemplateId", "description", "document", "createdAt", "presignedUrlConfig",
          "jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig",
          "maintenanceWindows", "destinationPackageVersions")),
    Case("ListJobTemplates", lambda e, n: after(e.job_template(n)), ("jobTemplates",), wrong("maxResults", "ten")),
    Case("DeleteJobTemplate", lambda e, n: {"jobTemplateId": e.job_template(n)}),
    Case("ListManagedJobTemplates", lambda e, n: {}, ("managedJobTemplates",), wrong("maxResults", "ten")),
    # templateVersion travels as query text: 5 arrives as "5", which its pattern refuses.
    Case("DescribeManagedJobTemplate", lambda e, n: {"templateName": "AWS-Download-File", "templateVersion": "1.0"},
         ("templateName", "templateArn", "description", "templateVersion", "environments", "documentParameters",
          "document"), wrong("templateVersion", 5)),
    # Tags
    Case("TagResource", lambda e, n: {"resourceArn": e.tagged_job(n), "tags": [{"Key": "team", "Value": "edge"}]},
         (), missing("tags")),
    Case("UntagResource", lambda e, n: {"resourceArn": e.tagged_job(n), "tagKeys": ["k"]}, (), missing("tagKeys")),
    Case("ListTagsForResource", lambda e, n: {"resourceArn": e.tagged_job(n)}, ("tags",), missing("resourceArn")),
]

#: Operations none of whose members can be malformed on the wire, with why. Path labels
#: are text by construction (botocore str()s whatever it gets, and cannot build the URI
#: without them), so an operation whose only members are string labels or free strings
#: has no wrong-type or missing-member request.
NOT_MALFORMABLE = {
    "DescribeThing": "only the thingName label",
    "DescribeThingGroup": "only the thingGroupName label",
    "DescribeThingType": "only the thingTypeName label",
    "DeleteThingType": "only the thingTypeName label",
    "DescribeCertificate": "only the certificateId label",
    "GetRegistrationCode": "no input members at all",
    "DeleteRegistrationCode": "no input members at all",
    "DescribeCACertificate": "only the caCertificateId label",
    "DeleteCACertificate": "only the caCertificateId label",
    "GetPolicy": "only the policyName label",
    "DeletePolicy": "only the policyName label",
    "ListPolicyVersions": "only the policyName label",
    "GetPolicyVersion": "only the policyName and policyVersionId labels",
    "DeletePolicyVersion": "only the policyName and policyVersionId labels",
    "SetDefaultPolicyVersion": "only the policyName and policyVersionId labels",
    "DescribeEndpoint": "only endpointType, an optional free string in the query",
    "DescribeEventConfigurations": "no input members at all",
    "GetIndexingConfiguration": "no input members at all",
    "DescribeIndex": "only the indexName label",
    "DescribeJobTemplate": "only the jobTemplateId label",
    "DeleteJobTemplate": "only the jobTemplateId label",
}

CASE_BY_OP = {c.op: c for c in CASES}

# ----------------------------------------------------------------------------- scope

#: The operations a Jobs user touches, by service. The rule: an ``iot`` operation is in scope
#: when a Jobs workflow calls it on a resource the Jobs service itself reads or that decides
#: whether a device reaches Jobs:
#:   1. jobs, job executions and job templates (custom and AWS managed): every one of them;
#:   2. the fleet a job targets: things, thing types, static and dynamic thing groups, and
#:      the fleet index a dynamic group's query runs on (its configuration, search, describe
#:      and list; not the aggregations GetStatistics/Cardinality/Percentiles/Buckets, which
#:      feed dashboards, not targeting);
#:   3. a device's identity and permissions to reach Jobs: certificates (ours, from a CSR, or
#:      under a registered CA, with the registration code's whole life), thing principals,
#:      policies with their versions and attachments, and the two questions a user asks when
#:      a device is refused (GetEffectivePolicies, TestAuthorization);
#:   4. what surrounds those resources: tags, the endpoint, the event configurations.
#: Out of scope, as features beside Jobs that a Jobs user does not need for it: custom
#: authorizers, certificate transfer between accounts, certificate providers, fleet
#: provisioning and bulk registration tasks, billing groups, shadows and connectivity data,
#: rules, Device Defender and audits, OTA updates and streams, software packages, commands,
#: fleet metrics, logging and domain configurations.
#: Plus the four ``iot-jobs-data`` operations, all of that service.
SCOPE_IOT = [
    # 1. Jobs, executions, templates
    "CreateJob", "UpdateJob", "DescribeJob", "ListJobs", "CancelJob", "DeleteJob", "GetJobDocument",
    "AssociateTargetsWithJob", "ListJobExecutionsForJob", "ListJobExecutionsForThing", "DescribeJobExecution",
    "CancelJobExecution", "DeleteJobExecution", "CreateJobTemplate", "DescribeJobTemplate", "ListJobTemplates",
    "DeleteJobTemplate", "ListManagedJobTemplates", "DescribeManagedJobTemplate",
    # 2. The fleet: things, thing types, thing groups (static and dynamic), the fleet index
    "CreateThing", "DescribeThing", "ListThings", "UpdateThing", "DeleteThing",
    "CreateThingType", "DescribeThingType", "ListThingTypes", "UpdateThingType", "DeprecateThingType",
    "DeleteThingType",
    "CreateThingGroup", "DescribeThingGroup", "ListThingGroups", "UpdateThingGroup", "DeleteThingGroup",
    "AddThingToThingGroup", "RemoveThingFromThingGroup", "UpdateThingGroupsForThing", "ListThingsInThingGroup",
    "ListThingGroupsForThing", "CreateDynamicThingGroup", "UpdateDynamicThingGroup", "DeleteDynamicThingGroup",
    "GetIndexingConfiguration", "UpdateIndexingConfiguration", "SearchIndex", "DescribeIndex", "ListIndices",
    # 3. Identity and permissions: certificates, CAs, thing principals, policies
    "CreateKeysAndCertificate", "CreateCertificateFromCsr", "DescribeCertificate", "ListCertificates",
    "UpdateCertificate", "DeleteCertificate", "RegisterCertificate", "RegisterCertificateWithoutCA",
    "GetRegistrationCode", "DeleteRegistrationCode", "RegisterCACertificate", "DescribeCACertificate",
    "ListCACertificates", "UpdateCACertificate", "DeleteCACertificate", "ListCertificatesByCA",
    "AttachThingPrincipal", "DetachThingPrincipal", "ListThingPrincipals", "ListPrincipalThings",
    "ListThingPrincipalsV2", "ListPrincipalThingsV2",
    "CreatePolicy", "GetPolicy", "ListPolicies", "DeletePolicy", "AttachPolicy", "DetachPolicy",
    "ListAttachedPolicies", "ListTargetsForPolicy", "CreatePolicyVersion", "ListPolicyVersions",
    "GetPolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion", "AttachPrincipalPolicy",
    "DetachPrincipalPolicy", "ListPrincipalPolicies", "ListPolicyPrincipals",
    "GetEffectivePolicies", "TestAuthorization",
    # 4. Around them
    "TagResource", "UntagResource", "ListTagsForResource", "DescribeEndpoint", "UpdateEventConfigurations",
    "DescribeEventConfigurations",
]
SCOPE_JOBS_DATA = ["GetPendingJobExecutions", "StartNextPendingJobExecution", "DescribeJobExecution",
                   "UpdateJobExecution"]
SCOPE = [("iot", op) for op in SCOPE_IOT] + [("iot-jobs-data", op) for op in SCOPE_JOBS_DATA]
#: The share of SCOPE that must be implemented.
MIN_COVERAGE = 0.95


def implemented_operations() -> set[tuple[str, str]]:
    """(service, operation) of every row of ``ops::OPERATIONS``."""
    text = OPS_RS.read_text()
    iot = re.findall(r'op!\(\s*"(\w+)"', text)
    jobs_data = re.findall(r'op!\(\s*jobs_data:\s*"(\w+)"', text)
    return {("iot", op) for op in iot} | {("iot-jobs-data", op) for op in jobs_data}


def coverage() -> tuple[int, int, list[tuple[str, str]]]:
    """(implemented in scope, size of scope, the ones in scope not implemented)."""
    implemented = implemented_operations()
    missing = [s for s in SCOPE if s not in implemented]
    return len(SCOPE) - len(missing), len(SCOPE), missing


def minimal(shape: Shape | None) -> Any:
    """The smallest value of ``shape`` that botocore serializes: required members only,
    each at its minimum length (enums by their first value)."""
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure":
        return {name: minimal(shape.members[name]) for name in shape.required_members}
    if kind == "list":
        return [minimal(shape.member) for _ in range(shape.metadata.get("min", 0))]
    if kind == "map":
        return {}
    if kind == "string":
        return shape.enum[0] if getattr(shape, "enum", None) else "x" * max(1, shape.metadata.get("min", 1))
    if kind in ("integer", "long"):
        return max(1, shape.metadata.get("min", 1))
    if kind in ("double", "float"):
        return 1.0
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime.now(timezone.utc)
    if kind == "blob":
        return b"x"
    raise AssertionError(f"no minimal value for {shape.name} ({kind})")


def name_for(case: Case, variant: str) -> str:
    return f"conf-{case.op.lower()}-{variant}"


def params(kind: str) -> list:
    out = []
    for case in CASES:
        if kind == "malformed" and case.malformed is None:
            continue
        reason = case.xfail_valid if kind == "valid" else case.xfail_malformed
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(case, id=case.op, marks=marks))
    return out


@pytest.fixture(scope="module")
def env(server, tmp_path_factory) -> Env:
    return Env(server, tmp_path_factory.mktemp("conformance-certs"))


def call(client, op: str, kwargs: dict) -> dict:
    return getattr(client, botocore.xform_name(op))(**kwargs)


# ----------------------------------------------------------------------------- the tests


def test_every_implemented_operation_has_a_case():
    """The cases cover exactly ``ops::OPERATIONS``, with the model's method and URI."""
    table = re.findall(r'op!\(\s*"(\w+)",\s*"(\w+)",\s*"([^"]+)"', OPS_RS.read_text())
    assert table, f"no op! entries found in {OPS_RS}"
    implemented = {name for name, _, _ in table}
    assert implemented == set(CASE_BY_OP), (
        f"without a case: {sorted(implemented - set(CASE_BY_OP))}; "
        f"not implemented: {sorted(set(CASE_BY_OP) - implemented)}")
    for name, method, path in table:
        http = MODEL.operation_model(name).http
        assert (method, path) == (http["method"], http["requestUri"]), name
    assert {c.op for c in CASES if c.malformed is None} == set(NOT_MALFORMABLE)


def test_scope_is_written_down_and_covered():
    """SCOPE names model operations, holds every implemented one, and at least 95 % of it
    is implemented."""
    services = {"iot": MODEL, "iot-jobs-data": botocore.session.get_session().get_service_model("iot-jobs-data")}
    unknown = [(svc, op) for svc, op in SCOPE if op not in services[svc].operation_names]
    assert not unknown, f"not operations of their model: {unknown}"
    assert len(set(SCOPE)) == len(SCOPE), "an operation is listed twice"
    outside = sorted(implemented_operations() - set(SCOPE))
    assert not outside, f"implemented but not in SCOPE (decide by the rule above SCOPE_IOT): {outside}"
    done, total, missing = coverage()
    figure = f"conformance coverage: {done}/{total} = {done / total:.1%} of SCOPE implemented"
    print(f"\n{figure}; not implemented: {', '.join(op for _, op in missing) or 'none'}")
    assert done / total >= MIN_COVERAGE, f"{figure}, below {MIN_COVERAGE:.0%}; not implemented: {missing}"


def test_coverage_counts_what_ops_rs_lists(monkeypatch, tmp_path):
    """The count reads ops.rs as it is: rows of either service, split over lines or not."""
    table = tmp_path / "ops.rs"
    table.write_text('op!("CreateJob", "PUT", "/jobs/{jobId}", create_job),\n'
                     'op!(\n    "SetDefaultPolicyVersion",\n    "PATCH",\n'
                     'op!(jobs_data: "UpdateJobExecution", "POST", "/x", f),\n')
    monkeypatch.setattr(sys.modules[__name__], "OPS_RS", table)
    assert implemented_operations() == {
        ("iot", "CreateJob"), ("iot", "SetDefaultPolicyVersion"), ("iot-jobs-data", "UpdateJobExecution")}
    done, total, missing = coverage()
    assert (done, total) == (3, len(SCOPE))
    # Same name, two services: the data plane's row does not count for the control plane's.
    assert ("iot", "UpdateJobExecution") not in SCOPE and ("iot-jobs-data", "UpdateJobExecution") not in missing
    assert ("iot", "DescribeJobExecution") in missing and ("iot-jobs-data", "DescribeJobExecution") in missing
    assert ("iot", "SetDefaultPolicyVersion") not in missing


#: Operations outside SCOPE that a user of the AWS CLI may still try here.
OUT_OF_SCOPE_SAMPLE = ["CreateOTAUpdate", "CreateStream", "GetStatistics", "CreateProvisioningTemplate"]


@pytest.mark.parametrize("op", [op for svc, op in coverage()[2] if svc == "iot"] + OUT_OF_SCOPE_SAMPLE)
def test_operation_not_implemented_answers_a_clean_error(env, op):
    """An operation without an ``op!`` row (of SCOPE, if any is left, or outside it) answers a
    4xx JSON error with a code, not a 500 and not a hang (the client gives up after its read
    timeout)."""
    assert ("iot", op) not in implemented_operations(), f"{op} is implemented: its case is in CASES"
    request = minimal(MODEL.operation_model(op).input_shape)
    with pytest.raises(ClientError) as refused:
        call(env.loose, op, request)
    name, status, body = env.loose_calls.last
    assert name == op
    assert 400 <= status < 500, f"{op} answered HTTP {status}: {body!r}"
    raw = raw_json(body)
    assert isinstance(raw, dict), f"{op} answered {body!r}"
    assert refused.value.response["Error"]["Code"], f"{op} answered no error code: {body!r}"


def test_jobs_data_rows_match_their_model():
    """The ``op!(jobs_data: ...)`` rows are the `iot-jobs-data` model's four Jobs operations,
    with its method and URI (their wire cases are in test_jobs_data.py)."""
    jobs_data = botocore.session.get_session().get_service_model("iot-jobs-data")
    table = re.findall(r'op!\(\s*jobs_data:\s*"(\w+)",\s*"(\w+)",\s*"([^"]+)"', OPS_RS.read_text())
    assert {name for name, _, _ in table} == {
        "GetPendingJobExecutions", "StartNextPendingJobExecution", "DescribeJobExecution", "UpdateJobExecution"}
    for name, method, path in table:
        http = jobs_data.operation_model(name).http
        assert (method, path) == (http["method"], http["requestUri"]), name


#: An answer that matches DescribeJobExecution's output shape, and mutations of it that
#: must each be caught (the checker itself, without a server).
GOOD_EXECUTION = {"execution": {
    "jobId": "j", "status": "IN_PROGRESS", "forceCanceled": False, "thingArn": "arn:aws:iot:::thing/t",
    "statusDetails": {"detailsMap": {"step": "1"}}, "queuedAt": 1700000000.5, "executionNumber": 1,
    "versionNumber": 2,
}}
BAD_EXECUTIONS = {
    "unknown-member": ("execution.progress", 5, "not a member"),
    "unknown-nested-member": ("execution.statusDetails.extra", "x", "not a member"),
    "string-for-long": ("execution.versionNumber", "2", "is not a long"),
    "bool-for-long": ("execution.executionNumber", True, "is not a long"),
    "null-string": ("execution.jobId", None, "is not a string"),
    "bad-enum": ("execution.status", "RUNNING", "is not one of"),
    "iso-timestamp": ("execution.queuedAt", "2023-11-14T22:13:20Z", "is not a timestamp on the wire"),
    "int-map-value": ("execution.statusDetails.detailsMap.step", 1, "is not a string"),
    "object-for-string": ("execution.thingArn", {"arn": "x"}, "is not a string"),
}


@pytest.mark.parametrize("mutation", list(BAD_EXECUTIONS.values()), ids=list(BAD_EXECUTIONS))
def test_shape_checker_catches_each_kind_of_mismatch(mutation):
    member, value, expected = mutation
    shape = MODEL.operation_model("DescribeJobExecution").output_shape
    parser = botocore.parsers.create_parser("rest-json")

    def errors_for(answer: dict) -> list[str]:
        body = json.dumps(answer).encode()
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)
        return shape_errors(shape, parsed, raw_json(body))

    assert errors_for(GOOD_EXECUTION) == []
    errors = errors_for(wrong(member, value)(GOOD_EXECUTION))
    assert any(expected in e for e in errors), errors


def test_shape_checker_catches_a_missing_required_member():
    # No output shape of the implemented operations has required members at the top;
    # the rate criteria of an exponential rollout are required inside DescribeJob's answer.
    shape = MODEL.operation_model("DescribeJob").output_shape
    answer = {"job": {"jobExecutionsRolloutConfig": {"exponentialRate": {"baseRatePerMinute": 5}}}}
    errors = shape_errors(shape, answer, answer)
    assert any("incrementFactor: required" in e for e in errors), errors
    assert any("rateIncreaseCriteria: required" in e for e in errors), errors


@pytest.mark.parametrize("case", params("valid"))
def test_valid_request_matches_output_shape(env, case):
    operation = MODEL.operation_model(case.op)
    parsed = call(env.iot, case.op, case.valid(env, name_for(case, "ok")))
    op_name, status, body = env.strict_calls.last
    assert op_name == case.op
    assert status == operation.http.get("responseCode", 200), body
    raw = raw_json(body)
    if operation.output_shape is None:
        assert raw == {}, f"{case.op} has no output members, answered {body!r}"
        return
    errors = shape_errors(operation.output_shape, parsed, raw)
    errors += [f"{m}: missing or empty in a populated answer" for m in case.present if not parsed.get(m)]
    assert not errors, f"{case.op} answered {body.decode()}\n" + "\n".join(errors)


def test_describe_of_a_dynamic_group_matches_output_shape(env):
    """DescribeThingGroup's dynamic members (indexName, queryString, queryVersion, status)."""
    name = env.dynamic_group("conf-describe-dynamic")
    parsed = env.iot.describe_thing_group(thingGroupName=name)
    _, status, body = env.strict_calls.last
    assert status == 200, body
    errors = shape_errors(MODEL.operation_model("DescribeThingGroup").output_shape, parsed, raw_json(body))
    errors += [f"{m}: missing" for m in ("indexName", "queryString", "queryVersion", "status") if not parsed.get(m)]
    assert not errors, f"DescribeThingGroup answered {body.decode()}\n" + "\n".join(errors)


def test_describe_of_a_job_from_a_managed_template_matches_output_shape(env):
    """DescribeJob's template members (jobTemplateArn, documentParameters)."""
    name = "conf-describe-templated"
    env.iot.create_job(jobId=name, targets=[env.thing(name)], jobTemplateArn=MANAGED_TEMPLATE,
                       documentParameters={"downloadUrl": "https://example.com/f", "filePath": "/tmp/f"})
    parsed = env.iot.describe_job(jobId=name, beforeSubstitution=True)
    _, status, body = env.strict_calls.last
    assert status == 200, body
    errors = shape_errors(MODEL.operation_model("DescribeJob").output_shape, parsed, raw_json(body))
    errors += [f"{m}: missing" for m in ("jobTemplateArn", "documentParameters") if not parsed["job"].get(m)]
    assert not errors, f"DescribeJob answered {body.decode()}\n" + "\n".join(errors)


@pytest.mark.parametrize("case", params("malformed"))
def test_malformed_request_is_invalid_request_and_changes_nothing(env, case):
    request = case.malformed(case.valid(env, name_for(case, "bad")))
    with pytest.raises(ParamValidationError):  # the case is one botocore refuses to send
        call(env.iot, case.op, request)
    before = world(env.iot)
    with pytest.raises(ClientError) as refused:
        call(env.loose, case.op, request)
    after = world(env.iot)
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidRequestException", 400), \
        f"{case.op} {case.malformed.__doc__}: {env.loose_calls.last}"
    assert after == before, f"{case.op} {case.malformed.__doc__} changed the state"
