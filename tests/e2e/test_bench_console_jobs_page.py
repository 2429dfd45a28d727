"""The console Jobs-page benchmark's smoke size (bench/console_jobs_page.py --smoke): it runs,
both servers list every job it created, and its JSON is sane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2elib.util import REPO_ROOT


def test_the_smoke_run_writes_sane_figures(fleetjobs_bin, tmp_path):
    out = tmp_path / "console_jobs_page.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "console_jobs_page.py"), "--smoke", "--out", str(out)],
        env=dict(os.environ, FLEETJOBS_BIN=str(fleetjobs_bin)), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(Path(out).read_text())
    assert result["benchmark"] == "console_jobs_page"
    assert result["jobs"] == 20 and len(result["rounds"]) == 2
    for name in ("baseline", "candidate"):
        assert result["binaries"][name] == str(fleetjobs_bin)
        median = result["median_cpu_ms_per_render"][name]
        assert 0 <= median < 10_000, result
        assert all(r[name] >= 0 for r in result["rounds"])
    assert result["machine"]["cpus"] >= 1 and result["command"]
    ratio = result["candidate_over_baseline"]
    assert ratio is None or ratio > 0, result
