"""Thing types through the AWS CLI and boto3: create/describe/list/update, deprecate and undo,
delete only once deprecated and unused, things with a type (existence, deprecation, 50
attributes instead of 3, removal, the ListThings filter), tags, and a restart.

Each test uses its own type and thing names, so they do not depend on one another.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def iot(server):
    return server.boto3_client()


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def attributes(n: int) -> dict:
    return {"attributes": {f"k{i}": "v" for i in range(n)}}


def test_the_aws_cli_walks_a_type_through_its_life(server):
    aws = server.aws
    created = aws("create-thing-type", "--thing-type-name", "cli-bulb",
                  "--thing-type-properties", "thingTypeDescription=Light bulbs,searchableAttributes=serial,watts")
    assert created["thingTypeArn"].endswith(":thingtype/cli-bulb"), created
    described = aws("describe-thing-type", "--thing-type-name", "cli-bulb")
    assert described["thingTypeId"] == created["thingTypeId"]
    assert described["thingTypeProperties"] == {"thingTypeDescription": "Light bulbs",
                                                "searchableAttributes": ["serial", "watts"]}
    assert described["thingTypeMetadata"]["deprecated"] is False
    assert "creationDate" in described["thingTypeMetadata"]

    aws("create-thing", "--thing-name", "cli-lamp", "--thing-type-name", "cli-bulb",
        "--attribute-payload", {"attributes": {f"k{i}": "v" for i in range(10)}})
    thing = aws("describe-thing", "--thing-name", "cli-lamp")
    assert thing["thingTypeName"] == "cli-bulb" and len(thing["attributes"]) == 10
    listed = aws("list-things", "--thing-type-name", "cli-bulb")["things"]
    assert [t["thingName"] for t in listed] == ["cli-lamp"]
    assert listed[0]["thingTypeName"] == "cli-bulb"

    server.expect_error("InvalidRequestException", "delete-thing-type", "--thing-type-name", "cli-bulb",
                        operation="DeleteThingType")
    aws("deprecate-thing-type", "--thing-type-name", "cli-bulb")
    assert aws("describe-thing-type", "--thing-type-name", "cli-bulb")["thingTypeMetadata"]["deprecated"] is True
    server.expect_error("InvalidRequestException", "create-thing", "--thing-name", "cli-lamp2",
                        "--thing-type-name", "cli-bulb", operation="CreateThing")
    server.expect_error("InvalidRequestException", "delete-thing-type", "--thing-type-name", "cli-bulb")
    aws("update-thing", "--thing-name", "cli-lamp", "--remove-thing-type",
        "--attribute-payload", {"attributes": {"k0": "v"}})
    assert "thingTypeName" not in aws("describe-thing", "--thing-name", "cli-lamp")
    aws("delete-thing-type", "--thing-type-name", "cli-bulb")
    err = server.expect_error("ResourceNotFoundException", "describe-thing-type", "--thing-type-name", "cli-bulb")
    assert "Thing type cli-bulb does not exist" in str(err)


def test_types_list_update_and_undo_deprecation(iot):
    first = iot.create_thing_type(thingTypeName="tt-sensor",
                                  thingTypeProperties={"thingTypeDescription": "Sensors"})
    again = iot.create_thing_type(thingTypeName="tt-sensor",
                                  thingTypeProperties={"thingTypeDescription": "Sensors"})
    assert again["thingTypeId"] == first["thingTypeId"], "an identical create answers the same type"
    with pytest.raises(ClientError) as e:
        iot.create_thing_type(thingTypeName="tt-sensor", thingTypeProperties={"thingTypeDescription": "other"})
    assert error_code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        iot.create_thing_type(thingTypeName="tt-four", thingTypeProperties={
            "searchableAttributes": ["a", "b", "c", "d"]})
    assert error_code(e) == "InvalidRequestException"
    iot.create_thing_type(thingTypeName="tt-switch")

    names = [t["thingTypeName"] for t in
             iot.get_paginator("list_thing_types").paginate(PaginationConfig={"PageSize": 1})
             .build_full_result()["thingTypes"]]
    assert {"tt-sensor", "tt-switch"} <= set(names)
    only = iot.list_thing_types(thingTypeName="tt-sensor")["thingTypes"]
    assert [t["thingTypeName"] for t in only] == ["tt-sensor"]
    assert only[0]["thingTypeArn"] == first["thingTypeArn"]

    iot.update_thing_type(thingTypeName="tt-sensor", thingTypeProperties={"searchableAttributes": ["room"]})
    props = iot.describe_thing_type(thingTypeName="tt-sensor")["thingTypeProperties"]
    assert props == {"thingTypeDescription": "Sensors", "searchableAttributes": ["room"]}

    iot.deprecate_thing_type(thingTypeName="tt-switch")
    meta = iot.describe_thing_type(thingTypeName="tt-switch")["thingTypeMetadata"]
    assert meta["deprecated"] is True and "deprecationDate" in meta
    iot.deprecate_thing_type(thingTypeName="tt-switch", undoDeprecate=True)
    meta = iot.describe_thing_type(thingTypeName="tt-switch")["thingTypeMetadata"]
    assert meta["deprecated"] is False and "deprecationDate" not in meta
    iot.create_thing(thingName="tt-switch-1", thingTypeName="tt-switch")
    with pytest.raises(ClientError) as e:
        iot.deprecate_thing_type(thingTypeName="tt-none")
    assert error_code(e) == "ResourceNotFoundException"


def test_things_with_a_type_have_up_to_50_attributes(iot):
    iot.create_thing_type(thingTypeName="tt-big")
    with pytest.raises(ClientError) as e:
        iot.create_thing(thingName="tt-plain", attributePayload=attributes(4))
    assert error_code(e) == "InvalidRequestException"
    iot.create_thing(thingName="tt-full", thingTypeName="tt-big", attributePayload=attributes(50))
    with pytest.raises(ClientError) as e:
        iot.create_thing(thingName="tt-over", thingTypeName="tt-big", attributePayload=attributes(51))
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.create_thing(thingName="tt-none", thingTypeName="tt-missing")
    assert error_code(e) == "ResourceNotFoundException"
    assert "Thing type tt-missing does not exist" in e.value.response["Error"]["Message"]

    # A type is given, changed and removed by UpdateThing; removing it must leave <= 3.
    iot.create_thing(thingName="tt-later", attributePayload=attributes(3))
    iot.update_thing(thingName="tt-later", thingTypeName="tt-big", attributePayload=attributes(20))
    assert len(iot.describe_thing(thingName="tt-later")["attributes"]) == 20
    with pytest.raises(ClientError) as e:
        iot.update_thing(thingName="tt-later", removeThingType=True)
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.update_thing(thingName="tt-later", thingTypeName="tt-missing")
    assert error_code(e) == "ResourceNotFoundException"
    listed = iot.list_things(thingTypeName="tt-big")["things"]
    assert sorted(t["thingName"] for t in listed) == ["tt-full", "tt-later"]
    by_attribute = iot.list_things(thingTypeName="tt-big", attributeName="k19", attributeValue="v")["things"]
    assert [t["thingName"] for t in by_attribute] == ["tt-full", "tt-later"]


def test_thing_type_tags_and_a_restart(own_server):
    iot = own_server.boto3_client()
    arn = iot.create_thing_type(thingTypeName="tt-tagged", tags=[{"Key": "team", "Value": "edge"}])["thingTypeArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "tier", "Value": "1"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["team"])
    iot.deprecate_thing_type(thingTypeName="tt-tagged")
    before = iot.describe_thing_type(thingTypeName="tt-tagged")
    own_server.kill9()
    own_server.start()
    iot = own_server.boto3_client()
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "tier", "Value": "1"}]
    after = iot.describe_thing_type(thingTypeName="tt-tagged")
    for answer in (before, after):
        answer.pop("ResponseMetadata")
    assert after == before
