"""The fleet simulator for the e2e tests.

* ``sim_bin`` (session fixture): the binary ($FLEETJOBS_SIM_BIN, else
  ``cargo build -p fleetjobs-sim`` unless FLEETJOBS_SKIP_BUILD is set).
* ``sim_command``: its command line against a test server.
* ``run_sim``: run it against a test server and return its JSON summary.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .server import FleetjobsServer, locate_package_binary


def locate_sim_binary() -> Path:
    return locate_package_binary("fleetjobs-sim", "FLEETJOBS_SIM_BIN")


@pytest.fixture(scope="session")
def sim_bin() -> Path:
    try:
        return locate_sim_binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def sim_command(sim_bin: Path, server: FleetjobsServer, out_dir: Path, *args: str) -> list[str]:
    """The ``fleetjobs-sim`` command line against ``server`` with ``args``: plain progress on
    stderr, the JSON summary to ``out_dir/summary.json`` and the chart to ``out_dir/chart.svg``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(sim_bin),
        "--endpoint", server.endpoint_url,
        "--mqtt", f"127.0.0.1:{server.mqtt_port}",
        "--data-dir", str(server.data_dir),
        "--progress", "plain",
        "--summary", str(out_dir / "summary.json"),
        "--chart", str(out_dir / "chart.svg"),
        *args,
    ]


def run_sim(sim_bin: Path, server: FleetjobsServer, out_dir: Path, *args: str, timeout: float = 300) -> dict:
    """``fleetjobs-sim`` against ``server`` with ``args``; asserts it exited 0 and returns its
    JSON summary (the chart is written to ``out_dir/chart.svg``)."""
    cmd = sim_command(sim_bin, server, out_dir, *args)
    summary = out_dir / "summary.json"
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stderr[-8000:]}"
    return json.loads(summary.read_text())
