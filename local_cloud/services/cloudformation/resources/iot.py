"""AWS::IoT::ThingGroup, AWS::IoT::Policy, AWS::IoT::PolicyPrincipalAttachment and AWS::IoT::TopicRule
through the IoT API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    NotEmulated,
    ResourceRequest,
    client,
    generated_name,
    tag_dict,
    tag_list,
)


def _group_properties(props: dict[str, Any]) -> dict[str, Any]:
    given = props.get("ThingGroupProperties") or {}
    out: dict[str, Any] = {}
    if "ThingGroupDescription" in given:
        out["thingGroupDescription"] = given["ThingGroupDescription"]
    if "AttributePayload" in given:
        out["attributePayload"] = {"attributes": dict(given["AttributePayload"].get("Attributes") or {})}
    return out


class ThingGroup(Handler, CloudFormationModel):
    TYPE = "AWS::IoT::ThingGroup"
    NAME = "ThingGroupName"
    NAME_LIMIT = 128
    ATTRIBUTES = ("Arn", "Id")
    REPLACE_ON = ("ParentGroupName",)
    PROPERTIES = frozenset({"ThingGroupName", "ThingGroupProperties", "ParentGroupName", "Tags"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        optional = {"parentGroupName": props["ParentGroupName"]} if props.get("ParentGroupName") else {}
        group = client("iot").create_thing_group(
            thingGroupName=request.name,
            thingGroupProperties=_group_properties(props),
            tags=tag_list(props),
            **optional,
        )
        return Deployed(request.name, {"Arn": group["thingGroupArn"], "Id": group["thingGroupId"]})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        iot = client("iot")
        if _group_properties(props) != _group_properties(old):
            iot.update_thing_group(
                thingGroupName=previous.physical_id, thingGroupProperties=_group_properties(props)
            )
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            arn = previous.attributes["Arn"]
            if set(old_tags) - set(new_tags):
                iot.untag_resource(resourceArn=arn, tagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                iot.tag_resource(resourceArn=arn, tags=tag_list(props))
        return Deployed(previous.physical_id, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("iot").delete_thing_group(thingGroupName=previous.physical_id)


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class Policy(Handler, CloudFormationModel):
    TYPE = "AWS::IoT::Policy"
    NAME = "PolicyName"
    NAME_LIMIT = 128
    ATTRIBUTES = ("Arn", "Id")
    PROPERTIES = frozenset({"PolicyName", "PolicyDocument", "Tags"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        policy = client("iot").create_policy(
            policyName=request.name, policyDocument=_document(props["PolicyDocument"]), tags=tag_list(props)
        )
        return Deployed(request.name, {"Arn": policy["policyArn"], "Id": request.name})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        iot = client("iot")
        name = previous.physical_id
        if _document(props["PolicyDocument"]) != _document(old["PolicyDocument"]):
            versions = iot.list_policy_versions(policyName=name)["policyVersions"]
            stale = sorted(
                (v for v in versions if not v["isDefaultVersion"]), key=lambda v: int(v["versionId"])
            )
            if len(versions) >= 5:  # IoT keeps five versions of a policy
                iot.delete_policy_version(policyName=name, policyVersionId=stale[0]["versionId"])
            iot.create_policy_version(
                policyName=name, policyDocument=_document(props["PolicyDocument"]), setAsDefault=True
            )
        if tag_dict(props) != tag_dict(old):
            arn = previous.attributes["Arn"]
            gone = sorted(set(tag_dict(old)) - set(tag_dict(props)))
            if gone:
                iot.untag_resource(resourceArn=arn, tagKeys=gone)
            if props.get("Tags"):
                iot.tag_resource(resourceArn=arn, tags=tag_list(props))
        return Deployed(name, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        iot = client("iot")
        name = previous.physical_id
        for version in iot.list_policy_versions(policyName=name)["policyVersions"]:
            if not version["isDefaultVersion"]:
                iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])
        iot.delete_policy(policyName=name)


class PolicyPrincipalAttachment(Handler, CloudFormationModel):
    TYPE = "AWS::IoT::PolicyPrincipalAttachment"
    REPLACE_ON = ("PolicyName", "Principal")
    PROPERTIES = frozenset({"PolicyName", "Principal"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        client("iot").attach_policy(policyName=props["PolicyName"], target=props["Principal"])
        return Deployed(generated_name(request.stack_name, request.logical_id, limit=128))

    @classmethod
    def remove(cls, previous: Any) -> None:
        props = previous.properties
        client("iot").detach_policy(policyName=props["PolicyName"], target=props["Principal"])


def _api_shape(value: Any) -> Any:
    """A template's ``TopicRulePayload`` in the API's casing: every key's first letter lowered
    (``Sql`` -> ``sql``, ``Lambda.FunctionArn`` -> ``lambda.functionArn``, ``DynamoDBv2`` ->
    ``dynamoDBv2``), which is how the two models name every member of a rule."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _api_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_api_shape(v) for v in value]
    return value


class TopicRule(Handler, CloudFormationModel):
    """A rule the local rules engine runs (``local_cloud/services/iot_rules``); ``Ref`` is its name."""

    TYPE = "AWS::IoT::TopicRule"
    NAME = "RuleName"
    NAME_LIMIT = 128
    ATTRIBUTES = ("Arn",)
    PROPERTIES = frozenset({"RuleName", "TopicRulePayload", "Tags"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        # a generated name as CloudFormation makes one, in the characters a rule name allows
        name = request.name if request.name_given else request.name.replace("-", "_")
        tags = "&".join(f"{quote(t['Key'])}={quote(t['Value'])}" for t in tag_list(props))
        optional = {"tags": tags} if tags else {}
        iot = client("iot")
        iot.create_topic_rule(
            ruleName=name, topicRulePayload=_api_shape(props["TopicRulePayload"]), **optional
        )
        return Deployed(name, {"Arn": iot.get_topic_rule(ruleName=name)["ruleArn"]})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        if request.properties.get("Tags") != previous.properties.get("Tags"):
            raise NotEmulated("the local cloud does not update a topic rule's Tags in place")
        payload = _api_shape(request.properties["TopicRulePayload"])
        client("iot").replace_topic_rule(ruleName=previous.physical_id, topicRulePayload=payload)
        return Deployed(previous.physical_id, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("iot").delete_topic_rule(ruleName=previous.physical_id)
