#!/usr/bin/env python3
"""Benchmark 3, broker QoS 1 against Mosquitto, over real mutual-TLS sockets.

One `fleetjobs serve` (FLEETJOBS_BIN, default the release build) in a temp data dir and one
Debian `mosquitto` on a free loopback port with a generated config: a TLS listener with the
Fleetjobs instance's server certificate and key, its root CA as `cafile`, and
`require_certificate true`. Every client of both brokers presents the same device certificate,
made with `create-keys-and-certificate` (attached to a policy that allows `bench/*`).

The load is `fleetjobs-mqtt-load` (a Rust binary of the fleetjobs-sim package, beside
FLEETJOBS_SIM_BIN or the fleetjobs binary; FLEETJOBS_MQTT_LOAD_BIN overrides), one process per
run, QoS 1 both ways, 64-byte payloads carrying the send time. Scenarios:
- fan-in: 10 publishers → 1 subscriber on one topic, at stepped offered rates (total msgs/s)
  and closed loop (each publisher keeps up to 20 PUBLISHes unacknowledged, as fast as it can);
- fan-out: 1 publisher → 100 subscribers, at stepped offered rates (PUBLISHes/s) and closed
  loop (the publisher as fast as its window of 20 allows).
Per run: deliveries/s at the subscribers, % of the expected deliveries received, latency
(PUBLISH written → arrival) as p50/p90/p99/p99.9 over the deliveries that arrived and as p99
over every expected delivery (a lost one counting as slower than any: none when over 1 % were
lost — the figure comparable between a broker that drops under overload and one that holds its
publishers back), a latency histogram and p99 per second of the run, the broker's CPU
(utime+stime from /proc/PID/stat, connects excluded) per 1,000 deliveries, and the load
generator's own CPU (to tell when it, not the broker, was the limit).
Rounds alternate the order of the brokers; the figures are medians over the rounds and
Fleetjobs/Mosquitto ratios. With FLEETJOBS_BEFORE_BIN (e.g. main's release build), a second
Fleetjobs, `fleetjobs_before`, runs in the same rounds, for before/after figures from one run.
Writes bench/results/broker_qos1.json (or broker_qos1_smoke.json).

    bench/broker_qos1.py            # full size (cargo build --release -p fleetjobs -p fleetjobs-sim)
    bench/broker_qos1.py --smoke    # seconds; the CI size (FLEETJOBS_BIN=debug build is fine)
    FLEETJOBS_BEFORE_BIN=/tmp/before/fleetjobs bench/broker_qos1.py --rounds 2   # + main's build
    bench/broker_qos1.py --callgrind OUT --rounds 1   # profile: Fleetjobs under callgrind,
        # instructions collected during its fan-in runs only (rates --profile-rate, no Mosquitto)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import RESULTS, machine
from e2elib.server import FleetjobsServer, free_port, locate_package_binary, port_open, start_server

PAYLOAD = 64
TOPIC = "bench/qos1"
WINDOW = 20



# --------------------------------------------------------------------------- one run


def load_binary(fleetjobs: Path) -> Path:
    """`fleetjobs-mqtt-load` (package fleetjobs-sim): FLEETJOBS_MQTT_LOAD_BIN, else beside
    FLEETJOBS_SIM_BIN, else beside the fleetjobs binary (the same cargo target dir)."""
    if os.environ.get("FLEETJOBS_MQTT_LOAD_BIN"):
        return Path(os.environ["FLEETJOBS_MQTT_LOAD_BIN"])
    beside = Path(os.environ["FLEETJOBS_SIM_BIN"]).parent if os.environ.get("FLEETJOBS_SIM_BIN") else fleetjobs.parent
    path = beside / "fleetjobs-mqtt-load"
    if not path.is_file():
        raise RuntimeError(f"{path} not found: cargo build -p fleetjobs-sim (--release for full size)")
    return path


def callgrind_collect(pid: int, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def load_command(broker: dict, publishers: int, subscribers: int, rate: float | None, duration: float,
                 tag: str) -> list[str]:
    return [str(broker["load_bin"]), "--mqtt", f"localhost:{broker['port']}", "--ca-file", broker["ca"],
            "--cert-file", broker["cert"], "--key-file", broker["key"], "--topic", TOPIC,
            "--client-prefix", tag, "--publishers", str(publishers), "--subscribers", str(subscribers),
            *(("--rate", str(rate)) if rate else ()), "--window", str(WINDOW), "--duration", str(duration),
            "--payload", str(PAYLOAD), "--server-pid", str(broker["pid"]), "--wait-for-start"]


def run(broker: dict, scenario: str, publishers: int, subscribers: int, rate: float | None, duration: float,
        tag: str, toggle: bool = False) -> dict:
    """One `fleetjobs-mqtt-load` run: it connects every client, says `ready`, and on our go
    publishes for `duration`, waits for the PUBACKs and up to 10 s more for the deliveries, and
    reports (the broker's CPU from /proc over that span, not the connects)."""
    cmd = load_command(broker, publishers, subscribers, rate, duration, tag)
    # The machine's 1-minute load average before the run: other work shares the cores.
    load_average = round(os.getloadavg()[0], 2)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        if line.strip() != "ready":
            proc.wait(30)
            raise RuntimeError(f"{cmd} failed: {line}{proc.stderr.read()}")
        if toggle:
            callgrind_collect(broker["pid"], True)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=duration + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if toggle:
        callgrind_collect(broker["pid"], False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}: {err[-4000:]}")
    r = json.loads(out)
    delivered = r["delivered"]
    return {
        "broker": broker["name"], "scenario": scenario, "offered_rate": rate or "closed_loop",
        "publishers": publishers, "subscribers": subscribers,
        "sent": r["sent"], "acked": r["acked"], "expected_deliveries": r["expected_deliveries"],
        "received": delivered, "delivered_pct": r["delivered_pct"],
        "deliveries_per_s": r["deliveries_per_s"], "publishes_per_s": r["publishes_per_s"],
        "p50_ms": r["p50_ms"], "p90_ms": r["p90_ms"], "p99_ms": r["p99_ms"], "p999_ms": r["p999_ms"],
        "max_ms": r["max_ms"], "p99_of_expected_ms": r["p99_of_expected_ms"],
        "latency_histogram_ms": r["latency_histogram_ms"], "p99_ms_by_second": r["p99_ms_by_second"],
        "server_cpu_s": r["server_cpu_s"],
        "server_cpu_ms_per_1k_deliveries": round(1000 * r["server_cpu_s"] / delivered * 1000, 2)
        if delivered and r["server_cpu_s"] is not None else None,
        # Near (wall_s + drain_s) × cores, the generator, not the broker, was the limit.
        "generator_cpu_s": r["generator_cpu_s"],
        "wall_s": r["wall_s"], "drain_s": r["drain_s"],
        "load_average": load_average,
        "load_command": cmd,
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


def median_of_expected(values):
    """The median of p99-over-expected figures, where `None` means "over 1 % lost"
    (unbounded): it sorts last, and a median that falls on it is `None` too."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (v is None, v or 0))
    middle = ordered[(len(ordered) - 1) // 2:len(ordered) // 2 + 1]
    return None if None in middle else statistics.mean(middle)


FIGURES = ("deliveries_per_s", "delivered_pct", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
           "server_cpu_ms_per_1k_deliveries", "generator_cpu_s", "server_cpu_s")
RATIOS = ("deliveries_per_s", "delivered_pct", "p99_ms", "p99_of_expected_ms", "server_cpu_ms_per_1k_deliveries")


def summarize(runs: list[dict]) -> list[dict]:
    keys = sorted({(r["scenario"], str(r["offered_rate"])) for r in runs}, key=lambda k: (k[0], k[1]))
    names = sorted({r["broker"] for r in runs})
    rows = []
    for scenario, rate in keys:
        row = {"scenario": scenario, "offered_rate": rate}
        for name in names:
            mine = [r for r in runs if r["broker"] == name and r["scenario"] == scenario
                    and str(r["offered_rate"]) == rate]
            row[name] = {k: median([r.get(k) for r in mine]) for k in FIGURES}
            row[name]["p99_of_expected_ms"] = median_of_expected([r.get("p99_of_expected_ms") for r in mine])
            row[name]["rounds"] = len(mine)

        def ratios(a, b):
            f, m = row[a], row[b]
            return {k: round(f[k] / m[k], 3) if f[k] is not None and m[k] else None for k in RATIOS}

        if "mosquitto" in names:
            row["ratios_fleetjobs_over_mosquitto"] = ratios("fleetjobs", "mosquitto")
            if "fleetjobs_before" in names:
                row["ratios_fleetjobs_before_over_mosquitto"] = ratios("fleetjobs_before", "mosquitto")
        if "fleetjobs_before" in names:
            row["ratios_fleetjobs_over_fleetjobs_before"] = ratios("fleetjobs", "fleetjobs_before")
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long sizes, for CI")
    parser.add_argument("--rounds", type=int, help="rounds per broker (alternating order)")
    parser.add_argument("--out", type=Path, help="result JSON path")
    parser.add_argument("--callgrind", type=Path, help="run Fleetjobs alone under callgrind, writing this file")
    parser.add_argument("--profile-rate", type=float, default=300, help="fan-in msgs/s offered under --callgrind")
    parser.add_argument("--fan-in-rates", type=int, nargs="*", help="fan-in offered msgs/s steps (full size)")
    parser.add_argument("--fan-out-rates", type=int, nargs="*", help="fan-out PUBLISHes/s steps (full size)")
    parser.add_argument("--closed-loop", choices=("both", "fan_in", "fan_out", "none"), default="both",
                        help="which scenarios also run closed loop")
    args = parser.parse_args()
    if args.smoke:
        fan_in_rates, fan_out_rates, duration, rounds, fan_out_subs = [200], [20], 1.0, args.rounds or 1, 10
    else:
        fan_in_rates, fan_out_rates, duration, rounds, fan_out_subs = [2500, 5000, 10000, 20000], \
            [50, 100, 200, 1000], 5.0, args.rounds or 2, 100
        fan_in_rates = fan_in_rates if args.fan_in_rates is None else args.fan_in_rates
        fan_out_rates = fan_out_rates if args.fan_out_rates is None else args.fan_out_rates
    binary = locate_package_binary("fleetjobs", "FLEETJOBS_BIN") if os.environ.get("FLEETJOBS_BIN") else \
        Path(os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/fleetjobs/target"))) / "release/fleetjobs"
    load_bin = load_binary(binary)
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
    mosquitto = before = None
    try:
        cert, key = provision(server, base, slow=bool(args.callgrind))
        files = {"ca": str(server.root_ca), "cert": str(cert), "key": str(key), "load_bin": load_bin}
        brokers = [{"name": "fleetjobs", "port": server.mqtt_port, "pid": server.proc.pid, **files}]
        if args.callgrind:
            fan_in_rates, fan_out_rates = [args.profile_rate], []
        else:
            mosquitto, mq_port = start_mosquitto(base, server.data_dir, cert, key, server.root_ca)
            brokers.append({"name": "mosquitto", "port": mq_port, "pid": mosquitto.pid, **files})
            if os.environ.get("FLEETJOBS_BEFORE_BIN"):
                before_base = base / "before"
                before_base.mkdir()
                before = start_server(Path(os.environ["FLEETJOBS_BEFORE_BIN"]), before_base, "fleetjobs-before",
                                      extra_args=("--max-connections", "2000"))
                b_cert, b_key = provision(before, before_base)
                brokers.append({"name": "fleetjobs_before", "port": before.mqtt_port, "pid": before.proc.pid,
                                "ca": str(before.root_ca), "cert": str(b_cert), "key": str(b_key),
                                "load_bin": load_bin})
        closed_in = not args.callgrind and args.closed_loop in ("both", "fan_in")
        closed_out = not args.callgrind and args.closed_loop in ("both", "fan_out")
        plan = [("fan_in", 10, 1, r) for r in fan_in_rates] + [("fan_in", 10, 1, None)] * closed_in + \
               [("fan_out", 1, fan_out_subs, r) for r in fan_out_rates] + \
               [("fan_out", 1, fan_out_subs, None)] * closed_out
        runs = []
        for rnd in range(rounds):
            for scenario, pubs, subs, rate in plan:
                # Each broker takes each place in turn: with three, a rotation, not just a reversal.
                order = brokers[rnd % len(brokers):] + brokers[:rnd % len(brokers)]
                for b in order:
                    if args.callgrind:
                        return profile(b, scenario, pubs, subs, rate, duration, server)
                    result = run(b, scenario, pubs, subs, rate, duration, f"{b['name'][:2]}{rnd}{scenario}{rate}")
                    result["round"] = rnd
                    runs.append(result)
                    print(json.dumps({k: result[k] for k in ("broker", "scenario", "offered_rate", "deliveries_per_s",
                                                             "delivered_pct", "p50_ms", "p99_ms",
                                                             "p99_of_expected_ms", "server_cpu_s",
                                                             "generator_cpu_s")}), flush=True)
        out = {
            "benchmark": "broker_qos1",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "command": " ".join([sys.executable, *sys.argv]),
            "fleetjobs_binary": str(binary),
            "fleetjobs_before_binary": os.environ.get("FLEETJOBS_BEFORE_BIN"),
            "load_average_at_end": os.getloadavg(),
            "load_generator": str(load_bin),
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
        if before is not None:
            before.stop(timeout=120)
        server.stop(timeout=120)


def profile(broker: dict, scenario: str, pubs: int, subs: int, rate: float, duration: float, server) -> None:
    """One run, callgrind collecting from just before the publishers start until every delivery
    arrived (the clients' connects come before, and are not counted)."""
    result = run(broker, scenario, pubs, subs, rate, duration, "cg", toggle=True)
    print(json.dumps(result | {"latencies_note": "under callgrind: not a latency figure"}))


if __name__ == "__main__":
    main()
