"""Small shared helpers: paths, polling, timestamps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

E2E_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = E2E_DIR.parent.parent

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.2) -> T:
    """Call ``check`` until it returns without raising AssertionError.

    Some effects are asynchronous by design (AWS calls DeleteJob "eventually
    consistent"; events and notifications travel through the broker), so tests
    poll for them instead of sleeping a fixed time. The last AssertionError is
    re-raised when the time is up.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def now_s() -> float:
    return time.time()


def assert_epoch_seconds(value, what: str, slack: float = 600.0) -> None:
    """``value`` is a timestamp in epoch seconds close to now."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{what}: {value!r} is not a number"
    assert abs(value - now_s()) < slack, f"{what}: {value!r} is not epoch seconds near now ({now_s():.0f})"


def assert_epoch_millis(value, what: str, slack: float = 600.0) -> None:
    """``value`` is a timestamp in epoch milliseconds close to now (AWS event payloads)."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{what}: {value!r} is not a number"
    assert abs(value / 1000.0 - now_s()) < slack, f"{what}: {value!r} is not epoch milliseconds near now"
