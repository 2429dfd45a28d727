#!/usr/bin/env python3
"""Server CPU per mutual-TLS connect on the MQTT listener, over real sockets: full handshakes
against resumed ones (TLS 1.3 session tickets), in alternating rounds of one run.

Starts `fleetjobs serve` (FLEETJOBS_BIN, default the release build; `--smoke`: the debug
build) in a temporary data dir with RUST_LOG=warn, makes one device certificate
(create-keys-and-certificate: RSA-2048 as AWS, or `--key-type ec-p256`, passed to the server as
`--device-key-type`) and a policy allowing its connect, then, one
connection after another from Python's ssl (OpenSSL, as the AWS IoT Python SDKs): TLS
handshake, MQTT CONNECT → CONNACK (so the registry check runs, and the TLS 1.3 ticket
arrives), close. `full`: a new session each time; `resumed`: each connect presents the newest
session ticket it got. The server's utime + stime (/proc/PID/stat) is read around each round.

    python3 bench/tls_connect_cost.py [--connects 400] [--rounds 4] [--key-type ec-p256]
    python3 bench/tls_connect_cost.py --smoke     # CI: debug build, 20 connects, 1 round

Prints one JSON line and writes bench/results/tls_connect_cost.json (or --out).

`--fleet N [N ...]`: connects/s with the generator on the same cores instead. Per size, a new
server and `fleetjobs-sim` (FLEETJOBS_SIM_BIN) with N devices (`--sim-key-type`: the shared
certificate's key, `server` or `ec-p256`; `--resumption on|off`), which connects them all as
fast as it can, then drops every connection at once and reconnects (a reconnect storm, where
devices present session tickets). Per phase: connects/s and the server's CPU per connect.
Writes bench/results/tls_connect_fleet.json (or --out).

    python3 bench/tls_connect_cost.py --fleet 1000 5000 10000 --sim-key-type ec-p256
    python3 bench/tls_connect_cost.py --fleet 40 --smoke   # CI: debug build

`--callgrind DIR`: instructions per connect instead of CPU time, which no other load on the
machine changes. The server runs under `valgrind --tool=callgrind --instr-atstart=no` (its
profile files in DIR); after the warm-up, each round switches instrumentation on
(`callgrind_control -i on PID`), makes its connects, waits for the server to finish the last
one, switches it off and dumps (`-d`): each dump holds one round, all of the server's threads.
Default 50 connects and 1 round of each mode; `--key-type ec-p256` spares the RSA key
generation under valgrind. Writes bench/results/tls_connect_callgrind.json (or --out);
`callgrind_annotate --inclusive=yes DIR/callgrind.out.N` shows where a round's instructions
went.

    FLEETJOBS_BIN=target/debug/fleetjobs python3 bench/tls_connect_cost.py --callgrind /tmp/cg --key-type ec-p256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import CLK_TCK, RESULTS, connect_packet, machine, target_dir
from e2elib.server import FleetjobsServer, start_server

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:ClientId}"}],
}



def user_system_seconds(pid: int) -> tuple[float, float]:
    """utime and stime of process `pid`: how much of a connect is the server's own code and how
    much the kernel's (TCP, the syscalls) on its behalf."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def mqtt_connect(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None):
    """(suite, resumed?, newest session) of one connect through CONNACK."""
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(connect_packet("tls-cost", 60))
            connack = b""
            while len(connack) < 4:
                chunk = tls.recv(4 - len(connack))
                if not chunk:
                    raise RuntimeError("connection closed before CONNACK")
                connack += chunk
            if connack[0] != 0x20 or connack[3] != 0:
                raise RuntimeError(f"CONNECT refused: {connack.hex()}")
            return tls.cipher()[0], tls.session_reused, tls.session


def round_of(server, ctx: ssl.SSLContext, n: int, resume: bool) -> dict:
    pid = server.proc.pid
    session = None
    if resume:  # a ticket to start from
        _, _, session = mqtt_connect(server.mqtt_port, ctx, None)
    reused = 0
    suite = None
    before, started = user_system_seconds(pid), time.monotonic()
    for _ in range(n):
        suite, was_reused, newest = mqtt_connect(server.mqtt_port, ctx, session if resume else None)
        reused += was_reused
        if resume:
            session = newest
    wall = time.monotonic() - started
    # The server closes the last connection after the client: let it finish before reading.
    time.sleep(0.3)
    after = user_system_seconds(pid)
    user, system = after[0] - before[0], after[1] - before[1]
    cpu = user + system
    return {
        "mode": "resumed" if resume else "full",
        "connects": n,
        "resumed": reused,
        "suite": suite,
        "server_cpu_ms_per_connect": round(cpu * 1000 / n, 3),
        "server_user_ms_per_connect": round(user * 1000 / n, 3),
        "server_system_ms_per_connect": round(system * 1000 / n, 3),
        "connects_per_second_sequential": round(n / wall, 1),
    }


def callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, stdout=subprocess.DEVNULL)


def callgrind_round(server, ctx: ssl.SSLContext, n: int, resume: bool, out_dir: Path) -> dict:
    """One round under callgrind: the server's instructions (every thread) from just before the
    first connect until the server has finished the last one, from the round's own dump."""
    pid = server.proc.pid
    session = None
    if resume:  # a ticket to start from, outside the count
        _, _, session = mqtt_connect(server.mqtt_port, ctx, None)
    before = set(out_dir.iterdir())
    callgrind_control(pid, "--zero")
    callgrind_control(pid, "-i", "on")
    reused = 0
    suite = None
    for _ in range(n):
        suite, was_reused, newest = mqtt_connect(server.mqtt_port, ctx, session if resume else None)
        reused += was_reused
        if resume:
            session = newest
    # The server closes the last connection after the client; under valgrind it takes longer.
    time.sleep(2)
    callgrind_control(pid, "-i", "off")
    callgrind_control(pid, "--dump=" + ("resumed" if resume else "full"))
    deadline = time.monotonic() + 60
    while not (dumps := sorted(set(out_dir.iterdir()) - before)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no callgrind dump appeared in {out_dir}")
        time.sleep(0.2)
    [dump] = dumps
    instructions = callgrind_total(dump)
    return {
        "mode": "resumed" if resume else "full",
        "connects": n,
        "resumed": reused,
        "suite": suite,
        "instructions": instructions,
        "instructions_per_connect": round(instructions / n),
        "dump": str(dump),
    }


def callgrind_total(dump: Path) -> int:
    """The Ir total of a callgrind dump: its `totals:` line (`summary:` counts since the last
    zeroing of the whole run, 0 here)."""
    deadline = time.monotonic() + 60
    while True:  # the file appears before callgrind has written its last line
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dump} has no summary line")
        time.sleep(0.2)


def fleet_size(binary: Path, sim_bin: Path, n: int, args) -> dict:
    """One size of the --fleet mode: a new server, the simulator's N devices, a storm."""
    base = Path(tempfile.mkdtemp(prefix=f"tls-fleet-{n}-"))
    server = start_server(binary, base, f"tls-fleet-{n}", extra_env={"RUST_LOG": "warn"},
                          extra_args=("--max-connections", str(n + 1000)))
    summary_file = base / "summary.json"
    sim_cmd = [
        str(sim_bin), "--endpoint", f"http://127.0.0.1:{server.http_port}",
        "--mqtt", f"127.0.0.1:{server.mqtt_port}", "--data-dir", str(server.data_dir),
        "--things", str(n), "--server-pid", str(server.proc.pid), "--storm-after-ms", "200",
        "--timeout-secs", str(args.timeout_secs), "--progress", "plain", "--summary", str(summary_file),
    ]
    # Only when asked: a simulator without these knobs (an older build) still runs the
    # connect phase.
    if args.sim_key_type != "server":
        sim_cmd += ["--key-type", args.sim_key_type]
    if args.resumption is not None:
        sim_cmd += ["--resumption", args.resumption]
    try:
        print(f"== {n} devices", file=sys.stderr, flush=True)
        rc = subprocess.run(sim_cmd).returncode
        summary = json.loads(summary_file.read_text())
        server_command = " ".join(server.command())
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    reconnect = summary.get("reconnect") or {}
    return {
        "devices": n,
        "exit_code": rc,
        "key_type": summary.get("key_type", "server"),
        "connect_seconds": summary["connect"]["seconds"],
        "connects_per_second": summary["connect"]["connects_per_second"],
        "server_cpu_ms_per_connect": summary["server_cpu"].get("connect_ms_per_connect"),
        "connect_errors": summary["connect"]["errors"],
        "reconnect_seconds": reconnect.get("seconds"),
        "reconnects_per_second": reconnect.get("reconnects_per_second"),
        "tickets_presented": reconnect.get("tickets_presented"),
        "server_cpu_ms_per_reconnect": reconnect.get("server_cpu_ms_per_reconnect"),
        "all_reconnected": reconnect.get("all_reconnected"),
        "errors": summary["errors"],
        "server_command": server_command,
        "sim_command": " ".join(sim_cmd),
    }


def fleet_main(args, profile: str, binary: Path) -> None:
    sim_bin = Path(os.environ.get("FLEETJOBS_SIM_BIN") or target_dir() / profile / "fleetjobs-sim")
    if not sim_bin.is_file():
        raise SystemExit(f"{sim_bin} is missing: cargo build {'' if args.smoke else '--release '}-p fleetjobs-sim")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    started_on = machine()
    runs = [fleet_size(binary, sim_bin, n, args) for n in args.fleet]
    result = {
        "benchmark": "tls_connect_fleet",
        "started": started,
        "profile": profile,
        "binary": str(binary),
        "sim_binary": str(sim_bin),
        "machine": started_on,
        "runs": runs,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    out = results_path(args.out, "tls_connect_fleet_smoke.json" if args.smoke else "tls_connect_fleet.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": str(out), "runs": [
        {k: r[k] for k in ("devices", "key_type", "connects_per_second", "server_cpu_ms_per_connect",
                           "reconnects_per_second", "tickets_presented", "server_cpu_ms_per_reconnect")}
        for r in runs]}))


def callgrind_report(args, started: str, started_on: dict, binary: Path, rounds: list[dict],
                     server_command: str) -> None:
    def per(mode: str) -> list[int]:
        return [r["instructions_per_connect"] for r in rounds if r["mode"] == mode]

    result = {
        "benchmark": "tls_connect_callgrind",
        "started": started,
        "binary": str(binary),
        "machine": started_on,
        "client": f"Python {platform.python_version()} ssl, {ssl.OPENSSL_VERSION}, sequential",
        "device_key": f"{args.key_type} (create-keys-and-certificate)",
        "note": "valgrind's virtual CPU: no SHA-NI, no ADX; instructions of every server thread",
        "rounds": rounds,
        "full_instructions_per_connect": per("full"),
        "resumed_instructions_per_connect": per("resumed"),
        "server_command": server_command,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    out = results_path(args.out, "tls_connect_callgrind.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": str(out), "full_instructions_per_connect": per("full"),
                      "resumed_instructions_per_connect": per("resumed"),
                      "dumps": [r["dump"] for r in rounds]}))


def results_path(out: str | None, default: str) -> Path:
    path = Path(out) if out else RESULTS / default
    if not path.is_absolute():
        path = RESULTS / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connects", type=int, default=None, help="connects per round (400; --callgrind 50)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of each mode, alternating (4; --callgrind 1)")
    p.add_argument("--callgrind", type=Path, default=None, metavar="DIR",
                   help="instead: instructions per connect, the server under callgrind (profiles in DIR)")
    p.add_argument("--key-type", default="rsa-2048", choices=["rsa-2048", "ec-p256"],
                   help="the device key the server makes (its --device-key-type)")
    p.add_argument("--fleet", type=int, nargs="+", default=None, metavar="N",
                   help="instead: connects/s of N simulated devices (fleetjobs-sim), one run per size")
    p.add_argument("--sim-key-type", default="server", choices=["server", "ec-p256"],
                   help="--fleet: the simulator's --key-type")
    p.add_argument("--resumption", default=None, choices=["on", "off"], help="--fleet: the simulator's --resumption")
    p.add_argument("--timeout-secs", type=int, default=300, help="--fleet: the simulator's --timeout-secs")
    p.add_argument("--smoke", action="store_true", help="CI size: debug build, 20 connects, 1 round")
    p.add_argument("--out", default=None, help="results file (name under bench/results, or a path)")
    args = p.parse_args()
    if args.smoke:
        args.connects, args.rounds = 20, 1
    args.connects = args.connects or (50 if args.callgrind else 400)
    args.rounds = args.rounds or (1 if args.callgrind else 4)
    profile = "debug" if args.smoke else "release"
    binary = Path(os.environ.get("FLEETJOBS_BIN") or target_dir() / profile / "fleetjobs")
    if not binary.is_file():
        raise SystemExit(f"{binary} is missing: cargo build {'' if args.smoke else '--release '}-p fleetjobs")
    if args.fleet:
        return fleet_main(args, profile, binary)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    started_on = machine()
    base = Path(tempfile.mkdtemp(prefix="tls-cost-"))
    if args.callgrind:
        args.callgrind.mkdir(parents=True, exist_ok=True)
        if any(args.callgrind.iterdir()):  # a new dump must not overwrite an earlier run's
            raise SystemExit(f"{args.callgrind} is not empty")
        server = FleetjobsServer(binary, data_dir=base / "data", log_path=base / "fleetjobs.log",
                                 workdir=base / "work", name="tls-cost")
        server.extra_args = ["--device-key-type", args.key_type]
        server.extra_env = {"RUST_LOG": "warn"}
        plain = server.command
        out_file = args.callgrind.resolve() / "callgrind.out"
        server.command = lambda: ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                  f"--callgrind-out-file={out_file}", *plain()]
        server.start(timeout=300)
    else:
        server = start_server(binary, base, "tls-cost", extra_env={"RUST_LOG": "warn"},
                              extra_args=("--device-key-type", args.key_type))
    # Under callgrind, an RSA key generation takes longer than the CLI's 60 s default.
    patience = ("--cli-read-timeout", "0") if args.callgrind else ()
    try:
        cert = server.aws("create-keys-and-certificate", "--set-as-active", *patience)
        (base / "dev.crt").write_text(cert["certificatePem"])
        (base / "dev.key").write_text(cert["keyPair"]["PrivateKey"])
        server.aws("create-policy", "--policy-name", "tls-cost", "--policy-document", json.dumps(POLICY))
        server.aws("attach-policy", "--policy-name", "tls-cost", "--target", cert["certificateArn"])
        ctx = ssl.create_default_context(cafile=str(server.root_ca))
        ctx.load_cert_chain(str(base / "dev.crt"), str(base / "dev.key"))
        for _ in range(20):  # warm-up: allocator, lazily built state
            mqtt_connect(server.mqtt_port, ctx, None)
        rounds = []
        for _ in range(args.rounds):
            for resume in (False, True):
                if args.callgrind:
                    rounds.append(callgrind_round(server, ctx, args.connects, resume, args.callgrind))
                else:
                    rounds.append(round_of(server, ctx, args.connects, resume))
        server_command = " ".join(server.command())
    finally:
        # Under callgrind, the exit writes the last profile.
        server.stop(timeout=120 if args.callgrind else 10)
    if args.callgrind:
        return callgrind_report(args, started, started_on, binary, rounds, server_command)

    def per(mode: str, key: str = "server_cpu_ms_per_connect") -> list[float]:
        return [r[key] for r in rounds if r["mode"] == mode]

    result = {
        "benchmark": "tls_connect_cost",
        "started": started,
        "profile": profile,
        "binary": str(binary),
        "machine": started_on,
        "client": f"Python {platform.python_version()} ssl, {ssl.OPENSSL_VERSION}, sequential",
        "device_key": f"{args.key_type} (create-keys-and-certificate)",
        "rounds": rounds,
        "full_ms_per_connect": per("full"),
        "resumed_ms_per_connect": per("resumed"),
        "server_command": server_command,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    out = results_path(args.out, "tls_connect_cost_smoke.json" if args.smoke else "tls_connect_cost.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": str(out), "full_ms_per_connect": per("full"),
                      "resumed_ms_per_connect": per("resumed"),
                      "full_system_ms_per_connect": per("full", "server_system_ms_per_connect"),
                      "resumed_system_ms_per_connect": per("resumed", "server_system_ms_per_connect")}))


if __name__ == "__main__":
    main()
