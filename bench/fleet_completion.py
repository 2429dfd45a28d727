#!/usr/bin/env python3
"""Benchmark 1, fleet completion: N real mutual-TLS MQTT devices (fleetjobs-sim, one process)
against a fresh `fleetjobs serve`; create-job on their thing group → every execution
SUCCEEDED, as the devices see their final update accepted (so durable).

    bench/fleet_completion.py                      # sizes 1000 10000 15000 (release build)
    bench/fleet_completion.py --sizes 50 --debug --results-dir /tmp/x   # the CI smoke size

Per size: a new temp data dir and server (e2elib's start_server, --max-connections above N), then
`fleetjobs-sim --create-job --server-pid PID`. Writes bench/results/fleet_completion.json
(every size's figures, the machine, the exact commands) and fleet_completion_N.svg (executions
by status over time) and fleet_completion_N.json (the simulator's full summary).
Build first: cargo build --release -p fleetjobs -p fleetjobs-sim.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import RESULTS, machine, target_dir
from e2elib.server import start_server


def run_size(server_bin: Path, sim_bin: Path, n: int, work_ms: int, timeout: int, results: Path) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"fleet-completion-{n}-"))
    # The e2e harness's server; RUST_LOG=warn as before (info would log every connection).
    server = start_server(server_bin, base, "fleetjobs", extra_args=("--max-connections", str(n + 1000)),
                          extra_env={"RUST_LOG": "warn"})
    try:
        summary_file = results / f"fleet_completion_{n}.json"
        sim_cmd = [
            str(sim_bin), "--endpoint", server.endpoint_url, "--mqtt", f"127.0.0.1:{server.mqtt_port}",
            "--data-dir", str(server.data_dir), "--things", str(n), "--create-job", "--job-id", f"bench-{n}",
            "--work-ms", str(work_ms), "--server-pid", str(server.proc.pid), "--timeout-secs", str(timeout),
            "--progress", "plain", "--summary", str(summary_file), "--chart", str(results / f"fleet_completion_{n}.svg"),
        ]
        print(f"== {n} devices", file=sys.stderr, flush=True)
        rc = subprocess.run(sim_cmd).returncode
        summary = json.loads(summary_file.read_text())
        rss_kib = None
        for line in open(f"/proc/{server.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                rss_kib = int(line.split()[1])
        job = summary["job"] or {}
        return {
            "devices": n,
            "exit_code": rc,
            "completion_seconds": job.get("completion_seconds"),
            "all_succeeded": job.get("succeeded") == n,
            "create_job_call_ms": job.get("create_call_ms"),
            "executions_per_second": job.get("executions_per_second"),
            "server_cpu_ms_per_execution": summary["server_cpu"].get("job_ms_per_execution"),
            "server_cpu_ms_per_connect": summary["server_cpu"].get("connect_ms_per_connect"),
            "connect_seconds": summary["connect"]["seconds"],
            "connects_per_second": summary["connect"]["connects_per_second"],
            "connect_errors": summary["connect"]["errors"],
            "provision_seconds": summary["provision_seconds"],
            "server_peak_rss_mib": round(rss_kib / 1024, 1) if rss_kib else None,
            "server_job_process_details": job.get("server_job_process_details"),
            "errors": summary["errors"],
            # Offers of an execution a device had already finished (see the simulator's summary).
            "stale_offers": summary.get("stale_offers"),
            "server_command": " ".join(server.command()),
            "sim_command": " ".join(sim_cmd),
        }
    finally:
        server.stop(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 15000])
    p.add_argument("--work-ms", type=int, default=0, help="each device's work time per job")
    p.add_argument("--timeout-secs", type=int, default=600)
    p.add_argument("--debug", action="store_true", help="use the debug binaries (smoke runs)")
    p.add_argument("--out", default="fleet_completion.json", help="results file name under the results dir")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="where results go (default bench/results)")
    args = p.parse_args()
    profile = "debug" if args.debug else "release"
    server_bin = Path(os.environ.get("FLEETJOBS_BIN") or target_dir() / profile / "fleetjobs")
    sim_bin = Path(os.environ.get("FLEETJOBS_SIM_BIN") or target_dir() / profile / "fleetjobs-sim")
    for b in (server_bin, sim_bin):
        if not b.is_file():
            raise SystemExit(f"{b} is missing: cargo build --{profile} -p fleetjobs -p fleetjobs-sim")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    sizes = []
    for n in args.sizes:
        if n + 500 > limit:
            print(f"skipping {n}: the open-files limit is {limit}", file=sys.stderr)
        else:
            sizes.append(n)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs = [run_size(server_bin, sim_bin, n, args.work_ms, args.timeout_secs, args.results_dir) for n in sizes]
    out = {
        "benchmark": "fleet_completion",
        "started": started,
        "profile": profile,
        "machine": machine(),
        "work_ms": args.work_ms,
        "runs": runs,
    }
    (args.results_dir / args.out).write_text(json.dumps(out, indent=2) + "\n")
    for r in runs:
        print(f"{r['devices']:>6} devices: create → all SUCCEEDED {r['completion_seconds']} s, "
              f"server CPU {r['server_cpu_ms_per_execution']} ms/execution, "
              f"{r['server_cpu_ms_per_connect']} ms/connect, {r['connects_per_second']} connects/s")
    if any(r["exit_code"] != 0 or not r["all_succeeded"] for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
