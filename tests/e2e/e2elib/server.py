"""Run ``fleetjobs serve`` and talk to it with the real AWS CLI (and boto3)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .util import REPO_ROOT

CLI_ERROR_RE = re.compile(
    r"An error occurred \((?P<code>[^)\s]+)\) when calling the (?P<operation>\w+) operation"
    r"(?: \(reached max retries: \d+\))?: ?(?P<message>.*)",
    re.DOTALL,
)


# ----------------------------------------------------------------------------- binary


def cargo_target_dir() -> Path:
    default = Path.home() / ".cache" / "fleetjobs" / "target"
    return Path(os.environ.get("CARGO_TARGET_DIR") or default)


def locate_package_binary(package: str, env_var: str) -> Path:
    """The binary of cargo package ``package`` (its name too): ``$ENV_VAR`` if set, else
    ``cargo build -p PACKAGE`` into $CARGO_TARGET_DIR.

    Set FLEETJOBS_SKIP_BUILD=1 to use $CARGO_TARGET_DIR/debug/PACKAGE as it is
    (scripts/test builds the binaries before running pytest).
    """
    explicit = os.environ.get(env_var)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"{env_var}={explicit} is not an executable file")
        return path

    target = cargo_target_dir()
    if not os.environ.get("FLEETJOBS_SKIP_BUILD"):
        proc = subprocess.run(
            ["cargo", "build", "-p", package],
            cwd=REPO_ROOT,
            env=dict(os.environ, CARGO_TARGET_DIR=str(target)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cargo build -p {package} failed:\n{proc.stdout[-8000:]}")
    path = target / "debug" / package
    if not path.is_file():
        raise RuntimeError(f"{path} does not exist (cargo build -p {package} did not produce it)")
    return path


def locate_binary() -> Path:
    """The ``fleetjobs`` binary: $FLEETJOBS_BIN, else ``cargo build -p fleetjobs``."""
    return locate_package_binary("fleetjobs", "FLEETJOBS_BIN")


def aws_cli_path() -> str:
    """The ``aws`` CLI of the venv pytest runs in (tests/e2e/.venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "aws"
    if beside.is_file():
        return str(beside)
    found = shutil.which("aws")
    if not found:
        raise RuntimeError("aws CLI not found: run tests/e2e/install-clients.sh")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- CLI errors


class CliError(Exception):
    """A non-zero exit of the aws CLI, with the AWS error code parsed from stderr."""

    def __init__(self, args_: list[str], returncode: int, stdout: str, stderr: str):
        super().__init__(args_, returncode)
        self.args_ = args_
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def match(self):
        return CLI_ERROR_RE.search(self.stderr)

    @property
    def code(self) -> str | None:
        m = self.match
        return m.group("code") if m else None

    @property
    def operation(self) -> str | None:
        m = self.match
        return m.group("operation") if m else None

    @property
    def message(self) -> str:
        m = self.match
        return m.group("message").strip() if m else self.stderr.strip()

    def __str__(self) -> str:
        return (
            f"aws {shlex.join(self.args_)} exited {self.returncode}\n"
            f"--- stderr ---\n{self.stderr.strip()}\n--- stdout ---\n{self.stdout.strip()}"
        )


# ----------------------------------------------------------------------------- server


class FleetjobsServer:
    """One ``fleetjobs serve`` process with its data dir, ports and log file.

    ``aws(...)`` runs the real AWS CLI against it exactly as a user would:
    ``AWS_SHARED_CREDENTIALS_FILE=DIR/credentials AWS_CONFIG_FILE=/dev/null
    aws --endpoint-url http://127.0.0.1:HTTP_PORT iot ...``.
    """

    #: every server started in this pytest process (conftest attaches their logs to failures)
    instances: list["FleetjobsServer"] = []

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, workdir: Path, name: str = "fleetjobs"):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.workdir = Path(workdir)  # scratch files (job documents, bad credentials)
        self.name = name
        self.http_port = free_port()
        self.mqtt_port = free_port()
        while self.mqtt_port == self.http_port:
            self.mqtt_port = free_port()
        self.jobs_data_port = free_port()
        while self.jobs_data_port in (self.http_port, self.mqtt_port):
            self.jobs_data_port = free_port()
        self.proc: subprocess.Popen | None = None
        #: more ``serve`` flags and environment (e.g. ``--s3-endpoint`` and its credentials)
        self.extra_args: list[str] = []
        self.extra_env: dict[str, str] = {}
        self._log_file = None
        self.unexpected_exit: int | None = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        FleetjobsServer.instances.append(self)

    # ---------------------------------------------------------------- paths

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def root_ca(self) -> Path:
        return self.data_dir / "root-CA.crt"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
            "--mqtt-listen",
            f"127.0.0.1:{self.mqtt_port}",
            "--jobs-data-listen",
            f"127.0.0.1:{self.jobs_data_port}",
            *self.extra_args,
        ]

    # ---------------------------------------------------------------- process

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its HTTP port accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab", buffering=0)
        self._log_file.write(f"\n===== e2e: starting {shlex.join(self.command())}\n".encode())
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.http_port):
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"fleetjobs serve exited with {code} before listening\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"fleetjobs serve not listening on {self.http_port} after {timeout}s\n{self.log_tail()}")
            time.sleep(0.1)
        for required in (self.credentials_file, self.root_ca):
            if not required.is_file():
                raise RuntimeError(f"fleetjobs serve is listening but {required} does not exist")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Fail loudly if the process died on its own (a crash is always a bug)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exit = self.proc.returncode
            raise AssertionError(f"fleetjobs serve died unexpectedly (exit {self.proc.returncode})\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._close_log()

    def kill9(self) -> None:
        """SIGKILL, as in a power cut: no chance to flush or clean up."""
        assert self.running(), "server is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # ---------------------------------------------------------------- log

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int = 0, limit: int = 60_000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return "(no log file)"
        if len(data) > limit:
            data = b"...(cut)...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def log_tail(self, limit: int = 8000) -> str:
        return f"--- {self.log_path} (tail) ---\n" + self.log_since(max(0, self.log_size() - limit), limit)

    # ---------------------------------------------------------------- files

    def write_file(self, name: str, content: str | bytes) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def credentials(self) -> tuple[str, str]:
        """(access key id, secret access key) from the generated credentials file."""
        key_id = secret = None
        for line in self.credentials_file.read_text().splitlines():
            name, _, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if name == "aws_access_key_id":
                key_id = value
            elif name == "aws_secret_access_key":
                secret = value
        assert key_id and secret, f"no keys in {self.credentials_file}"
        return key_id, secret

    def credentials_file_with(self, name: str, key_id: str, secret: str) -> Path:
        """A shared-credentials file with the given keys (for wrong-credential tests)."""
        return self.write_file(
            name,
            f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\nregion = us-east-1\n",
        )

    # ---------------------------------------------------------------- AWS CLI

    def _cli_env(self, credentials_file: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(credentials_file or self.credentials_file),
            AWS_CONFIG_FILE="/dev/null",
            # One attempt: a retried request would hide what the server answered first.
            # (Legacy retry mode, the CLI v1 default, prints non-retryable errors as
            # "An error occurred (CODE) when calling the OP operation: MESSAGE".)
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        return env

    def aws_raw(self, *args: Any, credentials_file: Path | None = None, service: str = "iot",
                timeout: float = 60.0) -> subprocess.CompletedProcess:
        argv = [a if isinstance(a, str) else json.dumps(a) for a in args]
        cmd = [
            aws_cli_path(),
            "--endpoint-url",
            self.endpoint_url,
            "--output",
            "json",
            "--cli-read-timeout",
            "30",
            "--cli-connect-timeout",
            "5",
            service,
            *argv,
        ]
        print(f"$ aws {service} {shlex.join(argv)}")
        proc = subprocess.run(
            cmd,
            env=self._cli_env(credentials_file),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        out = proc.stdout.strip()
        print(f"  -> exit {proc.returncode}" + (f"\n  {out[:2000]}" if out else "")
              + (f"\n  stderr: {proc.stderr.strip()[:2000]}" if proc.stderr.strip() else ""))
        proc.args_ = [service, *argv]  # type: ignore[attr-defined]
        return proc

    def aws(self, *args: Any, **kwargs) -> dict:
        """Run ``aws iot ARGS...``; return the parsed JSON output ({} when there is none).

        Raises CliError (with stderr) on a non-zero exit. Non-string args are
        passed as JSON (handy for --event-configurations and the like).
        """
        proc = self.aws_raw(*args, **kwargs)
        if proc.returncode != 0:
            raise CliError(list(proc.args_), proc.returncode, proc.stdout, proc.stderr)
        out = proc.stdout.strip()
        if not out:
            return {}
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise AssertionError(f"aws {shlex.join(proc.args_)} printed non-JSON output: {out[:2000]!r}") from e

    def aws_error(self, *args: Any, **kwargs) -> CliError:
        """Run ``aws iot ARGS...`` that must fail; return the CliError (code, operation, message)."""
        try:
            out = self.aws(*args, **kwargs)
        except CliError as e:
            return e
        raise AssertionError(f"aws iot {args!r} succeeded but should have failed; output: {out!r}")

    def expect_error(self, code: str, *args: Any, operation: str | None = None, **kwargs) -> CliError:
        """``aws iot ARGS`` must fail with the CLI line
        ``An error occurred (CODE) when calling the OPERATION operation: ...``."""
        err = self.aws_error(*args, **kwargs)
        assert err.code == code, f"expected {code}, got {err.code!r}:\n{err}"
        if operation is not None:
            assert err.operation == operation, f"expected operation {operation}, got {err.operation!r}:\n{err}"
        return err

    # ---------------------------------------------------------------- boto3

    def boto3_client(self, service: str = "iot", region: str = "us-east-1", **config):
        """A boto3 client for bulk setup and for checking HTTP status codes (signing for
        ``region``, the server's by default). ``config`` adds botocore ``Config`` options
        (e.g. ``parameter_validation=False`` to send what botocore would refuse)."""
        import boto3
        from botocore.config import Config

        key_id, secret = self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1, "mode": "legacy"}, read_timeout=30, connect_timeout=5,
                          **config),
        )


def start_server(binary: Path, base: Path, name: str, extra_args: tuple[str, ...] = (),
                 extra_env: dict[str, str] | None = None) -> FleetjobsServer:
    """Start ``fleetjobs serve`` with everything under ``base``: data/, work/, fleetjobs.log."""
    srv = FleetjobsServer(binary, data_dir=base / "data", log_path=base / "fleetjobs.log",
                          workdir=base / "work", name=name)
    srv.extra_args = list(extra_args)
    srv.extra_env = dict(extra_env or {})
    srv.start()
    return srv
