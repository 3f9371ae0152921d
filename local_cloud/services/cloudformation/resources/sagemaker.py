"""AWS::SageMaker::ModelPackageGroup through the SageMaker API."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    client,
    tag_dict,
    tag_list,
)


class ModelPackageGroup(Handler, CloudFormationModel):
    TYPE = "AWS::SageMaker::ModelPackageGroup"
    NAME = "ModelPackageGroupName"
    NAME_LIMIT = 63
    ATTRIBUTES = ("ModelPackageGroupArn", "CreationTime", "ModelPackageGroupStatus")
    REPLACE_ON = ("ModelPackageGroupDescription",)
    PROPERTIES = frozenset(
        {"ModelPackageGroupName", "ModelPackageGroupDescription", "ModelPackageGroupPolicy", "Tags"}
    )

    @classmethod
    def _policy(cls, name: str, props: dict[str, Any]) -> None:
        sm = client("sagemaker")
        policy = props.get("ModelPackageGroupPolicy")
        if policy:
            sm.put_model_package_group_policy(
                ModelPackageGroupName=name,
                ResourcePolicy=policy if isinstance(policy, str) else json.dumps(policy),
            )
        else:
            sm.delete_model_package_group_policy(ModelPackageGroupName=name)

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        sm = client("sagemaker")
        optional = (
            {"ModelPackageGroupDescription": props["ModelPackageGroupDescription"]}
            if props.get("ModelPackageGroupDescription")
            else {}
        )
        arn = sm.create_model_package_group(
            ModelPackageGroupName=request.name, Tags=tag_list(props), **optional
        )["ModelPackageGroupArn"]
        if props.get("ModelPackageGroupPolicy"):
            cls._policy(request.name, props)
        described = sm.describe_model_package_group(ModelPackageGroupName=request.name)
        return Deployed(
            arn,
            {
                "ModelPackageGroupArn": arn,
                "CreationTime": described["CreationTime"].isoformat(),
                "ModelPackageGroupStatus": described.get("ModelPackageGroupStatus", "Completed"),
            },
        )

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        name = request.name
        if props.get("ModelPackageGroupPolicy") != old.get("ModelPackageGroupPolicy"):
            cls._policy(name, props)
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            sm = client("sagemaker")
            arn = previous.physical_id
            if set(old_tags) - set(new_tags):
                sm.delete_tags(ResourceArn=arn, TagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                sm.add_tags(ResourceArn=arn, Tags=tag_list(props))
        return Deployed(previous.physical_id, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        """DeleteModelPackageGroup; moto 5.2.5 does not serve it, so the group leaves its backend
        directly, with AWS's rule that a group holding model packages cannot be deleted."""
        try:
            client("sagemaker").delete_model_package_group(ModelPackageGroupName=previous.name)
            return
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 500:
                raise
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[previous.account_id][previous.region]
        if any(p.model_package_group_name == previous.name for p in backend.model_packages.values()):
            raise ValueError(f"Model package group {previous.name} has model packages; delete them first")
        backend.model_package_groups.pop(previous.name, None)
