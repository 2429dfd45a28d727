#!/usr/bin/env python3
"""Benchmark 2, idle connections: server memory per idle mutual-TLS MQTT connection, and
handshakes/s, over real sockets.

Starts `fleetjobs serve` (release build; FLEETJOBS_BIN overrides) in a temporary data dir with
--max-connections above the largest size, makes one device certificate
(create-keys-and-certificate: RSA-2048, as AWS) and one policy on `${iot:ClientId}`, then opens
mutual-TLS connections from one Python asyncio process (OpenSSL, as the AWS IoT Python SDKs),
each acting like an idle device: CONNECT (keep-alive 1,200 s, AWS's maximum, so no PINGREQ is
due during the run), SUBSCRIBE `$aws/things/{clientId}/jobs/notify-next` at QoS 1, then nothing.
The connections are opened in steps up to each size and kept open; after each step the
server's VmRSS (/proc/PID/status) and its CPU time (utime + stime, /proc/PID/stat) are read.

Per size: RSS per connection against the baseline (the server after a warm-up of 20
connections, all closed), the marginal cost of the step's connections, server CPU ms per
connect (TLS handshake + CONNECT + SUBSCRIBE) and connects/s (bounded by this one Python
client on the same cores, not only by the server).

    python3 bench/idle_connections.py                 # sizes 1000 2500 5000 10000
    python3 bench/idle_connections.py --smoke         # CI: debug build, sizes 300 1000

Writes bench/results/idle_connections.json (or --out) with the machine and the exact commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import ssl
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import RESULTS, connect_packet, cpu_seconds, machine, rss_bytes, subscribe_packet, target_dir
from e2elib.server import start_server
KEEP_ALIVE_SECS = 1200
IN_FLIGHT = 64
WARM_UP = 20

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:ClientId}"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:*:*:topicfilter/$aws/things/${iot:ClientId}/jobs/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:ClientId}/jobs/*"},
    ],
}






# --- a minimal MQTT 3.1.1 device ---------------------------------------------------------------






async def open_device(port: int, ctx: ssl.SSLContext, client_id: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    writer.write(connect_packet(client_id, KEEP_ALIVE_SECS))
    connack = await reader.readexactly(4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"{client_id}: CONNECT refused: {connack.hex()}")
    writer.write(subscribe_packet(1, f"$aws/things/{client_id}/jobs/notify-next", 1))
    suback = await reader.readexactly(5)
    if suback[0] != 0x90 or suback[4] != 1:
        raise RuntimeError(f"{client_id}: SUBSCRIBE not granted at QoS 1: {suback.hex()}")
    return reader, writer


async def open_many(port: int, ctx: ssl.SSLContext, ids: range, prefix: str) -> list:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int):
        async with gate:
            return await open_device(port, ctx, f"{prefix}-{i}")

    return await asyncio.gather(*(one(i) for i in ids))


async def close_all(devices: list) -> None:
    for _, writer in devices:
        writer.close()
    for _, writer in devices:
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def measure(server, sizes: list[int], ctx: ssl.SSLContext) -> tuple[dict, list[dict]]:
    pid = server.proc.pid
    warm = await open_many(server.mqtt_port, ctx, range(WARM_UP), "warm")
    await close_all(warm)
    # The server has closed them once its count is back to zero (a condition, not a guess).
    deadline = time.monotonic() + 30
    while mqtt_connections(server) > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    baseline = {"rss_bytes": rss_bytes(pid), "server_cpu_s": cpu_seconds(pid)}
    devices: list = []
    steps = []
    prev_rss, prev_n = baseline["rss_bytes"], 0
    for size in sizes:
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        devices += await open_many(server.mqtt_port, ctx, range(prev_n, size), "idle")
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        await asyncio.sleep(0.5)  # let the server's tasks settle after the last SUBACK
        rss = rss_bytes(pid)
        new = size - prev_n
        steps.append({
            "connections": size,
            "server_rss_bytes": rss,
            "rss_bytes_per_connection": round((rss - baseline["rss_bytes"]) / size),
            "marginal_rss_bytes_per_connection": round((rss - prev_rss) / new),
            "step_connects": new,
            "server_cpu_ms_per_connect": round(cpu * 1000 / new, 3),
            "connects_per_second": round(new / wall, 1),
            "mqtt_connections_seen_by_server": mqtt_connections(server),
        })
        print(f"{size:>6} idle connections: {steps[-1]['rss_bytes_per_connection']} B/connection "
              f"(step: {steps[-1]['marginal_rss_bytes_per_connection']} B), "
              f"{steps[-1]['server_cpu_ms_per_connect']} ms CPU/connect, {steps[-1]['connects_per_second']} connects/s",
              file=sys.stderr, flush=True)
        prev_rss, prev_n = rss, size
    await close_all(devices)
    return baseline, steps


def mqtt_connections(server) -> int:
    """Live MQTT connections, as the server counts them (`GET /metrics`)."""
    with urllib.request.urlopen(f"{server.endpoint_url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("fleetjobs_mqtt_connections "):
                return int(float(line.split()[1]))
    raise RuntimeError("no fleetjobs_mqtt_connections in /metrics")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500, 5000, 10000])
    p.add_argument("--smoke", action="store_true", help="CI size: debug build, sizes 300 1000")
    p.add_argument("--out", default=None, help="results file name under bench/results")
    args = p.parse_args()
    # Smoke sizes: the RSS of a debug server moves by up to ~1 MB on its own (allocator pages
    # freed late by the setup, SQLite's cache), so only hundreds of connections (~9 KB each)
    # stand clear of it.
    sizes = [300, 1000] if args.smoke else sorted(args.sizes)
    profile = "debug" if args.smoke else "release"
    binary = Path(os.environ.get("FLEETJOBS_BIN") or target_dir() / profile / "fleetjobs")
    if not binary.is_file():
        raise SystemExit(f"{binary} is missing: cargo build {'' if args.smoke else '--release '}-p fleetjobs")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if sizes[-1] + 200 > limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(sizes[-1] + 500, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2)
    out_name = args.out or ("idle_connections_smoke.json" if args.smoke else "idle_connections.json")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    base = Path(tempfile.mkdtemp(prefix="idle-connections-"))
    env = {"RUST_LOG": "warn"}
    if args.smoke:
        # mimalloc, the server's allocator, keeps freed pages for 10 ms, or for ever with a
        # negative delay: then the memory the setup and the warm-up freed absorbs the first
        # ~2 MB of connections (seen: 0 B per connection at 300). Purging at once makes RSS
        # follow live memory, which is what the smoke checks the measurement against.
        env["MIMALLOC_PURGE_DELAY"] = "0"
    server = start_server(binary, base, "idle-connections",
                          extra_args=("--max-connections", str(sizes[-1] + 1000)), extra_env=env)
    try:
        cert = server.aws("create-keys-and-certificate", "--set-as-active")
        (base / "dev.crt").write_text(cert["certificatePem"])
        (base / "dev.key").write_text(cert["keyPair"]["PrivateKey"])
        server.aws("create-policy", "--policy-name", "idle", "--policy-document", json.dumps(POLICY))
        server.aws("attach-policy", "--policy-name", "idle", "--target", cert["certificateArn"])
        ctx = ssl.create_default_context(cafile=str(server.root_ca))
        ctx.load_cert_chain(str(base / "dev.crt"), str(base / "dev.key"))
        baseline, steps = asyncio.run(measure(server, sizes, ctx))
        result = {
            "benchmark": "idle_connections",
            "started": started,
            "profile": profile,
            "binary": str(binary),
            "machine": machine(),
            "client": f"Python {platform.python_version()} asyncio + {ssl.OPENSSL_VERSION}, {IN_FLIGHT} connects in flight",
            "device_key": "RSA-2048 (create-keys-and-certificate)",
            "baseline_rss_bytes": baseline["rss_bytes"],
            "steps": steps,
            "server_command": " ".join(server.command()),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
    finally:
        server.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / out_name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": str(RESULTS / out_name), "steps": steps}))


if __name__ == "__main__":
    main()
