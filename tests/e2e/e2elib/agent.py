"""Helpers for the fleetjobs-agent end-to-end tests (test_agent_*.py).

* ``agent_bin`` (session fixture): the agent binary ($FLEETJOBS_AGENT_BIN, else
  ``cargo build -p fleetjobs-agent`` unless FLEETJOBS_SKIP_BUILD is set).
* ``AgentProcess``: one ``fleetjobs-agent`` for a device identity, with its own state dir,
  handler dir, boot-id file and fake reboot command; start / kill -9 / restart; ``status()``.
* ``FileServer``: a local HTTP server for downloads (Range support, optional throttling,
  a log of the requests it answered).
* ``wait_status``: poll ``describe-job-execution`` until the execution has a given status.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shlex
import signal
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .identity import DeviceIdentity
from .server import FleetjobsServer, locate_package_binary
from .util import eventually


# ----------------------------------------------------------------------------- binary


def locate_agent_binary() -> Path:
    return locate_package_binary("fleetjobs-agent", "FLEETJOBS_AGENT_BIN")


@pytest.fixture(scope="session")
def agent_bin() -> Path:
    try:
        return locate_agent_binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


# ----------------------------------------------------------------------------- the agent


class AgentProcess:
    """``fleetjobs-agent -f CERTS -H localhost -p PORT -T THING`` plus test settings:
    short poll/progress intervals, a boot-id file, a reboot command that only touches a file."""

    def __init__(self, binary: Path, identity: DeviceIdentity, server: FleetjobsServer, base: Path,
                 extra_args: tuple[str, ...] = ()):
        self.binary = binary
        self.identity = identity
        self.server = server
        self.base = base
        self.state_dir = base / "state"
        self.handler_dir = base / "handlers"
        self.boot_id_file = base / "boot_id"
        self.reboot_marker = base / "reboot-requested"
        self.log_path = base / "agent.log"
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.handler_dir.mkdir(parents=True, exist_ok=True)
        if not self.boot_id_file.exists():
            self.set_boot_id("boot-1")

    def set_boot_id(self, value: str) -> None:
        self.boot_id_file.write_text(value + "\n")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "-f", str(self.identity.cert_dir),
            "-H", "localhost",
            "-p", str(self.server.mqtt_port),
            "-T", self.identity.thing_name,
            "--state-dir", str(self.state_dir),
            "--handler-dir", str(self.handler_dir),
            "--boot-id-file", str(self.boot_id_file),
            "--reboot-command", f"touch {self.reboot_marker}",
            "--shutdown-command", f"touch {self.base / 'shutdown-requested'}",
            "--poll-interval", "3s",
            "--progress-interval", "300ms",
            "--request-timeout", "5s",
            "--reconnect-max", "2s",
            *self.extra_args,
        ]

    def start(self) -> "AgentProcess":
        assert not self.running(), "agent already running"
        self._log = open(self.log_path, "ab", buffering=0)
        self._log.write(f"\n===== e2e: starting {shlex.join(self.command())}\n".encode())
        env = dict(os.environ, RUST_LOG=os.environ.get("AGENT_RUST_LOG", "info,fleetjobs_agent=debug"))
        self.proc = subprocess.Popen(
            self.command(), cwd=self.base, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the agent only (its step processes live in their own process groups)."""
        assert self.running(), "agent is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def stop(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no agent log)"

    def status(self, json_output: bool = True) -> dict | str:
        argv = [str(self.binary), "status", "--state-dir", str(self.state_dir)]
        if json_output:
            argv.append("--json")
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        assert out.returncode == 0, f"status failed: {out.stderr}"
        return json.loads(out.stdout) if json_output else out.stdout

    def journal(self) -> dict:
        return json.loads((self.state_dir / "journal.json").read_text())

    def write_handler(self, name: str, script: str) -> Path:
        path = self.handler_dir / name
        path.write_text(script)
        path.chmod(0o700)
        return path


@pytest.fixture
def start_agent(agent_bin, server, tmp_path):
    """``start_agent(identity, *extra_args, base=None, srv=None) -> AgentProcess`` (running);
    stopped after the test, its log attached to a failure."""
    agents: list[AgentProcess] = []

    def start(identity: DeviceIdentity, *extra_args: str, base: Path | None = None,
              srv: FleetjobsServer | None = None, run: bool = True) -> AgentProcess:
        base = base or tmp_path / f"agent-{identity.thing_name}"
        base.mkdir(parents=True, exist_ok=True)
        agent = AgentProcess(agent_bin, identity, srv or server, base, extra_args)
        agents.append(agent)
        return agent.start() if run else agent

    yield start
    for a in agents:
        a.stop()
        # Shown by pytest only when the test failed ("Captured stdout teardown").
        print(f"----- agent log {a.log_path}\n{a.log()[-20000:]}")


# ----------------------------------------------------------------------------- control plane


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; return that (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def describe(server: FleetjobsServer, job_id: str, thing: str) -> dict:
    return server.aws("describe-job-execution", "--job-id", job_id, "--thing-name", thing)["execution"]


def wait_status(server: FleetjobsServer, job_id: str, thing: str, statuses: str | tuple[str, ...],
                timeout: float = 60.0, agent: AgentProcess | None = None) -> dict:
    """Poll describe-job-execution until its status is one of ``statuses``; return it."""
    wanted = (statuses,) if isinstance(statuses, str) else statuses
    last: dict = {}

    def check():
        nonlocal last
        last = describe(server, job_id, thing)
        assert last["status"] in wanted, f"{job_id} is {last['status']}, waiting for {wanted}: {last}"
        return last

    try:
        return eventually(check, timeout=timeout, interval=0.5)
    except AssertionError:
        if agent is not None:
            print(f"----- agent log\n{agent.log()[-20000:]}")
        raise


def details(execution: dict) -> dict:
    return (execution.get("statusDetails") or {}).get("detailsMap") or {}


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie is dead for our purpose.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def kill_group_of(pid_file: Path) -> None:
    """Kill the process groups of the pids listed in ``pid_file`` (what systemd's
    KillMode=control-group does to a crashed agent's step processes)."""
    for line in pid_file.read_text().split():
        try:
            os.killpg(int(line), signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


# ----------------------------------------------------------------------------- downloads


class FileServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 with HTTP Range support. ``rate`` (bytes
    per second, 0 = unlimited) throttles every response. ``requests`` records (path, Range),
    ``bytes_sent`` counts body bytes. ``tls`` = (certificate file, key file) serves HTTPS."""

    def __init__(self, files: dict[str, bytes] | None = None, rate: int = 0,
                 tls: tuple[Path, Path] | None = None):
        self.files = dict(files or {})
        self.rate = rate
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0
        self.scheme = "https" if tls else "http"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("?")[0]
                rng = self.headers.get("Range")
                outer.requests.append((name, rng))
                data = outer.files.get(name)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and rng.startswith("bytes=") and rng[6:].split("-")[0].isdigit():
                    start = int(rng[6:].split("-")[0])
                if start >= len(data) and len(data) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                chunk = 16 * 1024
                try:
                    for i in range(0, len(body), chunk):
                        self.wfile.write(body[i:i + chunk])
                        self.wfile.flush()
                        outer.bytes_sent += len(body[i:i + chunk])
                        if outer.rate:
                            time.sleep(chunk / outer.rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    servers: list[FileServer] = []

    def make(files: dict[str, bytes] | None = None, rate: int = 0) -> FileServer:
        s = FileServer(files, rate)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def make_https_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl): (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*argv):
        subprocess.run(["openssl", *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=e2e download CA", "-keyout", str(ca_key), "-out", str(ca),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_document(package: str, workdir: Path, files: list[tuple[str, str, str | None]],
                     **extra) -> dict:
    """A jobs-agent.js ``install`` document: files = [(fileName, url, sha256 or None)]."""
    entries = []
    for name, url, digest in files:
        entry: dict = {"fileName": name, "fileSource": {"url": url}}
        if digest:
            entry["checksum"] = {"inline": {"value": digest}, "hashAlgorithm": "SHA256"}
        entries.append(entry)
    return {"operation": "install", "packageName": package, "workingDirectory": str(workdir),
            "files": entries, **extra}
