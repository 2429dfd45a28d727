#!/usr/bin/env python3
"""Benchmark 3, broker QoS 1 against Mosquitto, over real mutual-TLS sockets.

One `fleetjobs serve` (FLEETJOBS_BIN, default the release build) in a temp data dir and one
Debian `mosquitto` on a free loopback port with a generated config: a TLS listener with the
Fleetjobs instance's server certificate and key, its root CA as `cafile`, and
`require_certificate true`. Every client of both brokers presents the same device certificate,
made with `create-keys-and-certificate` (attached to a policy that allows `bench/*`).

Scenarios (paho-mqtt clients, QoS 1 both ways, 64-byte payloads carrying the send time):
- fan-in: 10 publishers → 1 subscriber on one topic, at stepped offered rates (total msgs/s)
  and closed loop (each publisher keeps up to 20 PUBLISHes unacknowledged, as fast as it can);
- fan-out: 1 publisher → 100 subscribers, at stepped offered rates (PUBLISHes/s).
Per run: deliveries/s at the subscribers, % of the expected deliveries received, p99 latency
(PUBLISH call → arrival), the broker's CPU (utime+stime from /proc/PID/stat) per 1,000
deliveries, and the load generator's own CPU (to tell when it, not the broker, was the limit).
Rounds alternate the order of the brokers; the figures are medians over the rounds and
Fleetjobs/Mosquitto ratios. Writes bench/results/broker_qos1.json (or broker_qos1_smoke.json).

    bench/broker_qos1.py            # full size (release build: cargo build --release -p fleetjobs)
    bench/broker_qos1.py --smoke    # seconds; the CI size (FLEETJOBS_BIN=debug build is fine)
    bench/broker_qos1.py --callgrind OUT --rounds 1   # profile: Fleetjobs under callgrind,
        # instructions collected during its fan-in runs only (rates --profile-rate, no Mosquitto)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2elib.server import FleetjobsServer, free_port, locate_package_binary, port_open, start_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAYLOAD = 64
TOPIC = "bench/qos1"
WINDOW = 20


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu() -> float:
    return time.process_time()


def machine() -> dict:
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "load_average_at_start": os.getloadavg()}


# --------------------------------------------------------------------------- clients (workers)


def make_client(broker: dict, client_id: str):
    import paho.mqtt.client as mqtt

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(broker["ca"])
    ctx.load_cert_chain(broker["cert"], broker["key"])
    ctx.check_hostname = True
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311, clean_session=True, reconnect_on_failure=False)
    client.tls_set_context(ctx)
    client.max_inflight_messages_set(WINDOW)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("localhost", broker["port"], keepalive=120)
    client.loop_start()
    if not connected.wait(30):
        raise RuntimeError(f"{client_id}: no CONNACK from {broker['name']}")
    return client


def subscriber_worker(broker: dict, prefix: str, count: int, ready, start, results) -> None:
    """`count` subscribers on TOPIC; records every arrival's latency until told to stop."""
    latencies: list[int] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        now = time.time_ns()
        with lock:
            latencies.append(now - int.from_bytes(msg.payload[:8], "big"))

    clients = []
    for i in range(count):
        client = make_client(broker, f"{prefix}-{i}")
        client.on_message = on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *a, ev=subscribed: ev.set()
        client.subscribe(TOPIC, 1)
        if not subscribed.wait(30):
            raise RuntimeError("no SUBACK")
        clients.append(client)
    ready.put(os.getpid())
    cpu0 = own_cpu()
    stop_at = start.get()  # the time by which every delivery must have arrived
    expected = start.get()
    while time.time() < stop_at:
        with lock:
            if len(latencies) >= expected:
                break
        time.sleep(0.02)
    cpu = own_cpu() - cpu0
    for client in clients:
        client.disconnect()
        client.loop_stop()
    results.put({"role": "sub", "received": len(latencies), "latencies_ns": latencies, "cpu_s": cpu})


def publisher_worker(broker: dict, prefix: str, count: int, rate: float | None, duration: float, ready, start,
                     results) -> None:
    """`count` publishers; each sends at `rate` msgs/s (paced) or closed loop (rate None) for
    `duration` seconds, then waits for its PUBACKs."""
    clients = [make_client(broker, f"{prefix}-{i}") for i in range(count)]
    acked = [0] * count
    for i, client in enumerate(clients):
        def on_publish(*a, i=i):
            acked[i] += 1
        client.on_publish = on_publish
    ready.put(os.getpid())
    t0 = start.get()
    cpu0 = own_cpu()
    while time.time() < t0:
        time.sleep(0.001)
    sent = [0] * count
    pad = b"x" * (PAYLOAD - 8)
    end = t0 + duration
    while True:
        now = time.time()
        if now >= end:
            break
        progressed = False
        for i, client in enumerate(clients):
            due = (now - t0) * rate + 1 if rate else sent[i] + 1
            if sent[i] < due and sent[i] - acked[i] < WINDOW:
                client.publish(TOPIC, time.time_ns().to_bytes(8, "big") + pad, qos=1)
                sent[i] += 1
                progressed = True
        if not progressed:
            time.sleep(0.0005 if rate else 0.0002)
    wall = time.time() - t0
    deadline = time.time() + 30
    while sum(acked) < sum(sent) and time.time() < deadline:
        time.sleep(0.01)
    cpu = own_cpu() - cpu0
    for client in clients:
        client.disconnect()
        client.loop_stop()
    results.put({"role": "pub", "sent": sum(sent), "acked": sum(acked), "wall_s": wall, "cpu_s": cpu})


# --------------------------------------------------------------------------- one run


def callgrind_collect(pid: int, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def run(broker: dict, scenario: str, publishers: int, subscribers: int, rate: float | None, duration: float,
        tag: str, toggle: bool = False) -> dict:
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), [], ctx.Queue()
    # Subscribers in processes of at most 25 clients; publishers in one process.
    procs = []
    sub_groups = [min(25, subscribers - i) for i in range(0, subscribers, 25)]
    for g, n in enumerate(sub_groups):
        q = ctx.Queue()
        start.append(q)
        procs.append(ctx.Process(target=subscriber_worker,
                                 args=(broker, f"{tag}-s{g}", n, ready, q, results)))
    pq = ctx.Queue()
    procs.append(ctx.Process(target=publisher_worker,
                             args=(broker, f"{tag}-p", publishers, rate / publishers if rate else None, duration,
                                   ready, pq, results)))
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    if toggle:
        callgrind_collect(broker["pid"], True)
    cpu0 = proc_cpu(broker["pid"])
    t0 = time.time() + 0.3
    pq.put(t0)
    pub = None
    outs = []
    while pub is None:
        out = results.get(timeout=duration + 120)
        if out["role"] == "pub":
            pub = out
        else:
            outs.append(out)
    # Every delivery has until 10 s after the last PUBACK (or the publisher's end) to arrive.
    expected_per_sub = pub["sent"]
    for n, q in zip(sub_groups, start):
        q.put(time.time() + 10)
        q.put(expected_per_sub * n)
    while len(outs) < len(sub_groups):
        outs.append(results.get(timeout=60))
    broker_cpu = proc_cpu(broker["pid"]) - cpu0
    if toggle:
        callgrind_collect(broker["pid"], False)
    for p in procs:
        p.join(30)
    received = sum(o["received"] for o in outs)
    latencies = sorted(l for o in outs for l in o["latencies_ns"])
    expected = pub["sent"] * subscribers
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6 if latencies else None
    return {
        "broker": broker["name"], "scenario": scenario, "offered_rate": rate or "closed_loop",
        "publishers": publishers, "subscribers": subscribers,
        "sent": pub["sent"], "acked": pub["acked"], "expected_deliveries": expected, "received": received,
        "delivered_pct": round(100 * received / expected, 2) if expected else 0.0,
        "deliveries_per_s": round(received / pub["wall_s"], 1),
        "publishes_per_s": round(pub["sent"] / pub["wall_s"], 1),
        "p50_ms": round(latencies[len(latencies) // 2] / 1e6, 2) if latencies else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "server_cpu_s": round(broker_cpu, 3),
        "server_cpu_ms_per_1k_deliveries": round(1000 * broker_cpu / received * 1000, 2) if received else None,
        "generator_cpu_s": round(pub["cpu_s"] + sum(o["cpu_s"] for o in outs), 3),
        "publisher_cpu_s": round(pub["cpu_s"], 3),
        # The busiest subscriber process: near wall_s + drain, it (not the broker) was the limit.
        "max_subscriber_process_cpu_s": round(max(o["cpu_s"] for o in outs), 3),
        "wall_s": round(pub["wall_s"], 2),
    }


# --------------------------------------------------------------------------- brokers


def start_mosquitto(base: Path, data: Path, cert: Path, key: Path, ca: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    # Mosquitto started as root drops to the `mosquitto` user: give it readable copies of the
    # (throwaway) instance's TLS files.
    files = Path(tempfile.mkdtemp(prefix="bench-qos1-mosquitto-"))
    files.chmod(0o755)
    for src, name in ((ca, "ca.crt"), (data / "server.crt", "server.crt"), (data / "server.key", "server.key")):
        shutil.copyfile(src, files / name)
        (files / name).chmod(0o644)
    conf = base / "mosquitto.conf"
    conf.write_text(
        "per_listener_settings false\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\n"
        f"listener {port} 127.0.0.1\n"
        f"cafile {files / 'ca.crt'}\n"
        f"certfile {files / 'server.crt'}\n"
        f"keyfile {files / 'server.key'}\n"
        "require_certificate true\n"
    )
    log = open(base / "mosquitto.log", "wb")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while not port_open(port):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"mosquitto did not start: {(base / 'mosquitto.log').read_text()}")
        time.sleep(0.05)
    return proc, port


def provision(server, base: Path, slow: bool = False) -> tuple[Path, Path]:
    # Under callgrind, the RSA key generation takes far longer than the CLI's 60 s default.
    patience = ("--cli-read-timeout", "0") if slow else ()
    cert = server.aws("create-keys-and-certificate", "--set-as-active", *patience)
    (base / "device.crt").write_text(cert["certificatePem"])
    (base / "device.key").write_text(cert["keyPair"]["PrivateKey"])
    prefix = ":".join(cert["certificateArn"].split(":")[:5])
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{prefix}:client/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{prefix}:topic/bench/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{prefix}:topicfilter/bench/*"},
    ]}
    server.aws("create-policy", "--policy-name", "bench-qos1", "--policy-document", json.dumps(doc))
    server.aws("attach-policy", "--policy-name", "bench-qos1", "--target", cert["certificateArn"])
    return base / "device.crt", base / "device.key"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> list[dict]:
    keys = sorted({(r["scenario"], str(r["offered_rate"])) for r in runs}, key=lambda k: (k[0], k[1]))
    rows = []
    for scenario, rate in keys:
        row = {"scenario": scenario, "offered_rate": rate}
        for name in ("fleetjobs", "mosquitto"):
            mine = [r for r in runs if r["broker"] == name and r["scenario"] == scenario
                    and str(r["offered_rate"]) == rate]
            row[name] = {k: median([r[k] for r in mine]) for k in (
                "deliveries_per_s", "delivered_pct", "p99_ms", "p50_ms", "server_cpu_ms_per_1k_deliveries",
                "generator_cpu_s", "server_cpu_s")}
            row[name]["rounds"] = len(mine)
        f, m = row["fleetjobs"], row["mosquitto"]

        def ratio(k):
            return round(f[k] / m[k], 3) if f[k] is not None and m[k] else None

        row["ratios_fleetjobs_over_mosquitto"] = {
            "deliveries_per_s": ratio("deliveries_per_s"),
            "delivered_pct": ratio("delivered_pct"),
            "p99_ms": ratio("p99_ms"),
            "server_cpu_ms_per_1k_deliveries": ratio("server_cpu_ms_per_1k_deliveries"),
        }
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long sizes, for CI")
    parser.add_argument("--rounds", type=int, help="rounds per broker (alternating order)")
    parser.add_argument("--out", type=Path, help="result JSON path")
    parser.add_argument("--callgrind", type=Path, help="run Fleetjobs alone under callgrind, writing this file")
    parser.add_argument("--profile-rate", type=float, default=300, help="fan-in msgs/s offered under --callgrind")
    args = parser.parse_args()
    if args.smoke:
        fan_in_rates, fan_out_rates, duration, rounds, fan_out_subs = [200], [20], 1.0, args.rounds or 1, 10
    else:
        fan_in_rates, fan_out_rates, duration, rounds, fan_out_subs = [1000, 2500, 5000], [20, 50, 100], 5.0, \
            args.rounds or 3, 100
    binary = locate_package_binary("fleetjobs", "FLEETJOBS_BIN") if os.environ.get("FLEETJOBS_BIN") else \
        Path(os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/fleetjobs/target"))) / "release/fleetjobs"
    base = Path(tempfile.mkdtemp(prefix="bench-qos1-"))
    if args.callgrind:
        server = FleetjobsServer(binary, data_dir=base / "data", log_path=base / "fleetjobs.log",
                                 workdir=base / "work", name="fleetjobs")
        server.extra_args = ["--max-connections", "2000"]
        plain = server.command
        server.command = lambda: ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                  f"--callgrind-out-file={args.callgrind.resolve()}", *plain()]
        server.start(timeout=300)
    else:
        server = start_server(binary, base, "fleetjobs", extra_args=("--max-connections", "2000"))
    mosquitto = None
    try:
        cert, key = provision(server, base, slow=bool(args.callgrind))
        brokers = [{"name": "fleetjobs", "port": server.mqtt_port, "pid": server.proc.pid}]
        if args.callgrind:
            fan_in_rates, fan_out_rates = [args.profile_rate], []
        else:
            mosquitto, mq_port = start_mosquitto(base, server.data_dir, cert, key, server.root_ca)
            brokers.append({"name": "mosquitto", "port": mq_port, "pid": mosquitto.pid})
        for b in brokers:
            b.update(ca=str(server.root_ca), cert=str(cert), key=str(key))
        plan = [("fan_in", 10, 1, r) for r in fan_in_rates] + [("fan_in", 10, 1, None)] * (not args.callgrind) + \
               [("fan_out", 1, fan_out_subs, r) for r in fan_out_rates]
        runs = []
        for rnd in range(rounds):
            for scenario, pubs, subs, rate in plan:
                order = brokers if rnd % 2 == 0 else brokers[::-1]
                for b in order:
                    if args.callgrind:
                        return profile(b, scenario, pubs, subs, rate, duration, server)
                    result = run(b, scenario, pubs, subs, rate, duration, f"{b['name'][:2]}{rnd}{scenario}{rate}")
                    result["round"] = rnd
                    runs.append(result)
                    print(json.dumps({k: result[k] for k in ("broker", "scenario", "offered_rate", "deliveries_per_s",
                                                             "delivered_pct", "p99_ms", "server_cpu_s",
                                                             "generator_cpu_s")}), flush=True)
        out = {
            "benchmark": "broker_qos1",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "command": " ".join([sys.executable, *sys.argv]),
            "fleetjobs_binary": str(binary),
            "fleetjobs_command": server.command(),
            "mosquitto_command": mosquitto.args,
            "mosquitto_version": subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
            .splitlines()[0],
            "mosquitto_config": (base / "mosquitto.conf").read_text(),
            "payload_bytes": PAYLOAD, "publisher_window": WINDOW, "duration_s": duration, "rounds": rounds,
            "note": "server and load generator share the machine's cores (other work may run too)",
            "summary": summarize(runs),
            "runs": runs,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = args.out or RESULTS / ("broker_qos1_smoke.json" if args.smoke else "broker_qos1.json")
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")
    finally:
        if mosquitto is not None:
            mosquitto.terminate()
            mosquitto.wait(10)
        server.stop(timeout=120)


def profile(broker: dict, scenario: str, pubs: int, subs: int, rate: float, duration: float, server) -> None:
    """One run, callgrind collecting from just before the publishers start until every delivery
    arrived (the clients' connects come before, and are not counted)."""
    result = run(broker, scenario, pubs, subs, rate, duration, "cg", toggle=True)
    print(json.dumps(result | {"latencies_note": "under callgrind: not a latency figure"}))


if __name__ == "__main__":
    main()
