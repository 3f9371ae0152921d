"""AWS::IAM::Role and AWS::IAM::Policy through the IAM API: trust, inline and managed policies
exactly as the template gives them (an IAM evaluator can enforce them as written)."""

from __future__ import annotations

import contextlib
import json
from typing import Any, ClassVar

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    client,
    generated_name,
    tag_dict,
    tag_list,
)


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _inline(properties: dict[str, Any]) -> dict[str, str]:
    return {p["PolicyName"]: _document(p["PolicyDocument"]) for p in properties.get("Policies") or []}


class Role(Handler, CloudFormationModel):
    TYPE = "AWS::IAM::Role"
    NAME = "RoleName"
    NAME_LIMIT = 64
    ATTRIBUTES = ("Arn", "RoleId")
    REPLACE_ON = ("Path",)
    PROPERTIES = frozenset(
        {
            "RoleName",
            "AssumeRolePolicyDocument",
            "Description",
            "Path",
            "MaxSessionDuration",
            "PermissionsBoundary",
            "ManagedPolicyArns",
            "Policies",
            "Tags",
        }
    )

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        iam = client("iam")
        optional = {
            key: props[key] for key in ("Description", "Path", "PermissionsBoundary") if props.get(key)
        }
        if props.get("MaxSessionDuration"):
            optional["MaxSessionDuration"] = int(props["MaxSessionDuration"])
        role = iam.create_role(
            RoleName=request.name,
            AssumeRolePolicyDocument=_document(props["AssumeRolePolicyDocument"]),
            Tags=tag_list(props),
            **optional,
        )["Role"]
        for name, document in _inline(props).items():
            iam.put_role_policy(RoleName=request.name, PolicyName=name, PolicyDocument=document)
        for arn in props.get("ManagedPolicyArns") or []:
            iam.attach_role_policy(RoleName=request.name, PolicyArn=arn)
        return Deployed(request.name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        iam = client("iam")
        name = previous.physical_id
        iam.update_assume_role_policy(
            RoleName=name, PolicyDocument=_document(props["AssumeRolePolicyDocument"])
        )
        iam.update_role(
            RoleName=name,
            Description=props.get("Description", ""),
            **(
                {"MaxSessionDuration": int(props["MaxSessionDuration"])}
                if props.get("MaxSessionDuration")
                else {}
            ),
        )
        new_inline, old_inline = _inline(props), _inline(old)
        for policy, document in new_inline.items():
            if old_inline.get(policy) != document:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=document)
        for policy in set(old_inline) - set(new_inline):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        new_managed, old_managed = (
            set(props.get("ManagedPolicyArns") or []),
            set(old.get("ManagedPolicyArns") or []),
        )
        for arn in new_managed - old_managed:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for arn in old_managed - new_managed:
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        if props.get("PermissionsBoundary") != old.get("PermissionsBoundary"):
            if props.get("PermissionsBoundary"):
                iam.put_role_permissions_boundary(
                    RoleName=name, PermissionsBoundary=props["PermissionsBoundary"]
                )
            else:
                iam.delete_role_permissions_boundary(RoleName=name)
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if set(old_tags) - set(new_tags):
            iam.untag_role(RoleName=name, TagKeys=sorted(set(old_tags) - set(new_tags)))
        if new_tags != old_tags and new_tags:
            iam.tag_role(RoleName=name, Tags=tag_list(props))
        return Deployed(name, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        """Its own inline and managed policies go with it; a policy another resource attached
        makes DeleteRole fail (DeleteConflict) until that resource is deleted, as on AWS."""
        iam = client("iam")
        name = previous.physical_id
        for policy in _inline(previous.properties):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for arn in previous.properties.get("ManagedPolicyArns") or []:
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        iam.delete_role(RoleName=name)


class Policy(Handler, CloudFormationModel):
    """An inline policy put on each of its roles, users and groups (CDK's ``DefaultPolicy``)."""

    TYPE = "AWS::IAM::Policy"
    PROPERTIES = frozenset({"PolicyName", "PolicyDocument", "Roles", "Users", "Groups"})

    #: principal kind -> (IAM call, its name parameter), to put and to delete the inline policy
    _PUT: ClassVar[dict[str, tuple[str, str]]] = {
        "Roles": ("put_role_policy", "RoleName"),
        "Users": ("put_user_policy", "UserName"),
        "Groups": ("put_group_policy", "GroupName"),
    }
    _DELETE: ClassVar[dict[str, tuple[str, str]]] = {
        "Roles": ("delete_role_policy", "RoleName"),
        "Users": ("delete_user_policy", "UserName"),
        "Groups": ("delete_group_policy", "GroupName"),
    }

    @classmethod
    def _targets(cls, properties: dict[str, Any]) -> set[tuple[str, str]]:
        return {(kind, str(name)) for kind in cls._PUT for name in properties.get(kind) or []}

    @classmethod
    def _put(cls, properties: dict[str, Any], targets: set[tuple[str, str]]) -> None:
        iam = client("iam")
        document = _document(properties["PolicyDocument"])
        for kind, name in sorted(targets):
            method, key = cls._PUT[kind]
            getattr(iam, method)(**{key: name}, PolicyName=properties["PolicyName"], PolicyDocument=document)

    @classmethod
    def _delete(cls, policy_name: str, targets: set[tuple[str, str]]) -> None:
        iam = client("iam")
        for kind, name in sorted(targets):
            method, key = cls._DELETE[kind]
            # NoSuchEntity: the role went first, and its inline policy with it
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                getattr(iam, method)(**{key: name}, PolicyName=policy_name)

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        if not cls._targets(props):
            raise ValueError("at least one of Roles, Users or Groups must be non-empty")
        cls._put(props, cls._targets(props))
        # CloudFormation's physical id of an inline policy: <stack[:5]>-<logical id[:4]>-<random>
        physical = generated_name(request.stack_name[:5], request.logical_id[:4], limit=64)
        return Deployed(physical)

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        new_targets, old_targets = cls._targets(props), cls._targets(old)
        if props["PolicyName"] != old["PolicyName"]:
            cls._delete(old["PolicyName"], old_targets)
        else:
            cls._delete(old["PolicyName"], old_targets - new_targets)
        cls._put(props, new_targets)
        return Deployed(previous.physical_id)

    @classmethod
    def remove(cls, previous: Any) -> None:
        cls._delete(previous.properties["PolicyName"], cls._targets(previous.properties))
