"""AWS::Logs::LogGroup through the CloudWatch Logs API (name, retention, tags)."""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    client,
    tag_dict,
)


class LogGroup(Handler, CloudFormationModel):
    TYPE = "AWS::Logs::LogGroup"
    NAME = "LogGroupName"
    NAME_LIMIT = 512
    ATTRIBUTES = ("Arn",)
    REPLACE_ON = ("LogGroupClass",)
    PROPERTIES = frozenset({"LogGroupName", "RetentionInDays", "KmsKeyId", "LogGroupClass", "Tags"})

    @classmethod
    def _retention(cls, name: str, props: dict[str, Any]) -> None:
        logs = client("logs")
        if props.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        else:
            logs.delete_retention_policy(logGroupName=name)

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        logs = client("logs")
        optional = {"kmsKeyId": props["KmsKeyId"]} if props.get("KmsKeyId") else {}
        if props.get("LogGroupClass"):
            optional["logGroupClass"] = props["LogGroupClass"]
        logs.create_log_group(logGroupName=request.name, tags=tag_dict(props), **optional)
        if props.get("RetentionInDays"):
            cls._retention(request.name, props)
        arn = request.arn("logs", f"log-group:{request.name}:*")
        return Deployed(request.name, {"Arn": arn})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        name = previous.physical_id
        if props.get("RetentionInDays") != old.get("RetentionInDays"):
            cls._retention(name, props)
        logs = client("logs")
        if props.get("KmsKeyId") != old.get("KmsKeyId"):
            if props.get("KmsKeyId"):
                logs.associate_kms_key(logGroupName=name, kmsKeyId=props["KmsKeyId"])
            else:
                logs.disassociate_kms_key(logGroupName=name)
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            arn = previous.attributes["Arn"].removesuffix(":*")
            if set(old_tags) - set(new_tags):
                logs.untag_resource(resourceArn=arn, tagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                logs.tag_resource(resourceArn=arn, tags=new_tags)
        return Deployed(name, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("logs").delete_log_group(logGroupName=previous.physical_id)
