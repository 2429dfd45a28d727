"""The console's job, execution and device pages in a real browser, and its one-time sign-in
link.

- The job page's chart of execution statuses over time, drawn from a job two paho devices
  run (its first sample all QUEUED, a later one IN_PROGRESS, the last all SUCCEEDED).
- The executions table: filtered by status, 25 a page, next and previous pages.
- An execution's page: the statusDetails the device sent, its times, version and number,
  kept current while the device works; markup in statusDetails stays text.
- Devices: the thing-group tree (a child group under its parent, a grandchild under it), and
  a thing's page listing the policy attached to its certificate.
- The sign-in link `fleetjobs serve` prints: fetching it (a mail scanner, a link preview)
  spends nothing; its button signs in once (a fresh session); it is refused the second time.

Screenshots go to tests/e2e/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import urllib.request

from playwright.sync_api import expect

from e2elib.console import console_url, session_cookie, shot, sign_in, signin_link

PAGE_SIZE = 25


def _last_sample(page):
    return page.locator("#job-live svg.history rect.sample").last


def test_the_chart_follows_two_devices_and_rows_open_their_execution(
        server, keys, page, context, make_device, connect_device, create_job):
    job_id = "chart-job"
    identities = [make_device(t) for t in ("chart-dev-1", "chart-dev-2")]
    devices = [connect_device(i) for i in identities]
    create_job(job_id, [i.thing_name for i in identities], {"operation": "chart"})

    sign_in(page, server, keys)
    page.goto(console_url(server, f"/console/jobs/{job_id}"))
    page.wait_for_selector("[data-live='open']")
    page.evaluate("window.__notReloaded = true")
    assert page.get_attribute("#job-live figure.history", "data-samples") == "96"
    expect(_last_sample(page)).to_have_attribute("data-queued", "2")

    # Each step is seen on the live chart before the next one, so that each lasts a while.
    devices[0].start_next(statusDetails={"step": "downloading"})
    expect(_last_sample(page)).to_have_attribute("data-in-progress", "1", timeout=15_000)
    devices[1].start_next(statusDetails={"step": "downloading"})
    expect(_last_sample(page)).to_have_attribute("data-in-progress", "2", timeout=15_000)
    shot(page, "11-job-chart-in-progress")
    note = "<img src=x onerror=\"window.__pwned='execution'\"><script>window.__pwned='s'</script>"
    devices[0].update(job_id, "SUCCEEDED", statusDetails={"step": "done", "note": note})
    expect(_last_sample(page)).to_have_attribute("data-succeeded", "1", timeout=15_000)
    # The second device's execution page, left open, follows it without a reload.
    execution_page = context.new_page()
    execution_page.goto(console_url(server, f"/console/jobs/{job_id}/things/chart-dev-2"))
    execution_page.wait_for_selector("[data-live='open']")
    execution_page.evaluate("window.__notReloaded = true")
    assert execution_page.get_attribute("dd[data-status]", "data-status") == "IN_PROGRESS"
    assert "downloading" in execution_page.inner_text("dl.status-details")
    devices[1].update(job_id, "SUCCEEDED", statusDetails={"step": "done"})
    execution_page.wait_for_selector("dd[data-status=SUCCEEDED]", timeout=15_000)
    assert "done" in execution_page.inner_text("dl.status-details")
    assert execution_page.evaluate("window.__notReloaded") is True
    execution_page.close()
    page.wait_for_selector("#job-live .summary .badge.st-COMPLETED", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True

    samples = page.locator("#job-live svg.history rect.sample")
    expect(samples).to_have_count(96)
    series = samples.evaluate_all(
        "els => els.map(e => ['total', 'queued', 'in-progress', 'succeeded']"
        ".map(k => Number(e.getAttribute('data-' + k))))")
    assert series[0] == [2, 2, 0, 0], series[:3]
    assert series[-1] == [2, 0, 0, 2], series[-3:]
    assert any(s[2] >= 1 for s in series), "an IN_PROGRESS stretch is drawn"
    assert all(s[0] == 2 for s in series), "two executions all along"
    for status in ("SUCCEEDED", "IN_PROGRESS", "QUEUED"):
        assert page.locator(f"#job-live polygon.band[data-status={status}]").count() == 1, status
    assert page.inner_text("[data-count=SUCCEEDED]") == "2"
    shot(page, "12-job-chart-completed")

    # A row opens its execution: what the device sent, as text.
    page.click("tr[data-thing='chart-dev-1'] td.id a")
    page.wait_for_url(f"**/console/jobs/{job_id}/things/chart-dev-1?number=1")
    details = page.inner_text("dl.status-details")
    assert "done" in details and note in details, details
    assert page.evaluate("window.__pwned") is None
    assert page.query_selector("dl.status-details img") is None
    assert page.inner_text("[data-field=executionNumber]") == "1"
    assert page.inner_text("[data-field=retryAttempt]") == "0"
    described = server.aws("describe-job-execution", "--job-id", job_id, "--thing-name", "chart-dev-1")["execution"]
    assert page.inner_text("[data-field=versionNumber]") == str(described["versionNumber"])
    assert page.get_attribute("dd[data-status]", "data-status") == "SUCCEEDED"
    assert page.locator("time").count() >= 3, "queued, started, last updated"
    shot(page, "13-execution")
    assert page.dialogs == []

    # An execution that does not exist: the engine's answer, 404.
    response = page.goto(console_url(server, f"/console/jobs/{job_id}/things/chart-dev-1?number=7"))
    assert response.status == 404
    assert "ResourceNotFoundException" in page.inner_text("main")


def test_executions_are_filtered_by_status_and_paged_both_ways(server, keys, page, arn_prefix):
    job_id = "paged-job"
    things = [f"paged-{i:02}" for i in range(30)]
    iot = server.boto3_client()
    for t in things:
        iot.create_thing(thingName=t)
    server.aws("create-job", "--job-id", job_id, "--targets", *[f"{arn_prefix}:thing/{t}" for t in things],
               "--document", '{"operation": "paged"}')
    for t in things[:2]:
        server.aws("cancel-job-execution", "--job-id", job_id, "--thing-name", t)

    sign_in(page, server, keys)
    page.goto(console_url(server, f"/console/jobs/{job_id}"))
    rows = page.locator("table.executions tbody tr[data-thing]")
    expect(rows).to_have_count(PAGE_SIZE)
    assert page.query_selector(".pager a.previous") is None
    first_page = rows.evaluate_all("els => els.map(e => e.getAttribute('data-thing'))")

    page.click(".pager a.next")
    expect(rows).to_have_count(30 - PAGE_SIZE)
    second_page = rows.evaluate_all("els => els.map(e => e.getAttribute('data-thing'))")
    assert sorted(first_page + second_page) == things, "every execution once"
    assert page.query_selector(".pager a.next") is None
    shot(page, "14-executions-page-2")
    page.click(".pager a.previous")
    expect(rows).to_have_count(PAGE_SIZE)
    assert rows.evaluate_all("els => els.map(e => e.getAttribute('data-thing'))") == first_page

    # The filter: the two canceled, then the 28 queued over two pages.
    page.select_option("select[name=status]", "CANCELED")
    page.wait_for_url("**status=CANCELED**")
    expect(rows).to_have_count(2)
    assert {r.get_attribute("data-thing") for r in rows.all()} == set(things[:2])
    assert all("CANCELED" in r.inner_text() for r in rows.all())
    assert page.query_selector(".pager a.next") is None
    shot(page, "15-executions-filtered")
    page.select_option("select[name=status]", "QUEUED")
    page.wait_for_url("**status=QUEUED**")
    expect(rows).to_have_count(PAGE_SIZE)
    page.click(".pager a.next")
    expect(rows).to_have_count(28 - PAGE_SIZE)
    assert "status=QUEUED" in page.url
    assert all("QUEUED" in r.inner_text() for r in rows.all())
    # The live stream of a later page keeps to that page.
    page.wait_for_selector("[data-live='open']")
    server.aws("cancel-job-execution", "--job-id", job_id, "--thing-name", things[2])
    expect(rows).to_have_count(28 - PAGE_SIZE - 1, timeout=15_000)


def test_the_group_tree_nests_children_and_a_thing_shows_its_policy(server, keys, page, make_device):
    aws = server.aws
    aws("create-thing-group", "--thing-group-name", "tree-root")
    aws("create-thing-group", "--thing-group-name", "tree-child", "--parent-group-name", "tree-root")
    aws("create-thing-group", "--thing-group-name", "tree-grandchild", "--parent-group-name", "tree-child")
    aws("create-thing-group", "--thing-group-name", "tree-other-root")
    identity = make_device("tree-device")
    aws("add-thing-to-thing-group", "--thing-group-name", "tree-child", "--thing-name", identity.thing_name)
    # Names cannot carry markup: the API refuses it by the names' patterns.
    assert server.aws_error("create-thing-group", "--thing-group-name", "<b>x</b>").code == "InvalidRequestException"
    assert server.aws_error("create-policy", "--policy-name", "<img src=x>", "--policy-document",
                            '{"Version": "2012-10-17", "Statement": []}').code == "InvalidRequestException"

    sign_in(page, server, keys)
    page.goto(console_url(server, "/console/things"))
    groups = page.locator("tbody.tree tr[data-group]")
    order = groups.evaluate_all(
        "els => els.map(e => [e.getAttribute('data-group'), e.getAttribute('data-parent'), e.getAttribute('data-depth')])")
    names = [o[0] for o in order]
    assert ["tree-root", None, "0"] in order and ["tree-other-root", None, "0"] in order
    assert ["tree-child", "tree-root", "1"] in order
    assert ["tree-grandchild", "tree-child", "2"] in order
    # Each child right under its parent, depth first.
    assert names.index("tree-child") == names.index("tree-root") + 1
    assert names.index("tree-grandchild") == names.index("tree-child") + 1
    assert page.inner_text("tr[data-group='tree-child'] td:nth-child(2)").startswith("1")
    assert "tree-device" in page.inner_text("tr[data-group='tree-child']")
    shot(page, "16-group-tree")

    page.goto(console_url(server, f"/console/things/{identity.thing_name}"))
    policy = page.locator(f"ul.policies li[data-policy='{identity.policy_name}']")
    expect(policy).to_have_count(1)
    assert identity.certificate_id[:10] in policy.inner_text()
    shot(page, "17-thing-policies")
    # A thing without certificates has no policies, and says so.
    server.aws("create-thing", "--thing-name", "tree-bare")
    page.goto(console_url(server, "/console/things/tree-bare"))
    assert page.locator("ul.policies li[data-policy]").count() == 0
    assert "None" in page.inner_text("ul.policies")


def test_the_printed_sign_in_link_signs_in_once(server, browser):
    link = signin_link(server)
    # Fetched first by something that is not the person (a mail scanner): it shows whom the
    # link signs in, sets no session, and spends nothing.
    with urllib.request.urlopen(link, timeout=10) as r:
        assert r.status == 200
        assert server.credentials()[0] in r.read().decode()
        assert "fleetjobs_session" not in (r.headers.get("Set-Cookie") or "")
    first = browser.new_context()
    second = browser.new_context()
    try:
        # A session id planted before is not the one signed in (fixation).
        first.add_cookies([{"name": "fleetjobs_session", "value": "planted", "url": server.endpoint_url}])
        page = first.new_page()
        page.goto(link)
        assert session_cookie(first) == "planted", "opening the link signs nobody in"
        shot(page, "18-sign-in-link")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/console/jobs")
        session = session_cookie(first)
        assert session and session != "planted"
        assert "Sign out" in page.inner_text("header")
        shot(page, "18-signed-in-by-link")

        # The same link again, from another browser: refused, no session.
        other = second.new_page()
        response = other.goto(link)
        assert response.status == 401
        assert "already used or has expired" in other.inner_text("[role=alert]")
        assert session_cookie(second) is None
        other.goto(console_url(server))
        assert other.url.endswith("/console/signin")
        shot(other, "18-sign-in-link-refused")
        # And from the first browser too (it stays signed in with its session, not the link).
        page.goto(link)
        assert "already used or has expired" in page.inner_text("[role=alert]")

        # A made-up token is refused alike.
        response = other.goto(console_url(server, "/console/signin?token=" + "0" * 64))
        assert response.status == 401
        page.goto(console_url(server))
        assert page.url.endswith("/console/jobs"), "the first browser's session lives on"
    finally:
        first.close()
        second.close()
