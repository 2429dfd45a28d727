"""Job documents from elsewhere: ``create-job --document-source`` read once from an
S3-compatible store (moto_server, addressed through ``serve --s3-endpoint``) or any http URL,
shown by describe-job; a missing object refused with no job made; and
``${aws:iot:s3-presigned-url:...}`` placeholders presigned each time a device receives the
document (start-next, describe, notify-next) while get-job-document keeps them, the device
fetching the object through the presigned URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from e2elib.identity import create_device
from e2elib.mqtt import JobsDevice
from e2elib.server import free_port, port_open, start_server

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "fleet-docs"
DOCUMENT = {"operation": "install", "version": "2.1"}
FIRMWARE = b"\x7fELF firmware bytes \x00\x01\x02"
PRESIGNED = {"operation": "download",
             "url": f"${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{BUCKET}/fw/app.bin}}"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """``moto_server`` on a free port, with the bucket and its objects."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **KEYS), start_new_session=True)
    deadline = time.monotonic() + 30
    while not port_open(port):
        assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
        time.sleep(0.1)
    import boto3

    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="jobs/install.json", Body=json.dumps(DOCUMENT).encode())
    s3.put_object(Bucket=BUCKET, Key="jobs/presigned.json", Body=json.dumps(PRESIGNED).encode())
    s3.put_object(Bucket=BUCKET, Key="jobs/not-json.json", Body=b"[1, 2")
    s3.put_object(Bucket=BUCKET, Key="fw/app.bin", Body=FIRMWARE)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def plain_http():
    """A plain http server with one document at /doc.json."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/doc.json":
                body = json.dumps({"operation": "fromHttp"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(fleetjobs_bin, tmp_path_factory, moto):
    srv = start_server(fleetjobs_bin, tmp_path_factory.mktemp("docsrc"), "test_document_sources",
                       extra_args=("--s3-endpoint", moto), extra_env=KEYS)
    yield srv
    srv.stop()


def test_create_job_reads_the_document_from_s3_and_describe_shows_the_source(server):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "src-thing")["thingArn"]
    for form in (f"https://s3.amazonaws.com/{BUCKET}/jobs/install.json",
                 f"https://{BUCKET}.s3.us-east-1.amazonaws.com/jobs/install.json"):
        job_id = f"src-{len(form)}"
        aws("create-job", "--job-id", job_id, "--targets", thing_arn, "--document-source", form)
        described = aws("describe-job", "--job-id", job_id)
        assert described["documentSource"] == form
        assert json.loads(aws("get-job-document", "--job-id", job_id)["document"]) == DOCUMENT


def test_a_plain_http_source_and_a_template_source(server, plain_http):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "http-thing")["thingArn"]
    aws("create-job", "--job-id", "from-http", "--targets", thing_arn, "--document-source", f"{plain_http}/doc.json")
    assert json.loads(aws("get-job-document", "--job-id", "from-http")["document"]) == {"operation": "fromHttp"}
    # boto3: awscli v1 would fetch an http(s) create-job-template parameter itself (its
    # paramfile rule exempts only create-job's --document-source).
    server.boto3_client().create_job_template(
        jobTemplateId="tpl-s3", description="from s3",
        documentSource=f"https://s3.amazonaws.com/{BUCKET}/jobs/install.json")
    template = aws("describe-job-template", "--job-template-id", "tpl-s3")
    assert json.loads(template["document"]) == DOCUMENT
    assert template["documentSource"] == f"https://s3.amazonaws.com/{BUCKET}/jobs/install.json"


def test_a_missing_or_invalid_source_is_refused_and_makes_no_job(server, plain_http):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "missing-thing")["thingArn"]
    for job_id, source, reason in [
        ("missing-obj", f"https://s3.amazonaws.com/{BUCKET}/jobs/nope.json", "does not exist"),
        ("missing-http", f"{plain_http}/nope.json", "does not exist"),
        ("unreachable", f"http://127.0.0.1:{free_port()}/doc.json", "unreachable"),
        ("not-json", f"https://s3.amazonaws.com/{BUCKET}/jobs/not-json.json", ""),
    ]:
        err = server.expect_error("InvalidRequestException", "create-job", "--job-id", job_id,
                                  "--targets", thing_arn, "--document-source", source, operation="CreateJob")
        assert reason in err.message, err
        server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", job_id)


def test_a_device_receives_presigned_urls_and_fetches_the_object(server, tmp_path):
    import requests

    aws = server.aws
    identity = create_device(server, "presign-thing", tmp_path / "certs")
    thing_arn = aws("describe-thing", "--thing-name", "presign-thing")["thingArn"]
    dev = JobsDevice(identity, server.mqtt_port)
    dev.connect()
    try:
        dev.subscribe_jobs()
        since = dev.mark()
        aws("create-job", "--job-id", "presigned", "--targets", thing_arn,
            "--document-source", f"https://s3.amazonaws.com/{BUCKET}/jobs/presigned.json",
            "--presigned-url-config", "expiresInSec=600")
        # get-job-document keeps the placeholder.
        assert json.loads(aws("get-job-document", "--job-id", "presigned")["document"]) == PRESIGNED

        urls = []
        notified = dev.wait_notify_next(since, predicate=lambda p: "execution" in p)
        urls.append(notified["execution"]["jobDocument"]["url"])
        urls.append(dev.start_next()["execution"]["jobDocument"]["url"])
        urls.append(dev.describe("presigned", includeJobDocument=True)["execution"]["jobDocument"]["url"])
        for url in urls:
            assert "${aws:iot" not in url, url
            assert url.startswith(server.extra_args[1] + f"/{BUCKET}/fw/app.bin?"), url
            assert re.search(r"X-Amz-Signature=[0-9a-f]{64}", url), url
            assert "X-Amz-Expires=600&" in url, "the job's presignedUrlConfig.expiresInSec"
            got = requests.get(url, timeout=10)
            assert got.status_code == 200, got.text
            assert got.content == FIRMWARE
    finally:
        dev.close()
