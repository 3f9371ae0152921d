"""Small fakes for the Greengrass control plane (moto has no greengrassv2)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


def not_found(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ResourceNotFoundException", "Message": "not found"},
            "ResponseMetadata": {"HTTPStatusCode": 404},
        },
        operation,
    )


class _Meta:
    region_name = "us-east-1"


class _EffectivePages:
    def __init__(self, owner: FakeGreengrass) -> None:
        self.owner = owner

    def paginate(self, coreDeviceThingName: str) -> list[dict[str, Any]]:
        self.owner.asked.append(coreDeviceThingName)
        if coreDeviceThingName in self.owner.unknown:
            raise not_found("ListEffectiveDeployments")
        return [{"effectiveDeployments": self.owner.effective.get(coreDeviceThingName, [])}]


class FakeGreengrass:
    """Component versions by ARN, deployments recorded, effective deployments per thing."""

    meta = _Meta()

    def __init__(self, initial_state: str = "DEPLOYABLE") -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self.recipes: list[dict[str, Any]] = []
        self.deployments: list[dict[str, Any]] = []
        self.effective: dict[str, list[dict[str, Any]]] = {}
        self.initial_state = initial_state
        self.unknown: set[str] = set()
        #: Things ListEffectiveDeployments was asked about, in order.
        self.asked: list[str] = []

    def describe_component(self, arn: str) -> dict[str, Any]:
        if arn not in self.components:
            raise not_found("DescribeComponent")
        return {
            "arn": arn,
            "status": {"componentState": self.components[arn]["state"], "message": "m", "errors": {}},
        }

    def create_component_version(self, inlineRecipe: bytes) -> dict[str, Any]:
        recipe = json.loads(inlineRecipe)
        self.recipes.append(recipe)
        arn = (
            "arn:aws:greengrass:us-east-1:123456789012:components:"
            f"{recipe['ComponentName']}:versions:{recipe['ComponentVersion']}"
        )
        self.components[arn] = {"state": self.initial_state, "recipe": recipe}
        return {"arn": arn}

    def create_deployment(self, **request: Any) -> dict[str, Any]:
        self.deployments.append(request)
        return {"deploymentId": f"dep-{len(self.deployments)}"}

    def get_paginator(self, name: str) -> _EffectivePages:
        assert name == "list_effective_deployments"
        return _EffectivePages(self)
