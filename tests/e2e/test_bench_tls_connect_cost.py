"""bench/tls_connect_cost.py's --fleet mode at its smoke size: the simulator connects every
device with an EC P-256 certificate it had issued from its own CSR, then a reconnect storm
resumes them with session tickets; the figures it writes are the ones the run measured.
Speeds are not asserted (benchmarks measure them; tests do not time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from e2elib.server import locate_binary
from e2elib.sim import locate_sim_binary
from e2elib.util import REPO_ROOT


def run_fleet(tmp_path, *args: str) -> dict:
    """The --fleet smoke run with `args`; its results file."""
    env = dict(os.environ, FLEETJOBS_BIN=str(locate_binary()), FLEETJOBS_SIM_BIN=str(locate_sim_binary()))
    out_file = tmp_path / "fleet.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "tls_connect_cost.py"), "--smoke", "--timeout-secs", "120",
         "--out", str(out_file), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    return json.loads(out_file.read_text())


def test_tls_connect_fleet_smoke_connects_and_resumes_every_device(tmp_path):
    result = run_fleet(tmp_path, "--fleet", "30", "--sim-key-type", "ec-p256", "--resumption", "on")
    assert result["benchmark"] == "tls_connect_fleet" and result["profile"] == "debug"
    [run] = result["runs"]
    assert run["devices"] == 30 and run["exit_code"] == 0, run
    assert run["key_type"] == "ec-p256", run
    assert run["connect_errors"] == 0 and run["errors"] == {}, run
    assert run["connects_per_second"] > 0 and run["server_cpu_ms_per_connect"] >= 0, run
    # The storm: every device reconnected, and each reconnect presented a ticket (the first
    # connects left one each).
    assert run["all_reconnected"] is True, run
    assert run["tickets_presented"] == 30, run
    assert run["reconnects_per_second"] > 0 and run["server_cpu_ms_per_reconnect"] >= 0, run


def test_tls_connect_fleet_without_resumption_presents_no_ticket(tmp_path):
    [run] = run_fleet(tmp_path, "--fleet", "20", "--resumption", "off")["runs"]
    assert run["key_type"] == "server" and run["all_reconnected"] is True, run
    assert run["tickets_presented"] == 0, run
