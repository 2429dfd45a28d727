"""MQTT 3.1.1 over mutual TLS with paho-mqtt 2.x, and a device speaking the AWS IoT
Jobs MQTT API (``$aws/things/{thing}/jobs/...``) with clientToken correlation."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import paho.mqtt.client as mqtt

from .identity import DeviceIdentity

HOST = "localhost"  # the server certificate's SANs are localhost and 127.0.0.1
DEFAULT_TIMEOUT = 10.0


class ConnectRefused(Exception):
    """The broker did not let this client in (TLS failure, CONNACK error or a close)."""


@dataclass
class Message:
    topic: str
    payload: bytes
    received_at: float

    @property
    def json(self) -> Any:
        return json.loads(self.payload)

    def __repr__(self) -> str:
        body = self.payload[:300].decode("utf-8", "replace")
        return f"<{self.topic} {body}>"


@dataclass
class Response:
    """The answer to a Jobs API request: outcome is ``accepted`` or ``rejected``."""

    outcome: str
    topic: str
    payload: dict

    def __getitem__(self, key):
        return self.payload[key]

    def get(self, key, default=None):
        return self.payload.get(key, default)


def tls_context(identity: DeviceIdentity | None = None, *, cert=None, key=None, ca=None) -> ssl.SSLContext:
    """Client TLS: trust only the server's root-CA.crt, present the device certificate,
    check that the server certificate names ``localhost``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(ca or identity.ca_path))
    cert = cert or (identity.cert_path if identity else None)
    key = key or (identity.key_path if identity else None)
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class MqttClient:
    """A paho client that records every message it receives, for tests to wait on.

    It never reconnects on its own: a broker-side disconnect stays visible
    (``wait_disconnected``) instead of being papered over.
    """

    def __init__(self, identity: DeviceIdentity, port: int, client_id: str | None = None, host: str = HOST,
                 clean_session: bool = True):
        self.identity = identity
        self.port = port
        self.host = host
        self.client_id = client_id or f"e2e-{identity.thing_name}-{uuid.uuid4().hex[:8]}"
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._connack: int | None = None
        self.session_present: bool | None = None
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self.disconnect_reason: str | None = None
        self._suback: dict[int, list] = {}
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
            reconnect_on_failure=False,
        )
        self._client.tls_set_context(tls_context(identity))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # ---------------------------------------------------------------- callbacks (paho thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self._connack = reason_code.value
        self.session_present = bool(flags.session_present)
        if reason_code.value == 0:
            self._connected.set()
        with self._cond:
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = str(reason_code)
        self._disconnected.set()
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), time.time()))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        with self._cond:
            self._suback[mid] = [rc.value for rc in reason_code_list]
            self._cond.notify_all()

    # ---------------------------------------------------------------- connection

    def connect(self, timeout: float = DEFAULT_TIMEOUT) -> "MqttClient":
        """Connect and wait for a successful CONNACK; raise ConnectRefused otherwise."""
        try:
            self._client.connect(self.host, self.port, keepalive=60)
        except (ssl.SSLError, OSError) as e:
            raise ConnectRefused(f"TCP/TLS connect failed: {e!r}") from e
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        failure = None
        with self._cond:
            while not self._connected.is_set():
                if self._disconnected.is_set():
                    failure = f"closed before CONNACK ({self.disconnect_reason})"
                elif self._connack not in (None, 0):
                    failure = f"CONNACK return code {self._connack}"
                elif deadline - time.monotonic() <= 0:
                    failure = f"no CONNACK within {timeout}s"
                if failure:
                    break
                self._cond.wait(max(0.01, deadline - time.monotonic()))
        if failure:
            self.close()  # outside the lock: loop_stop joins the paho thread
            raise ConnectRefused(failure)
        return self

    def try_connect(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[bool, str]:
        """(True, "") when the broker accepted the connection, else (False, why)."""
        try:
            self.connect(timeout)
            return True, ""
        except ConnectRefused as e:
            return False, str(e)

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and not self._disconnected.is_set()

    def wait_disconnected(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        return self._disconnected.wait(timeout)

    def close(self) -> None:
        try:
            if self._connected.is_set() and not self._disconnected.is_set():
                self._client.disconnect()
        finally:
            self._client.loop_stop()
            # loop_stop leaves the socket open when the loop had already ended
            sock_close = getattr(self._client, "_sock_close", None)
            if sock_close is not None:
                sock_close()

    # ---------------------------------------------------------------- pub/sub

    def subscribe(self, topic_filter: str, qos: int = 0, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Subscribe and wait for the SUBACK; return the granted QoS (0x80 = refused)."""
        rc, mid = self._client.subscribe(topic_filter, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe({topic_filter}) not sent: {mqtt.error_string(rc)}"
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._suback:
                left = deadline - time.monotonic()
                assert left > 0 and not self._disconnected.is_set(), (
                    f"no SUBACK for {topic_filter} (disconnected: {self.disconnect_reason})"
                )
                self._cond.wait(left)
            return self._suback[mid][0]

    def subscribe_ok(self, topic_filter: str, qos: int = 0) -> None:
        granted = self.subscribe(topic_filter, qos)
        assert granted < 0x80, f"SUBACK refused {topic_filter} (return code {granted:#x})"

    def publish(self, topic: str, payload: bytes | str | dict, qos: int = 0) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self._client.publish(topic, payload, qos)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish({topic}) not sent: {mqtt.error_string(info.rc)}"

    # ---------------------------------------------------------------- waiting

    def mark(self) -> int:
        """Index to pass as ``since`` so a wait only looks at later messages."""
        with self._cond:
            return len(self.messages)

    def received(self, predicate: Callable[[Message], bool] = lambda m: True, since: int = 0) -> list[Message]:
        with self._cond:
            return [m for m in self.messages[since:] if predicate(m)]

    def wait_for(
        self,
        predicate: Callable[[Message], bool],
        since: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "message",
    ) -> Message:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[since:]:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n  ".join(repr(m) for m in self.messages[since:][-20:]) or "(nothing)"
                    raise AssertionError(
                        f"{self.client_id}: no {what} within {timeout}s; received since mark:\n  {seen}"
                        + (f"\n(disconnected: {self.disconnect_reason})" if self._disconnected.is_set() else "")
                    )
                self._cond.wait(min(left, 0.5))

    def wait_topic(self, topic: str, since: int = 0, timeout: float = DEFAULT_TIMEOUT) -> Message:
        return self.wait_for(lambda m: m.topic == topic, since, timeout, what=f"message on {topic}")


class JobsDevice(MqttClient):
    """A device that speaks the AWS IoT Jobs MQTT API for one thing."""

    def __init__(self, identity: DeviceIdentity, port: int, client_id: str | None = None, **kw):
        super().__init__(identity, port, client_id, **kw)
        self.thing_name = identity.thing_name

    def topic(self, suffix: str) -> str:
        return f"$aws/things/{self.thing_name}/jobs/{suffix}"

    def subscribe_jobs(self) -> "JobsDevice":
        """Subscribe to this thing's notify and notify-next topics (the accepted and
        rejected answers come to the requesting session without a subscription)."""
        self.subscribe_ok(self.topic("notify"))
        self.subscribe_ok(self.topic("notify-next"))
        return self

    # ---------------------------------------------------------------- requests

    def request(
        self,
        suffix: str,
        payload: dict | bytes | None = None,
        *,
        token: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Publish to ``$aws/things/T/jobs/SUFFIX`` and wait for ``.../accepted`` or
        ``.../rejected``. A dict payload gets a fresh clientToken (unless token=False)
        and the answer must echo it."""
        request_topic = self.topic(suffix)
        client_token = None
        if isinstance(payload, dict) or payload is None:
            payload = dict(payload or {})
            if token and "clientToken" not in payload:
                payload["clientToken"] = f"tok-{uuid.uuid4().hex[:16]}"
            client_token = payload.get("clientToken")
            body: bytes = json.dumps(payload).encode()
        else:
            body = payload
        answers = {request_topic + "/accepted": "accepted", request_topic + "/rejected": "rejected"}

        def is_answer(m: Message) -> bool:
            if m.topic not in answers:
                return False
            if client_token is None:
                return True
            try:
                return m.json.get("clientToken") == client_token
            except ValueError:
                return False

        since = self.mark()
        self.publish(request_topic, body)
        msg = self.wait_for(is_answer, since, timeout, what=f"answer to {request_topic} (clientToken {client_token})")
        return Response(answers[msg.topic], msg.topic, msg.json)

    def accepted(self, suffix: str, payload: dict | None = None, **kw) -> dict:
        resp = self.request(suffix, payload, **kw)
        assert resp.outcome == "accepted", f"{self.topic(suffix)} was rejected: {resp.payload}"
        return resp.payload

    def rejected(self, suffix: str, payload: dict | bytes | None = None, **kw) -> dict:
        resp = self.request(suffix, payload, **kw)
        assert resp.outcome == "rejected", f"{self.topic(suffix)} was accepted but should be rejected: {resp.payload}"
        return resp.payload

    # GetPendingJobExecutions / StartNextPendingJobExecution / DescribeJobExecution /
    # UpdateJobExecution, each answering the accepted payload.

    def get_pending(self) -> dict:
        return self.accepted("get")

    def start_next(self, **fields) -> dict:
        return self.accepted("start-next", fields)

    def describe(self, job_id: str, **fields) -> dict:
        return self.accepted(f"{job_id}/get", fields)

    def update(self, job_id: str, status: str, **fields) -> dict:
        return self.accepted(f"{job_id}/update", {"status": status, **fields})

    def update_rejected(self, job_id: str, status: str, **fields) -> dict:
        return self.rejected(f"{job_id}/update", {"status": status, **fields})

    # ---------------------------------------------------------------- notifications

    def wait_notify_next(self, since: int, timeout: float = DEFAULT_TIMEOUT,
                         predicate: Callable[[dict], bool] = lambda p: True) -> dict:
        msg = self.wait_for(
            lambda m: m.topic == self.topic("notify-next") and predicate(m.json),
            since, timeout, what="matching notify-next",
        )
        return msg.json

    def wait_notify(self, since: int, timeout: float = DEFAULT_TIMEOUT,
                    predicate: Callable[[dict], bool] = lambda p: True) -> dict:
        msg = self.wait_for(
            lambda m: m.topic == self.topic("notify") and predicate(m.json),
            since, timeout, what="matching notify",
        )
        return msg.json
