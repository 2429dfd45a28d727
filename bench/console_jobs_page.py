#!/usr/bin/env python3
"""Server CPU per render of the console's Jobs page (the work its live rows repeat at every
durable change), for two builds side by side: a baseline and a candidate.

Starts one `fleetjobs serve` per binary in a temporary data dir, creates the same N jobs in
each (boto3, one thing as every job's target), signs a console session in (the sign-in form
with the admin key, which every build has), then in alternating rounds GETs
`/console/jobs` K times on each server and reads the server's utime+stime from /proc before
and after. Writes JSON (machine, commands, per-round figures, medians, the ratio) to
bench/results/console_jobs_page.json (or --out).

    python3 bench/console_jobs_page.py --baseline BIN --candidate BIN [--jobs 500] [--renders 20] [--rounds 5]
    python3 bench/console_jobs_page.py --smoke          # seconds: 20 jobs, 10 renders, 2 rounds

Without --baseline/--candidate both are FLEETJOBS_BIN (else the debug build): the smoke run
checks the harness, not a speed-up.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchlib import ROOT, cpu_seconds
from e2elib.server import locate_binary, start_server


class Console:
    """A signed-in browser, as far as the Jobs page needs: cookies and GETs."""

    def __init__(self, server):
        self.server = server
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.get("/console/signin")
        token = re.search(r'name="signin_token" value="([0-9a-f]+)"', page).group(1)
        key_id, secret = server.credentials()
        form = urllib.parse.urlencode(
            {"signin_token": token, "access_key_id": key_id, "secret_access_key": secret}).encode()
        with self.opener.open(urllib.request.Request(server.endpoint_url + "/console/signin", data=form),
                              timeout=30) as r:
            assert r.url.endswith("/console/jobs"), r.url

    def get(self, path: str) -> str:
        with self.opener.open(self.server.endpoint_url + path, timeout=60) as r:
            return r.read().decode()


def setup(binary: Path, base: Path, name: str, jobs: int):
    server = start_server(binary, base / name, name)
    iot = server.boto3_client()
    thing = iot.create_thing(thingName="bench-thing")["thingArn"]
    for i in range(jobs):
        iot.create_job(jobId=f"bench-job-{i:05}", targets=[thing], document='{"op": "bench"}',
                       targetSelection="CONTINUOUS", description=f"bench job {i}")
    console = Console(server)
    rows = console.get("/console/jobs").count("<tr data-job=")
    assert rows == jobs, f"{name}: {rows} rows, expected {jobs}"
    return server, console


def measure(server, console, renders: int) -> float:
    """Server CPU ms per render of the Jobs page."""
    pid = server.proc.pid
    before = cpu_seconds(pid)
    for _ in range(renders):
        console.get("/console/jobs")
    return (cpu_seconds(pid) - before) * 1000 / renders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--candidate", type=Path)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "console_jobs_page.json")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.renders, args.rounds = 20, 10, 2
    default = locate_binary()
    binaries = {"baseline": args.baseline or default, "candidate": args.candidate or default}
    base = Path(tempfile.mkdtemp(prefix="console-jobs-page-"))
    servers = {}
    try:
        for name, binary in binaries.items():
            servers[name] = setup(binary, base, name, args.jobs)
        rounds = []
        for i in range(args.rounds):
            # Alternating which goes first, so that a load change on the machine hits both.
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            figures = {}
            for name in order:
                server, console = servers[name]
                measure(server, console, 1)  # warm
                figures[name] = measure(server, console, args.renders)
            rounds.append({k: round(v, 3) for k, v in figures.items()})
        medians = {name: statistics.median(r[name] for r in rounds) for name in servers}
        result = {
            "benchmark": "console_jobs_page",
            "what": "server CPU ms (utime+stime from /proc) per GET /console/jobs, signed in",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
            "command": " ".join([sys.executable, *sys.argv]),
            "binaries": {k: str(v) for k, v in binaries.items()},
            "jobs": args.jobs, "renders_per_round": args.renders, "rounds": rounds,
            "median_cpu_ms_per_render": {k: round(v, 3) for k, v in medians.items()},
            "candidate_over_baseline": round(medians["candidate"] / medians["baseline"], 3)
            # The CPU clock ticks in 10 ms: a median of 0 is below its resolution, not free.
            if medians["baseline"] > 0 and medians["candidate"] > 0 else None,
        }
    finally:
        for server, _ in servers.values():
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
