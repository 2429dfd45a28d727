"""fleetjobs-agent speaks MQTT 5 when the broker does (AWS IoT does; Fleetjobs' broker is 3.1.1
only, where the agent falls back, as every other agent test shows).

A local mosquitto (mutual TLS with the Fleetjobs server's CA and server certificate) plus a
small fake Jobs service (paho, MQTT 5) answering `$next/get`, `{jobId}/get` and
`{jobId}/update` like AWS. Needs mosquitto (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from e2elib.agent import agent_bin, start_agent, wait_until
from e2elib.server import free_port, port_open

__all__ = ["agent_bin", "start_agent"]

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)


class FakeJobs:
    """One QUEUED execution `j1` (customJob) for `thing`, served over MQTT 5."""

    def __init__(self, identity, port: int, thing: str):
        self.base = f"$aws/things/{thing}/jobs/"
        self.status, self.version, self.updates = "QUEUED", 1, []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="fake-jobs-service", protocol=mqtt.MQTTv5)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(identity.ca_path))
        ctx.load_cert_chain(str(identity.cert_path), str(identity.key_path))
        self.client.tls_set_context(ctx)
        self.client.on_message = self.on_message
        self.client.connect("localhost", port)
        self.client.subscribe(self.base + "#", qos=1)
        self.client.loop_start()

    def execution(self) -> dict:
        return {"jobId": "j1", "status": self.status, "versionNumber": self.version, "executionNumber": 1,
                "jobDocument": {"operation": "customJob"}, "statusDetails": {}}

    def reply(self, topic: str, body: dict) -> None:
        self.client.publish(self.base + topic, json.dumps({**body, "timestamp": int(time.time())}), qos=1)

    def on_message(self, client, userdata, msg):
        rest = msg.topic[len(self.base):]
        if rest.endswith(("/accepted", "/rejected")) or rest.startswith("notify"):
            return
        req = json.loads(msg.payload or b"{}")
        token = req.get("clientToken")
        with self.lock:
            if rest == "$next/get":
                pending = self.status in ("QUEUED", "IN_PROGRESS")
                self.reply("$next/get/accepted", {"clientToken": token, **({"execution": self.execution()} if pending else {})})
            elif rest == "j1/get":
                self.reply("j1/get/accepted", {"clientToken": token, "execution": self.execution()})
            elif rest == "j1/update":
                self.updates.append(req)
                if req.get("expectedVersion") not in (None, self.version):
                    self.reply("j1/update/rejected", {"clientToken": token, "code": "VersionMismatch", "message": "",
                                                      "executionState": {"status": self.status,
                                                                         "versionNumber": self.version}})
                    return
                self.status, self.version = req["status"], self.version + 1
                self.reply("j1/update/accepted", {"clientToken": token, "executionState": {
                    "status": self.status, "versionNumber": self.version, "statusDetails": req.get("statusDetails")}})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_mqtt5_broker_gets_mqtt5(server, make_device, start_agent, tmp_path):
    assert MOSQUITTO is not None, "mosquitto is not installed (.ci/run installs it: apt-get install mosquitto)"
    conf_dir = tmp_path / "mosquitto"
    conf_dir.mkdir()
    for name in ("root-CA.crt", "server.crt", "server.key"):
        shutil.copyfile(server.data_dir / name, conf_dir / name)
    port = free_port()
    (conf_dir / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {conf_dir}/root-CA.crt\ncertfile {conf_dir}/server.crt\n"
        f"keyfile {conf_dir}/server.key\nrequire_certificate true\nallow_anonymous true\npersistence false\n"
        # As root, mosquitto would switch to its own user, which cannot read pytest's temp dirs.
        + ("user root\n" if os.getuid() == 0 else ""))
    log = open(conf_dir / "mosquitto.log", "wb")
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf_dir / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
    fake = None
    try:
        device = make_device("agent-mqtt5")
        wait_until(lambda: port_open(port), timeout=10, what="mosquitto")
        fake = FakeJobs(device, port, device.thing_name)

        class Broker:  # what AgentProcess needs of a server
            mqtt_port = port

        agent = start_agent(device, srv=Broker())
        wait_until(lambda: fake.status == "SUCCEEDED", timeout=30, what="SUCCEEDED from the agent")
        assert agent.status()["runtime"]["protocol"] == "MQTT 5"
        assert [u["status"] for u in fake.updates] == ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"], fake.updates
        assert all(u.get("clientToken") for u in fake.updates)
        assert fake.updates[1]["stepTimeoutInMinutes"] >= 1
    finally:
        if fake:
            fake.close()
        broker.terminate()
        broker.wait(10)
        log.close()
        print((conf_dir / "mosquitto.log").read_text(errors="replace")[-4000:])

