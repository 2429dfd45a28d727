"""TLS session resumption on the MQTT listener (session tickets, for reconnect storms): a
device that reconnects with its session ticket skips the full handshake, and its certificate
is still checked against the registry at every CONNECT, so a revoked certificate does not get
back in through a resumed session. Python's ssl (OpenSSL) reuses the session as the AWS IoT
Python SDKs' OpenSSL does."""

from __future__ import annotations

import socket
import ssl

from e2elib.identity import create_device, jobs_policy
from e2elib.mqtt import tls_context

KEEP_ALIVE = 60


def _str(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str) -> bytes:
    body = _str("MQTT") + bytes([4, 0x02]) + KEEP_ALIVE.to_bytes(2, "big") + _str(client_id)
    return bytes([0x10, len(body)]) + body


def mqtt_connect(server, ctx: ssl.SSLContext, client_id: str, session: ssl.SSLSession | None = None):
    """CONNECT over a new TLS connection; (CONNACK return code, reused?, the session to resume
    next time). The session is read after CONNACK: TLS 1.3 tickets arrive after the
    handshake, with the first application data."""
    raw = socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(connect_packet(client_id))
        connack = b""
        while len(connack) < 4:
            chunk = tls.recv(4 - len(connack))
            if not chunk:
                break
            connack += chunk
        assert len(connack) == 4 and connack[0] == 0x20, f"no CONNACK: {connack!r}"
        return connack[3], tls.session_reused, tls.version(), tls.session


def test_a_reconnect_resumes_and_a_revoked_certificate_cannot(server, tmp_path, arn_prefix):
    identity = create_device(server, "resume-1", tmp_path / "certs", jobs_policy(arn_prefix, "resume-1"))
    ctx = tls_context(identity)

    code, reused, version, ticket = mqtt_connect(server, ctx, "resume-1")
    assert (code, reused, version) == (0, False, "TLSv1.3")
    assert ticket is not None and ticket.has_ticket, "the server issued no session ticket"

    # As a client does, each reconnect presents the newest ticket it holds.
    code, reused, _, ticket = mqtt_connect(server, ctx, "resume-1", ticket)
    assert (code, reused) == (0, True), "the reconnect did not resume the TLS session"
    assert ticket is not None and ticket.has_ticket, "no ticket issued on the resumed session"

    server.aws("update-certificate", "--certificate-id", identity.certificate_id, "--new-status", "REVOKED")
    code, reused, _, _ = mqtt_connect(server, ctx, "resume-1", ticket)
    assert reused, "the TLS session was not resumed: this would not test the resumed path"
    assert code == 5, f"a revoked certificate connected through a resumed session (CONNACK {code})"

    # A full handshake is refused the same way.
    code, reused, _, _ = mqtt_connect(server, ctx, "resume-1")
    assert (code, reused) == (5, False)
