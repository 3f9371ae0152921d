"""Lambda handler: CheckDeployment — each device's own result (lambdas.core.deployment)."""

from __future__ import annotations

from typing import Any

from lambdas.core.deployment import check_deployment
from pipeline.aws import client

GREENGRASS = client("greengrassv2")
IOT = client("iot")
S3 = client("s3")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return check_deployment(event, greengrass=GREENGRASS, iot=IOT, s3=S3)
