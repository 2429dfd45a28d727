#!/usr/bin/env python3
"""Benchmark 4, the control plane: how fast does the `iot` API answer, idle and while a fleet
of devices works, against ministack (a Python emulator of AWS) in the same run.

    bench/control_plane.py                       # sizes 1000 5000 10000, release build, ministack peer
    bench/control_plane.py --smoke               # seconds: 50 devices, 2 rounds, the CI size
    bench/control_plane.py --sizes 1000 --no-peer
    bench/control_plane.py --no-peer --client-nice -10   # the client ahead of other load (root)

Per size and round (rounds alternate Fleetjobs, ministack):
- Fleetjobs: a fresh `fleetjobs serve` in a temp data dir and `fleetjobs-sim --things N
  --hold-secs ... --work-ms W` (N real mutual-TLS devices, each like jobs-example.js). A *quiet*
  thing outside the fleet (never connected) carries the jobs the measurements describe.
  - idle (devices connected, no job): describe-job of a quiet job, create-job on the quiet thing;
  - under load: the bench keeps jobs on the fleet's group coming (the next one as soon as the
    last is done), so device updates flow all the time; it then
    measures describe-job of the quiet job, describe-job of the job the devices are working on
    (its counts move: a read that must wait for device writes), and create-job on the quiet
    thing, while counting the executions the devices finish per second;
  - list-job-executions-for-job: every page (maxResults 250) of a finished job of N executions.
- ministack (IOT_MTLS_ENABLED=0: its broker is not driven, see PERFORMANCE.md): N things in a
  group by the API, then idle describe-job, create-job, and the list of N executions.
Each request is signed (botocore SigV4) before its clock starts, then sent over one kept-alive
HTTP/1.1 connection; the latency is from the first byte sent to the last byte read, so signing
is not counted (its cost is reported apart as `client_sign_ms`).

ministack binds 0.0.0.0 (its gateway and MQTT listeners): the whole run happens in a
loopback-only network namespace (`ip netns add`, `lo` up, nothing else), which needs root; the
script re-executes itself inside it. Writes bench/results/control_plane.json (or --out): every
figure, the ratios, the machine and the exact commands.
Build first: cargo build --release -p fleetjobs -p fleetjobs-sim.
"""

from __future__ import annotations

import argparse
import configparser
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchlib import RESULTS, ROOT, machine, target_dir
from e2elib.server import free_port

REGION = "us-east-1"
DOCUMENT = json.dumps({"operation": "control-plane-bench"})



def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start; see {log}")
            time.sleep(0.05)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"calls": 0}
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"calls": len(s), "p50_ms": round(pick(0.50), 3), "p90_ms": round(pick(0.90), 3),
            "p99_ms": round(pick(0.99), 3), "max_ms": round(s[-1], 3), "mean_ms": round(statistics.fmean(s), 3)}


class Client:
    """One kept-alive HTTP connection; each request signed before its clock starts."""

    def __init__(self, port: int, access_key: str, secret_key: str, timeout: float = 120):
        self.port, self.timeout = port, timeout
        self.signer = SigV4Auth(Credentials(access_key, secret_key), "iot", REGION)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.sign_ms: list[float] = []

    def call(self, method: str, path: str, query: str = "", body: dict | None = None) -> tuple[int, dict, float]:
        data = json.dumps(body).encode() if body is not None else b""
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")
        started = time.perf_counter()
        req = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json"} if body is not None else {})
        self.signer.add_auth(req)
        prepared = req.prepare()
        signed = time.perf_counter()
        self.sign_ms.append((signed - started) * 1000)
        target = path + (f"?{query}" if query else "")
        for attempt in range(2):
            try:
                sent = time.perf_counter()
                self.conn.request(method, target, body=data or None, headers=dict(prepared.headers))
                resp = self.conn.getresponse()
                raw = resp.read()
                elapsed = (time.perf_counter() - sent) * 1000
                break
            except (http.client.HTTPException, ConnectionError):
                # The server closed a kept-alive connection: reconnect once, count the retry's time.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        parsed = json.loads(raw) if raw else {}
        if resp.status >= 300:
            raise RuntimeError(f"{method} {target} -> {resp.status} {raw[:300]!r}")
        return resp.status, parsed, elapsed


def create_job(c: Client, job_id: str, targets: list[str]) -> float:
    return c.call("PUT", f"/jobs/{quote(job_id)}", body={"targets": targets, "document": DOCUMENT,
                                                         "targetSelection": "SNAPSHOT"})[2]


def describe_job(c: Client, job_id: str) -> tuple[dict, float]:
    _, body, ms = c.call("GET", f"/jobs/{quote(job_id)}")
    return body, ms


SLOW_MS = 10.0


def timed_loop(fn, calls: int, seconds: float, slow: list | None = None) -> list[float]:
    """`fn()` (returns ms) `calls` times spread evenly over `seconds` (so a phase lasts as long
    whatever the latency, and the client adds little load), ending early only if the answers
    are so slow that it runs past three times that. Calls over `SLOW_MS` go to `slow` as
    (CLOCK_MONOTONIC start, ms), to be set against what else ran then."""
    out: list[float] = []
    start = time.monotonic()
    interval = seconds / calls
    for i in range(calls):
        now = time.monotonic()
        if now - start > 3 * seconds:
            break
        if start + i * interval > now:
            time.sleep(start + i * interval - now)
        began = time.monotonic()
        out.append(fn())
        if slow is not None and out[-1] > SLOW_MS:
            slow.append((began, out[-1]))
    return out


def slow_calls(slow: list[tuple[float, float]], creating: list[tuple[float, float]]) -> dict:
    """The describe-job calls over `SLOW_MS`: how many overlapped one of the load keeper's
    CreateJobs on the whole fleet, and each call's CLOCK_MONOTONIC start (to find it in a
    `perf sched record -k CLOCK_MONOTONIC` of the same run)."""
    def during_create(began: float, ms: float) -> bool:
        return any(s < began + ms / 1000 and began < e for s, e in creating)
    return {"over_ms": SLOW_MS, "calls": len(slow),
            "during_fleet_create_job": sum(during_create(b, ms) for b, ms in slow),
            "calls_at": [[round(b, 6), round(ms, 3), during_create(b, ms)] for b, ms in slow]}


def list_all(c: Client, job_id: str, expected: int) -> dict:
    started = time.perf_counter()
    token, pages, items, server_ms = None, 0, 0, 0.0
    while True:
        q = "maxResults=250" + (f"&nextToken={quote(token, safe='')}" if token else "")
        _, body, ms = c.call("GET", f"/jobs/{quote(job_id)}/things", q)
        server_ms += ms
        pages += 1
        items += len(body.get("executionSummaries", []))
        token = body.get("nextToken")
        if not token:
            break
    wall = (time.perf_counter() - started) * 1000
    return {"executions": items, "expected": expected, "pages": pages, "total_ms": round(server_ms, 2),
            "wall_ms_with_signing": round(wall, 2), "ms_per_page": round(server_ms / pages, 3)}


# ------------------------------------------------------------------------------- Fleetjobs


def scrape(port: int) -> dict[str, float]:
    """The server's /metrics, as name{labels} -> value."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def pipeline(before: dict, after: dict, seconds: float) -> dict:
    """What the server's pipeline did between two scrapes: executions finished per second,
    group commits (mean time, mean batches), and where requests waited (means)."""
    d = lambda k: after.get(k, 0.0) - before.get(k, 0.0)
    def mean_ms(base: str) -> float | None:
        name, brace, labels = base.partition("{")
        total, count = d(f"{name}_sum{brace}{labels}"), d(f"{name}_count{brace}{labels}")
        return round(1000 * total / count, 3) if count else None

    done = 'fleetjobs_job_executions{status="SUCCEEDED"}'
    commits = d("fleetjobs_store_commit_seconds_count")
    return {
        "device_executions_per_second": round(d(done) / seconds, 1),
        "commits_per_second": round(commits / seconds, 1),
        "commit_mean_ms": mean_ms("fleetjobs_store_commit_seconds"),
        "batches_per_commit": round(d("fleetjobs_store_commit_batches_sum") / commits, 1) if commits else None,
        "lock_wait_mean_ms": mean_ms("fleetjobs_engine_lock_wait_seconds"),
        "read_durable_wait_mean_ms": mean_ms('fleetjobs_engine_durable_wait_seconds{path="read"}'),
        "write_durable_wait_mean_ms": mean_ms('fleetjobs_engine_durable_wait_seconds{path="write"}'),
    }


# The nice value the bench started with: its children (server, simulator, ministack) get it
# back, whatever --client-nice did to the measuring thread they were forked from.
START_NICE = os.getpriority(os.PRIO_PROCESS, 0)


def child_nice() -> None:
    os.setpriority(os.PRIO_PROCESS, 0, START_NICE)


def thread_cpu(pid: int) -> dict[str, dict]:
    """Per thread name of a process (/proc/PID/task/*/stat): CPU seconds (utime + stime, summed
    over the threads of that name) and nice value. A thread that ended meanwhile is not
    counted; the server's threads live as long as it does."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, dict] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): utime, stime are fields 14, 15; nice is field 19.
        t = out.setdefault(name, {"cpu_s": 0.0, "threads": 0, "nice": int(rest[16])})
        t["cpu_s"] += (int(rest[11]) + int(rest[12])) / tick
        t["threads"] += 1
    return out


def cpu_split(before: dict, after: dict, seconds: float) -> dict:
    """Cores used per thread name between two thread_cpu() snapshots (1.0 = one core)."""
    return {name: {"cores": round((t["cpu_s"] - before.get(name, {}).get("cpu_s", 0.0)) / seconds, 3),
                   "threads": t["threads"], "nice": t["nice"]}
            for name, t in sorted(after.items())}


def process_cpu_s(pid: int) -> float:
    """utime + stime of a whole process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def server_latency(before: dict, after: dict, operation: str) -> dict | None:
    """The server's own view of one operation between two scrapes, from the histogram
    `fleetjobs_api_request_duration_seconds` (handler entry to response, so without the
    client's and the socket's share): calls, the bucket bound the p50 and p99 fall under, and
    the share answered within 10 ms."""
    prefix = "fleetjobs_api_request_duration_seconds_bucket{"
    buckets: dict[float, float] = {}
    for key, value in after.items():
        if key.startswith(prefix) and f'operation="{operation}"' in key and 'listener="api"' in key:
            le = key.rpartition('le="')[2].rstrip('"}')
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + value - before.get(key, 0.0)
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return None
    def bound_of(q: float) -> float | None:
        for bound in sorted(buckets):
            if buckets[bound] >= q * total:
                return None if bound == float("inf") else round(bound * 1000, 1)
        return None
    within_10ms = buckets.get(0.01)
    return {"calls": int(total), "p50_le_ms": bound_of(0.5), "p99_le_ms": bound_of(0.99),
            "within_10ms": round(within_10ms / total, 4) if within_10ms is not None else None}


class SimWatcher(threading.Thread):
    """Reads the simulator's plain progress lines: how many devices are connected."""

    def __init__(self, proc: subprocess.Popen, log: Path):
        super().__init__(daemon=True)
        self.proc, self.log = proc, open(log, "w")
        self.connected = 0
        self.succeeded = 0

    def run(self) -> None:
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()
            words = line.split()
            if "connected" in words:
                try:
                    self.connected = int(words[words.index("connected") + 1].split("/")[0])
                    self.succeeded = int(words[words.index("succeeded") + 1])
                except (ValueError, IndexError):
                    pass


class LoadKeeper(threading.Thread):
    """Keeps the devices working: a new job on the fleet's group as soon as every execution of
    the last one is SUCCEEDED (one at a time: the simulated devices, like jobs-example.js, work
    on one job and stall when offered another meanwhile)."""

    def __init__(self, client: Client, group_arn: str, n: int):
        super().__init__(daemon=True)
        self.c, self.group_arn, self.n = client, group_arn, n
        self.jobs: list[str] = []
        self.stopping = threading.Event()
        self.active: str | None = None
        self.creating: list[tuple[float, float]] = []  # CLOCK_MONOTONIC (start, end) of each CreateJob

    def new_job(self) -> None:
        job = f"load-{len(self.jobs)}-{uuid.uuid4().hex[:6]}"
        began = time.monotonic()
        create_job(self.c, job, [self.group_arn])
        self.creating.append((began, time.monotonic()))
        self.jobs.append(job)
        self.active = job

    def run(self) -> None:
        while not self.stopping.is_set():
            details = describe_job(self.c, self.jobs[-1])[0]["job"].get("jobProcessDetails", {})
            if details.get("numberOfSucceededThings", 0) >= self.n:
                self.new_job()
            self.stopping.wait(0.05)


def run_fleetjobs(bins: dict, n: int, args, rnd: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"control-plane-{n}-"))
    http_port, mqtt, jobs = free_port(), free_port(), free_port()
    server_cmd = [str(bins["server"]), "serve", "--data-dir", str(data / "data"),
                  "--http-listen", f"127.0.0.1:{http_port}", "--mqtt-listen", f"127.0.0.1:{mqtt}",
                  "--jobs-data-listen", f"127.0.0.1:{jobs}", "--max-connections", str(n + 1000), *args.server_arg]
    log = open(data / "server.log", "w")
    server = subprocess.Popen(server_cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, RUST_LOG="warn"),
                              preexec_fn=child_nice)
    sim = None
    try:
        wait_port(http_port, server, "fleetjobs serve", data / "server.log")
        while not (data / "data" / "credentials").exists():
            time.sleep(0.05)
        creds = configparser.ConfigParser()
        creds.read(data / "data" / "credentials")
        key, secret = creds["default"]["aws_access_key_id"], creds["default"]["aws_secret_access_key"]
        c = Client(http_port, key, secret)
        prefix = "sim"
        sim_cmd = [str(bins["sim"]), "--endpoint", f"http://127.0.0.1:{http_port}", "--mqtt", f"127.0.0.1:{mqtt}",
                   "--data-dir", str(data / "data"), "--things", str(n), "--prefix", prefix,
                   "--work-ms", str(args.work_ms), "--hold-secs", "3600", "--progress", "plain",
                   "--server-pid", str(server.pid)]
        sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=child_nice)
        watcher = SimWatcher(sim, data / "sim.log")
        watcher.start()
        # The quiet thing: outside the fleet, never connected; its jobs stay QUEUED.
        quiet_arn = c.call("POST", "/things/quiet-thing", body={})[1]["thingArn"]
        create_job(c, "quiet", [quiet_arn])
        deadline = time.monotonic() + args.timeout_secs
        while watcher.connected < n:
            if sim.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fleetjobs-sim: {watcher.connected}/{n} connected; see {data / 'sim.log'}")
            time.sleep(0.1)
        calls, secs = args.calls, args.phase_secs
        result: dict = {"peer": "fleetjobs", "devices": n, "round": rnd}
        seq = iter(range(1_000_000))
        result["idle"] = {
            "describe_job": percentiles(timed_loop(lambda: describe_job(c, "quiet")[1], calls, secs)),
            "create_job": percentiles(timed_loop(lambda: create_job(c, f"idle-{next(seq)}", [quiet_arn]),
                                                 args.creates, secs)),
        }
        group_arn = c.call("GET", f"/thing-groups/{prefix}")[1]["thingGroupArn"]
        keeper = LoadKeeper(Client(http_port, key, secret), group_arn, n)
        keeper.new_job()
        keeper.start()
        # Under load once devices are busy: the first job's executions are moving.
        while not describe_job(c, keeper.jobs[0])[0]["job"]["jobProcessDetails"].get("numberOfSucceededThings"):
            if time.monotonic() > deadline:
                raise SystemExit("the devices did not start working")
            time.sleep(0.05)
        print(f"== load phase (CLOCK_MONOTONIC {time.monotonic():.3f})", file=sys.stderr, flush=True)
        t0, m0 = time.monotonic(), scrape(http_port)
        threads0, sim0, load0 = thread_cpu(server.pid), process_cpu_s(sim.pid), os.getloadavg()[0]
        slow: list[tuple[float, float]] = []
        load = {
            "describe_job_quiet": percentiles(timed_loop(lambda: describe_job(c, "quiet")[1], calls, secs, slow)),
            "describe_job_busy": percentiles(timed_loop(lambda: describe_job(c, keeper.active)[1], calls, secs,
                                                        slow)),
            "create_job": percentiles(timed_loop(lambda: create_job(c, f"busy-{next(seq)}", [quiet_arn]),
                                                 args.creates, secs)),
        }
        t1, m1 = time.monotonic(), scrape(http_port)
        threads1, sim1 = thread_cpu(server.pid), process_cpu_s(sim.pid)
        load.update(pipeline(m0, m1, t1 - t0))
        load["server_side"] = {op: server_latency(m0, m1, op) for op in ("DescribeJob", "CreateJob")}
        # Where the CPU went meanwhile: the server's threads by name, the simulator, and the
        # machine's load (other processes compete for the same 2 cores).
        load["server_cpu_by_thread"] = cpu_split(threads0, threads1, t1 - t0)
        load["server_cpu_cores"] = round(sum(t["cores"] for t in load["server_cpu_by_thread"].values()), 3)
        load["sim_cpu_cores"] = round((sim1 - sim0) / (t1 - t0), 3)
        load["loadavg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        load["load_jobs_created"] = len(keeper.jobs)
        keeper.stopping.set()
        keeper.join()
        load["slow_describes"] = slow_calls(slow, keeper.creating)
        result["load"] = load
        # The list: a job of N executions, finished (as the devices left it).
        first = keeper.jobs[0]
        while describe_job(c, first)[0]["job"]["jobProcessDetails"].get("numberOfSucceededThings", 0) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"{first} did not finish")
            time.sleep(0.2)
        stop(sim)
        result["list_job_executions_for_job"] = list_all(c, first, n)
        result["client_sign_ms"] = round(statistics.fmean(c.sign_ms), 3)
        result["server_command"] = " ".join(server_cmd)
        result["sim_command"] = " ".join(sim_cmd)
        return result
    finally:
        stop(sim)
        stop(server)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------------------------- ministack


def run_ministack(n: int, args, rnd: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"control-plane-ministack-{n}-"))
    port = free_port()
    python = os.environ.get("MINISTACK_PYTHON") or str(ROOT / "tests" / "e2e" / ".venv-ministack" / "bin" / "python")
    cmd = [python, "-m", "ministack"]
    env = dict(os.environ, GATEWAY_PORT=str(port), IOT_MTLS_ENABLED="0", LOG_LEVEL="WARNING",
               SERVICES="iot")
    log = open(data / "ministack.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data, preexec_fn=child_nice)
    try:
        wait_port(port, proc, "ministack", data / "ministack.log")
        c = Client(port, "test", "test", timeout=60)
        group = "fleet"
        group_arn = c.call("POST", f"/thing-groups/{group}", body={})[1]["thingGroupArn"]

        def provision(i: int) -> None:
            pc = Client(port, "test", "test")
            for j in range(i, n, 8):
                pc.call("POST", f"/things/thing-{j:06}", body={})
                pc.call("PUT", "/thing-groups/addThingToThingGroup",
                        body={"thingGroupName": group, "thingName": f"thing-{j:06}"})
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(provision, range(8)))
        provision_s = time.monotonic() - started
        quiet_arn = c.call("POST", "/things/quiet-thing", body={})[1]["thingArn"]
        create_job(c, "quiet", [quiet_arn])
        seq = iter(range(1_000_000))
        calls, secs = args.calls, args.phase_secs
        result: dict = {"peer": "ministack", "devices": n, "round": rnd, "provision_seconds": round(provision_s, 2)}
        result["idle"] = {
            "describe_job": percentiles(timed_loop(lambda: describe_job(c, "quiet")[1], calls, secs)),
            "create_job": percentiles(timed_loop(lambda: create_job(c, f"idle-{next(seq)}", [quiet_arn]),
                                                 args.creates, secs)),
        }
        big = f"big-{uuid.uuid4().hex[:6]}"
        try:
            result["create_job_on_group_ms"] = round(create_job(c, big, [group_arn]), 3)
            result["list_job_executions_for_job"] = list_all(c, big, n)
        except (TimeoutError, OSError) as e:
            # ministack may not answer a create-job on a large group within the client's timeout.
            result["create_job_on_group_error"] = f"{type(e).__name__}: {e} (client timeout {c.timeout} s)"
        result["client_sign_ms"] = round(statistics.fmean(c.sign_ms), 3)
        result["command"] = " ".join(cmd) + f"  (env GATEWAY_PORT={port} IOT_MTLS_ENABLED=0 SERVICES=iot)"
        return result
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------------------------- driver


def in_netns(argv: list[str]) -> int:
    """Run this script again inside a fresh loopback-only network namespace."""
    name = f"fjbench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return subprocess.run(["ip", "netns", "exec", name, sys.executable, __file__, "--in-netns", *argv]).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def summarize(runs: list[dict]) -> dict:
    """Per size: medians over rounds, and ministack/Fleetjobs ratios (how many times faster)."""
    out = {}
    for n in sorted({r["devices"] for r in runs}):
        fj = [r for r in runs if r["devices"] == n and r["peer"] == "fleetjobs"]
        ms = [r for r in runs if r["devices"] == n and r["peer"] == "ministack"]
        med = lambda rs, *path: (statistics.median(v for v in (dig(r, path) for r in rs) if v is not None)
                                 if any(dig(r, path) is not None for r in rs) else None)
        s = {
            "fleetjobs_idle_describe_p50_ms": med(fj, "idle", "describe_job", "p50_ms"),
            "fleetjobs_idle_create_p50_ms": med(fj, "idle", "create_job", "p50_ms"),
            "fleetjobs_load_describe_quiet_p50_ms": med(fj, "load", "describe_job_quiet", "p50_ms"),
            "fleetjobs_load_describe_quiet_p99_ms": med(fj, "load", "describe_job_quiet", "p99_ms"),
            "fleetjobs_load_describe_busy_p50_ms": med(fj, "load", "describe_job_busy", "p50_ms"),
            "fleetjobs_load_describe_busy_p99_ms": med(fj, "load", "describe_job_busy", "p99_ms"),
            "fleetjobs_load_create_p50_ms": med(fj, "load", "create_job", "p50_ms"),
            "fleetjobs_load_create_p99_ms": med(fj, "load", "create_job", "p99_ms"),
            "fleetjobs_device_executions_per_second": med(fj, "load", "device_executions_per_second"),
            "fleetjobs_list_ms": med(fj, "list_job_executions_for_job", "total_ms"),
            "fleetjobs_load_commit_mean_ms": med(fj, "load", "commit_mean_ms"),
            "fleetjobs_load_batches_per_commit": med(fj, "load", "batches_per_commit"),
            "fleetjobs_load_server_cpu_cores": med(fj, "load", "server_cpu_cores"),
            "fleetjobs_load_sim_cpu_cores": med(fj, "load", "sim_cpu_cores"),
        }
        if ms:
            s.update({
                "ministack_idle_describe_p50_ms": med(ms, "idle", "describe_job", "p50_ms"),
                "ministack_idle_create_p50_ms": med(ms, "idle", "create_job", "p50_ms"),
                "ministack_list_ms": med(ms, "list_job_executions_for_job", "total_ms"),
            })
            s["ratio_idle_describe"] = ratio(s["ministack_idle_describe_p50_ms"], s["fleetjobs_idle_describe_p50_ms"])
            s["ratio_idle_create"] = ratio(s["ministack_idle_create_p50_ms"], s["fleetjobs_idle_create_p50_ms"])
            s["ratio_list"] = ratio(s["ministack_list_ms"], s["fleetjobs_list_ms"])
        out[str(n)] = s
    return out


def dig(d, path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="50 devices, short phases (CI)")
    p.add_argument("--calls", type=int, default=500, help="describe-job calls per phase")
    p.add_argument("--creates", type=int, default=100, help="create-job calls per phase")
    p.add_argument("--phase-secs", type=float, default=8.0, help="how long a phase spreads its calls over")
    p.add_argument("--work-ms", type=int, default=200, help="each device's work time per job")
    p.add_argument("--timeout-secs", type=int, default=600)
    p.add_argument("--no-peer", action="store_true", help="Fleetjobs only (no ministack, no namespace)")
    p.add_argument("--debug", action="store_true", help="use the debug binaries")
    p.add_argument("--out", default=None, help="results file name under bench/results")
    p.add_argument("--server-arg", action="append", default=[],
                   help="one more argument for `fleetjobs serve` (repeatable), e.g. --server-arg=--control-plane-nice=-20")
    p.add_argument("--client-nice", type=int, default=None,
                   help="nice value of the measuring client's threads (e.g. -10, root): on a machine "
                        "loaded by other processes its own wake-ups otherwise count in every latency; "
                        "server and simulator keep the bench's nice value")
    p.add_argument("--gil-switch-ms", type=float, default=0.2,
                   help="the client's GIL switch interval (Python's default is 5 ms): the measuring "
                        "thread shares the interpreter with the load keeper and the simulator's "
                        "watcher, and a reply that arrives while one of them runs waits up to this "
                        "long before its clock stops")
    p.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.setswitchinterval(args.gil_switch_ms / 1000)
    if args.smoke:
        args.sizes, args.rounds, args.calls, args.creates, args.phase_secs, args.work_ms = [50], 2, 60, 15, 3.0, 100
    out_name = args.out or ("control_plane_smoke.json" if args.smoke else "control_plane.json")
    if not args.no_peer and not args.in_netns:
        if os.geteuid() != 0:
            raise SystemExit("the ministack peer runs in a network namespace: run as root, or pass --no-peer")
        sys.exit(in_netns(sys.argv[1:]))
    profile = "debug" if args.debug else "release"
    bins = {"server": Path(os.environ.get("FLEETJOBS_BIN") or target_dir() / profile / "fleetjobs"),
            "sim": Path(os.environ.get("FLEETJOBS_SIM_BIN") or target_dir() / profile / "fleetjobs-sim")}
    for b in bins.values():
        if not b.is_file():
            raise SystemExit(f"{b} is missing: cargo build --{profile} -p fleetjobs -p fleetjobs-sim")
    if args.client_nice is not None:
        # This thread only (Linux keeps nice per thread); the threads it starts inherit it.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), args.client_nice)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs = []
    for n in args.sizes:
        for rnd in range(args.rounds):
            print(f"== {n} devices, round {rnd + 1}: fleetjobs", file=sys.stderr, flush=True)
            runs.append(run_fleetjobs(bins, n, args, rnd))
            if not args.no_peer:
                print(f"== {n} devices, round {rnd + 1}: ministack", file=sys.stderr, flush=True)
                runs.append(run_ministack(n, args, rnd))
            write_results(args, out_name, started, runs)
    out = write_results(args, out_name, started, runs)
    print(json.dumps(out["summary"], indent=2))


def write_results(args, out_name: str, started: str, runs: list[dict]) -> dict:
    """Written after each run, so that a long run that fails later keeps what it measured."""
    out = {
        "benchmark": "control_plane",
        "started": started,
        "profile": "debug" if args.debug else "release",
        "machine": machine(),
        "network_namespace": args.in_netns,
        "command": " ".join([sys.executable, *sys.argv]),
        "settings": {"calls": args.calls, "creates": args.creates, "phase_secs": args.phase_secs,
                     "work_ms": args.work_ms, "rounds": args.rounds, "client_nice": args.client_nice,
                     "gil_switch_ms": args.gil_switch_ms},
        "summary": summarize(runs),
        "runs": runs,
    }
    (RESULTS / out_name).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
