"""Lambda handler: CheckComponents — are both component versions DEPLOYABLE? (lambdas.core.components)."""

from __future__ import annotations

from typing import Any

from lambdas.core.components import check_components
from pipeline.aws import client

GREENGRASS = client("greengrassv2")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return check_components(event, greengrass=GREENGRASS)
