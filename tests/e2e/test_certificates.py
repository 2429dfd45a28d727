"""Certificates as a Jobs user meets them: RSA-2048 keys from create-keys-and-certificate,
certificates for your own keys from create-certificate-from-csr (``cryptography`` and
``openssl req``), describe-certificate's validity, and update-certificate ending a device's
live connections (MQTT at once, iot-jobs-data at its next request)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from e2elib.identity import (CA_FILE, CERT_FILE, KEY_FILE, DeviceIdentity, allow, arn_prefix_of, create_device,
                             jobs_policy)
from e2elib.mqtt import JobsDevice, MqttClient
from e2elib.server import start_server

#: update-certificate must have ended the device's connection within this (seconds).
DISCONNECT_BOUND = 1.0


def load_cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def device_policy(prefix: str, thing: str) -> dict:
    """The tutorial's MQTT policy plus the iot-jobs-data actions on its own thing."""
    doc = jobs_policy(prefix, thing)
    doc["Statement"].append(allow(
        ["iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution", "iot:DescribeJobExecution",
         "iot:UpdateJobExecution"], f"{prefix}:thing/{thing}"))
    return doc


def attach_device(server, thing: str, cert: dict, cert_dir: Path) -> DeviceIdentity:
    """A thing with its own policy, attached to ``cert`` (already written to cert_dir)."""
    created = server.aws("create-thing", "--thing-name", thing)
    prefix = arn_prefix_of(created["thingArn"])
    policy = f"{thing}-policy"
    server.aws("create-policy", "--policy-name", policy, "--policy-document", json.dumps(device_policy(prefix, thing)))
    server.aws("attach-policy", "--policy-name", policy, "--target", cert["certificateArn"])
    server.aws("attach-thing-principal", "--thing-name", thing, "--principal", cert["certificateArn"])
    shutil.copyfile(server.root_ca, cert_dir / CA_FILE)
    return DeviceIdentity(thing, created["thingArn"], cert_dir, cert["certificateArn"], cert["certificateId"], policy)


def run_one_job(device: JobsDevice, server, create_job, job_id: str) -> None:
    """A job reaches the device over MQTT (notify-next), which runs it to SUCCEEDED."""
    since = device.mark()
    create_job(job_id, [device.identity.thing_name])
    head = device.wait_notify_next(since)
    assert head["execution"]["jobId"] == job_id, head
    started = device.start_next()
    assert started["execution"]["jobId"] == job_id and started["execution"]["status"] == "IN_PROGRESS", started
    device.update(job_id, "SUCCEEDED")
    described = server.aws("describe-job-execution", "--job-id", job_id, "--thing-name", device.identity.thing_name)
    assert described["execution"]["status"] == "SUCCEEDED", described


# ----------------------------------------------------------------------------- RSA keys


def test_create_keys_and_certificate_issues_rsa_2048_keys_that_connect_and_run_a_job(
        server, make_device, connect_device, create_job):
    identity = make_device("cert-rsa")
    key_pem = identity.key_path.read_bytes()
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----"), key_pem[:40]  # PKCS#1, as AWS
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    public_pem = (identity.cert_dir / "public.pem.key").read_bytes()
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")

    cert = load_cert(identity.cert_path.read_bytes())
    root = load_cert(Path(server.root_ca).read_bytes())
    assert spki(cert.public_key()) == spki(key.public_key()) == spki(serialization.load_pem_public_key(public_pem))
    cert.verify_directly_issued_by(root)  # an RSA leaf signed by the EC P-256 root
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)

    device = connect_device(identity)  # paho (OpenSSL) presents the RSA client certificate
    run_one_job(device, server, create_job, "cert-rsa-job")


def test_serve_device_key_type_ec_p256_issues_p256_keys_that_connect(fleetjobs_bin, tmp_path):
    srv = start_server(fleetjobs_bin, tmp_path / "ec-server", "ec_p256", extra_args=("--device-key-type", "ec-p256"))
    try:
        identity = create_device(srv, "cert-ec", tmp_path / "certs-ec")
        key_pem = identity.key_path.read_bytes()
        assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----"), key_pem[:40]
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        device = JobsDevice(identity, srv.mqtt_port)
        try:
            device.connect()
            pending = device.get_pending()
            assert (pending["queuedJobs"], pending["inProgressJobs"]) == ([], []), pending
        finally:
            device.close()
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- CSRs


def csr_with_cryptography(cert_dir: Path, common_name: str) -> tuple[bytes, x509.CertificateSigningRequest]:
    """An EC P-256 key and its CSR, made with the ``cryptography`` package."""
    key = ec.generate_private_key(ec.SECP256R1())
    (cert_dir / KEY_FILE).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Devices"),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM), csr


def csr_with_openssl(cert_dir: Path, common_name: str) -> tuple[bytes, x509.CertificateSigningRequest]:
    """An RSA-2048 key and its CSR, made with ``openssl req``."""
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(cert_dir / KEY_FILE),
         "-out", str(cert_dir / "device.csr"), "-subj", f"/CN={common_name}/O=Acme Devices"],
        check=True, capture_output=True,
    )
    pem = (cert_dir / "device.csr").read_bytes()
    return pem, x509.load_pem_x509_csr(pem)


@pytest.mark.parametrize("make_csr", [csr_with_cryptography, csr_with_openssl], ids=["cryptography-ec", "openssl-rsa"])
def test_a_csr_gets_a_certificate_for_its_key_that_connects_and_runs_a_job(
        server, tmp_path, connect_device, create_job, make_csr):
    thing = f"cert-csr-{make_csr.__name__.split('_')[-1]}"
    cert_dir = tmp_path / thing
    cert_dir.mkdir()
    csr_pem, csr = make_csr(cert_dir, thing)
    (cert_dir / "request.csr").write_bytes(csr_pem)

    out = server.aws("create-certificate-from-csr", "--certificate-signing-request",
                     f"file://{cert_dir / 'request.csr'}", "--set-as-active")
    assert set(out) == {"certificateArn", "certificateId", "certificatePem"}, out
    assert out["certificateArn"].endswith(f":cert/{out['certificateId']}")
    cert = load_cert(out["certificatePem"])
    assert cert.subject == csr.subject
    assert spki(cert.public_key()) == spki(csr.public_key())
    cert.verify_directly_issued_by(load_cert(Path(server.root_ca).read_bytes()))
    described = server.aws("describe-certificate", "--certificate-id", out["certificateId"])["certificateDescription"]
    assert described["status"] == "ACTIVE" and described["certificatePem"] == out["certificatePem"]

    (cert_dir / CERT_FILE).write_text(out["certificatePem"])
    identity = attach_device(server, thing, out, cert_dir)
    device = connect_device(identity)
    run_one_job(device, server, create_job, f"{thing}-job")


def test_a_csr_certificate_is_inactive_unless_asked(server, tmp_path):
    csr_pem, _ = csr_with_cryptography(tmp_path, "cert-csr-inactive")
    out = server.aws("create-certificate-from-csr", "--certificate-signing-request", csr_pem.decode())
    described = server.aws("describe-certificate", "--certificate-id", out["certificateId"])
    assert described["certificateDescription"]["status"] == "INACTIVE"


def test_a_bad_csr_is_an_invalid_request_and_creates_nothing(server, expect_error):
    before = len(server.aws("list-certificates", "--page-size", "250")["certificates"])
    err = expect_error("InvalidRequestException", "create-certificate-from-csr",
                       "--certificate-signing-request", "not a certificate request")
    assert "certificate signing request" in err.message, err.message

    # A real CSR for a key AWS IoT does not take (RSA-1024).
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])).sign(weak, hashes.SHA256())
    err = expect_error("InvalidRequestException", "create-certificate-from-csr", "--certificate-signing-request",
                       csr.public_bytes(serialization.Encoding.PEM).decode())
    assert "2048" in err.message, err.message

    # A CSR whose subject was changed after signing: the proof of possession fails.
    key = ec.generate_private_key(ec.SECP256R1())
    honest = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "honest")])).sign(key, hashes.SHA256())
    der = bytearray(honest.public_bytes(serialization.Encoding.DER))
    der[der.index(b"honest")] = ord("H")
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    err = expect_error("InvalidRequestException", "create-certificate-from-csr",
                       "--certificate-signing-request", tampered)
    assert "signature" in err.message, err.message

    after = len(server.aws("list-certificates", "--page-size", "250")["certificates"])
    assert after == before, "a refused CSR left a certificate behind"


# ----------------------------------------------------------------------------- validity


def test_describe_certificate_shows_the_validity_written_in_the_certificate(server, tmp_path, make_device):
    from_keys = make_device("cert-validity")
    csr_pem, _ = csr_with_cryptography(tmp_path, "cert-validity-csr")
    from_csr = server.aws("create-certificate-from-csr", "--certificate-signing-request", csr_pem.decode())
    for certificate_id in (from_keys.certificate_id, from_csr["certificateId"]):
        d = server.aws("describe-certificate", "--certificate-id", certificate_id)["certificateDescription"]
        cert = load_cert(d["certificatePem"])
        assert d["validity"] == {
            "notBefore": cert.not_valid_before_utc.timestamp(),
            "notAfter": cert.not_valid_after_utc.timestamp(),
        }, d["validity"]
        assert cert.not_valid_after_utc.year == 2049  # as AWS's own certificates
        assert d["validity"]["notBefore"] <= time.time() <= d["validity"]["notAfter"]


# ----------------------------------------------------------------------------- revocation


def jobs_data_session(server, identity: DeviceIdentity) -> tuple[requests.Session, str, dict]:
    """A keep-alive HTTPS session to iot-jobs-data with the device's certificate."""
    session = requests.Session()
    url = f"https://localhost:{server.jobs_data_port}/things/{identity.thing_name}/jobs"
    kw = {"cert": (str(identity.cert_path), str(identity.key_path)), "verify": str(server.root_ca), "timeout": 10}
    return session, url, kw


@pytest.mark.parametrize("status", ["REVOKED", "INACTIVE"])
def test_a_certificate_no_longer_active_ends_its_connections_within_a_second(
        server, arn_prefix, make_device, connect_device, expect_error, status):
    thing = f"cert-{status.lower()}"
    identity = make_device(thing, device_policy(arn_prefix, thing))
    device = connect_device(identity)
    bystander = connect_device(make_device(f"{thing}-bystander"))
    session, url, kw = jobs_data_session(server, identity)
    r = session.get(url, **kw)
    assert r.status_code == 200, r.text
    iot = server.boto3_client()

    # The bound runs from the answer: the request itself waits for the store's fsync, which a
    # loaded disk (CI beside compilers) can stretch past a second; the disconnect goes out with
    # the change once it is durable, as the answer does.
    requested = time.monotonic()
    iot.update_certificate(certificateId=identity.certificate_id, newStatus=status)
    answered = time.monotonic()
    gone = device.wait_disconnected(DISCONNECT_BOUND)
    elapsed = time.monotonic() - answered
    assert gone, (f"still connected {elapsed:.2f}s after update-certificate {status} answered "
                  f"(in {answered - requested:.2f}s)")
    assert bystander.connected, "another certificate's device was disconnected too"

    # Its next iot-jobs-data request, on the kept-alive connection, is refused too.
    r = session.get(url, **kw)
    assert (r.status_code, r.headers.get("x-amzn-ErrorType", "").split(":")[0]) == (
        400, "CertificateValidationException"), r.text
    session.close()

    again = MqttClient(identity, server.mqtt_port)
    ok, why = again.try_connect()
    again.close()
    assert not ok, f"a {status} certificate connected again"
    print(f"{status}: disconnected after {elapsed:.3f}s; reconnect refused: {why}")

    if status == "INACTIVE":
        server.aws("update-certificate", "--certificate-id", identity.certificate_id, "--new-status", "ACTIVE")
        back = connect_device(identity)
        assert back.connected, "a certificate made ACTIVE again connects again"
    else:
        expect_error("CertificateStateException", "update-certificate", "--certificate-id",
                     identity.certificate_id, "--new-status", "ACTIVE")


def test_an_active_certificate_cannot_be_deleted_under_a_connected_device(
        server, make_device, connect_device, expect_error):
    identity = make_device("cert-delete")
    device = connect_device(identity)
    expect_error("CertificateStateException", "delete-certificate", "--certificate-id", identity.certificate_id)
    # The refused delete changed nothing: the device still talks to the Jobs API.
    assert device.get_pending() is not None and device.connected
