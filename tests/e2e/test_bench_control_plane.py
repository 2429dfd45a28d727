"""Benchmark 4 (bench/control_plane.py) at its smoke size, as CI runs it: Fleetjobs under a
small device load and ministack in a loopback-only network namespace; the JSON it writes
must hold every figure, sane, for both peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2elib.sim import sim_bin

__all__ = ["sim_bin"]  # fixture used below

ROOT = Path(__file__).resolve().parents[2]


def sane(p: dict) -> None:
    assert p["calls"] > 0, p
    assert 0 < p["p50_ms"] <= p["p90_ms"] <= p["p99_ms"] <= p["max_ms"], p


def test_the_smoke_run_measures_both_peers_under_load_and_idle(fleetjobs_bin, sim_bin):
    out = "control_plane_ci.json"
    env = dict(os.environ, FLEETJOBS_BIN=str(fleetjobs_bin), FLEETJOBS_SIM_BIN=str(sim_bin))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "control_plane.py"), "--smoke", "--out", out],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads((ROOT / "bench" / "results" / out).read_text())
    assert result["network_namespace"] is True
    runs = result["runs"]
    # Rounds alternate: Fleetjobs, ministack, Fleetjobs, ministack.
    assert [r["peer"] for r in runs] == ["fleetjobs", "ministack"] * 2
    for r in runs:
        assert r["devices"] == 50
        sane(r["idle"]["describe_job"])
        sane(r["idle"]["create_job"])
        listed = r["list_job_executions_for_job"]
        assert listed["executions"] == listed["expected"] == 50, listed
        assert 0 < r["client_sign_ms"] < 100
    for r in runs[::2]:
        load = r["load"]
        for phase in ("describe_job_quiet", "describe_job_busy", "create_job"):
            sane(load[phase])
        # The devices really worked while it measured.
        assert load["load_jobs_created"] >= 1
        assert load["device_executions_per_second"] and load["device_executions_per_second"] > 0, load
        assert r["sim_command"] and r["server_command"]
        # Where the server's CPU went, by thread: the HTTP runtime and the store's writer run
        # at the control plane's nice value (the bench runs as root, so the server may lower
        # it), device work at the process's.
        threads = load["server_cpu_by_thread"]
        assert threads["http-worker"]["nice"] == -10 and threads["http-worker"]["threads"] >= 2, threads
        assert threads["fleetjobs-store"]["nice"] == -10, threads
        assert threads["device-worker"]["nice"] == 0 and threads["device-worker"]["cores"] > 0, threads
        assert load["server_cpu_cores"] > 0 and load["sim_cpu_cores"] > 0, load
        # The server's own view of the same calls, from its latency histograms.
        for op in ("DescribeJob", "CreateJob"):
            assert load["server_side"][op]["calls"] >= 1, load["server_side"]
    summary = result["summary"]["50"]
    for key in ("ratio_idle_describe", "ratio_idle_create", "ratio_list"):
        assert summary[key] and summary[key] > 0, summary
    assert result["machine"]["cpus"] >= 1 and result["command"]
