"""Static thing groups through boto3: the hierarchy and its limits, memberships, and jobs
that target groups (SNAPSHOT resolved once, CONTINUOUS following things in and out).

Each test uses its own group and thing names, so they do not depend on one another.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

DOCUMENT = '{"operation": "groups"}'


@pytest.fixture(scope="module")
def iot(server):
    return server.boto3_client()


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def things(iot, *names: str) -> dict[str, str]:
    return {n: iot.create_thing(thingName=n)["thingArn"] for n in names}


def executions(iot, job_id: str) -> dict[str, tuple[str, int]]:
    """thing name -> (status, executionNumber) of its latest execution of the job."""
    out: dict[str, tuple[str, int]] = {}
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    for summary in pages.build_full_result()["executionSummaries"]:
        name = summary["thingArn"].rsplit("/", 1)[1]
        number = summary["jobExecutionSummary"]["executionNumber"]
        if name not in out or out[name][1] < number:
            out[name] = (summary["jobExecutionSummary"]["status"], number)
    return out


def test_groups_describe_list_update_and_delete(iot):
    root = iot.create_thing_group(thingGroupName="tg-root",
                                  thingGroupProperties={"thingGroupDescription": "all of them",
                                                        "attributePayload": {"attributes": {"site": "eu"}}})
    assert root["thingGroupArn"].endswith(":thinggroup/tg-root"), root
    again = iot.create_thing_group(thingGroupName="tg-root",
                                   thingGroupProperties={"thingGroupDescription": "all of them",
                                                         "attributePayload": {"attributes": {"site": "eu"}}})
    assert again["thingGroupId"] == root["thingGroupId"], "an identical create answers the same group"
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="tg-root", thingGroupProperties={"thingGroupDescription": "other"})
    assert error_code(e) == "ResourceAlreadyExistsException"

    iot.create_thing_group(thingGroupName="tg-mid", parentGroupName="tg-root")
    iot.create_thing_group(thingGroupName="tg-leaf", parentGroupName="tg-mid")
    leaf = iot.describe_thing_group(thingGroupName="tg-leaf")
    assert leaf["version"] == 1
    assert leaf["thingGroupMetadata"]["parentGroupName"] == "tg-mid"
    assert [g["groupName"] for g in leaf["thingGroupMetadata"]["rootToParentThingGroups"]] == ["tg-root", "tg-mid"]
    assert leaf["thingGroupProperties"] == {}
    described = iot.describe_thing_group(thingGroupName="tg-root")
    assert described["thingGroupProperties"] == {"thingGroupDescription": "all of them",
                                                 "attributePayload": {"attributes": {"site": "eu"}}}

    listed = iot.list_thing_groups(parentGroup="tg-root")["thingGroups"]
    assert [g["groupName"] for g in listed] == ["tg-mid"]
    listed = iot.list_thing_groups(parentGroup="tg-root", recursive=True)["thingGroups"]
    assert [g["groupName"] for g in listed] == ["tg-leaf", "tg-mid"]
    listed = iot.list_thing_groups(namePrefixFilter="tg-l")["thingGroups"]
    assert [g["groupName"] for g in listed] == ["tg-leaf"]

    assert iot.update_thing_group(thingGroupName="tg-root", expectedVersion=1,
                                  thingGroupProperties={"attributePayload": {"attributes": {"tier": "gold"},
                                                                             "merge": True}})["version"] == 2
    with pytest.raises(ClientError) as e:
        iot.update_thing_group(thingGroupName="tg-root", expectedVersion=1,
                               thingGroupProperties={"thingGroupDescription": "late"})
    assert error_code(e) == "VersionConflictException"
    attrs = iot.describe_thing_group(thingGroupName="tg-root")["thingGroupProperties"]["attributePayload"]
    assert attrs["attributes"] == {"site": "eu", "tier": "gold"}

    with pytest.raises(ClientError) as e:
        iot.delete_thing_group(thingGroupName="tg-mid")
    assert error_code(e) == "InvalidRequestException", "a group with child groups stays"
    iot.delete_thing_group(thingGroupName="tg-leaf")
    iot.delete_thing_group(thingGroupName="tg-leaf")  # deleting what is gone succeeds
    with pytest.raises(ClientError) as e:
        iot.describe_thing_group(thingGroupName="tg-leaf")
    assert error_code(e) == "ResourceNotFoundException"


def test_memberships_by_name_or_arn_and_recursive_listing(iot):
    arns = things(iot, "tm-a", "tm-b", "tm-c")
    top = iot.create_thing_group(thingGroupName="tm-top")
    iot.create_thing_group(thingGroupName="tm-sub", parentGroupName="tm-top")
    iot.add_thing_to_thing_group(thingGroupName="tm-top", thingName="tm-a")
    iot.add_thing_to_thing_group(thingGroupArn=top["thingGroupArn"], thingArn=arns["tm-c"])
    iot.add_thing_to_thing_group(thingGroupName="tm-sub", thingName="tm-b")
    iot.add_thing_to_thing_group(thingGroupName="tm-sub", thingName="tm-b")  # again: no-op

    assert iot.list_things_in_thing_group(thingGroupName="tm-top")["things"] == ["tm-a", "tm-c"]
    assert iot.list_things_in_thing_group(thingGroupName="tm-top", recursive=True)["things"] == ["tm-a", "tm-b", "tm-c"]
    groups = iot.list_thing_groups_for_thing(thingName="tm-b")["thingGroups"]
    assert [g["groupName"] for g in groups] == ["tm-sub"]

    iot.update_thing_groups_for_thing(thingName="tm-b", thingGroupsToAdd=["tm-top"], thingGroupsToRemove=["tm-sub"])
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="tm-b")["thingGroups"]] == ["tm-top"]
    iot.remove_thing_from_thing_group(thingGroupName="tm-top", thingArn=arns["tm-a"])
    assert iot.list_things_in_thing_group(thingGroupName="tm-top")["things"] == ["tm-b", "tm-c"]

    iot.delete_thing(thingName="tm-c")
    assert iot.list_things_in_thing_group(thingGroupName="tm-top")["things"] == ["tm-b"], "a deleted thing leaves"

    with pytest.raises(ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="tm-nope", thingName="tm-a")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="tm-top", thingName="tm-nobody")
    assert error_code(e) == "ResourceNotFoundException"


def test_hierarchy_limits(iot):
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="th-orphan", parentGroupName="th-missing")
    assert error_code(e) == "ResourceNotFoundException"

    iot.create_thing_group(thingGroupName="th-1")
    for level in range(2, 8):
        iot.create_thing_group(thingGroupName=f"th-{level}", parentGroupName=f"th-{level - 1}")
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="th-8", parentGroupName="th-7")
    assert error_code(e) == "InvalidRequestException", "at most 7 levels"

    # A parent is fixed at creation: asking to move th-1 under its own descendant is a cycle.
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="th-1", parentGroupName="th-3")
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.create_thing_group(thingGroupName="th-self", parentGroupName="th-self")
    assert error_code(e) == "InvalidRequestException"

    things(iot, "th-thing")
    for i in range(10):
        iot.create_thing_group(thingGroupName=f"th-many-{i}")
        iot.add_thing_to_thing_group(thingGroupName=f"th-many-{i}", thingName="th-thing")
    iot.create_thing_group(thingGroupName="th-many-10")
    with pytest.raises(ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="th-many-10", thingName="th-thing")
    assert error_code(e) == "InvalidRequestException", "a thing is in at most 10 groups"


def test_snapshot_job_on_a_group_reaches_child_groups_once(iot):
    arns = things(iot, "js-a", "js-b", "js-c")
    parent = iot.create_thing_group(thingGroupName="js-parent")
    child = iot.create_thing_group(thingGroupName="js-child", parentGroupName="js-parent")
    iot.add_thing_to_thing_group(thingGroupName="js-parent", thingName="js-a")
    iot.add_thing_to_thing_group(thingGroupName="js-child", thingName="js-b")
    iot.add_thing_to_thing_group(thingGroupName="js-child", thingName="js-c")
    iot.add_thing_to_thing_group(thingGroupName="js-parent", thingName="js-c")
    iot.create_job(jobId="js-job", document=DOCUMENT,
                   targets=[parent["thingGroupArn"], child["thingGroupArn"], arns["js-b"]])
    assert executions(iot, "js-job") == {"js-a": ("QUEUED", 1), "js-b": ("QUEUED", 1), "js-c": ("QUEUED", 1)}
    job = iot.describe_job(jobId="js-job")["job"]
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 3

    # The snapshot does not follow later changes.
    things(iot, "js-late")
    iot.add_thing_to_thing_group(thingGroupName="js-child", thingName="js-late")
    assert "js-late" not in executions(iot, "js-job")

    listed = iot.list_jobs(thingGroupName="js-child")["jobs"]
    assert [j["jobId"] for j in listed] == ["js-job"]
    assert iot.list_jobs(thingGroupName="js-nope")["jobs"] == []


def test_continuous_job_follows_things_in_and_out(iot):
    things(iot, "jc-first", "jc-later")
    group = iot.create_thing_group(thingGroupName="jc-group")
    iot.create_thing_group(thingGroupName="jc-sub", parentGroupName="jc-group")
    iot.add_thing_to_thing_group(thingGroupName="jc-group", thingName="jc-first")
    iot.create_job(jobId="jc-job", document=DOCUMENT, targets=[group["thingGroupArn"]], targetSelection="CONTINUOUS")
    assert executions(iot, "jc-job") == {"jc-first": ("QUEUED", 1)}

    iot.add_thing_to_thing_group(thingGroupName="jc-sub", thingName="jc-later")
    assert executions(iot, "jc-job")["jc-later"] == ("QUEUED", 1), "joining a child group queues"
    iot.remove_thing_from_thing_group(thingGroupName="jc-group", thingName="jc-first")
    assert executions(iot, "jc-job")["jc-first"] == ("REMOVED", 1), "leaving removes the queued execution"
    iot.add_thing_to_thing_group(thingGroupName="jc-group", thingName="jc-first")
    assert executions(iot, "jc-job")["jc-first"] == ("QUEUED", 2), "rejoining is a fresh execution"


def test_unknown_group_target_is_not_found(iot):
    things(iot, "ju-thing")
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="ju-job", document=DOCUMENT, targets=["arn:aws:iot:::thinggroup/ju-ghost"])
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "Thing group ju-ghost cannot be found."
    iot.create_job(jobId="ju-cont", document=DOCUMENT, targetSelection="CONTINUOUS",
                   targets=["arn:aws:iot:::thing/ju-thing"])
    with pytest.raises(ClientError) as e:
        iot.associate_targets_with_job(jobId="ju-cont", targets=["arn:aws:iot:::thinggroup/ju-ghost"])
    assert error_code(e) == "ResourceNotFoundException"
