"""Lambda handler: PublishComponents — versioned model + inference components (lambdas.core.components)."""

from __future__ import annotations

from typing import Any

from lambdas.core.components import publish_components
from pipeline.aws import client

S3 = client("s3")
GREENGRASS = client("greengrassv2")
STS = client("sts")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return publish_components(event, s3=S3, greengrass=GREENGRASS, sts=STS)
