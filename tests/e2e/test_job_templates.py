"""Job templates through the AWS CLI and boto3: custom templates (create from a document or
from a job, describe, list with paging, delete, duplicate ids, a restart), jobs made from
them (document and configs copied, the job's own overriding), AWS managed templates (list,
describe, jobs with ``--document-parameters``, missing and extra parameters, the document
before substitution), and the errors of unknown templates.

Each test uses its own names, so they do not depend on one another.
"""

from __future__ import annotations

import json

import pytest

RUN_COMMAND = "arn:aws:iot:us-east-1::jobtemplate/AWS-Run-Command:1.0"
DOCUMENT = {"operation": "fromTemplate", "url": "https://example.com/fw.bin"}
WINDOW = {"startTime": "cron(0 0 * * ? *)", "durationInMinutes": 60}


@pytest.fixture(scope="module")
def iot(server):
    return server.boto3_client()


def test_the_aws_cli_walks_a_custom_template_into_a_job(server):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "tpl-thing")["thingArn"]
    created = aws("create-job-template", "--job-template-id", "tpl-nightly", "--description", "Nightly update",
                  "--document", json.dumps(DOCUMENT),
                  "--timeout-config", "inProgressTimeoutInMinutes=30",
                  "--maintenance-windows", json.dumps([WINDOW]),
                  "--abort-config", json.dumps({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                                                  "thresholdPercentage": 50,
                                                                  "minNumberOfExecutedThings": 2}]}))
    assert created["jobTemplateArn"].endswith(":jobtemplate/tpl-nightly"), created
    described = aws("describe-job-template", "--job-template-id", "tpl-nightly")
    assert json.loads(described["document"]) == DOCUMENT
    assert described["description"] == "Nightly update"
    assert described["maintenanceWindows"] == [WINDOW]
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert "createdAt" in described

    server.expect_error("ConflictException", "create-job-template", "--job-template-id", "tpl-nightly",
                        "--description", "again", "--document", "{}", operation="CreateJobTemplate")

    aws("create-job", "--job-id", "tpl-job", "--targets", thing_arn,
        "--job-template-arn", created["jobTemplateArn"], "--timeout-config", "inProgressTimeoutInMinutes=45")
    job = aws("describe-job", "--job-id", "tpl-job")["job"]
    assert job["jobTemplateArn"] == created["jobTemplateArn"]
    assert job["description"] == "Nightly update"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 45}, "the job's own config wins"
    assert job["abortConfig"]["criteriaList"][0]["failureType"] == "FAILED"
    assert job["schedulingConfig"]["maintenanceWindows"] == [WINDOW]
    assert json.loads(aws("get-job-document", "--job-id", "tpl-job")["document"]) == DOCUMENT

    # A template from the job copies its document and configs.
    aws("create-job-template", "--job-template-id", "tpl-copy", "--description", "copy",
        "--job-arn", job["jobArn"])
    copy = aws("describe-job-template", "--job-template-id", "tpl-copy")
    assert json.loads(copy["document"]) == DOCUMENT
    assert copy["timeoutConfig"] == {"inProgressTimeoutInMinutes": 45}

    aws("delete-job-template", "--job-template-id", "tpl-nightly")
    err = server.expect_error("ResourceNotFoundException", "describe-job-template", "--job-template-id",
                              "tpl-nightly", operation="DescribeJobTemplate")
    assert "tpl-nightly" in str(err)
    assert aws("describe-job", "--job-id", "tpl-job")["job"]["jobTemplateArn"] == created["jobTemplateArn"]
    server.expect_error("ResourceNotFoundException", "create-job", "--job-id", "tpl-job2", "--targets", thing_arn,
                        "--job-template-arn", created["jobTemplateArn"], operation="CreateJob")
    server.expect_error("ResourceNotFoundException", "delete-job-template", "--job-template-id", "tpl-nightly")
    server.expect_error("ResourceNotFoundException", "create-job-template", "--job-template-id", "tpl-from-none",
                        "--description", "x", "--job-arn", job["jobArn"].replace("tpl-job", "no-such-job"))
    server.expect_error("InvalidRequestException", "create-job-template", "--job-template-id", "tpl-s3",
                        "--description", "x", "--document-source", "s3://bucket/key")


def test_custom_templates_refuse_document_parameters_and_a_second_document(server):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "tpl-refuse")["thingArn"]
    arn = aws("create-job-template", "--job-template-id", "tpl-refuse", "--description", "d",
              "--document", json.dumps(DOCUMENT))["jobTemplateArn"]
    server.expect_error("InvalidRequestException", "create-job", "--job-id", "tpl-refuse-1", "--targets", thing_arn,
                        "--job-template-arn", arn, "--document-parameters", "command=ls")
    server.expect_error("InvalidRequestException", "create-job", "--job-id", "tpl-refuse-2", "--targets", thing_arn,
                        "--job-template-arn", arn, "--document", "{}")
    server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", "tpl-refuse-1")


def test_list_job_templates_pages(iot):
    for i in range(5):
        iot.create_job_template(jobTemplateId=f"tpl-page-{i}", description=f"page {i}", document="{}")
    first = iot.list_job_templates(maxResults=2)
    assert len(first["jobTemplates"]) == 2 and first["nextToken"]
    ids = [t["jobTemplateId"] for t in
           iot.get_paginator("list_job_templates").paginate(PaginationConfig={"PageSize": 2})
           .build_full_result()["jobTemplates"]]
    assert [i for i in ids if i.startswith("tpl-page-")] == [f"tpl-page-{i}" for i in range(5)]
    summary = first["jobTemplates"][0]
    assert set(summary) == {"jobTemplateArn", "jobTemplateId", "description", "createdAt"}


def test_managed_templates_are_listed_and_described(server):
    aws = server.aws
    listed = aws("list-managed-job-templates")["managedJobTemplates"]
    names = sorted(t["templateName"] for t in listed)
    assert names == sorted(["AWS-Reboot", "AWS-Download-File", "AWS-Install-Application", "AWS-Remove-Application",
                            "AWS-Restart-Application", "AWS-Start-Application", "AWS-Stop-Application",
                            "AWS-Run-Command"])
    reboot = next(t for t in listed if t["templateName"] == "AWS-Reboot")
    assert reboot == {"templateArn": "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0", "templateName": "AWS-Reboot",
                      "description": "A managed job template for rebooting the device.", "environments": ["LINUX"],
                      "templateVersion": "1.0"}
    only = aws("list-managed-job-templates", "--template-name", "AWS-Run-Command")["managedJobTemplates"]
    assert [t["templateArn"] for t in only] == [RUN_COMMAND]
    described = aws("describe-managed-job-template", "--template-name", "AWS-Download-File",
                    "--template-version", "1.0")
    assert [p["key"] for p in described["documentParameters"]] == ["downloadUrl", "filePath", "runAsUser",
                                                                   "pathToHandler"]
    assert described["documentParameters"][0]["optional"] is False
    assert "${aws:iot:parameter:downloadUrl}" in described["document"]
    server.expect_error("ResourceNotFoundException", "describe-managed-job-template", "--template-name", "AWS-Nope",
                        operation="DescribeManagedJobTemplate")
    server.expect_error("ResourceNotFoundException", "describe-managed-job-template", "--template-name",
                        "AWS-Reboot", "--template-version", "9.9")
    server.expect_error("ResourceNotFoundException", "list-managed-job-templates", "--template-name", "AWS-Nope")


def test_a_job_from_a_managed_template_substitutes_its_parameters(server):
    aws = server.aws
    thing_arn = aws("create-thing", "--thing-name", "tpl-managed")["thingArn"]
    created = aws("create-job", "--job-id", "tpl-run", "--targets", thing_arn, "--job-template-arn", RUN_COMMAND,
                  "--document-parameters", {"command": "echo,hello", "runAsUser": "pi"})
    assert created["description"] == "A managed job template for running a command."
    document = json.loads(aws("get-job-document", "--job-id", "tpl-run")["document"])
    action = document["steps"][0]["action"]
    assert action["input"]["command"] == "echo,hello", action
    assert action["runAsUser"] == "pi"
    before = aws("get-job-document", "--job-id", "tpl-run", "--before-substitution")["document"]
    assert "${aws:iot:parameter:command}" in before
    job = aws("describe-job", "--job-id", "tpl-run")["job"]
    assert job["jobTemplateArn"] == RUN_COMMAND
    assert job["documentParameters"]["runAsUser"] == "pi"

    # Missing and extra parameters, an unknown managed template: nothing is created.
    server.expect_error("InvalidRequestException", "create-job", "--job-id", "tpl-run-missing", "--targets",
                        thing_arn, "--job-template-arn", RUN_COMMAND, operation="CreateJob")
    server.expect_error("InvalidRequestException", "create-job", "--job-id", "tpl-run-extra", "--targets",
                        thing_arn, "--job-template-arn", RUN_COMMAND,
                        "--document-parameters", "command=ls,colour=red")
    server.expect_error("ResourceNotFoundException", "create-job", "--job-id", "tpl-run-unknown", "--targets",
                        thing_arn, "--job-template-arn", "arn:aws:iot:us-east-1::jobtemplate/AWS-Nope:1.0")
    for job_id in ("tpl-run-missing", "tpl-run-extra", "tpl-run-unknown"):
        server.expect_error("ResourceNotFoundException", "describe-job", "--job-id", job_id)


def test_templates_and_their_tags_survive_a_restart(own_server):
    iot = own_server.boto3_client()
    arn = iot.create_job_template(jobTemplateId="tpl-kept", description="kept", document=json.dumps(DOCUMENT),
                                  maintenanceWindows=[WINDOW], tags=[{"Key": "team", "Value": "edge"}])["jobTemplateArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "tier", "Value": "1"}])
    before = iot.describe_job_template(jobTemplateId="tpl-kept")
    own_server.kill9()
    own_server.start()
    iot = own_server.boto3_client()
    after = iot.describe_job_template(jobTemplateId="tpl-kept")
    for answer in (before, after):
        answer.pop("ResponseMetadata")
    assert after == before
    tags = sorted((t["Key"], t["Value"]) for t in iot.list_tags_for_resource(resourceArn=arn)["tags"])
    assert tags == [("team", "edge"), ("tier", "1")]
