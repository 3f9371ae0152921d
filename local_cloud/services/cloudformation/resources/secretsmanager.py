"""AWS::SecretsManager::Secret through the Secrets Manager API; ``GenerateSecretString`` asks the
service for the value (GetRandomPassword), as CloudFormation does."""

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

_PASSWORD_OPTIONS = {
    "PasswordLength": int,
    "ExcludeCharacters": str,
    "ExcludeLowercase": bool,
    "ExcludeNumbers": bool,
    "ExcludePunctuation": bool,
    "ExcludeUppercase": bool,
    "IncludeSpace": bool,
    "RequireEachIncludedType": bool,
}


def _value(props: dict[str, Any]) -> str:
    if "SecretString" in props:
        return str(props["SecretString"])
    spec = props.get("GenerateSecretString") or {}
    options = {key: cast(spec[key]) for key, cast in _PASSWORD_OPTIONS.items() if key in spec}
    password = client("secretsmanager").get_random_password(**options)["RandomPassword"]
    if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return str(password)


class Secret(Handler, CloudFormationModel):
    TYPE = "AWS::SecretsManager::Secret"
    NAME = "Name"
    NAME_LIMIT = 256
    ATTRIBUTES = ("Id",)
    PROPERTIES = frozenset(
        {"Name", "Description", "SecretString", "GenerateSecretString", "KmsKeyId", "Tags"}
    )

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        optional = {key: props[key] for key in ("Description", "KmsKeyId") if props.get(key)}
        arn = client("secretsmanager").create_secret(
            Name=request.name, SecretString=_value(props), Tags=tag_list(props), **optional
        )["ARN"]
        return Deployed(arn, {"Id": arn})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        """The value changes only when the template's value (or how to generate it) changes."""
        props, old = request.properties, previous.properties
        sm = client("secretsmanager")
        arn = previous.physical_id
        changes: dict[str, Any] = {}
        for key in ("Description", "KmsKeyId"):
            if props.get(key) != old.get(key):
                changes[key] = props.get(key, "")
        if props.get("SecretString") != old.get("SecretString") or props.get(
            "GenerateSecretString"
        ) != old.get("GenerateSecretString"):
            changes["SecretString"] = _value(props)
        if changes:
            sm.update_secret(SecretId=arn, **changes)
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            if set(old_tags) - set(new_tags):
                sm.untag_resource(SecretId=arn, TagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                sm.tag_resource(SecretId=arn, Tags=tag_list(props))
        return Deployed(arn, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("secretsmanager").delete_secret(SecretId=previous.physical_id, ForceDeleteWithoutRecovery=True)
