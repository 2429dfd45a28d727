"""The smoke size of bench/broker_qos1.py (Fleetjobs vs Mosquitto, QoS 1 over mutual TLS):
both brokers delivered in every scenario, and the ratios are computed from the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2elib.server import locate_binary
from e2elib.sim import locate_sim_binary

ROOT = Path(__file__).resolve().parent.parent.parent


def test_broker_qos1_smoke(tmp_path):
    out = tmp_path / "broker_qos1_smoke.json"
    # The load generator, fleetjobs-mqtt-load, is the sim package's second binary, beside it.
    env = dict(os.environ, FLEETJOBS_BIN=str(locate_binary()), FLEETJOBS_SIM_BIN=str(locate_sim_binary()))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "broker_qos1.py"), "--smoke", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["machine"]["cpus"] >= 1 and "mosquitto" in result["mosquitto_version"]
    scenarios = {(row["scenario"], row["offered_rate"]) for row in result["summary"]}
    assert {s for s, _ in scenarios} == {"fan_in", "fan_out"}
    assert ("fan_in", "closed_loop") in scenarios and ("fan_out", "closed_loop") in scenarios
    for row in result["summary"]:
        for broker in ("fleetjobs", "mosquitto"):
            figures = row[broker]
            assert figures["rounds"] >= 1, row
            assert figures["deliveries_per_s"] > 0, row
            assert 0 < figures["delivered_pct"] <= 100, row
            assert figures["p99_ms"] is not None and figures["p99_ms"] > 0, row
            assert figures["server_cpu_s"] is not None and figures["server_cpu_s"] >= 0, row
        # QoS 1 to connected subscribers: Fleetjobs holds publishers back rather than drop.
        assert row["fleetjobs"]["delivered_pct"] == 100, row
        ratios = row["ratios_fleetjobs_over_mosquitto"]
        assert ratios["deliveries_per_s"] > 0 and ratios["p99_ms"] > 0, row
    assert result["load_generator"].endswith("fleetjobs-mqtt-load")
    for run in result["runs"]:
        assert run["acked"] == run["sent"] > 0, run
        assert run["received"] <= run["expected_deliveries"] == run["sent"] * run["subscribers"], run
        assert run["generator_cpu_s"] is not None and run["generator_cpu_s"] >= 0, run
        assert run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"], run
        # Every delivery is in one bucket of the histogram; p99 over the expected deliveries is
        # the p99 over those received when none was lost, and none when over 1 % were.
        assert sum(n for _, n in run["latency_histogram_ms"]) == run["received"], run
        if run["received"] == run["expected_deliveries"]:
            assert run["p99_of_expected_ms"] == run["p99_ms"], run
        elif run["received"] < 0.99 * run["expected_deliveries"]:
            assert run["p99_of_expected_ms"] is None, run
        assert run["p99_ms_by_second"] and run["load_average"] >= 0, run
