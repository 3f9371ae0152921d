"""AWS::StepFunctions::StateMachine through the Step Functions API, so the state machine lands
in the backend executions run from (moto's own handler writes where StartExecution never looks)."""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    NotEmulated,
    ResourceRequest,
    client,
    tag_list,
)


def _definition(props: dict[str, Any]) -> str:
    if "DefinitionString" in props:
        text = str(props["DefinitionString"])
    elif "Definition" in props:
        text = json.dumps(props["Definition"])
    else:
        raise NotEmulated(
            "a state machine needs DefinitionString or Definition (DefinitionS3Location is not read)"
        )
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + key + "}", value if isinstance(value, str) else json.dumps(value))
    return text


def _logging(props: dict[str, Any]) -> dict[str, Any]:
    config = props.get("LoggingConfiguration")
    if not config:
        return {}
    out: dict[str, Any] = {"level": config.get("Level", "OFF")}
    if "IncludeExecutionData" in config:
        out["includeExecutionData"] = bool(config["IncludeExecutionData"])
    out["destinations"] = [
        {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
        for d in config.get("Destinations") or []
    ]
    return {"loggingConfiguration": out}


def _tracing(props: dict[str, Any]) -> dict[str, Any]:
    config = props.get("TracingConfiguration")
    return {"tracingConfiguration": {"enabled": bool(config.get("Enabled"))}} if config else {}


class StateMachine(Handler, CloudFormationModel):
    TYPE = "AWS::StepFunctions::StateMachine"
    NAME = "StateMachineName"
    NAME_LIMIT = 80
    ATTRIBUTES = ("Arn", "Name")
    REPLACE_ON = ("StateMachineType",)
    PROPERTIES = frozenset(
        {
            "StateMachineName",
            "DefinitionString",
            "Definition",
            "DefinitionSubstitutions",
            "RoleArn",
            "StateMachineType",
            "LoggingConfiguration",
            "TracingConfiguration",
            "Tags",
        }
    )

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        arn = client("stepfunctions").create_state_machine(
            name=request.name,
            definition=_definition(props),
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
            tags=tag_list(props, "key", "value"),
            **_logging(props),
            **_tracing(props),
        )["stateMachineArn"]
        return Deployed(arn, {"Arn": arn, "Name": request.name})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        sfn = client("stepfunctions")
        arn = previous.physical_id
        sfn.update_state_machine(
            stateMachineArn=arn,
            definition=_definition(props),
            roleArn=props["RoleArn"],
            **(_logging(props) or ({"loggingConfiguration": {"level": "OFF"}} if _logging(old) else {})),
            **(_tracing(props) or ({"tracingConfiguration": {"enabled": False}} if _tracing(old) else {})),
        )
        if tag_list(props) != tag_list(old):
            keys = {t["key"] for t in tag_list(old, "key", "value")} - {
                t["key"] for t in tag_list(props, "key", "value")
            }
            if keys:
                sfn.untag_resource(resourceArn=arn, tagKeys=sorted(keys))
            if props.get("Tags"):
                sfn.tag_resource(resourceArn=arn, tags=tag_list(props, "key", "value"))
        return Deployed(arn, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("stepfunctions").delete_state_machine(stateMachineArn=previous.physical_id)
