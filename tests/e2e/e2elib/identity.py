"""Device identities: a thing, an ACTIVE certificate, a policy, all attached.

The certificate directory is laid out exactly as the aws-iot-device-sdk (v1)
examples expect for ``-f CERTDIR``: ``certificate.pem.crt``, ``private.pem.key``
and ``root-CA.crt`` (plus ``public.pem.key``, as the tutorial writes it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .server import FleetjobsServer

CERT_FILE = "certificate.pem.crt"
KEY_FILE = "private.pem.key"
PUBLIC_KEY_FILE = "public.pem.key"
CA_FILE = "root-CA.crt"


@dataclass
class DeviceIdentity:
    thing_name: str
    thing_arn: str
    cert_dir: Path
    certificate_arn: str
    certificate_id: str
    policy_name: str | None
    extra: dict = field(default_factory=dict)

    @property
    def cert_path(self) -> Path:
        return self.cert_dir / CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.cert_dir / KEY_FILE

    @property
    def ca_path(self) -> Path:
        return self.cert_dir / CA_FILE

    @property
    def arn_prefix(self) -> str:
        """``arn:aws:iot:REGION:ACCOUNT`` as the server spells it."""
        return arn_prefix_of(self.thing_arn)


def arn_prefix_of(arn: str) -> str:
    """``arn:aws:iot:us-east-1:123456789012:thing/X`` -> ``arn:aws:iot:us-east-1:123456789012``."""
    parts = arn.split(":")
    assert len(parts) >= 6 and parts[0] == "arn", f"not an ARN: {arn!r}"
    return ":".join(parts[:5])


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resources: str | list[str]) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def jobs_policy(prefix: str, thing_name: str, extra_topics: tuple[str, ...] = ()) -> dict:
    """The tutorial's policy shape: connect as any client id, and use the Jobs
    topics of this one thing only (plus ``extra_topics``, e.g. ``testTopic``)."""
    topics = [f"$aws/things/{thing_name}/jobs/*", *extra_topics]
    return policy(
        allow("iot:Connect", f"{prefix}:client/*"),
        allow(["iot:Publish", "iot:Receive"], [f"{prefix}:topic/{t}" for t in topics]),
        allow("iot:Subscribe", [f"{prefix}:topicfilter/{t}" for t in topics]),
    )


def events_watcher_policy(prefix: str) -> dict:
    """Subscribe to and receive the ``$aws/events/...`` job event topics."""
    return policy(
        allow("iot:Connect", f"{prefix}:client/*"),
        allow("iot:Subscribe", f"{prefix}:topicfilter/$aws/events/*"),
        allow("iot:Receive", f"{prefix}:topic/$aws/events/*"),
    )


def create_keys_and_certificate(server: FleetjobsServer, cert_dir: Path, set_as_active: bool = True) -> dict:
    """``aws iot create-keys-and-certificate [--set-as-active] --*-outfile`` into cert_dir,
    plus the server's root-CA.crt beside them."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "create-keys-and-certificate",
        "--certificate-pem-outfile",
        str(cert_dir / CERT_FILE),
        "--public-key-outfile",
        str(cert_dir / PUBLIC_KEY_FILE),
        "--private-key-outfile",
        str(cert_dir / KEY_FILE),
    ]
    if set_as_active:
        args.insert(1, "--set-as-active")
    out = server.aws(*args)
    shutil.copyfile(server.root_ca, cert_dir / CA_FILE)
    for name in (CERT_FILE, KEY_FILE, PUBLIC_KEY_FILE):
        assert (cert_dir / name).stat().st_size > 0, f"{name} was not written"
    return out


def create_device(
    server: FleetjobsServer,
    thing_name: str,
    cert_dir: Path,
    policy_doc: dict | None = None,
    policy_name: str | None = None,
    set_as_active: bool = True,
) -> DeviceIdentity:
    """create-thing, create-keys-and-certificate, create-policy, attach-policy,
    attach-thing-principal: everything a device needs to connect over MQTT.

    ``policy_doc`` defaults to :func:`jobs_policy` for this thing.
    """
    thing = server.aws("create-thing", "--thing-name", thing_name)
    prefix = arn_prefix_of(thing["thingArn"])
    cert = create_keys_and_certificate(server, cert_dir, set_as_active=set_as_active)
    policy_name = policy_name or f"{thing_name}-policy"
    doc = policy_doc if policy_doc is not None else jobs_policy(prefix, thing_name)
    server.aws("create-policy", "--policy-name", policy_name, "--policy-document", json.dumps(doc))
    server.aws("attach-policy", "--policy-name", policy_name, "--target", cert["certificateArn"])
    server.aws("attach-thing-principal", "--thing-name", thing_name, "--principal", cert["certificateArn"])
    return DeviceIdentity(
        thing_name=thing_name,
        thing_arn=thing["thingArn"],
        cert_dir=cert_dir,
        certificate_arn=cert["certificateArn"],
        certificate_id=cert["certificateId"],
        policy_name=policy_name,
    )
