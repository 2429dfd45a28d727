"""Dynamic thing groups through boto3 and the AWS CLI: members are the things a fleet-indexing
query matches, an invalid query is refused, and a CONTINUOUS job on a dynamic group follows
things as they start and stop matching (the device told by notify-next); search-index
answers what the same query matches.

Each test uses its own group and thing names, so they do not depend on one another.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

DOCUMENT = '{"operation": "dynamic"}'


@pytest.fixture(scope="module")
def iot(server):
    return server.boto3_client()


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def members(iot, group: str) -> list[str]:
    return iot.list_things_in_thing_group(thingGroupName=group)["things"]


def set_attribute(iot, thing: str, name: str, value: str) -> None:
    iot.update_thing(thingName=thing, attributePayload={"attributes": {name: value}, "merge": True})


def latest(iot, job_id: str, thing: str) -> tuple[str, int] | None:
    """(status, executionNumber) of the thing's latest execution of the job."""
    out = None
    for s in iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]:
        if s["thingArn"].rsplit("/", 1)[1] == thing:
            e = s["jobExecutionSummary"]
            if out is None or out[1] < e["executionNumber"]:
                out = (e["status"], e["executionNumber"])
    return out


def test_members_follow_the_query(iot):
    for name, fw in [("dg-a", "1.2"), ("dg-b", "2.0"), ("dg-c", "1.9")]:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"fw": fw}})
    created = iot.create_dynamic_thing_group(thingGroupName="dg-old", queryString="attributes.fw:1* AND thingName:dg-*",
                                             thingGroupProperties={"thingGroupDescription": "old firmware"})
    assert created["thingGroupArn"].endswith(":thinggroup/dg-old"), created
    assert (created["indexName"], created["queryVersion"]) == ("AWS_Things", "2017-09-30"), created
    assert created["queryString"] == "attributes.fw:1* AND thingName:dg-*"
    assert members(iot, "dg-old") == ["dg-a", "dg-c"]

    described = iot.describe_thing_group(thingGroupName="dg-old")
    assert described["queryString"] == "attributes.fw:1* AND thingName:dg-*"
    assert described["status"] == "ACTIVE" and described["indexName"] == "AWS_Things", described
    assert described["thingGroupProperties"] == {"thingGroupDescription": "old firmware"}
    groups = iot.list_thing_groups_for_thing(thingName="dg-a")["thingGroups"]
    assert [g["groupName"] for g in groups] == ["dg-old"]

    set_attribute(iot, "dg-a", "fw", "2.1")
    assert members(iot, "dg-old") == ["dg-c"], "stops matching: leaves"
    set_attribute(iot, "dg-b", "fw", "1.0")
    assert members(iot, "dg-old") == ["dg-b", "dg-c"], "starts matching: joins"

    updated = iot.update_dynamic_thing_group(thingGroupName="dg-old", expectedVersion=1,
                                             thingGroupProperties={}, queryString="attributes.fw>=2")
    assert updated["version"] == 2
    assert members(iot, "dg-old") == ["dg-a"], "a new query re-evaluates every thing"

    iot.delete_dynamic_thing_group(thingGroupName="dg-old")
    with pytest.raises(ClientError) as e:
        iot.describe_thing_group(thingGroupName="dg-old")
    assert error_code(e) == "ResourceNotFoundException"


def test_invalid_queries_and_static_only_operations_are_refused(server, iot):
    iot.create_thing(thingName="dx-thing")
    for query in ["thingName:(dx", "attributes.x:[1 TO", "NOT", "shadow.reported.x:1"]:
        with pytest.raises(ClientError) as e:
            iot.create_dynamic_thing_group(thingGroupName="dx-bad", queryString=query)
        assert error_code(e) == "InvalidQueryException", query
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The AWS CLI reads the same error.
    server.expect_error("InvalidQueryException", "create-dynamic-thing-group", "--thing-group-name", "dx-bad",
                        "--query-string", "thingName:(dx", operation="CreateDynamicThingGroup")

    iot.create_dynamic_thing_group(thingGroupName="dx-dyn", queryString="thingName:dx-*")
    with pytest.raises(ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="dx-dyn", thingName="dx-thing")
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="dx-child", parentGroupName="dx-dyn")
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.update_dynamic_thing_group(thingGroupName="dx-dyn", thingGroupProperties={}, queryString="a:(")
    assert error_code(e) == "InvalidQueryException"


def test_a_continuous_job_follows_the_query(iot, make_device, connect_device):
    device = connect_device(make_device("dj-dev"))
    iot.create_thing(thingName="dj-other", attributePayload={"attributes": {"ring": "canary"}})
    group = iot.create_dynamic_thing_group(thingGroupName="dj-canary", queryString="attributes.ring:canary")
    iot.create_job(jobId="dj-job", document=DOCUMENT, targets=[group["thingGroupArn"]],
                   targetSelection="CONTINUOUS")
    assert latest(iot, "dj-job", "dj-other") == ("QUEUED", 1)
    assert latest(iot, "dj-job", "dj-dev") is None

    since = device.mark()
    set_attribute(iot, "dj-dev", "ring", "canary")
    assert latest(iot, "dj-job", "dj-dev") == ("QUEUED", 1), "starts matching: queued"
    head = device.wait_notify_next(since, predicate=lambda p: "execution" in p)
    assert head["execution"]["jobId"] == "dj-job", head

    since = device.mark()
    set_attribute(iot, "dj-dev", "ring", "prod")
    assert latest(iot, "dj-job", "dj-dev") == ("REMOVED", 1), "stops matching: its queued execution is removed"
    gone = device.wait_notify_next(since)
    assert "execution" not in gone, gone


def test_search_index_finds_what_a_dynamic_group_would(aws, expect_error):
    """The AWS CLI's fleet-indexing calls: the index exists once thing indexing is on, and
    search-index answers the things the same query makes members of a dynamic group."""
    for name, fw in [("idx-a", "1"), ("idx-b", "2"), ("idx-c", "1")]:
        aws("create-thing", "--thing-name", name, "--attribute-payload", {"attributes": {"fw": fw}})
    aws("create-dynamic-thing-group", "--thing-group-name", "idx-fw1", "--query-string", "attributes.fw:1")
    aws("update-indexing-configuration", "--thing-indexing-configuration", "thingIndexingMode=REGISTRY")
    config = aws("get-indexing-configuration")
    assert config["thingIndexingConfiguration"]["thingIndexingMode"] == "REGISTRY", config
    assert aws("describe-index", "--index-name", "AWS_Things")["indexStatus"] == "ACTIVE"
    assert "AWS_Things" in aws("list-indices")["indexNames"]

    found = aws("search-index", "--query-string", "thingName:idx-* AND attributes.fw:1")["things"]
    assert [t["thingName"] for t in found] == ["idx-a", "idx-c"], found
    assert found[0]["attributes"] == {"fw": "1"}
    group = aws("list-things-in-thing-group", "--thing-group-name", "idx-fw1")["things"]
    assert sorted(group) == [t["thingName"] for t in found]
    expect_error("InvalidQueryException", "search-index", "--query-string", "shadow.reported.x:1")
    expect_error("InvalidRequestException", "update-indexing-configuration",
                 "--thing-indexing-configuration", "thingIndexingMode=REGISTRY_AND_SHADOW")

    # Turned off, the index is gone (and the dynamic group keeps its members: they are the
    # registry's, not the index's).
    aws("update-indexing-configuration", "--thing-indexing-configuration", "thingIndexingMode=OFF")
    expect_error("ResourceNotFoundException", "search-index", "--query-string", "thingName:idx-*")
    assert aws("list-indices")["indexNames"] == []
    assert sorted(aws("list-things-in-thing-group", "--thing-group-name", "idx-fw1")["things"]) == ["idx-a", "idx-c"]
