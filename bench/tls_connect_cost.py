#!/usr/bin/env python3
"""Server CPU per mutual-TLS handshake on the MQTT listener, over real sockets.

Starts `fleetjobs serve` (FLEETJOBS_BIN, default the debug build) in a temporary data dir,
makes one device certificate (create-keys-and-certificate), then opens N TLS connections one
after another with Python's ssl (OpenSSL, as the AWS IoT Python SDKs), each completing the
handshake and closing, and reads the server's utime+stime from /proc before and after.
Prints the negotiated suite and CPU ms per handshake as JSON.

    python3 bench/tls_connect_cost.py [N]
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from e2elib.server import locate_binary, start_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    base = Path(tempfile.mkdtemp(prefix="tls-cost-"))
    server = start_server(locate_binary(), base, "tls-cost")
    try:
        cert = server.aws("create-keys-and-certificate", "--set-as-active")
        (base / "dev.crt").write_text(cert["certificatePem"])
        (base / "dev.key").write_text(cert["keyPair"]["PrivateKey"])
        ctx = ssl.create_default_context(cafile=str(server.root_ca))
        ctx.load_cert_chain(str(base / "dev.crt"), str(base / "dev.key"))
        suite = None

        def handshake() -> str:
            with socket.create_connection(("127.0.0.1", server.mqtt_port)) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.cipher()[0]

        for _ in range(20):  # warm-up: allocator, session cache
            suite = handshake()
        pid = server.proc.pid
        before, started = cpu_seconds(pid), time.monotonic()
        for _ in range(n):
            handshake()
        # Let the server finish closing the last connections before reading its CPU time.
        time.sleep(0.5)
        cpu = cpu_seconds(pid) - before
        wall = time.monotonic() - started - 0.5
        print(json.dumps({"handshakes": n, "suite": suite, "server_cpu_ms_per_handshake": round(cpu * 1000 / n, 3),
                          "handshakes_per_s_sequential": round(n / wall, 1), "binary": str(locate_binary())}))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
