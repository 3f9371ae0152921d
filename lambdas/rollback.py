"""Lambda handler: Rollback — redeploy last known good, report the original cause (lambdas.core.promote)."""

from __future__ import annotations

from typing import Any

from lambdas.core.promote import rollback
from pipeline.aws import client

S3 = client("s3")
GREENGRASS = client("greengrassv2")
IOT = client("iot")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return rollback(event, s3=S3, greengrass=GREENGRASS, iot=IOT)
