"""The smoke sizes of the hot-path benchmarks (bench/idle_connections.py,
bench/tls_connect_cost.py): each runs against a real server and writes its JSON, whose figures
must be sane. Speeds are not asserted (benchmarks measure them; tests do not time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2elib.server import locate_binary
from e2elib.util import REPO_ROOT


def run_bench(script: str, *args: str) -> dict:
    env = dict(os.environ, FLEETJOBS_BIN=str(locate_binary()))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_idle_connections_smoke_measures_every_step(tmp_path):
    out = run_bench("idle_connections.py", "--smoke", "--out", str(tmp_path / "idle.json"))
    result = json.loads(Path(out["results"]).read_text())
    assert result["benchmark"] == "idle_connections"
    assert result["machine"]["cpus"] >= 1
    assert "--max-connections" in result["server_command"]
    steps = result["steps"]
    assert [s["connections"] for s in steps] == [300, 1000]
    assert result["baseline_rss_bytes"] > 0, result
    for s in steps:
        # Every connection is open and counted by the server while it is measured.
        assert s["mqtt_connections_seen_by_server"] == s["connections"], s
        # Less than a MiB per connection (a leak or a unit error would not be).
        assert s["rss_bytes_per_connection"] < 1 << 20, s
        assert s["server_cpu_ms_per_connect"] >= 0, s
        assert s["connects_per_second"] > 0, s
    # A connection costs something: 1,000 of them (~9 MB) stand well clear of the ~1 MB by
    # which the server's RSS moves on its own; the 300 of the first step may not.
    last = steps[-1]
    assert last["server_rss_bytes"] > result["baseline_rss_bytes"], last
    assert last["rss_bytes_per_connection"] > 0, last


def test_tls_connect_cost_smoke_measures_full_and_resumed_connects(tmp_path):
    out = run_bench("tls_connect_cost.py", "--smoke", "--out", str(tmp_path / "tls.json"))
    result = json.loads(Path(out["results"]).read_text())
    assert result["benchmark"] == "tls_connect_cost"
    modes = {r["mode"]: r for r in result["rounds"]}
    assert set(modes) == {"full", "resumed"}
    assert modes["full"]["resumed"] == 0, modes["full"]
    # Every connect of the resumed round presented a ticket and the server took it.
    assert modes["resumed"]["resumed"] == modes["resumed"]["connects"] == 20, modes["resumed"]
    for r in result["rounds"]:
        assert r["suite"].startswith("TLS_"), r
        assert 0 <= r["server_cpu_ms_per_connect"] < 1000, r
        assert r["connects_per_second_sequential"] > 0, r
