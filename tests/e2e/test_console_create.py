"""The console's Create job form with all of the AWS form's fields, in a real browser
(Playwright driving Debian's chromium), each checked through the real AWS CLI:
abort criteria, retries, timeout, scheduling with a maintenance window and presigned URLs
become the job's configs; a managed template with its parameters; a document from an S3
(moto_server, as test_document_sources uses it) or http URL; targets picked from a search of
things and thing groups; the job ID checked as it is typed; a bad value shown inline as the
engine's AWS-shaped error, with no job made.

Screenshots go to tests/e2e/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from e2elib.server import start_server
# The browser fixtures and helpers of the console's own tests (names only: not its tests).
from e2elib.console import SESSION_COOKIE, console_url, shot, sign_in
from test_console import _request
from test_document_sources import BUCKET, KEYS, moto  # noqa: F401
from test_document_sources import DOCUMENT as S3_DOCUMENT

HTTP_DOCUMENT = {"operation": "fromConsoleUrl"}


@pytest.fixture(scope="module")
def server(fleetjobs_bin, tmp_path_factory, moto):  # noqa: F811
    """A server that reads S3 document sources from moto_server."""
    srv = start_server(fleetjobs_bin, tmp_path_factory.mktemp("console_create"), "test_console_create",
                       extra_args=("--s3-endpoint", moto), extra_env=KEYS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http_documents():
    """A plain http server with one job document at /job.json."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/job.json":
                self.send_error(404)
                return
            body = json.dumps(HTTP_DOCUMENT).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def ahead(days: int) -> str:
    """A `datetime-local` value (UTC, minutes), `days` from now."""
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def open_form(page, server, keys) -> None:
    sign_in(page, server, keys)
    page.goto(console_url(server, "/console/jobs/new"))


def submit(page) -> None:
    page.click("#create-form button[type=submit]")


def test_abort_retry_timeout_scheduling_and_a_window_become_the_jobs_configs(server, keys, page):
    aws = server.aws
    aws("create-thing", "--thing-name", "form-thing-1")
    start, end = ahead(2), ahead(9)
    open_form(page, server, keys)
    page.fill("input[name=job_id]", "console-full-config")
    page.wait_for_selector("#job-id-check [data-job-id=free]")
    page.fill("textarea[name=things]", "form-thing-1")
    page.fill("textarea[name=document]", json.dumps({"operation": "configured"}))
    page.fill("input[name=max_per_minute]", "20")
    page.fill("input[name=timeout_minutes]", "60")
    page.select_option("select[name=abort_failure_type_0]", "FAILED")
    page.fill("input[name=abort_threshold_0]", "25.5")
    page.fill("input[name=abort_min_executed_0]", "5")
    page.select_option("select[name=abort_failure_type_1]", "TIMED_OUT")
    page.fill("input[name=abort_threshold_1]", "50")
    page.fill("input[name=abort_min_executed_1]", "10")
    page.select_option("select[name=retry_failure_type_0]", "TIMED_OUT")
    page.fill("input[name=retry_count_0]", "2")
    page.select_option("select[name=retry_failure_type_1]", "FAILED")
    page.fill("input[name=retry_count_1]", "1")
    page.fill("input[name=start_time]", start)
    page.fill("input[name=end_time]", end)
    page.select_option("select[name=end_behavior]", "CANCEL")
    page.fill("input[name=window_cron_0]", "cron(0 3 ? * MON *)")
    page.fill("input[name=window_minutes_0]", "180")
    page.fill("input[name=expires_in_sec]", "900")
    # The preview takes the schedule in: the first execution waits for the start (and the
    # window), and the abort criteria are listed.
    page.wait_for_selector("#preview .preview-summary[data-things='1'][data-first]")
    first_after_ms = int(page.get_attribute("#preview .preview-summary", "data-first"))
    assert first_after_ms >= 2 * 24 * 3600 * 1000 - 60_000, first_after_ms
    assert "Maintenance windows used" in page.inner_text("#preview")
    assert "25.5% of at least 5 executed things ended FAILED" in page.inner_text("#preview")
    shot(page, "10-create-all-configs")
    submit(page)
    page.wait_for_url("**/console/jobs/console-full-config")
    shot(page, "11-created-all-configs")

    job = aws("describe-job", "--job-id", "console-full-config")["job"]
    assert job["status"] == "SCHEDULED"
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 20}
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert job["abortConfig"] == {"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 25.5, "minNumberOfExecutedThings": 5},
        {"failureType": "TIMED_OUT", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 10},
    ]}
    assert job["jobExecutionsRetryConfig"] == {"criteriaList": [
        {"failureType": "TIMED_OUT", "numberOfRetries": 2}, {"failureType": "FAILED", "numberOfRetries": 1},
    ]}
    assert job["schedulingConfig"] == {
        "startTime": start, "endTime": end, "endBehavior": "CANCEL",
        "maintenanceWindows": [{"startTime": "cron(0 3 ? * MON *)", "durationInMinutes": 180}],
    }
    assert job["presignedUrlConfig"] == {"expiresInSec": 900}
    assert page.dialogs == []


def test_a_bad_value_is_the_engines_error_inline_and_no_job(server, keys, page):
    aws = server.aws
    aws("create-thing", "--thing-name", "form-thing-2")
    open_form(page, server, keys)
    # The job ID is checked as it is typed, as AWS checks it.
    page.fill("input[name=job_id]", "not valid!")
    page.wait_for_selector("#job-id-check [data-job-id=invalid]")
    assert "InvalidRequestException" in page.inner_text("#job-id-check")
    page.fill("input[name=job_id]", "console-bad-threshold")
    page.wait_for_selector("#job-id-check [data-job-id=free]")
    page.fill("textarea[name=things]", "form-thing-2")
    page.fill("textarea[name=document]", "{}")
    page.fill("input[name=abort_threshold_0]", "200")
    page.fill("input[name=abort_min_executed_0]", "5")
    # The preview already says so (the same rules), before any submit.
    expect(page.locator("#preview .field-error")).to_have_text("thresholdPercentage must be between 0 and 100")
    submit(page)
    error = page.locator(".field-error[data-field=Abort]")
    assert error.inner_text() == "InvalidRequestException: thresholdPercentage must be between 0 and 100"
    # What was typed stays.
    assert page.input_value("input[name=abort_threshold_0]") == "200"
    assert page.input_value("input[name=job_id]") == "console-bad-threshold"
    shot(page, "12-create-bad-threshold")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "12-create-bad-threshold-phone")
    err = server.aws_error("describe-job", "--job-id", "console-bad-threshold")
    assert err.code == "ResourceNotFoundException", err
    assert all(j["jobId"] != "console-bad-threshold" for j in aws("list-jobs")["jobs"])


def test_a_managed_template_with_its_parameters(server, keys, page):
    aws = server.aws
    aws("create-thing", "--thing-name", "form-thing-3")
    open_form(page, server, keys)
    page.fill("input[name=job_id]", "console-from-template")
    page.fill("textarea[name=things]", "form-thing-3")
    page.select_option("select[name=job_template]", label="AWS-Run-Command")
    page.wait_for_selector("input[name=param_command]")
    assert page.locator("input[name=param_runAsUser]").count() == 1
    page.fill("input[name=param_command]", "echo,hello console")
    shot(page, "13-create-from-template")
    submit(page)
    page.wait_for_url("**/console/jobs/console-from-template")
    job = aws("describe-job", "--job-id", "console-from-template")["job"]
    assert job["jobTemplateArn"].endswith(":jobtemplate/AWS-Run-Command:1.0"), job
    assert job["documentParameters"] == {"command": "echo,hello console"}
    document = json.loads(aws("get-job-document", "--job-id", "console-from-template")["document"])
    assert document["steps"][0]["action"]["input"]["command"] == "echo,hello console"


def test_a_document_from_s3_or_an_http_url(server, keys, page, http_documents):
    aws = server.aws
    aws("create-thing", "--thing-name", "form-thing-4")
    sources = {
        "console-from-s3": (f"https://s3.amazonaws.com/{BUCKET}/jobs/install.json", S3_DOCUMENT),
        "console-from-http": (f"{http_documents}/job.json", HTTP_DOCUMENT),
    }
    sign_in(page, server, keys)
    for job_id, (url, expected) in sources.items():
        page.goto(console_url(server, "/console/jobs/new"))
        page.fill("input[name=job_id]", job_id)
        page.fill("textarea[name=things]", "form-thing-4")
        page.fill("input[name=document_source]", url)
        submit(page)
        page.wait_for_url(f"**/console/jobs/{job_id}")
        assert aws("describe-job", "--job-id", job_id)["documentSource"] == url
        assert json.loads(aws("get-job-document", "--job-id", job_id)["document"]) == expected
    shot(page, "14-created-from-url")
    # An object that is not there: the engine's error beside the document, no job.
    page.goto(console_url(server, "/console/jobs/new"))
    page.fill("input[name=job_id]", "console-missing-source")
    page.fill("textarea[name=things]", "form-thing-4")
    page.fill("input[name=document_source]", f"https://s3.amazonaws.com/{BUCKET}/jobs/absent.json")
    submit(page)
    assert "absent.json" in page.inner_text(".field-error[data-field=Document]")
    assert server.aws_error("describe-job", "--job-id", "console-missing-source").code == "ResourceNotFoundException"


def test_target_search_finds_a_thing_and_a_group(server, keys, page):
    aws = server.aws
    for t in ("search-pump-1", "search-valve-1"):
        aws("create-thing", "--thing-name", t)
    aws("create-thing-group", "--thing-group-name", "search-pumps")
    aws("add-thing-to-thing-group", "--thing-group-name", "search-pumps", "--thing-name", "search-valve-1")
    open_form(page, server, keys)
    page.fill("input[name=job_id]", "console-searched-targets")
    page.fill("#target-search", "search-p")
    page.wait_for_selector("#target-results ul.picks[data-matches='2'][data-searched=list]")
    assert "search-valve-1" not in page.inner_text("#target-results")
    page.click("button[data-add-target=things][data-name=search-pump-1]")
    page.click("button[data-add-target=thing_groups][data-name=search-pumps]")
    assert page.input_value("textarea[name=things]") == "search-pump-1"
    assert page.input_value("textarea[name=thing_groups]") == "search-pumps"
    # Enter in the search box searches; it does not submit the form.
    page.fill("#target-search", "search-v")
    page.press("#target-search", "Enter")
    page.wait_for_selector("#target-results ul.picks[data-matches='1']")
    assert page.url.endswith("/console/jobs/new")
    # The thing and the group's member: two things in the preview.
    page.wait_for_selector("#preview .preview-summary[data-things='2']")
    page.fill("textarea[name=document]", "{}")
    shot(page, "15-create-target-search")
    submit(page)
    page.wait_for_url("**/console/jobs/console-searched-targets")
    targets = aws("describe-job", "--job-id", "console-searched-targets")["job"]["targets"]
    assert sorted(t.rsplit(":", 1)[1] for t in targets) == ["thing/search-pump-1", "thinggroup/search-pumps"]

    # With fleet indexing on, the search asks the index (the whole fleet) and finds the same.
    aws("update-indexing-configuration", "--thing-indexing-configuration", "thingIndexingMode=REGISTRY")
    page.goto(console_url(server, "/console/jobs/new"))
    page.fill("#target-search", "search-p")
    page.wait_for_selector("#target-results ul.picks[data-matches='2'][data-searched=index]")
    assert page.locator("button[data-add-target=things][data-name=search-pump-1]").count() == 1


@pytest.mark.parametrize("path", [
    "/console/jobs/targets?target_search=search",
    "/console/jobs/template-fields?job_template=x",
    "/console/jobs/check-id?job_id=x",
])
def test_the_forms_helpers_refuse_strangers(server, path):
    status, headers = _request(server, "GET", path)
    assert status == 303 and headers.get("location") == "/console/signin", (status, headers)
    status, _ = _request(server, "GET", path, {"HX-Request": "true"})
    assert status == 401
    status, _ = _request(server, "GET", path, {"Cookie": f"{SESSION_COOKIE}=0123abcd"})
    assert status == 303
