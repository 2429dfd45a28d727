"""(c) Bad input on the HTTP API: each call fails with the AWS error name the CLI
prints (``An error occurred (CODE) when calling the OPERATION operation: ...``)
and leaves nothing changed."""

from __future__ import annotations

import json

import pytest

from e2elib.jobs import describe_job

THING = "bad-input-thing"


@pytest.fixture(scope="module", autouse=True)
def thing(server):
    return server.aws("create-thing", "--thing-name", THING)


def job_ids(server) -> set[str]:
    return {j["jobId"] for j in server.aws("list-jobs")["jobs"]}


def assert_no_job(server, job_id: str) -> None:
    server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", job_id)
    assert job_id not in job_ids(server)


def test_duplicate_job_id_is_resource_already_exists(server, create_job, arn_prefix):
    """CreateJob with an id in use: ResourceAlreadyExistsException; the first job
    keeps its document and description."""
    create_job("dup-job", [THING], {"v": 1}, "--description", "first")
    server.expect_error(
        "ResourceAlreadyExistsException", "create-job", "--job-id", "dup-job",
        "--targets", f"{arn_prefix}:thing/{THING}", "--document", json.dumps({"v": 2}),
        "--description", "second", operation="CreateJob",
    )
    assert describe_job(server, "dup-job")["description"] == "first"
    assert json.loads(server.aws("get-job-document", "--job-id", "dup-job")["document"]) == {"v": 1}
    executions = server.aws("list-job-executions-for-job", "--job-id", "dup-job")["executionSummaries"]
    assert len(executions) == 1, executions


@pytest.mark.parametrize("job_id", ["bad id!", "x" * 65], ids=["space-and-bang", "65-chars"])
def test_invalid_job_id_is_invalid_request(server, arn_prefix, job_id):
    """Job ids must match [a-zA-Z0-9_-]{1,64}; botocore does not check the pattern,
    the server must: InvalidRequestException, and no job is created."""
    before = job_ids(server)
    server.expect_error(
        "InvalidRequestException", "create-job", "--job-id", job_id,
        "--targets", f"{arn_prefix}:thing/{THING}", "--document", '{"operation":"x"}',
        operation="CreateJob",
    )
    assert job_ids(server) == before


def test_document_over_32_kb_is_invalid_request(server, arn_prefix):
    """An inline job document larger than 32,768 bytes: InvalidRequestException."""
    document = json.dumps({"operation": "big", "blob": "a" * 33_000})
    assert len(document.encode()) > 32_768
    doc_file = server.write_file("big-document.json", document)
    server.expect_error(
        "InvalidRequestException", "create-job", "--job-id", "too-big-doc",
        "--targets", f"{arn_prefix}:thing/{THING}", "--document", f"file://{doc_file}",
        operation="CreateJob",
    )
    assert_no_job(server, "too-big-doc")


def test_document_that_is_not_json_is_invalid_request(server, arn_prefix):
    """The job document must be JSON (devices receive it embedded as an object)."""
    server.expect_error(
        "InvalidRequestException", "create-job", "--job-id", "not-json-doc",
        "--targets", f"{arn_prefix}:thing/{THING}", "--document", "this is not json",
        operation="CreateJob",
    )
    assert_no_job(server, "not-json-doc")


def test_unknown_job_is_resource_not_found(server):
    """describe-job, get-job-document, cancel-job and delete-job of a job that does
    not exist: ResourceNotFoundException."""
    for args, operation in [
        (("describe-job", "--job-id", "no-such-job"), "DescribeJob"),
        (("get-job-document", "--job-id", "no-such-job"), "GetJobDocument"),
        (("cancel-job", "--job-id", "no-such-job"), "CancelJob"),
        (("describe-job-execution", "--job-id", "no-such-job", "--thing-name", THING), "DescribeJobExecution"),
    ]:
        server.expect_error("ResourceNotFoundException", *args, operation=operation)


def test_unknown_thing_target_is_resource_not_found(server, arn_prefix):
    """CreateJob targeting a thing that does not exist: ResourceNotFoundException,
    and no job (with or without the existing target) is created."""
    prefix = arn_prefix
    server.expect_error(
        "ResourceNotFoundException", "create-job", "--job-id", "ghost-target",
        "--targets", f"{prefix}:thing/{THING}", f"{prefix}:thing/no-such-thing",
        "--document", '{"operation":"x"}', operation="CreateJob",
    )
    assert_no_job(server, "ghost-target")
    assert server.aws("list-job-executions-for-thing", "--thing-name", THING,
                      "--job-id", "ghost-target")["executionSummaries"] == []


@pytest.fixture(scope="module")
def many_things(server) -> list[str]:
    """101 things (created with boto3: the CLI would take a minute)."""
    iot = server.boto3_client()
    return [iot.create_thing(thingName=f"many-{i:03d}")["thingArn"] for i in range(101)]


def test_more_than_100_targets_is_rejected(server, many_things):
    """A job may have at most 100 targets: 101 existing things are refused with
    InvalidRequestException (or LimitExceededException) and no job is created."""
    targets_file = server.write_file("101-targets.json", json.dumps(many_things))
    err = server.aws_error(
        "create-job", "--job-id", "too-many-targets", "--targets", f"file://{targets_file}",
        "--document", '{"operation":"x"}',
    )
    assert err.code in ("InvalidRequestException", "LimitExceededException"), err
    assert err.operation == "CreateJob", err
    assert_no_job(server, "too-many-targets")
    assert server.aws("list-job-executions-for-thing", "--thing-name", "many-000")["executionSummaries"] == []


def test_list_things_pages_are_followed_by_the_cli(server, many_things):
    """With --page-size the CLI fetches list-things page by page through nextToken
    (maxResults); it must end up with every thing exactly once."""
    listed = [t["thingName"] for t in server.aws("list-things", "--page-size", "7")["things"]]
    many = [n for n in listed if n.startswith("many-")]
    assert sorted(many) == [f"many-{i:03d}" for i in range(101)], listed
    assert len(listed) == len(set(listed)), "a thing was listed twice"


def test_job_without_document_is_invalid_request(server, arn_prefix):
    """CreateJob needs a document (or a documentSource / template)."""
    server.expect_error(
        "InvalidRequestException", "create-job", "--job-id", "no-document",
        "--targets", f"{arn_prefix}:thing/{THING}", operation="CreateJob",
    )
    assert_no_job(server, "no-document")


def test_wrong_secret_key_is_invalid_signature(server):
    """A request signed with the right access key id but a wrong secret:
    InvalidSignatureException, and the thing it tried to create does not exist."""
    key_id, _ = server.credentials()
    bad = server.credentials_file_with("wrong-secret", key_id, "wrongwrongwrongwrongwrongwrongwrongwrong")
    server.expect_error("InvalidSignatureException", "create-thing", "--thing-name", "forged-1",
                        credentials_file=bad, operation="CreateThing")
    server.expect_error("ResourceNotFoundException", "describe-thing", "--thing-name", "forged-1")


def test_unknown_access_key_is_unrecognized_client(server):
    """A request with an access key id the server never issued:
    UnrecognizedClientException, and nothing is created."""
    bad = server.credentials_file_with("unknown-key", "AKIAUNKNOWNKEY000000", "x" * 40)
    server.expect_error("UnrecognizedClientException", "create-thing", "--thing-name", "forged-2",
                        credentials_file=bad, operation="CreateThing")
    server.expect_error("UnrecognizedClientException", "list-jobs", credentials_file=bad, operation="ListJobs")
    server.expect_error("ResourceNotFoundException", "describe-thing", "--thing-name", "forged-2")



def test_client_for_another_region_is_refused(server):
    """boto3 configured for another region signs with that region in its credential scope:
    refused as AWS refuses it (403 InvalidSignatureException), and nothing is created."""
    from botocore.exceptions import ClientError

    iot = server.boto3_client(region="eu-west-1")
    with pytest.raises(ClientError) as caught:
        iot.create_thing(thingName="other-region")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    assert response["Error"]["Code"] == "InvalidSignatureException", response
    assert response["Error"]["Message"] == "Credential should be scoped to a valid region, not 'eu-west-1'.", response
    server.expect_error("ResourceNotFoundException", "describe-thing", "--thing-name", "other-region")
