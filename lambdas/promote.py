"""Lambda handler: Promote — last known good + approve the model package (lambdas.core.promote)."""

from __future__ import annotations

from typing import Any

from lambdas.core.promote import promote
from pipeline.aws import client

S3 = client("s3")
SAGEMAKER = client("sagemaker")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return promote(event, s3=S3, sagemaker=SAGEMAKER)
