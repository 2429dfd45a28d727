"""A PKI of one's own for the bring-your-own-CA tests: a root CA, the verification
certificate that proves its key (subject CN = the registration code), device certificates
it signs, and self-signed ones, made with the ``cryptography`` package as a customer's
own tooling would."""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .identity import CA_FILE, CERT_FILE, KEY_FILE, DeviceIdentity


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def write(self, directory: Path, name: str) -> Path:
        """The certificate as ``directory/name.pem`` (for ``file://`` CLI arguments)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.pem"
        path.write_text(self.cert_pem)
        return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             not_after_days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=not_after_days))
    )


def make_ca(cn: str = "Customer Root CA") -> Issued:
    """A self-signed root CA (P-256, basicConstraints CA:TRUE, keyCertSign)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False)
    cert = (
        _builder(_name(cn), _name(cn), key, 3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_leaf(ca: Issued, cn: str) -> Issued:
    """An end-entity certificate signed by ``ca`` (a device's, or the verification one with
    the registration code as ``cn``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(cn), ca.cert.subject, key, 365)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def self_signed(cn: str) -> Issued:
    """A self-signed end-entity certificate (what register-certificate-without-ca takes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _builder(_name(cn), _name(cn), key, 365).sign(key, hashes.SHA256())
    return Issued(cert, key)


def device_identity(issued: Issued, server_root_ca: Path, cert_dir: Path, thing_name: str,
                    certificate: dict) -> DeviceIdentity:
    """The device's files laid out as the other tests' identities (certificate, key, and the
    server's root-CA.crt to trust the server with)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / CERT_FILE).write_text(issued.cert_pem)
    (cert_dir / KEY_FILE).write_text(issued.key_pem)
    shutil.copyfile(server_root_ca, cert_dir / CA_FILE)
    return DeviceIdentity(
        thing_name=thing_name,
        thing_arn="",
        cert_dir=cert_dir,
        certificate_arn=certificate["certificateArn"],
        certificate_id=certificate["certificateId"],
        policy_name=None,
    )
