"""The web console in a browser: Playwright over Debian's chromium, and the steps every
console test shares (sign in, screenshots, the session cookie). The fixtures (``keys``,
``browser``, ``context``, ``page``) are in conftest.py."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from .util import E2E_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = E2E_DIR / "artifacts" / "console"
SESSION_COOKIE = "fleetjobs_session"
#: The banner line of ``fleetjobs serve`` with the one-time sign-in link.
SIGNIN_LINK_RE = re.compile(r"^\s*Sign-in link (?P<url>http://\S+/console/signin\?token=(?P<token>[0-9a-f]{64}))\s",
                            re.MULTILINE)


def admin_keys(server) -> tuple[str, str]:
    """The admin access key id and secret from the data directory's credentials file."""
    parser = configparser.ConfigParser()
    parser.read(server.credentials_file)
    section = parser["default"]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


def console_url(server, path: str = "/console/jobs") -> str:
    return f"{server.endpoint_url}{path}"


def sign_in(page, server, keys) -> None:
    page.goto(console_url(server, "/console/signin"))
    page.fill("input[name=access_key_id]", keys[0])
    page.fill("input[name=secret_access_key]", keys[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/console/jobs")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def session_cookie(context) -> str | None:
    for c in context.cookies():
        if c["name"] == SESSION_COOKIE:
            return c["value"]
    return None


def signin_link(server) -> str:
    """The one-time sign-in link ``fleetjobs serve`` printed at start (from its log)."""
    found = SIGNIN_LINK_RE.findall(server.log_since(0, limit=10_000_000))
    assert found, f"no sign-in link in the server's output\n{server.log_tail()}"
    return found[-1][0]
