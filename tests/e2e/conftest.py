"""Fixtures for the Fleetjobs end-to-end tests.

* ``fleetjobs_bin`` (session): the server binary ($FLEETJOBS_BIN, else ``cargo build -p fleetjobs``).
* ``server`` (module): a ``fleetjobs serve`` in a fresh temp data dir on free ports, its
  output in a log file. The part of the log written during a failed test is attached
  to that test's report.
* ``aws`` / ``expect_error``: the real AWS CLI against ``server``.
* ``make_device``: thing + ACTIVE certificate + policy, cert dir laid out for the JS SDK.
* ``connect_device`` / ``connect_watcher``: paho-mqtt clients, closed after the test.
* ``create_job``: ``aws iot create-job`` with a document written to a file (file://).
* ``keys`` / ``browser`` / ``context`` / ``page``: the console's admin keys and Playwright
  over Debian's chromium (helpers in ``e2elib.console``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2elib.identity import DeviceIdentity, arn_prefix_of, create_device, events_watcher_policy
from e2elib.mqtt import JobsDevice, MqttClient
from e2elib.server import FleetjobsServer, locate_binary, start_server

_LOG_MARKS = pytest.StashKey[dict]()


# ----------------------------------------------------------------------------- reporting


def pytest_runtest_setup(item):
    # Remember where each live server's log stands, so a failure shows only its own part.
    item.stash[_LOG_MARKS] = {id(s): s.log_size() for s in FleetjobsServer.instances}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        marks = item.stash.get(_LOG_MARKS, {})
        for srv in FleetjobsServer.instances:
            offset = marks.get(id(srv), 0)
            if srv.log_size() > offset or srv.unexpected_exit is not None:
                report.sections.append(
                    (f"fleetjobs server log ({srv.name}: {srv.log_path})", srv.log_since(offset))
                )
    return report


# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def fleetjobs_bin() -> Path:
    try:
        return locate_binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def server(fleetjobs_bin, tmp_path_factory, request):
    """One server per test module (modules do not share state)."""
    name = re.sub(r"\W", "_", request.module.__name__)
    srv = start_server(fleetjobs_bin, tmp_path_factory.mktemp(name), name)
    yield srv
    alive = srv.running()
    srv.stop()
    if not alive:
        pytest.fail(f"fleetjobs serve died during {request.module.__name__} (exit {srv.proc.returncode})\n"
                    f"{srv.log_tail()}", pytrace=False)


@pytest.fixture
def own_server(fleetjobs_bin, tmp_path, request):
    """A server of the test's own, for tests that kill or restart it."""
    srv = start_server(fleetjobs_bin, tmp_path / "own-server", re.sub(r"\W", "_", request.node.name))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _server_still_alive(request):
    """After each test: the module's server (if any) must not have crashed."""
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").check_alive()


@pytest.fixture
def aws(server):
    """``aws("create-thing", "--thing-name", "X") -> dict`` (raises CliError on failure)."""
    return server.aws


@pytest.fixture
def expect_error(server):
    """``expect_error("ResourceNotFoundException", "describe-job", "--job-id", "x")``."""
    return server.expect_error


@pytest.fixture(scope="module")
def arn_prefix(server) -> str:
    """``arn:aws:iot:REGION:ACCOUNT`` as the server spells ARNs (from a throwaway thing)."""
    out = server.aws("create-thing", "--thing-name", "arn-probe")
    return arn_prefix_of(out["thingArn"])


# ----------------------------------------------------------------------------- devices


@pytest.fixture
def make_device(server, tmp_path):
    """``make_device("thing-1", policy_doc=None) -> DeviceIdentity``."""

    def make(thing_name: str, policy_doc: dict | None = None, **kw) -> DeviceIdentity:
        return create_device(server, thing_name, tmp_path / f"certs-{thing_name}", policy_doc, **kw)

    return make


@pytest.fixture
def connect_device(server):
    """``connect_device(identity) -> JobsDevice`` connected and subscribed to notify(-next)."""
    clients: list[MqttClient] = []

    def connect(identity: DeviceIdentity, subscribe: bool = True, client_id: str | None = None) -> JobsDevice:
        dev = JobsDevice(identity, server.mqtt_port, client_id)
        clients.append(dev)
        dev.connect()
        if subscribe:
            dev.subscribe_jobs()
        return dev

    yield connect
    for c in clients:
        c.close()


@pytest.fixture
def connect_watcher(server, tmp_path, arn_prefix):
    """``connect_watcher(name, *topic_filters) -> MqttClient``: its own thing, certificate
    and a policy allowing ``$aws/events/*``; subscribed to the filters."""
    clients: list[MqttClient] = []

    def connect(name: str, *topic_filters: str) -> MqttClient:
        identity = create_device(server, name, tmp_path / f"certs-{name}", events_watcher_policy(arn_prefix))
        client = MqttClient(identity, server.mqtt_port)
        clients.append(client)
        client.connect()
        for f in topic_filters:
            client.subscribe_ok(f)
        return client

    yield connect
    for c in clients:
        c.close()


# ----------------------------------------------------------------------------- jobs


@pytest.fixture
def create_job(server, arn_prefix):
    """``create_job(job_id, [thing names], document_dict, *extra_cli_args) -> dict``."""

    def create(job_id: str, things: list[str], document: dict | None = None, *extra: str) -> dict:
        document = document if document is not None else {"operation": "test", "job": job_id}
        doc_file = server.write_file(f"jobs/{job_id}.json", json.dumps(document))
        targets = [f"{arn_prefix}:thing/{t}" for t in things]
        return server.aws(
            "create-job", "--job-id", job_id, "--targets", *targets,
            "--document", f"file://{doc_file}", *extra,
        )

    return create



# ----------------------------------------------------------------------------- the web console


@pytest.fixture(scope="module")
def keys(server) -> tuple[str, str]:
    """The admin access key id and secret from the data directory's credentials file."""
    from e2elib.console import admin_keys

    return admin_keys(server)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from e2elib.console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    """A page whose own confirm() dialogs (destructive forms) are accepted; any other dialog
    (an injected alert()) is recorded in ``page.dialogs``, so that a test can fail on it."""
    pg = context.new_page()
    dialogs: list[str] = []

    def on_dialog(d):
        if d.type == "confirm" and d.message.endswith("?"):
            d.accept()
        else:
            dialogs.append(d.message)
            d.dismiss()

    pg.on("dialog", on_dialog)
    pg.dialogs = dialogs
    return pg
