"""AWS::Events::Rule through the EventBridge API: the rule and its targets."""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    client,
    tag_dict,
    tag_list,
)

_TARGET_KEYS = (
    "Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer", "RetryPolicy", "DeadLetterConfig",
    "SqsParameters", "HttpParameters", "EcsParameters", "BatchParameters", "KinesisParameters",
    "RunCommandParameters", "SageMakerPipelineParameters", "RedshiftDataParameters",
)  # fmt: skip


def _rule(request_name: str, props: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"Name": request_name, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    for key in ("ScheduleExpression", "Description", "RoleArn", "EventBusName"):
        if props.get(key):
            rule[key] = props[key]
    return rule


def _targets(props: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for target in props.get("Targets") or []:
        out = {key: target[key] for key in _TARGET_KEYS if key in target}
        transformer = out.get("InputTransformer")
        if transformer and not isinstance(transformer.get("InputPathsMap", {}), dict):
            transformer["InputPathsMap"] = dict(transformer["InputPathsMap"])
        targets.append(out)
    return targets


class Rule(Handler, CloudFormationModel):
    TYPE = "AWS::Events::Rule"
    NAME = "Name"
    NAME_LIMIT = 64
    ATTRIBUTES = ("Arn",)
    REPLACE_ON = ("EventBusName",)
    PROPERTIES = frozenset(
        {
            "Name",
            "Description",
            "EventBusName",
            "EventPattern",
            "ScheduleExpression",
            "State",
            "RoleArn",
            "Targets",
            "Tags",
        }
    )

    @classmethod
    def _bus(cls, props: dict[str, Any]) -> dict[str, Any]:
        return {"EventBusName": props["EventBusName"]} if props.get("EventBusName") else {}

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        events = client("events")
        arn = events.put_rule(**_rule(request.name, props), Tags=tag_list(props))["RuleArn"]
        if props.get("Targets"):
            events.put_targets(Rule=request.name, Targets=_targets(props), **cls._bus(props))
        return Deployed(request.name, {"Arn": arn})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        events = client("events")
        name = previous.physical_id
        events.put_rule(**_rule(name, props))
        gone = {t["Id"] for t in _targets(old)} - {t["Id"] for t in _targets(props)}
        if gone:
            events.remove_targets(Rule=name, Ids=sorted(gone), **cls._bus(props))
        if props.get("Targets"):
            events.put_targets(Rule=name, Targets=_targets(props), **cls._bus(props))
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            arn = previous.attributes["Arn"]
            if set(old_tags) - set(new_tags):
                events.untag_resource(ResourceARN=arn, TagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                events.tag_resource(ResourceARN=arn, Tags=tag_list(props))
        return Deployed(name, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        events = client("events")
        props = previous.properties
        ids = [t["Id"] for t in _targets(props)]
        if ids:
            events.remove_targets(Rule=previous.physical_id, Ids=ids, **cls._bus(props))
        events.delete_rule(Name=previous.physical_id, **cls._bus(props))
