"""Bring your own PKI, the CA half, with the AWS CLI and a real device: a customer's own
root CA registered with the registration code (get-registration-code,
register-ca-certificate), device certificates it signed registered under it
(register-certificate) or certificates registered without a CA, devices connecting over
mutual TLS with them and receiving jobs, and a CA set INACTIVE refusing its devices; a CA
with auto-registration registering an unknown device certificate at its first connect
(just-in-time registration)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

from e2elib.byo_ca import device_identity, make_ca, make_leaf, self_signed
from e2elib.identity import CA_FILE, CERT_FILE, KEY_FILE, DeviceIdentity, allow, jobs_policy
from e2elib.mqtt import ConnectRefused, JobsDevice


def register_ca(aws, tmp_path, ca, *extra) -> dict:
    """register-ca-certificate with a verification certificate carrying the account's code."""
    code = aws("get-registration-code")["registrationCode"]
    verification = make_leaf(ca, code)
    return aws("register-ca-certificate",
               "--ca-certificate", f"file://{ca.write(tmp_path, 'ca')}",
               "--verification-certificate", f"file://{verification.write(tmp_path, 'verification')}",
               *extra)


def device_with_policy(aws, arn_prefix, certificate_arn: str, thing: str, extra_policy=()) -> None:
    """A thing attached to the certificate, and the tutorial's Jobs policy on it."""
    aws("create-thing", "--thing-name", thing)
    doc = jobs_policy(arn_prefix, thing)
    doc["Statement"].extend(extra_policy)
    aws("create-policy", "--policy-name", f"{thing}-policy", "--policy-document", json.dumps(doc))
    aws("attach-policy", "--policy-name", f"{thing}-policy", "--target", certificate_arn)
    aws("attach-thing-principal", "--thing-name", thing, "--principal", certificate_arn)


def assert_refused(identity, port) -> None:
    """Connect must fail. The registry refuses after the handshake with CONNACK 5, which paho
    reports as such or, when the close wins the race, as closed before CONNACK."""
    client = JobsDevice(identity, port)
    with pytest.raises(ConnectRefused) as e:
        client.connect()
    assert "CONNACK" in str(e.value), e.value


def test_just_in_time_registration_of_a_device_at_its_first_connect(
        server, aws, tmp_path, arn_prefix, connect_device, connect_watcher):
    ca = make_ca("Acme JITR Root")
    ca_id = register_ca(aws, tmp_path, ca, "--set-as-active", "--allow-auto-registration")["certificateId"]
    watcher = connect_watcher("jitr-watcher", f"$aws/events/certificates/registered/{ca_id}")
    since = watcher.mark()

    # A certificate the CA signed, never registered: the first connect is refused, as AWS's.
    device = make_leaf(ca, "jitr-sensor-1")
    unknown = {"certificateArn": "", "certificateId": ""}
    identity = device_identity(device, server.root_ca, tmp_path / "jitr-certs", "jitr-sensor-1", unknown)
    assert_refused(identity, server.mqtt_port)

    # ... and registers it PENDING_ACTIVATION, announced to whoever listens.
    event = watcher.wait_topic(f"$aws/events/certificates/registered/{ca_id}", since).json
    assert (event["caCertificateId"], event["certificateStatus"]) == (ca_id, "PENDING_ACTIVATION")
    assert event["awsAccountId"] == arn_prefix.split(":")[4]
    cert_id = event["certificateId"]
    d = aws("describe-certificate", "--certificate-id", cert_id)["certificateDescription"]
    assert (d["status"], d["caCertificateId"]) == ("PENDING_ACTIVATION", ca_id)
    assert d["certificatePem"].strip() == device.cert_pem.strip()
    assert [c["certificateId"] for c in aws("list-certificates-by-ca", "--ca-certificate-id", ca_id)["certificates"]] \
        == [cert_id]
    # Pending, it is still refused.
    assert_refused(identity, server.mqtt_port)

    # What the rule's function of AWS's guide does: activate it and give it a thing and a policy.
    aws("update-certificate", "--certificate-id", cert_id, "--new-status", "ACTIVE")
    device_with_policy(aws, arn_prefix, d["certificateArn"], "jitr-sensor-1")
    connect_device(identity)


def test_registration_code_is_stable(aws):
    first = aws("get-registration-code")["registrationCode"]
    assert len(first) == 64 and all(c in "0123456789abcdef" for c in first)
    assert aws("get-registration-code")["registrationCode"] == first


def test_a_device_of_a_registered_ca_gets_its_job_until_the_ca_is_deactivated(
        server, aws, tmp_path, arn_prefix, connect_device, create_job):
    ca = make_ca("Acme Devices Root")
    out = register_ca(aws, tmp_path, ca, "--set-as-active", "--allow-auto-registration",
                      "--registration-config", json.dumps({"templateName": "acme-template"}),
                      "--tags", "Key=team,Value=fleet")
    ca_id = out["certificateId"]
    assert out["certificateArn"] == f"{arn_prefix}:cacert/{ca_id}"

    described = aws("describe-ca-certificate", "--certificate-id", ca_id)
    d = described["certificateDescription"]
    assert (d["status"], d["certificateMode"], d["autoRegistrationStatus"]) == ("ACTIVE", "DEFAULT", "ENABLE")
    assert d["certificatePem"].strip() == ca.cert_pem.strip()
    assert d["customerVersion"] == 1 and d["generationId"] and d["ownedBy"]
    assert d["validity"]["notBefore"] < d["validity"]["notAfter"]
    assert described["registrationConfig"] == {"templateName": "acme-template"}
    assert ca_id in [c["certificateId"] for c in aws("list-ca-certificates")["certificates"]]
    tags = aws("list-tags-for-resource", "--resource-arn", out["certificateArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "fleet"}]

    # A device certificate the CA signed, registered under it.
    device = make_leaf(ca, "acme-sensor-1")
    cert = aws("register-certificate", "--certificate-pem", f"file://{device.write(tmp_path, 'device')}",
               "--ca-certificate-pem", f"file://{tmp_path / 'ca.pem'}", "--set-as-active")
    cd = aws("describe-certificate", "--certificate-id", cert["certificateId"])["certificateDescription"]
    assert (cd["status"], cd["caCertificateId"], cd["certificateMode"]) == ("ACTIVE", ca_id, "DEFAULT")
    by_ca = aws("list-certificates-by-ca", "--ca-certificate-id", ca_id)["certificates"]
    assert [c["certificateId"] for c in by_ca] == [cert["certificateId"]]

    thing = "acme-sensor-1"
    jobs_data = allow(["iot:GetPendingJobExecutions"], f"{arn_prefix}:thing/{thing}")
    device_with_policy(aws, arn_prefix, cert["certificateArn"], thing, [jobs_data])
    identity = device_identity(device, server.root_ca, tmp_path / "device-certs", thing, cert)

    # Over MQTT: connect with the customer's certificate and receive the job.
    dev = connect_device(identity)
    since = dev.mark()
    create_job("byo-ca-job", [thing])
    head = dev.wait_notify_next(since)
    assert head["execution"]["jobId"] == "byo-ca-job"
    assert dev.start_next()["execution"]["jobId"] == "byo-ca-job"

    # Over the iot-jobs-data mutual-TLS listener too.
    kw = {"cert": (str(identity.cert_path), str(identity.key_path)), "verify": str(server.root_ca), "timeout": 10}
    jobs_url = f"https://localhost:{server.jobs_data_port}/things/{thing}/jobs"
    r = requests.get(jobs_url, **kw)
    assert r.status_code == 200, r.text
    assert [j["jobId"] for j in r.json()["inProgressJobs"]] == ["byo-ca-job"]

    # The CA goes INACTIVE: the live session ends and new connects are refused.
    aws("update-ca-certificate", "--certificate-id", ca_id, "--new-status", "INACTIVE")
    assert dev.wait_disconnected(), "the device of a deactivated CA stays connected"
    assert_refused(identity, server.mqtt_port)
    r = requests.get(jobs_url, **kw)
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"].startswith("CertificateValidationException")
    d = aws("describe-ca-certificate", "--certificate-id", ca_id)["certificateDescription"]
    assert (d["status"], d["customerVersion"]) == ("INACTIVE", 2)

    # ACTIVE again: the device is back.
    aws("update-ca-certificate", "--certificate-id", ca_id, "--new-status", "ACTIVE")
    connect_device(identity)


def test_refusals_as_aws(server, aws, expect_error, tmp_path):
    ca = make_ca("Refusals Root")
    ca_file = ca.write(tmp_path, "ca")
    code = aws("get-registration-code")["registrationCode"]
    registered_before = aws("list-ca-certificates")["certificates"]

    # The verification certificate must carry the code and be signed by the CA's key.
    wrong_code = make_leaf(ca, "0" * 64).write(tmp_path, "wrong-code")
    expect_error("RegistrationCodeValidationException", "register-ca-certificate",
                 "--ca-certificate", f"file://{ca_file}", "--verification-certificate", f"file://{wrong_code}")
    other_key = make_leaf(make_ca("Refusals Root"), code).write(tmp_path, "other-key")
    expect_error("CertificateValidationException", "register-ca-certificate",
                 "--ca-certificate", f"file://{ca_file}", "--verification-certificate", f"file://{other_key}")
    # Not a CA; not a certificate at all; no proof in DEFAULT mode.
    leaf = make_leaf(ca, "not-a-ca").write(tmp_path, "leaf")
    good = make_leaf(ca, code).write(tmp_path, "good")
    expect_error("CertificateValidationException", "register-ca-certificate",
                 "--ca-certificate", f"file://{leaf}", "--verification-certificate", f"file://{good}")
    expect_error("CertificateValidationException", "register-ca-certificate",
                 "--ca-certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                 "--verification-certificate", f"file://{good}")
    expect_error("InvalidRequestException", "register-ca-certificate", "--ca-certificate", f"file://{ca_file}")
    assert aws("list-ca-certificates")["certificates"] == registered_before, "nothing refused was kept"

    # A device certificate of a CA nobody registered.
    stranger = make_ca("Stranger Root")
    stranger_device = make_leaf(stranger, "stray").write(tmp_path, "stray")
    expect_error("CertificateValidationException", "register-certificate",
                 "--certificate-pem", f"file://{stranger_device}",
                 "--ca-certificate-pem", f"file://{stranger.write(tmp_path, 'stranger')}")
    expect_error("CertificateValidationException", "register-certificate",
                 "--certificate-pem", f"file://{stranger_device}")

    # Registered once; an ACTIVE CA, or one with certificates, is not deleted.
    ca_id = aws("register-ca-certificate", "--ca-certificate", f"file://{ca_file}",
                "--verification-certificate", f"file://{good}", "--set-as-active")["certificateId"]
    expect_error("ResourceAlreadyExistsException", "register-ca-certificate",
                 "--ca-certificate", f"file://{ca_file}", "--verification-certificate", f"file://{good}")
    device = aws("register-certificate", "--certificate-pem",
                 f"file://{make_leaf(ca, 'dev').write(tmp_path, 'dev')}")  # its CA found among the registered
    assert device["certificateId"] in [
        c["certificateId"] for c in aws("list-certificates-by-ca", "--ca-certificate-id", ca_id)["certificates"]]
    d = aws("describe-certificate", "--certificate-id", device["certificateId"])["certificateDescription"]
    assert d["status"] == "INACTIVE", "registered certificates start INACTIVE"
    expect_error("CertificateStateException", "delete-ca-certificate", "--certificate-id", ca_id)
    aws("update-ca-certificate", "--certificate-id", ca_id, "--new-status", "INACTIVE")
    expect_error("CertificateStateException", "delete-ca-certificate", "--certificate-id", ca_id)
    expect_error("CertificateStateException", "register-certificate",
                 "--certificate-pem", f"file://{make_leaf(ca, 'late').write(tmp_path, 'late')}")
    aws("delete-certificate", "--certificate-id", device["certificateId"])
    aws("delete-ca-certificate", "--certificate-id", ca_id)
    expect_error("ResourceNotFoundException", "describe-ca-certificate", "--certificate-id", ca_id)


def test_a_certificate_registered_without_a_ca_connects_while_active(server, aws, expect_error, tmp_path,
                                                                     arn_prefix, connect_device):
    own = self_signed("lonely-device")
    cert = aws("register-certificate-without-ca", "--certificate-pem", f"file://{own.write(tmp_path, 'own')}",
               "--status", "ACTIVE")
    d = aws("describe-certificate", "--certificate-id", cert["certificateId"])["certificateDescription"]
    assert d["certificateMode"] == "SNI_ONLY" and "caCertificateId" not in d
    expect_error("ResourceAlreadyExistsException", "register-certificate-without-ca",
                 "--certificate-pem", f"file://{tmp_path / 'own.pem'}")
    device_with_policy(aws, arn_prefix, cert["certificateArn"], "lonely-device")
    identity = device_identity(own, server.root_ca, tmp_path / "lonely", "lonely-device", cert)
    dev = connect_device(identity)

    aws("update-certificate", "--certificate-id", cert["certificateId"], "--new-status", "INACTIVE")
    assert dev.wait_disconnected()
    assert_refused(identity, server.mqtt_port)

    # A certificate nobody registered completes TLS but is refused at CONNECT.
    stranger = self_signed("stranger")
    unknown = device_identity(stranger, server.root_ca, tmp_path / "stranger", "stranger",
                              {"certificateArn": "", "certificateId": ""})
    assert_refused(unknown, server.mqtt_port)


def test_ca_certificates_and_the_code_survive_a_restart(own_server, tmp_path):
    srv = own_server
    code = srv.aws("get-registration-code")["registrationCode"]
    ca = make_ca("Durable Root")
    ca_id = register_ca(srv.aws, tmp_path, ca, "--set-as-active")["certificateId"]
    device = make_leaf(ca, "durable")
    cert = srv.aws("register-certificate", "--certificate-pem", f"file://{device.write(tmp_path, 'd')}",
                   "--set-as-active")
    before = srv.aws("describe-ca-certificate", "--certificate-id", ca_id)
    srv.kill9()
    srv.start()
    assert srv.aws("get-registration-code")["registrationCode"] == code
    assert srv.aws("describe-ca-certificate", "--certificate-id", ca_id) == before
    d = srv.aws("describe-certificate", "--certificate-id", cert["certificateId"])["certificateDescription"]
    assert (d["status"], d["caCertificateId"]) == ("ACTIVE", ca_id)


def test_the_aws_documented_openssl_flow_with_rsa_keys(server, aws, tmp_path, arn_prefix, connect_device):
    """The steps of AWS's "Register your CA certificate" guide, with the openssl CLI: an RSA
    root made by ``openssl req -x509``, a verification certificate from a CSR whose CN is the
    registration code, and an RSA device certificate signed the same way."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    code = aws("get-registration-code")["registrationCode"]
    openssl("genrsa", "-out", "rootCA.key", "2048")
    openssl("req", "-x509", "-new", "-nodes", "-key", "rootCA.key", "-sha256", "-days", "1024",
            "-out", "rootCA.pem", "-subj", "/CN=OpenSSL Root")
    for name, cn in (("verificationCert", code), ("deviceCert", "openssl-device")):
        openssl("genrsa", "-out", f"{name}.key", "2048")
        openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "rootCA.pem", "-CAkey", "rootCA.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "500", "-sha256")

    ca_id = aws("register-ca-certificate", "--ca-certificate", f"file://{tmp_path / 'rootCA.pem'}",
                "--verification-certificate", f"file://{tmp_path / 'verificationCert.pem'}",
                "--set-as-active")["certificateId"]
    cert = aws("register-certificate", "--certificate-pem", f"file://{tmp_path / 'deviceCert.pem'}",
               "--ca-certificate-pem", f"file://{tmp_path / 'rootCA.pem'}", "--set-as-active")
    d = aws("describe-certificate", "--certificate-id", cert["certificateId"])["certificateDescription"]
    assert d["caCertificateId"] == ca_id

    device_with_policy(aws, arn_prefix, cert["certificateArn"], "openssl-device")
    cert_dir = tmp_path / "openssl-device"
    cert_dir.mkdir()
    shutil.copyfile(tmp_path / "deviceCert.pem", cert_dir / CERT_FILE)
    shutil.copyfile(tmp_path / "deviceCert.key", cert_dir / KEY_FILE)
    shutil.copyfile(server.root_ca, cert_dir / CA_FILE)
    identity = DeviceIdentity("openssl-device", "", cert_dir, cert["certificateArn"], cert["certificateId"], None)
    pending = connect_device(identity).get_pending()
    assert pending["queuedJobs"] == [] and pending["inProgressJobs"] == []
