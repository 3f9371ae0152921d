"""Lambda handler: Deploy — Greengrass deployment to the thing group (lambdas.core.deployment)."""

from __future__ import annotations

from typing import Any

from lambdas.core.deployment import deploy
from pipeline.aws import client

GREENGRASS = client("greengrassv2")
IOT = client("iot")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return deploy(event, greengrass=GREENGRASS, iot=IOT)
