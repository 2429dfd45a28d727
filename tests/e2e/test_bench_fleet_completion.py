"""Benchmark 1 (bench/fleet_completion.py) at its CI smoke size: the script itself, end to end —
a fresh server, the simulator's devices over mutual TLS, create-job, every execution SUCCEEDED —
and the figures it writes are the ones the runs measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2elib.server import locate_binary
from e2elib.sim import locate_sim_binary

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet_completion.py"


def test_fleet_completion_smoke_writes_sane_figures(tmp_path):
    server_bin, sim_bin = locate_binary(), locate_sim_binary()
    env = {"FLEETJOBS_BIN": str(server_bin), "FLEETJOBS_SIM_BIN": str(sim_bin)}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "40", "60", "--debug", "--work-ms", "20",
         "--timeout-secs", "120", "--results-dir", str(tmp_path)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads((tmp_path / "fleet_completion.json").read_text())
    assert out["benchmark"] == "fleet_completion" and out["profile"] == "debug"
    assert [r["devices"] for r in out["runs"]] == [40, 60]
    for run in out["runs"]:
        n = run["devices"]
        assert run["all_succeeded"] and run["exit_code"] == 0, run
        assert run["connect_errors"] == 0 and run["errors"] == {}, run
        assert run["server_job_process_details"]["numberOfSucceededThings"] == n
        assert 0 < run["completion_seconds"] < 120
        assert run["server_cpu_ms_per_execution"] is not None and run["server_cpu_ms_per_execution"] >= 0
        assert run["connects_per_second"] > 0
        assert str(server_bin) in run["server_command"] and str(sim_bin) in run["sim_command"]
        chart = (tmp_path / f"fleet_completion_{n}.svg").read_text()
        assert chart.startswith("<svg") and "SUCCEEDED" in chart
