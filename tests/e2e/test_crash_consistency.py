"""(g) Crash consistency: hundreds of devices work through several jobs while more jobs are
created; the server is killed (-9) at a random point and restarted; then every acknowledged
create and update is there (0 lost), no execution exists twice (0 duplicated), the counts
add up, and the devices finish every job.

The random point comes from E2E_SEED (printed; set it to replay a run)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from e2elib.identity import allow, policy
from e2elib.mqtt import HOST, tls_context

DEVICES = 200
JOBS = 6  # each targets one half of the fleet: AWS takes at most 100 targets per create-job
HALF = DEVICES // 2
RANK = {"QUEUED": 0, "IN_PROGRESS": 1, "SUCCEEDED": 2}


class Ledger:
    """What the server acknowledged: (thing, job) -> highest status, and created job ids."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status: dict[tuple[str, str], str] = {}
        self.created: set[str] = set()
        self.acks = 0

    def ack(self, thing: str, job: str, status: str) -> None:
        with self.lock:
            self.acks += 1
            old = self.status.get((thing, job))
            if old is None or RANK[status] > RANK[old]:
                self.status[(thing, job)] = status

    def snapshot(self) -> dict[tuple[str, str], str]:
        with self.lock:
            return dict(self.status)


class Worker:
    """A device that runs every job it is given: start-next, then SUCCEEDED, then the next.
    paho reconnects it after the server comes back; every (re)connect asks start-next."""

    def __init__(self, thing: str, ctx, port: int, ledger: Ledger):
        self.thing, self.ledger = thing, ledger
        self.prefix = f"$aws/things/{thing}/jobs"
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=thing,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.tls_set_context(ctx)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message
        self.client.connect_async(HOST, port, keepalive=30)
        self.client.loop_start()

    def request(self, suffix: str, body: dict) -> None:
        body["clientToken"] = uuid.uuid4().hex[:16]
        self.client.publish(f"{self.prefix}/{suffix}", json.dumps(body), qos=1)

    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.value == 0:
            client.subscribe([(f"{self.prefix}/notify-next", 1), (f"{self.prefix}/start-next/+", 1),
                              (f"{self.prefix}/+/update/+", 1)])
            self.request("start-next", {})

    def on_message(self, client, userdata, msg):
        body = json.loads(msg.payload)
        rest = msg.topic[len(self.prefix) + 1:]
        if rest == "start-next/accepted":
            execution = body.get("execution")
            if execution:
                self.ledger.ack(self.thing, execution["jobId"], execution["status"])
                self.request(f"{execution['jobId']}/update", {"status": "SUCCEEDED"})
        elif rest.endswith("/update/accepted"):
            self.ledger.ack(self.thing, rest.split("/")[0], "SUCCEEDED")
            self.request("start-next", {})
        elif rest.endswith("/rejected"):
            self.request("start-next", {})  # start over from what the server holds
        elif rest == "notify-next" and body.get("execution"):
            self.request("start-next", {})

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def retrying(call, what: str, timeout: float = 60.0):
    """Call the API through a restart: connection errors are retried, answers are not. A
    request in flight at the kill gets its connection closed with no answer: its outcome is
    unknown, so it is sent again (a create that did commit then answers 409)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: the server did not come back")
            time.sleep(0.2)


def test_kill_9_under_load_loses_and_duplicates_nothing(own_server, tmp_path):
    srv = own_server
    seed = int(os.environ.get("E2E_SEED") or random.randrange(1 << 30))
    print(f"E2E_SEED={seed}")
    rng = random.Random(seed)
    iot = srv.boto3_client()

    # One certificate for the whole fleet (AWS allows a principal on many things); the
    # policy confines each connection to the jobs topics of the thing named by its client id.
    cert = iot.create_keys_and_certificate(setAsActive=True)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "cert.pem").write_text(cert["certificatePem"])
    (certs / "key.pem").write_text(cert["keyPair"]["PrivateKey"])
    prefix = ":".join(cert["certificateArn"].split(":")[:5])
    topics = "$aws/things/${iot:ClientId}/jobs/*"
    doc = policy(allow("iot:Connect", f"{prefix}:client/*"),
                 allow(["iot:Publish", "iot:Receive"], f"{prefix}:topic/{topics}"),
                 allow("iot:Subscribe", f"{prefix}:topicfilter/{topics}"))
    iot.create_policy(policyName="fleet", policyDocument=json.dumps(doc))
    iot.attach_policy(policyName="fleet", target=cert["certificateArn"])
    things = [f"crash-{i:03d}" for i in range(DEVICES)]
    arns = []
    for name in things:
        arns.append(iot.create_thing(thingName=name)["thingArn"])
        iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])

    ledger = Ledger()
    ctx = tls_context(cert=certs / "cert.pem", key=certs / "key.pem", ca=srv.root_ca)
    workers = [Worker(name, ctx, srv.mqtt_port, ledger) for name in things]
    job_ids = [f"crash-job-{k}" for k in range(JOBS)]

    creator_errors: list[BaseException] = []

    def create_jobs():
        try:
            for k, job_id in enumerate(job_ids):
                targets = arns[(k % 2) * HALF:(k % 2 + 1) * HALF]
                document = json.dumps({"operation": "crash-test", "k": k})
                try:
                    retrying(lambda: iot.create_job(jobId=job_id, targets=targets, document=document), job_id)
                    with ledger.lock:
                        ledger.created.add(job_id)
                except ClientError as e:
                    # A create in flight at the kill may have committed: then it exists.
                    if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                        raise
                time.sleep(rng.uniform(0, 0.5))
        except BaseException as e:  # reported by the test, not lost in the thread
            creator_errors.append(e)

    creator = threading.Thread(target=create_jobs, daemon=True)
    creator.start()
    try:
        kill_after = rng.randrange(100, JOBS * HALF)  # acknowledged device updates before the crash
        deadline = time.monotonic() + 120
        while ledger.acks < kill_after:
            assert time.monotonic() < deadline, f"only {ledger.acks} updates acknowledged in 120 s"
            time.sleep(0.05)
        srv.kill9()
        acked = ledger.snapshot()
        with ledger.lock:
            created = set(ledger.created)
        print(f"killed after {len(acked)} acknowledged executions, {len(created)} created jobs")
        srv.start()
        iot = srv.boto3_client()

        # 0 lost: every acknowledged create and update is there (or has moved on since).
        listed = {j["jobId"] for j in iot.list_jobs(maxResults=250)["jobs"]}
        assert created <= listed, f"acknowledged jobs lost: {created - listed}"
        for (thing, job), status in acked.items():
            execution = iot.describe_job_execution(jobId=job, thingName=thing)["execution"]
            assert RANK[execution["status"]] >= RANK[status], f"{job} on {thing}: acknowledged {status}, " \
                                                              f"found {execution['status']}"

        creator.join(120)
        assert not creator.is_alive(), "the job creator is stuck"
        assert not creator_errors, f"creating jobs failed: {creator_errors!r}"

        # The devices finish every job.
        def all_done() -> bool:
            return all(iot.describe_job(jobId=j)["job"]["status"] == "COMPLETED" for j in job_ids)

        deadline = time.monotonic() + 180
        while not all_done():
            assert time.monotonic() < deadline, "the devices did not finish every job after the restart"
            time.sleep(0.5)
    finally:
        for w in workers:
            w.close()

    # 0 duplicated, counts consistent.
    for k, job_id in enumerate(job_ids):
        summaries = iot.list_job_executions_for_job(jobId=job_id, maxResults=250)["executionSummaries"]
        assert len(summaries) == HALF, f"{job_id}: {len(summaries)} executions for {HALF} targets"
        assert {s["thingArn"] for s in summaries} == set(arns[(k % 2) * HALF:(k % 2 + 1) * HALF])
        assert all(s["jobExecutionSummary"]["executionNumber"] == 1 for s in summaries)
        assert all(s["jobExecutionSummary"]["status"] == "SUCCEEDED" for s in summaries)
        details = iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]
        assert details["numberOfSucceededThings"] == HALF
        assert sum(v for name, v in details.items() if name.startswith("numberOf")) == HALF, details
    for thing in things:
        summaries = iot.list_job_executions_for_thing(thingName=thing, maxResults=250)["executionSummaries"]
        assert sorted(s["jobId"] for s in summaries) == sorted(j for k, j in enumerate(job_ids)
                                                               if thing in things[(k % 2) * HALF:(k % 2 + 1) * HALF])
