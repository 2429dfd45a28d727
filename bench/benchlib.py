"""What every benchmark script shares: where the repository, the results and the binaries are,
the machine's description written beside each figure, a process's CPU time and RSS from /proc,
and the few MQTT 3.1.1 packets the hand-made socket clients send."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The e2e harness (e2elib: start_server, locate_binary, free_port) serves the benchmarks too.
if str(ROOT / "tests" / "e2e") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))

CLK_TCK = os.sysconf("SC_CLK_TCK")


def target_dir() -> Path:
    """$CARGO_TARGET_DIR, else the one scripts/test and CI share."""
    return Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/fleetjobs/target")


def machine() -> dict:
    """The machine a figure was taken on, including how loaded it was at the start."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (less noisy than wall time on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# --- MQTT 3.1.1 packets for the socket-level clients -------------------------------------------


def mqtt_str(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def mqtt_packet(first: int, body: bytes) -> bytes:
    """Fixed header (type and flags, then the remaining length as a varint) + body."""
    out, n = bytearray([first]), len(body)
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + body


def connect_packet(client_id: str, keep_alive_secs: int) -> bytes:
    """CONNECT, clean session, no credentials (the client certificate is the identity)."""
    return mqtt_packet(0x10, mqtt_str("MQTT") + bytes([4, 0x02]) + keep_alive_secs.to_bytes(2, "big") + mqtt_str(client_id))


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    return mqtt_packet(0x82, packet_id.to_bytes(2, "big") + mqtt_str(topic_filter) + bytes([qos]))
