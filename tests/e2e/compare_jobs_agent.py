"""Run the same `install` jobs against aws-iot-device-sdk's examples/jobs-agent.js and
against fleetjobs-agent, on a real `fleetjobs serve`, and print what each did.

    cd tests/e2e && .venv/bin/python compare_jobs_agent.py [--json out.json]

(needs tests/e2e/install-clients.sh, node, openssl, and the two binaries:
$FLEETJOBS_BIN / $FLEETJOBS_AGENT_BIN or `cargo build -p fleetjobs -p fleetjobs-agent`).

Cases, each with a fresh thing and agent:
- install: one 2 MiB file over HTTPS with its sha256 (jobs-agent.js downloads only https:
  URLs; both agents trust the test CA: NODE_EXTRA_CA_CERTS / --download-ca);
- interrupted install: the same file served at 256 KiB/s; the agent is killed with SIGKILL
  after ~0.5 MiB, then started again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2elib.agent import (  # noqa: E402
    AgentProcess, FileServer, describe, install_document, locate_agent_binary, make_https_certificates, sha256,
)
from e2elib.identity import create_device  # noqa: E402
from e2elib.server import locate_binary, start_server  # noqa: E402
from e2elib.util import E2E_DIR  # noqa: E402

JOBS_AGENT = E2E_DIR / "node_modules" / "aws-iot-device-sdk" / "examples" / "jobs-agent.js"
PAYLOAD = bytes(range(256)) * 4096 * 2  # 2 MiB
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "REMOVED")


class NodeJobsAgent:
    """``node jobs-agent.js -f CERTS -H localhost -p PORT -T THING`` in its own directory
    (it keeps installedPackages.json in its working directory)."""

    def __init__(self, identity, server, base: Path, ca: Path):
        self.identity, self.server, self.base, self.ca = identity, server, base, ca
        self.log_path = base / "jobs-agent.log"
        self.proc = None
        base.mkdir(parents=True, exist_ok=True)

    def start(self):
        argv = ["node", str(JOBS_AGENT), "-f", str(self.identity.cert_dir), "-H", "localhost",
                "-p", str(self.server.mqtt_port), "-T", self.identity.thing_name]
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(self.ca))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.base, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_terminal(server, job_id, thing, timeout):
    deadline = time.monotonic() + timeout
    while True:
        e = describe(server, job_id, thing)
        if e["status"] in TERMINAL or time.monotonic() > deadline:
            return e
        time.sleep(0.5)


def run_case(kind: str, case: str, srv, base: Path, certs, agent_bin) -> dict:
    ca, cert, key = certs
    thing = f"cmp-{kind}-{case}".replace(".", "")
    identity = create_device(srv, thing, base / f"certs-{thing}")
    files = FileServer({"app.bin": PAYLOAD}, rate=256 * 1024 if case == "interrupted" else 0, tls=(cert, key))
    workdir = base / f"work-{thing}"
    workdir.mkdir()  # jobs-agent.js crashes (unhandled ENOENT) when the working directory is missing
    agent_base = base / f"agent-{thing}"
    agent_base.mkdir(parents=True)
    if kind == "jobs-agent.js":
        agent = NodeJobsAgent(identity, srv, agent_base, ca)
    else:
        agent = AgentProcess(agent_bin, identity, srv, agent_base, ("--download-ca", str(ca)))
    try:
        agent.start()
        time.sleep(3)  # connected and subscribed
        job_id = f"{thing}-install"
        doc = install_document("app", workdir, [("app.bin", files.url("app.bin"), sha256(PAYLOAD))])
        doc_file = srv.write_file(f"{job_id}.json", json.dumps(doc))
        srv.aws("create-job", "--job-id", job_id, "--targets", identity.thing_arn, "--document", f"file://{doc_file}")
        killed_at = None
        if case == "interrupted":
            deadline = time.monotonic() + 30
            while files.bytes_sent < 512 * 1024 and time.monotonic() < deadline:
                time.sleep(0.1)
            killed_at = files.bytes_sent
            agent.kill9()
            time.sleep(1)
            agent.start()
        execution = wait_terminal(srv, job_id, thing, 90)
        target = workdir / "app.bin"
        return {
            "agent": kind,
            "case": case,
            "status": execution["status"],
            "statusDetails": (execution.get("statusDetails") or {}).get("detailsMap", {}),
            "installed_file_ok": target.is_file() and sha256(target.read_bytes()) == sha256(PAYLOAD),
            "target_bytes": target.stat().st_size if target.is_file() else None,
            "bytes_when_killed": killed_at,
            "requests": [r[1] or "full" for r in files.requests],
            "bytes_served": files.bytes_sent,
        }
    finally:
        agent.stop()
        files.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fleetjobs-compare-"))
    srv = start_server(locate_binary(), base / "server", "compare")
    results = []
    try:
        certs = make_https_certificates(base / "https")
        agent_bin = locate_agent_binary()
        for case in ("install", "interrupted"):
            for kind in ("jobs-agent.js", "fleetjobs-agent"):
                r = run_case(kind, case, srv, base, certs, agent_bin)
                results.append(r)
                print(json.dumps(r), flush=True)
    finally:
        srv.stop()
    print("\n| case | agent | final status | statusDetails | app.bin verified (size) | HTTP requests |")
    print("|---|---|---|---|---|---|")
    for r in results:
        details = ", ".join(f"{k}={v}" for k, v in r["statusDetails"].items())
        print(f"| {r['case']} | {r['agent']} | {r['status']} | {details} | {r['installed_file_ok']} ({r['target_bytes']}) "
              f"| {', '.join(r['requests'])} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"\n(work files in {base})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
