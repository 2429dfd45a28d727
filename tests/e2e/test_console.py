"""The web console in a real browser (Playwright driving Debian's chromium).

The AWS guide's console path: sign in, a thing group with two things, a job on it created in
the console with a rollout config (and its preview beside the form), two real paho-mqtt
devices run it, the Jobs page shows the progress move without a reload, the job page reaches
COMPLETED. Then the refusals: every console route without a session, a cross-site POST, a
POST without the CSRF token, a wrong secret, a new session id at every sign-in, and HTML/JS
brought in through descriptions, documents and status details rendered inert.

Screenshots of each page go to tests/e2e/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from e2elib.console import SESSION_COOKIE, console_url, session_cookie, shot, sign_in
from e2elib.identity import CA_FILE, CERT_FILE, KEY_FILE, DeviceIdentity, jobs_policy
from e2elib.mqtt import JobsDevice
from e2elib.util import eventually

GROUP = "console-fleet"
THINGS = ["console-device-1", "console-device-2"]
JOB_ID = "console-job-01"
DOCUMENT = {"operation": "customJob", "otherInfo": "someValue"}

# The fixtures (keys, browser, context, page) are in conftest.py; the helpers in e2elib.console.


def test_one_click_thing_with_certificate_connects(server, keys, page, arn_prefix, tmp_path):
    """Devices → create a thing with a certificate and an existing policy (the AWS console's
    one-click flow): the page offers the certificate, private key, public key and root CA for
    download; a paho device with exactly those files connects, and the thing page says so."""
    thing = "console-one-click"
    server.aws("create-policy", "--policy-name", "one-click-policy",
               "--policy-document", json.dumps(jobs_policy(arn_prefix, thing)))
    sign_in(page, server, keys)
    page.click("text=Devices")
    page.fill("input[name=thingName]", thing)
    page.fill("input[name=policyName]", "one-click-policy")
    page.click("text=Create thing")
    page.wait_for_selector("a[data-file=private-key]")
    shot(page, "08-thing-created")
    files = {}
    for kind in ("certificate", "private-key", "public-key", "root-ca"):
        with page.expect_download() as download:
            page.click(f"a[data-file={kind}]")
        files[kind] = Path(download.value.path()).read_text()
    assert files["private-key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert files["root-ca"] == server.root_ca.read_text()
    principals = server.aws("list-thing-principals", "--thing-name", thing)["principals"]
    assert len(principals) == 1
    assert server.aws("list-attached-policies", "--target", principals[0])["policies"][0]["policyName"] == \
        "one-click-policy"

    cert_dir = tmp_path / "one-click"
    cert_dir.mkdir()
    (cert_dir / CERT_FILE).write_text(files["certificate"])
    (cert_dir / KEY_FILE).write_text(files["private-key"])
    (cert_dir / CA_FILE).write_text(files["root-ca"])
    identity = DeviceIdentity(thing_name=thing, thing_arn=f"{arn_prefix}:thing/{thing}", cert_dir=cert_dir,
                              certificate_arn=principals[0], certificate_id=principals[0].rsplit("/", 1)[1],
                              policy_name="one-click-policy")
    device = JobsDevice(identity, server.mqtt_port, client_id=thing)
    device.connect()
    try:
        page.goto(console_url(server, f"/console/things/{thing}"))
        assert page.get_attribute("[data-connected]", "data-connected") == "yes"
    finally:
        device.close()

    # A second thing of the same name: the engine's error beside the form, no new certificate.
    certificates = len(server.aws("list-certificates")["certificates"])
    page.click("text=Devices")
    page.fill("input[name=thingName]", thing)
    page.click("text=Create thing")
    shot(page, "08-thing-exists")
    assert "ResourceAlreadyExists" in page.inner_text(".field-error")
    assert len(server.aws("list-certificates")["certificates"]) == certificates


# ----------------------------------------------------------------------------- the guide's path


def test_the_guides_console_path_live(server, keys, page, context, make_device, connect_device):
    aws = server.aws
    aws("update-event-configurations", "--event-configurations",
        json.dumps({"JOB": {"Enabled": True}, "JOB_EXECUTION": {"Enabled": True}}))
    aws("create-thing-group", "--thing-group-name", GROUP)
    identities = [make_device(t) for t in THINGS]
    for t in THINGS:
        aws("add-thing-to-thing-group", "--thing-group-name", GROUP, "--thing-name", t)
    # Client id = thing name, as the SDK samples do: the thing page's "Connected" goes by it.
    devices = [connect_device(i, client_id=i.thing_name) for i in identities]

    sign_in(page, server, keys)
    shot(page, "01-jobs-empty")

    # Create custom job: ID, description, the group as target, the document, snapshot,
    # a rollout rate; the preview beside the form counts the group's two things.
    page.click("text=Create job")
    page.wait_for_url("**/console/jobs/new")
    page.fill("input[name=job_id]", JOB_ID)
    page.fill("textarea[name=description]", "My first console job")
    page.fill("textarea[name=thing_groups]", GROUP)
    page.fill("textarea[name=document]", json.dumps(DOCUMENT))
    page.fill("input[name=max_per_minute]", "10")
    page.fill("input[name=timeout_minutes]", "30")
    page.wait_for_selector("#preview [data-things='2']")
    assert "Valid JSON object" in page.inner_text("#document-check")
    shot(page, "02-create-job")
    page.click("#create-form button[type=submit]")
    page.wait_for_url(f"**/console/jobs/{JOB_ID}")
    shot(page, "03-job-created")

    job = aws("describe-job", "--job-id", JOB_ID)["job"]
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert job["targets"] == [f"{identities[0].arn_prefix}:thinggroup/{GROUP}"]
    assert json.loads(aws("get-job-document", "--job-id", JOB_ID)["document"]) == DOCUMENT

    # The Jobs page, left open: it must follow the devices without a reload.
    page.goto(console_url(server))
    page.wait_for_selector("[data-live='open']")
    page.evaluate("window.__notReloaded = true")
    row = f"tr[data-job='{JOB_ID}']"
    assert page.inner_text(f"{row} .progress .count") == "0/2"
    # And the job's page in another tab, with its events as they happen.
    job_page = context.new_page()
    job_page.goto(console_url(server, f"/console/jobs/{JOB_ID}"))
    job_page.wait_for_selector("[data-live='open']")

    def run(device) -> None:
        execution = device.start_next(statusDetails={"step": "downloading"})["execution"]
        assert execution["jobId"] == JOB_ID
        assert execution["jobDocument"] == DOCUMENT
        device.update(JOB_ID, "SUCCEEDED", statusDetails={"step": "done"})

    eventually(lambda: _assert_executions(aws, 2), timeout=20)
    run(devices[0])
    expect(page.locator(f"{row} .progress .count")).to_have_text("1/2", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "04-jobs-progress")
    run(devices[1])
    page.wait_for_selector(f"{row} .badge.st-COMPLETED", timeout=15_000)
    assert page.inner_text(f"{row} .progress .count") == "2/2"
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "05-jobs-completed")

    job_page.wait_for_selector("#job-live .summary .badge.st-COMPLETED", timeout=15_000)
    for t in THINGS:
        assert job_page.inner_text(f"tr[data-thing='{t}'] .badge") == "SUCCEEDED"
    job_page.wait_for_selector(f"#job-events li[data-topic='$aws/events/job/{JOB_ID}/completed']", timeout=15_000)
    succeeded = job_page.locator(f"#job-events li[data-topic='$aws/events/jobExecution/{JOB_ID}/succeeded']")
    expect(succeeded).to_have_count(2, timeout=15_000)
    shot(job_page, "06-job-events")
    job_page.close()
    page.goto(console_url(server, f"/console/jobs/{JOB_ID}"))
    page.wait_for_selector("#job-live .summary .badge.st-COMPLETED")
    assert page.inner_text("[data-count=SUCCEEDED]") == "2"
    for t in THINGS:
        assert "done" in page.inner_text(f"tr[data-thing='{t}'] td.details")
    shot(page, "06-job-completed")
    # Devices: the group with its two things, and a thing's page with its execution.
    page.click("text=Devices")
    assert page.inner_text(f"tr[data-group='{GROUP}'] td:nth-child(2)").startswith("2")
    assert GROUP in page.inner_text(f"tr[data-thing='{THINGS[0]}']")
    shot(page, "07-devices")
    page.click(f"tr[data-thing='{THINGS[0]}'] a")
    page.wait_for_url(f"**/console/things/{THINGS[0]}")
    assert "SUCCEEDED" in page.inner_text(f"tr[data-job='{JOB_ID}']")
    assert identities[0].certificate_arn in page.inner_text("main")
    assert page.get_attribute("[data-connected]", "data-connected") == "yes"
    shot(page, "07-thing")
    # The device goes away: its thing page says so.
    devices[0].close()

    def shows_disconnected():
        page.reload()
        assert page.get_attribute("[data-connected]", "data-connected") == "no"

    eventually(shows_disconnected)
    page.goto(console_url(server, f"/console/jobs/{JOB_ID}"))
    # The same pages on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "06-job-completed-phone")
    page.goto(console_url(server))
    page.wait_for_selector(f"{row} .badge.st-COMPLETED")
    shot(page, "05-jobs-phone")
    assert page.dialogs == []


def _assert_executions(aws, n: int) -> None:
    summaries = aws("list-job-executions-for-job", "--job-id", JOB_ID)["executionSummaries"]
    assert len(summaries) == n, summaries


def test_a_job_page_follows_its_executions_and_cancels(server, keys, page, make_device, connect_device, create_job):
    identity = make_device("console-live-1")
    device = connect_device(identity)
    create_job("console-live-job", [identity.thing_name], {"operation": "wait"})
    sign_in(page, server, keys)
    page.goto(console_url(server, "/console/jobs/console-live-job"))
    page.wait_for_selector("[data-live='open']")
    page.evaluate("window.__notReloaded = true")
    device.start_next(statusDetails={"progress": "42%"})
    page.wait_for_selector("tr[data-thing='console-live-1'] .badge.st-IN_PROGRESS", timeout=15_000)
    assert "42%" in page.inner_text("tr[data-thing='console-live-1'] td.details")
    assert page.evaluate("window.__notReloaded") is True
    # Cancel with force: the IN_PROGRESS execution is canceled too.
    page.check("form[action$='/cancel'] input[name=force]")
    page.click("form[action$='/cancel'] button[type=submit]")
    page.wait_for_selector("#job-live .summary .badge.st-CANCELED")
    eventually(lambda: _assert_status(server, "console-live-job", "CANCELED"))
    shot(page, "07-job-canceled")
    page.check("form[action$='/delete'] input[name=force]")
    page.click("form[action$='/delete'] button[type=submit]")
    page.wait_for_url("**/console/jobs")
    eventually(lambda: _assert_gone(server, "console-live-job"), timeout=20)


def _assert_status(server, job_id: str, status: str) -> None:
    assert server.aws("describe-job", "--job-id", job_id)["job"]["status"] == status


def _assert_gone(server, job_id: str) -> None:
    err = server.aws_error("describe-job", "--job-id", job_id)
    assert err.code == "ResourceNotFoundException", err


def test_the_create_form_shows_the_engines_errors_inline(server, keys, page):
    sign_in(page, server, keys)
    page.goto(console_url(server, "/console/jobs/new"))
    page.fill("input[name=job_id]", "bad-doc-job")
    page.fill("textarea[name=things]", "no-such-thing-here")
    page.fill("textarea[name=document]", "[1, 2]")
    assert "must be a JSON object" in page.inner_text("#document-check")
    page.fill("textarea[name=document]", "{}")
    page.click("#create-form button[type=submit]")
    error = page.inner_text(".field-error")
    assert "ResourceNotFoundException" in error and "no-such-thing-here" in error
    # The fields keep what was typed.
    assert page.input_value("input[name=job_id]") == "bad-doc-job"
    shot(page, "08-create-error")


def test_the_preview_follows_an_exponential_rollout(server, keys, page):
    sign_in(page, server, keys)
    page.goto(console_url(server, "/console/jobs/new"))
    page.fill("textarea[name=things]", "p1 p2 p3 p4 p5 p6 p7")
    page.wait_for_selector("#preview [data-things='7'][data-batches='1']")
    page.check("input[name=rollout_kind][value=exponential]")
    page.fill("input[name=max_per_minute]", "100")
    page.fill("input[name=base_rate]", "1")
    page.fill("input[name=increment_factor]", "2")
    page.fill("input[name=increase_threshold]", "3")
    # 1 a minute, doubled after every 3 notified things: 1, 1, 2, 3 (the same rules and
    # numbers as `fleetjobs rollout-preview`).
    page.wait_for_selector("#preview [data-things='7']:not([data-batches='1'])")
    batches = int(page.get_attribute("#preview [data-things='7']", "data-batches"))
    assert batches > 1
    rates = page.locator("#preview table.preview tbody tr td:nth-child(5)").all_inner_texts()
    assert rates == ["1", "1", "2", "4"], rates
    assert page.locator("#preview table.preview tbody tr td:nth-child(4)").all_inner_texts()[-1] == "7"
    shot(page, "02-create-job-exponential")


# ----------------------------------------------------------------------------- refusals


ROUTES = [
    ("GET", "/console/jobs"),
    ("GET", "/console/jobs?status=COMPLETED&q=x"),
    ("GET", "/console/jobs/new"),
    ("GET", f"/console/jobs/{JOB_ID}"),
    ("GET", "/console/jobs/events"),
    ("GET", f"/console/jobs/{JOB_ID}/events"),
    ("GET", f"/console/jobs/{JOB_ID}/things/{THINGS[0]}?number=1"),
    ("GET", f"/console/jobs/{JOB_ID}/things/{THINGS[0]}/events?number=1"),
    ("GET", "/console/jobs/targets?q=t"),
    ("GET", "/console/jobs/template-fields?template=x"),
    ("GET", "/console/jobs/check-id?job_id=x"),
    ("GET", "/console/anything"),
    ("POST", "/console/jobs/new"),
    ("POST", "/console/jobs/preview"),
    ("POST", f"/console/jobs/{JOB_ID}/cancel"),
    ("POST", f"/console/jobs/{JOB_ID}/delete"),
    ("POST", "/console/signout"),
    ("GET", "/console/things"),
    ("GET", f"/console/things/{THINGS[0]}"),
    ("POST", "/console/things/new"),
    ("GET", "/console/test"),
    ("GET", "/console/test/events?filters=%23"),
    ("POST", "/console/test/publish"),
]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _request(server, method: str, path: str, headers: dict | None = None, data: bytes | None = None):
    req = urllib.request.Request(console_url(server, path), method=method, headers=headers or {},
                                 data=data if method == "POST" else None)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_console_route_refuses_strangers(server, method, path):
    body = b"csrf=x&job_id=stranger-job&things=a&document=%7B%7D"
    status, headers = _request(server, method, path, {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert status == 303 and headers.get("location") == "/console/signin", (status, headers)
    for script in ({"HX-Request": "true"}, {"Accept": "text/event-stream"}):
        status, _ = _request(server, method, path, {**script, "Content-Type": "application/x-www-form-urlencoded"}, body)
        assert status == 401, (path, script, status)
    # Forged or stale session ids are strangers too.
    status, _ = _request(server, method, path, {"Cookie": f"{SESSION_COOKIE}=0123abcd"}, body)
    assert status == 303


def test_a_wrong_secret_gets_no_session(server, keys, page, context):
    page.goto(console_url(server, "/console/signin"))
    page.fill("input[name=access_key_id]", keys[0])
    page.fill("input[name=secret_access_key]", keys[1] + "x")
    page.click("button[type=submit]")
    assert "Wrong access key ID or secret access key." in page.inner_text("[role=alert]")
    assert session_cookie(context) is None
    page.goto(console_url(server))
    assert page.url.endswith("/console/signin")
    shot(page, "00-signin-refused")


def test_each_sign_in_gets_a_new_session_id(server, keys, page, context):
    # A session id planted before sign-in (fixation) is never the one signed in.
    context.add_cookies([{"name": SESSION_COOKIE, "value": "planted-by-an-attacker", "url": server.endpoint_url}])
    sign_in(page, server, keys)
    first = session_cookie(context)
    assert first and first != "planted-by-an-attacker"
    cookie = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Sign-out ends the session: its id no longer opens a page.
    page.click("header .signout button")
    page.wait_for_url("**/console/signin")
    status, _ = _request(server, "GET", "/console/jobs", {"Cookie": f"{SESSION_COOKIE}={first}"})
    assert status == 303
    sign_in(page, server, keys)
    second = session_cookie(context)
    assert second and second != first


def test_a_live_page_goes_to_sign_in_once_its_session_ends(server, keys, page, context):
    sign_in(page, server, keys)
    page.wait_for_selector("[data-live='open']")
    other_tab = context.new_page()
    other_tab.goto(console_url(server, "/console/things"))
    other_tab.click("header .signout button")
    other_tab.wait_for_url("**/console/signin")
    # The next change ends the stream of the ended session; the page finds itself signed out.
    server.aws("create-thing", "--thing-name", "after-sign-out")
    page.wait_for_url("**/console/signin", timeout=20_000)


def test_posts_need_the_csrf_token_and_cross_site_forms_fail(server, keys, page, context, browser):
    sign_in(page, server, keys)
    server.aws("create-thing", "--thing-name", "csrf-target")
    session = session_cookie(context)
    form = "job_id=csrf-job&things=csrf-target&document=%7B%7D"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"{SESSION_COOKIE}={session}"}
    # With the session cookie but no token, a wrong one, or from another origin: 403.
    for extra, hdrs in (("", {}), ("&csrf=guess", {}), ("&csrf=", {"Origin": "http://evil.example"})):
        status, _ = _request(server, "POST", "/console/jobs/new", {**headers, **hdrs}, (form + extra).encode())
        assert status == 403, (extra, hdrs, status)
    # A page of another origin auto-submits a form to the console in the signed-in browser:
    # SameSite=Strict keeps the cookie home, its Origin is not ours, and it has no token.
    attacker = context.new_page()
    port = server.http_port
    attacker.set_content(
        f"<form id=f method=post action='http://127.0.0.1:{port}/console/jobs/new'>"
        "<input name=job_id value=csrf-job><input name=things value=csrf-target>"
        "<input name=document value='{}'></form>")
    attacker.evaluate("document.getElementById('f').submit()")
    attacker.wait_for_load_state()
    assert "/console/jobs/csrf-job" not in attacker.url
    err = server.aws_error("describe-job", "--job-id", "csrf-job")
    assert err.code == "ResourceNotFoundException"


def test_html_and_scripts_in_data_are_rendered_inert(server, keys, page, make_device, connect_device, create_job):
    # Thing names cannot carry markup: the API refuses them by their pattern.
    err = server.aws_error("create-thing", "--thing-name", "<img src=x onerror=alert(1)>")
    assert err.code == "InvalidRequestException"
    identity = make_device("inert-device")
    device = connect_device(identity)
    description = "<script>window.__pwned='description'</script><b>bold?</b>"
    document = {"html": "</pre><img src=x onerror=\"window.__pwned='document'\"><script>alert('doc')</script>"}
    create_job("inert-job", [identity.thing_name], document, "--description", description)
    device.start_next(statusDetails={"note": "<img src=x onerror=\"window.__pwned='details'\">"})

    sign_in(page, server, keys)
    for path in ("/console/jobs", "/console/jobs?q=script", "/console/jobs/inert-job"):
        page.goto(console_url(server, path))
        page.wait_for_load_state()
        assert page.evaluate("window.__pwned") is None, path
        assert page.query_selector("main b") is None, path
        assert "<script>window.__pwned='description'</script>" in page.inner_text("main"), path
    assert "onerror=\"window.__pwned='details'\"" in page.inner_text("tr[data-thing='inert-device'] td.details")
    assert "alert('doc')" in page.inner_text("pre.code")
    shot(page, "09-inert")
    assert page.dialogs == []


# ----------------------------------------------------------------------------- MQTT test client


def test_the_mqtt_test_client_sees_events_and_publishes(
        server, keys, page, make_device, connect_device, create_job, arn_prefix):
    from e2elib.identity import jobs_policy

    server.aws("update-event-configurations", "--event-configurations",
               json.dumps({"JOB": {"Enabled": True}, "JOB_EXECUTION": {"Enabled": True}}))
    identity = make_device("mqtt-client-dev", jobs_policy(arn_prefix, "mqtt-client-dev", ("testTopic",)))
    device = connect_device(identity)
    device.subscribe_ok("testTopic")

    sign_in(page, server, keys)
    page.click("text=MQTT test client")
    page.fill("textarea[name=filters]", "$aws/events/#\ntestTopic")
    page.click("form.subscribe button[type=submit]")
    page.wait_for_selector("[data-live='open']")

    # The guide's last step: the succeeded event of the job's execution, live.
    create_job("mqtt-client-job", [identity.thing_name], {"operation": "customJob"})
    device.start_next()
    device.update("mqtt-client-job", "SUCCEEDED")
    succeeded = "li[data-topic='$aws/events/jobExecution/mqtt-client-job/succeeded']"
    page.wait_for_selector(succeeded, timeout=15_000)
    assert '"status": "SUCCEEDED"' in page.inner_text(f"{succeeded} pre")
    page.wait_for_selector("li[data-topic='$aws/events/job/mqtt-client-job/completed']", timeout=15_000)

    # A device's publish arrives too; and a publish from the page reaches the device.
    device.publish("testTopic", {"from": "device"})
    page.wait_for_selector("li[data-topic='testTopic']", timeout=15_000)
    since = device.mark()
    page.fill("input[name=topic]", "testTopic")
    page.fill("textarea[name=payload]", json.dumps({"from": "console"}))
    page.click("form.publish button[type=submit]")
    page.wait_for_selector("#publish-result [role=status]")
    assert "queued for 1 subscriber" in page.inner_text("#publish-result")
    message = device.wait_topic("testTopic", since=since)
    assert message.json == {"from": "console"}
    # Published in place: the log is still there, and shows the console's own message.
    page.wait_for_selector("li[data-topic='testTopic'] >> text=console", timeout=15_000)
    assert page.query_selector(succeeded) is not None
    shot(page, "10-mqtt-test-client")
    assert page.dialogs == []
