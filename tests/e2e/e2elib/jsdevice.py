"""The tutorial's device: aws-iot-device-sdk (v1) ``examples/jobs-example.js`` on Node."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from .util import E2E_DIR

JOBS_EXAMPLE = E2E_DIR / "node_modules" / "aws-iot-device-sdk" / "examples" / "jobs-example.js"

# Lines jobs-example.js prints (see its source).
CONNECTED = "connect"
NOTIFICATIONS_STARTED = "startJobNotifications completed for thing: {thing}"
CUSTOM_JOB_INVOKED = "customJob operation handler invoked, jobId: {job_id}"
DEFAULT_JOB_INVOKED = "default job handler invoked, jobId: {job_id}"


class JobsExample:
    """``node jobs-example.js -f CERTDIR -H localhost -p PORT -T THING`` with its
    output collected line by line."""

    def __init__(self, cert_dir: Path, port: int, thing_name: str, host: str = "localhost"):
        if not JOBS_EXAMPLE.is_file():
            raise RuntimeError(f"{JOBS_EXAMPLE} missing: run tests/e2e/install-clients.sh")
        self.argv = [
            "node", str(JOBS_EXAMPLE.relative_to(E2E_DIR)),
            "-f", str(cert_dir), "-H", host, "-p", str(port), "-T", thing_name,
        ]
        self.thing_name = thing_name
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> "JobsExample":
        print("$ " + " ".join(self.argv))
        self.proc = subprocess.Popen(
            self.argv, cwd=E2E_DIR, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = 20.0, exact: bool = True) -> str:
        """Wait until the sample prints ``text`` (a whole line, or a substring when
        exact=False); fail with everything it printed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if (line.strip() == text) if exact else (text in line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._finished():
                    status = "running" if self.proc and self.proc.poll() is None else f"exited {self.proc.returncode}"
                    raise AssertionError(
                        f"jobs-example.js ({status}) did not print {text!r} within {timeout}s; it printed:\n"
                        + ("\n".join(self.lines) or "(nothing)")
                    )
                self._cond.wait(min(left, 0.5))

    def _finished(self) -> bool:
        """The process is gone and all its output has been read."""
        return self._reader is not None and not self._reader.is_alive()

    def count(self, text: str) -> int:
        with self._cond:
            return sum(1 for line in self.lines if text in line)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
